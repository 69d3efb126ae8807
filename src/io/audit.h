/* The daemon's decision log: JSON lines or CloudEvents (Portarium's
 * io.portarium.egress.attempt), with repeated denies aggregated per interval so that a
 * flood cannot fill a node's disk. Safe to call from every queue thread. */
#ifndef EI_IO_AUDIT_H
#define EI_IO_AUDIT_H

#include "egress_inspector/pipeline.h"

typedef enum {
    EI_LOG_JSON = 0,
    EI_LOG_CLOUDEVENTS,
} ei_log_format;

#define EI_AUDIT_KEYS 1024 /* distinct (client, name, reason, port) denies per interval */

typedef struct ei_audit ei_audit;
typedef void (*ei_audit_write_fn)(void *ctx, const char *line, size_t len);

/* source names this node in CloudEvents ("egress-inspector/NODE"). interval_ns: the
 * aggregation window. NULL when memory runs out. */
EI_MUST_USE ei_audit *ei_audit_new(ei_log_format format, const char *source, uint64_t interval_ns,
                                   ei_audit_write_fn write, void *ctx);

/* Logs a decision: every allow, and the first deny of each kind in the window; later
 * denies of that kind are counted for the window's aggregate line. */
void ei_audit_decision(ei_audit *a, const ei_flow_event *ev);

/* Closes the window when it is over: one aggregate line per kind that was repeated. */
void ei_audit_tick(ei_audit *a, uint64_t now_ns);

/* Flushes the open window and frees. */
void ei_audit_free(ei_audit *a, uint64_t now_ns);

#endif
