/* The Prometheus text of /metrics (exposition format 0.0.4), as a pure function of a
 * snapshot of the daemon's counters: no locks, no clock, no files, so that a golden-text
 * test pins every metric's name, type, labels and value. The daemon gathers the snapshot
 * (io/daemon.c); this file only writes it, and the control socket's status object too. */
#ifndef EI_IO_PROM_H
#define EI_IO_PROM_H

#include <stdio.h>

#include "egress_inspector/dns.h"
#include "egress_inspector/pipeline.h"
#include "io/control.h"
#include "io/logring.h"
#include "io/nfq.h"
#include "io/reset.h"
#include "io/resolver.h"
#include "kube/view.h"
#include "kube/watch.h"

typedef struct {
    uint16_t queue;
    ei_nfq_stats nfq;
    bool kernel_known; /* the kernel's counters below were read */
    unsigned long kernel_queue_dropped, kernel_user_dropped;
} ei_prom_queue;

typedef struct {
    const ei_prom_queue *queues;
    size_t nqueues;
    ei_counters sum;        /* every queue's pipeline counters, added */
    ei_dns_cache_stats cache;
    bool has_resolver;
    ei_resolver_stats resolver;
    ei_logring_stats log;
    ei_reset_stats resets;
    ei_mode mode;
    uint64_t generation;
    uint64_t reload_failures;
    bool has_view;          /* a pod view is in use (--pods or --kube) */
    ei_workloads_stats view;
    bool has_watch;         /* --kube */
    ei_kube_stats watch;
    ei_control_stats control; /* --control's clients; zeros without */
} ei_prom_snapshot;

/* Writes the whole /metrics body. */
void ei_prom_render(const ei_prom_snapshot *s, FILE *out);

/* Writes the control socket's status: one JSON object, no newline. Its fields: mode,
 * rules_generation, reload_failures, queues [{queue, packets, verdicts}], decisions
 * {allowed, denied, by_reason {REASON: N, the nonzero ones}}, held_packets, flows,
 * log_lines_dropped, control {clients, observers, lines_dropped}, and with a pod view
 * pods and kube_synced (true for a fixed view). */
void ei_prom_status(const ei_prom_snapshot *s, FILE *out);

#endif
