/* Metrics and health over HTTP (libmicrohttpd, its own thread): /metrics in Prometheus
 * text format, /healthz (the event loops are alive) and /readyz (queues bound, rules
 * loaded). The owner supplies the text and the answers through callbacks. */
#ifndef EI_IO_METRICS_H
#define EI_IO_METRICS_H

#include <stdio.h>

#include "egress_inspector/common.h"

typedef struct ei_metrics ei_metrics;

typedef struct {
    void (*render)(void *ctx, FILE *out); /* writes the /metrics body */
    bool (*healthy)(void *ctx);
    bool (*ready)(void *ctx);
    void *ctx;
} ei_metrics_source;

/* Listens on "ADDR:PORT" ("0.0.0.0:9153", "[::1]:9153"). NULL with a reason in err. */
EI_MUST_USE ei_metrics *ei_metrics_start(const char *listen, const ei_metrics_source *src, char *err,
                                         size_t errlen);
/* Stops the server thread (an answer in progress is finished first) and frees; NULL:
 * nothing. After it returns, no callback of src runs again: the caller may free what
 * they read. */
void ei_metrics_stop(ei_metrics *m);

#endif
