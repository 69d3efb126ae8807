/* The daemon: queues in, verdicts out, one JSON line per decision and per lifecycle event.
 *
 * Threads share one thing, the current policy and mode, through atomics: a worker adopts a
 * new policy at the top of its loop and says which generation it runs; the main thread
 * frees an old policy only after every worker has moved past it. Signals are read from a
 * signalfd by the main thread alone; no work happens in a signal handler. */
#include "io/daemon.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cli/rules_load.h"
#include "io/audit.h"
#include "io/jsonw.h"
#include "io/log.h"
#include "io/metrics.h"
#include "io/nfq.h"
#include "io/resolver.h"

enum { LOOP_TICK_MS = 100, RECV_BUDGET = 32, MAX_QUEUES = 64, DONE_QUEUE = 256 };

typedef struct {
    _Atomic(ei_policy_set *) policy;
    _Atomic uint64_t generation;
    atomic_int mode;
    atomic_bool stop;
    atomic_bool ready;              /* queues bound, threads running, rules loaded */
    ei_audit *audit;                /* decision lines; shared, locks inside */
    _Atomic uint64_t reload_failures;
    ei_resolver *resolver;          /* the inspector's own lookups */
} shared_state;

typedef struct {
    shared_state *sh;
    const ei_daemon_options *opt;
    uint16_t queue;
    ei_nfq *nfq;
    ei_pipeline *pipe;
    int epfd;
    int wakefd;
    _Atomic uint64_t adopted;   /* generation this worker runs */
    ei_mode mode;
    uint64_t now;
    pthread_t thread;
    /* What the metrics thread reads: a copy taken once per loop, under the lock. */
    pthread_mutex_t snap_lock;
    ei_counters snap;
    ei_nfq_stats nfq_snap;
    _Atomic uint64_t loop_ns;
    bool dns_answers;           /* this worker reads the DNS answer queue */
    /* Names whose lookup ended, left by the resolver thread for this worker. */
    pthread_mutex_t done_lock;
    char (*done)[EI_NAME_MAX + 1];
    size_t ndone;
} worker;

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One whole line per write(2), so lines of several threads never interleave. */
static void emit(const ei_jsonw *w)
{
    ssize_t n = write(STDOUT_FILENO, w->buf, w->len);
    (void)n;
}

static void log_begin(ei_jsonw *w, const char *event)
{
    char ts[32];
    ei_log_format_time(wall_ns(), ts);
    ei_jsonw_begin(w);
    ei_jsonw_str(w, "ts", ts);
    ei_jsonw_str(w, "event", event);
}

/* ---- verdicts ---- */

static uint32_t with_mark(const ei_daemon_options *opt, uint32_t old, uint32_t bits)
{
    return (old & ~(opt->mark_allow | opt->mark_deny)) | bits;
}

/* Applies a pipeline action to a queued packet. The packet id travels with its original
 * mark in one 64-bit pipeline id, so a held packet's verdict keeps the other bits of its
 * mark (kube-proxy's, the CNI's). Allowed packets go on with the allow mark (saved to the
 * connection in mangle POSTROUTING); denied ones are sent through the hook again with the
 * deny mark, where the node rules save it and answer with a TCP reset. */
static void apply(worker *w, uint64_t pid, ei_action action)
{
    uint32_t id = (uint32_t)pid, mark = (uint32_t)(pid >> 32);
    const ei_daemon_options *opt = w->opt;
    switch (action) {
    case EI_ACTION_PASS:
        ei_nfq_verdict(w->nfq, id, NF_ACCEPT, 0);
        break;
    case EI_ACTION_ALLOW:
        ei_nfq_verdict(w->nfq, id, NF_ACCEPT, with_mark(opt, mark, opt->mark_allow));
        break;
    case EI_ACTION_DENY:
        ei_nfq_verdict(w->nfq, id, NF_REPEAT, with_mark(opt, mark, opt->mark_deny));
        break;
    case EI_ACTION_DROP:
    default:
        ei_nfq_verdict(w->nfq, id, NF_DROP, 0);
        break;
    case EI_ACTION_HOLD:
        break;
    }
}

static void on_release(void *ctx, uint64_t pid, ei_action action)
{
    apply(ctx, pid, action);
}

static void on_event(void *ctx, const ei_flow_event *ev)
{
    worker *w = ctx;
    ei_audit_decision(w->sh->audit, ev);
}

/* Resolver thread: a lookup this worker asked for has ended. If the list is full the
 * waiting flows run into their own deadline, which is the bound either way. */
static void on_resolved(void *ctx, const char *name)
{
    worker *w = ctx;
    pthread_mutex_lock(&w->done_lock);
    if (w->ndone < DONE_QUEUE)
        snprintf(w->done[w->ndone++], EI_NAME_MAX + 1, "%s", name);
    pthread_mutex_unlock(&w->done_lock);
    uint64_t one = 1;
    ssize_t n = write(w->wakefd, &one, sizeof one);
    (void)n;
}

static void on_lookup(void *ctx, const char *name)
{
    worker *w = ctx;
    ei_resolver_lookup(w->sh->resolver, name, on_resolved, w);
}

static void take_resolved(worker *w)
{
    char names[16][EI_NAME_MAX + 1];
    for (;;) {
        pthread_mutex_lock(&w->done_lock);
        size_t n = w->ndone < 16 ? w->ndone : 16;
        memcpy(names, w->done + w->ndone - n, n * sizeof names[0]);
        w->ndone -= n;
        pthread_mutex_unlock(&w->done_lock);
        if (n == 0)
            return;
        for (size_t i = 0; i < n; i++)
            ei_pipeline_dns_done(w->pipe, names[i], w->now);
    }
}

static void write_line(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    ssize_t n = write(STDOUT_FILENO, line, len);
    (void)n;
}

static void on_packet(void *ctx, uint32_t id, uint32_t mark, const uint8_t *data, size_t len)
{
    worker *w = ctx;
    uint64_t pid = (uint64_t)mark << 32 | id;
    apply(w, pid, ei_pipeline_packet(w->pipe, EI_LINK_RAW, data, len, w->now, pid));
}

/* ---- workers ---- */

static void adopt(worker *w)
{
    uint64_t gen = atomic_load(&w->sh->generation);
    if (gen != atomic_load(&w->adopted)) {
        ei_pipeline_set_policy(w->pipe, atomic_load(&w->sh->policy));
        atomic_store(&w->adopted, gen);
    }
    ei_mode mode = (ei_mode)atomic_load(&w->sh->mode);
    if (mode != w->mode) {
        ei_pipeline_set_mode(w->pipe, mode);
        w->mode = mode;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct epoll_event ev[4];
    while (!atomic_load(&w->sh->stop)) {
        int n = epoll_wait(w->epfd, ev, 4, LOOP_TICK_MS);
        adopt(w);
        w->now = wall_ns();
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == w->wakefd) {
                uint64_t v;
                ssize_t r = read(w->wakefd, &v, sizeof v);
                (void)r;
            }
        }
        if (atomic_load(&w->sh->stop))
            break;
        take_resolved(w);
        (void)ei_nfq_receive(w->nfq, RECV_BUDGET, on_packet, w);
        ei_pipeline_expire(w->pipe, w->now);
        ei_nfq_flush(w->nfq, ei_pipeline_counters(w->pipe)->held == 0);
        pthread_mutex_lock(&w->snap_lock);
        w->snap = *ei_pipeline_counters(w->pipe);
        w->nfq_snap = *ei_nfq_stats_of(w->nfq);
        pthread_mutex_unlock(&w->snap_lock);
        atomic_store(&w->loop_ns, w->now);
    }
    /* Stop reading; every packet still held gets its verdict (denied: shutdown). */
    adopt(w);
    w->now = wall_ns();
    ei_pipeline_flush(w->pipe, w->now, EI_REASON_SHUTDOWN);
    ei_nfq_flush(w->nfq, false);
    return NULL;
}

static bool worker_open(worker *w, char *err, size_t errlen)
{
    /* The answer queue fails open: a lost answer only means a lookup of our own. */
    ei_nfq_config qc = { .queue = w->queue, .fail_open = w->opt->fail_open || w->dns_answers,
                         .max_len = w->opt->queue_maxlen, .rcvbuf = 8 << 20 };
    w->nfq = ei_nfq_open(&qc, err, errlen);
    if (w->nfq == NULL)
        return false;
    ei_pipeline_config pc = w->opt->pipeline;
    pc.oriented = true;
    pc.dns_answers = w->dns_answers;
    if (getrandom(&pc.hash_seed, sizeof pc.hash_seed, 0) != (ssize_t)sizeof pc.hash_seed)
        pc.hash_seed = wall_ns();
    w->mode = (ei_mode)atomic_load(&w->sh->mode);
    w->pipe = ei_pipeline_new(&pc, atomic_load(&w->sh->policy), w->mode, on_event, on_release, w);
    if (w->pipe != NULL)
        ei_pipeline_set_dns(w->pipe, w->opt->dns, on_lookup);
    w->done = calloc(DONE_QUEUE, sizeof *w->done);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->pipe == NULL || w->done == NULL || w->epfd < 0 || w->wakefd < 0) {
        snprintf(err, errlen, "queue %u: %s", w->queue,
                 w->pipe == NULL || w->done == NULL ? "out of memory" : strerror(errno));
        return false;
    }
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.fd = ei_nfq_fd(w->nfq);
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
    ev.data.fd = w->wakefd;
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
    atomic_store(&w->adopted, atomic_load(&w->sh->generation));
    return true;
}

static void worker_close(worker *w)
{
    if (w->pipe != NULL)
        ei_pipeline_free(w->pipe, wall_ns());
    if (w->nfq != NULL) {
        ei_nfq_flush(w->nfq, false);
        ei_nfq_close(w->nfq);
    }
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wakefd >= 0)
        close(w->wakefd);
    free(w->done);
}

static void wake_all(worker *ws, size_t n)
{
    uint64_t one = 1;
    for (size_t i = 0; i < n; i++) {
        ssize_t r = write(ws[i].wakefd, &one, sizeof one);
        (void)r;
    }
}

/* ---- metrics ---- */

typedef struct {
    shared_state *sh;
    worker *ws;
    size_t n;
    ei_dns_cache *dns;
} metrics_ctx;

/* The kernel's own counters for a queue, from /proc/net/netfilter/nfnetlink_queue:
 * queue, portid, waiting, copy mode, copy range, queue_dropped, user_dropped, id, 1. */
static bool kernel_drops(uint16_t queue, unsigned long *queue_dropped, unsigned long *user_dropped)
{
    FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "r");
    if (f == NULL)
        return false;
    unsigned q, portid, total, mode, range, qd, ud, id;
    int one;
    bool found = false;
    while (fscanf(f, "%u %u %u %u %u %u %u %u %d", &q, &portid, &total, &mode, &range, &qd,
                  &ud, &id, &one) == 9)
        if (q == queue) {
            *queue_dropped = qd;
            *user_dropped = ud;
            found = true;
        }
    fclose(f);
    return found;
}

/* A Prometheus histogram from per-bucket counts (not cumulative) and bounds in ns, the
 * last of which is +Inf. */
static void histogram(FILE *out, const char *name, const char *help, const uint64_t *counts,
                      const uint64_t *bounds_ns, int n, uint64_t sum_ns)
{
    fprintf(out, "# HELP egress_inspector_%s %s\n# TYPE egress_inspector_%s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (int b = 0; b < n; b++) {
        cumulative += counts[b];
        if (b + 1 < n)
            fprintf(out, "egress_inspector_%s_bucket{le=\"%g\"} %llu\n", name,
                    (double)bounds_ns[b] / 1e9, (unsigned long long)cumulative);
        else
            fprintf(out, "egress_inspector_%s_bucket{le=\"+Inf\"} %llu\n", name,
                    (unsigned long long)cumulative);
    }
    fprintf(out, "egress_inspector_%s_sum %.9f\negress_inspector_%s_count %llu\n", name,
            (double)sum_ns / 1e9, name, (unsigned long long)cumulative);
}

static void render_dns_metrics(const metrics_ctx *mc, const ei_counters *sum, FILE *out)
{
    fputs("# HELP egress_inspector_dns_answers_total DNS answers to workloads read from the answer queue.\n"
          "# TYPE egress_inspector_dns_answers_total counter\n", out);
    fprintf(out, "egress_inspector_dns_answers_total %llu\n", (unsigned long long)sum->dns_answers);
    fputs("# HELP egress_inspector_dns_answers_malformed_total Answers passed on unread, by kind.\n"
          "# TYPE egress_inspector_dns_answers_malformed_total counter\n", out);
    for (int d = 1; d < EI_DNS_PROBLEM_COUNT; d++)
        fprintf(out, "egress_inspector_dns_answers_malformed_total{kind=\"%s\"} %llu\n",
                ei_dns_problem_name((ei_dns_problem)d), (unsigned long long)sum->dns_malformed[d]);
    fprintf(out, "egress_inspector_dns_answers_malformed_total{kind=\"tcp_split\"} %llu\n",
            (unsigned long long)sum->dns_tcp_split);
    fprintf(out, "# TYPE egress_inspector_dns_names_learned_total counter\n"
                 "egress_inspector_dns_names_learned_total %llu\n",
            (unsigned long long)sum->dns_names_learned);
    fprintf(out, "# HELP egress_inspector_dns_waiting_flows Flows held until a lookup ends.\n"
                 "# TYPE egress_inspector_dns_waiting_flows gauge\negress_inspector_dns_waiting_flows %llu\n",
            (unsigned long long)sum->dns_waiting);
    fprintf(out, "# TYPE egress_inspector_dns_wait_limit_total counter\negress_inspector_dns_wait_limit_total %llu\n",
            (unsigned long long)sum->dns_wait_limit);
    static const char *const binds[3] = { "unknown", "mismatch", "match" };
    fputs("# HELP egress_inspector_dest_checks_total Names allowed by policy, checked against the destination.\n"
          "# TYPE egress_inspector_dest_checks_total counter\n", out);
    for (int b = 0; b < 3; b++)
        fprintf(out, "egress_inspector_dest_checks_total{result=\"%s\"} %llu\n", binds[b],
                (unsigned long long)sum->dest_checks[b]);
    ei_dns_cache_stats cs;
    ei_dns_cache_get_stats(mc->dns, &cs);
    fprintf(out, "# TYPE egress_inspector_dns_cache_entries gauge\negress_inspector_dns_cache_entries %llu\n"
                 "# TYPE egress_inspector_dns_cache_workloads gauge\negress_inspector_dns_cache_workloads %llu\n"
                 "# TYPE egress_inspector_dns_cache_evictions_total counter\negress_inspector_dns_cache_evictions_total %llu\n"
                 "# TYPE egress_inspector_dns_cache_expired_total counter\negress_inspector_dns_cache_expired_total %llu\n",
            (unsigned long long)cs.entries, (unsigned long long)cs.workloads,
            (unsigned long long)cs.evicted, (unsigned long long)cs.expired);
    if (mc->sh->resolver == NULL)
        return;
    ei_resolver_stats rs;
    ei_resolver_get_stats(mc->sh->resolver, &rs);
    fprintf(out, "# HELP egress_inspector_dns_lookups_total Lookups the inspector made itself.\n"
                 "# TYPE egress_inspector_dns_lookups_total counter\negress_inspector_dns_lookups_total %llu\n"
                 "# TYPE egress_inspector_dns_lookup_failures_total counter\negress_inspector_dns_lookup_failures_total %llu\n"
                 "# TYPE egress_inspector_dns_lookups_merged_total counter\negress_inspector_dns_lookups_merged_total %llu\n"
                 "# TYPE egress_inspector_dns_lookups_rejected_total counter\negress_inspector_dns_lookups_rejected_total %llu\n"
                 "# TYPE egress_inspector_dns_refreshes_total counter\negress_inspector_dns_refreshes_total %llu\n"
                 "# TYPE egress_inspector_dns_lookups_in_flight gauge\negress_inspector_dns_lookups_in_flight %llu\n",
            (unsigned long long)rs.lookups, (unsigned long long)rs.failures, (unsigned long long)rs.merged,
            (unsigned long long)rs.rejected, (unsigned long long)rs.refreshes, (unsigned long long)rs.in_flight);
    histogram(out, "dns_lookup_seconds", "How long the inspector's own lookups took.",
              rs.latency_buckets, ei_resolver_bounds_ns, EI_RESOLVER_BUCKETS, rs.latency_sum_ns);
}

static void render_metrics(void *arg, FILE *out)
{
    metrics_ctx *mc = arg;
    ei_counters sum;
    memset(&sum, 0, sizeof sum);
    fputs("# HELP egress_inspector_packets_total Packets the queues handed to the daemon.\n"
          "# TYPE egress_inspector_packets_total counter\n", out);
    ei_nfq_stats nq[MAX_QUEUES];
    ei_counters pc[MAX_QUEUES];
    for (size_t i = 0; i < mc->n; i++) {
        worker *w = &mc->ws[i];
        pthread_mutex_lock(&w->snap_lock);
        pc[i] = w->snap;
        nq[i] = w->nfq_snap;
        pthread_mutex_unlock(&w->snap_lock);
        fprintf(out, "egress_inspector_packets_total{queue=\"%u\"} %llu\n", w->queue,
                (unsigned long long)nq[i].queued);
    }
    fputs("# TYPE egress_inspector_verdicts_total counter\n", out);
    for (size_t i = 0; i < mc->n; i++)
        fprintf(out, "egress_inspector_verdicts_total{queue=\"%u\"} %llu\n", mc->ws[i].queue,
                (unsigned long long)nq[i].verdicts);
    fputs("# TYPE egress_inspector_verdict_batches_total counter\n", out);
    for (size_t i = 0; i < mc->n; i++)
        fprintf(out, "egress_inspector_verdict_batches_total{queue=\"%u\"} %llu\n", mc->ws[i].queue,
                (unsigned long long)nq[i].batches);
    fputs("# TYPE egress_inspector_netlink_errors_total counter\n", out);
    for (size_t i = 0; i < mc->n; i++)
        fprintf(out, "egress_inspector_netlink_errors_total{queue=\"%u\"} %llu\n", mc->ws[i].queue,
                (unsigned long long)(nq[i].netlink_errors + nq[i].bad_messages));
    fputs("# HELP egress_inspector_kernel_queue_dropped_total Packets the kernel dropped: queue full, or no listener.\n"
          "# TYPE egress_inspector_kernel_queue_dropped_total counter\n", out);
    for (size_t i = 0; i < mc->n; i++) {
        unsigned long qd = 0, ud = 0;
        if (kernel_drops(mc->ws[i].queue, &qd, &ud)) {
            fprintf(out, "egress_inspector_kernel_queue_dropped_total{queue=\"%u\"} %lu\n", mc->ws[i].queue, qd);
            fprintf(out, "egress_inspector_kernel_user_dropped_total{queue=\"%u\"} %lu\n", mc->ws[i].queue, ud);
        }
    }
    for (size_t i = 0; i < mc->n; i++) {
        const ei_counters *c = &pc[i];
        for (int a = 0; a < EI_ACTION_COUNT; a++)
            sum.actions[a] += c->actions[a];
        for (int r = 0; r < EI_REASON_COUNT; r++)
            sum.decisions[r] += c->decisions[r];
        for (int e = 0; e < EI_PKT_ERROR_COUNT; e++)
            sum.packet_errors[e] += c->packet_errors[e];
        sum.flows += c->flows;
        sum.flows_created += c->flows_created;
        sum.flows_evicted += c->flows_evicted;
        sum.flows_expired += c->flows_expired;
        sum.flows_midstream += c->flows_midstream;
        sum.held += c->held;
        sum.reassembling += c->reassembling;
        sum.buffered_bytes += c->buffered_bytes;
        sum.buffer_budget_exhausted += c->buffer_budget_exhausted;
        sum.out_of_memory += c->out_of_memory;
        for (int b = 0; b < EI_LATENCY_BUCKETS; b++)
            sum.latency_buckets[b] += c->latency_buckets[b];
        sum.latency_sum_ns += c->latency_sum_ns;
        sum.dns_answers += c->dns_answers;
        for (int d = 0; d < EI_DNS_PROBLEM_COUNT; d++)
            sum.dns_malformed[d] += c->dns_malformed[d];
        sum.dns_tcp_split += c->dns_tcp_split;
        sum.dns_names_learned += c->dns_names_learned;
        sum.dns_lookups += c->dns_lookups;
        sum.dns_waiting += c->dns_waiting;
        sum.dns_wait_limit += c->dns_wait_limit;
        for (int b = 0; b < 3; b++)
            sum.dest_checks[b] += c->dest_checks[b];
    }
    histogram(out, "decision_hold_seconds", "How long a flow's first held packet waited for its verdict.",
              sum.latency_buckets, ei_latency_bounds_ns, EI_LATENCY_BUCKETS, sum.latency_sum_ns);
    fputs("# TYPE egress_inspector_packet_actions_total counter\n", out);
    for (int a = 0; a < EI_ACTION_COUNT; a++)
        fprintf(out, "egress_inspector_packet_actions_total{action=\"%s\"} %llu\n",
                ei_action_name((ei_action)a), (unsigned long long)sum.actions[a]);
    fputs("# HELP egress_inspector_decisions_total Flows decided, by verdict and reason.\n"
          "# TYPE egress_inspector_decisions_total counter\n", out);
    for (int r = 1; r < EI_REASON_COUNT; r++) {
        bool allow = ei_reason_allows((ei_reason)r);
        fprintf(out, "egress_inspector_decisions_total{verdict=\"%s\",reason=\"%s\"} %llu\n",
                allow ? "allow" : "deny", ei_reason_name((ei_reason)r), (unsigned long long)sum.decisions[r]);
    }
    fputs("# HELP egress_inspector_packet_errors_total Packets whose headers could not be read, by kind.\n"
          "# TYPE egress_inspector_packet_errors_total counter\n", out);
    for (int e = 1; e < EI_PKT_ERROR_COUNT; e++)
        fprintf(out, "egress_inspector_packet_errors_total{kind=\"%s\"} %llu\n",
                ei_packet_error_name((ei_packet_error)e), (unsigned long long)sum.packet_errors[e]);
    static const char *const gauge_names[] = { "flows", "held_packets", "reassemblies_in_progress",
                                               "reassembly_buffered_bytes" };
    uint64_t gauges[] = { sum.flows, sum.held, sum.reassembling, sum.buffered_bytes };
    for (size_t g = 0; g < 4; g++)
        fprintf(out, "# TYPE egress_inspector_%s gauge\negress_inspector_%s %llu\n", gauge_names[g],
                gauge_names[g], (unsigned long long)gauges[g]);
    static const char *const counter_names[] = { "flows_created_total", "flows_evicted_total",
                                                 "flows_expired_total", "flows_midstream_total",
                                                 "buffer_budget_exhausted_total", "out_of_memory_total" };
    uint64_t counters[] = { sum.flows_created, sum.flows_evicted, sum.flows_expired,
                            sum.flows_midstream, sum.buffer_budget_exhausted, sum.out_of_memory };
    for (size_t k = 0; k < 6; k++)
        fprintf(out, "# TYPE egress_inspector_%s counter\negress_inspector_%s %llu\n", counter_names[k],
                counter_names[k], (unsigned long long)counters[k]);
    render_dns_metrics(mc, &sum, out);
    int mode = atomic_load(&mc->sh->mode);
    fprintf(out, "# TYPE egress_inspector_mode gauge\n"
                 "egress_inspector_mode{mode=\"enforce\"} %d\negress_inspector_mode{mode=\"monitor\"} %d\n",
            mode == EI_MODE_ENFORCE, mode == EI_MODE_MONITOR);
    fprintf(out, "# TYPE egress_inspector_rules_generation gauge\negress_inspector_rules_generation %llu\n",
            (unsigned long long)atomic_load(&mc->sh->generation));
    fprintf(out, "# TYPE egress_inspector_reload_failures_total counter\negress_inspector_reload_failures_total %llu\n",
            (unsigned long long)atomic_load(&mc->sh->reload_failures));
}

static bool metrics_healthy(void *arg)
{
    metrics_ctx *mc = arg;
    uint64_t now = wall_ns();
    for (size_t i = 0; i < mc->n; i++)
        if (now > atomic_load(&mc->ws[i].loop_ns) + 5000000000ull)
            return false;
    return mc->n > 0;
}

static bool metrics_ready(void *arg)
{
    metrics_ctx *mc = arg;
    return atomic_load(&mc->sh->ready) && atomic_load(&mc->sh->policy) != NULL;
}

/* ---- main thread ---- */

static void log_mode(ei_mode from, ei_mode to, const char *why)
{
    ei_jsonw w;
    log_begin(&w, "mode");
    ei_jsonw_str(&w, "from", ei_mode_name(from));
    ei_jsonw_str(&w, "to", ei_mode_name(to));
    ei_jsonw_str(&w, "signal", why);
    ei_jsonw_end(&w);
    emit(&w);
}

typedef struct {
    const char **names;
    size_t n, cap;
} name_list;

static void collect_name(void *ctx, const char *name)
{
    name_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        const char **names = realloc(l->names, cap * sizeof *names);
        if (names == NULL)
            return;
        l->names = names;
        l->cap = cap;
    }
    l->names[l->n++] = name;
}

/* The tcp:// entries' names are resolved ahead of need, and kept fresh. */
static void keep_resolved(shared_state *sh, const ei_policy_set *set)
{
    name_list l = { NULL, 0, 0 };
    ei_policy_set_each_tcp_name(set, collect_name, &l);
    ei_resolver_keep(sh->resolver, l.names, l.n);
    free(l.names);
}

static void reload(shared_state *sh, worker *ws, size_t n, const char *path, const char *trigger,
                   uint64_t *failures)
{
    unsigned errors = 0;
    ei_policy_set *set = ei_rules_load(path, stderr, &errors);
    ei_jsonw w;
    log_begin(&w, "reload");
    ei_jsonw_str(&w, "rules", path);
    ei_jsonw_str(&w, "trigger", trigger);
    if (set == NULL) {
        (*failures)++;
        atomic_store(&sh->reload_failures, *failures);
        ei_jsonw_str(&w, "result", "rejected");
        ei_jsonw_uint(&w, "errors", errors);
        ei_jsonw_uint(&w, "reload_failures", *failures);
        ei_jsonw_str(&w, "kept", "previous rules");
        ei_jsonw_end(&w);
        emit(&w);
        return;
    }
    keep_resolved(sh, set);
    ei_policy_set *old = atomic_exchange(&sh->policy, set);
    uint64_t gen = atomic_fetch_add(&sh->generation, 1) + 1;
    wake_all(ws, n);
    /* Free the old set once no worker can still be reading it. */
    for (int tries = 0; tries < 500; tries++) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += atomic_load(&ws[i].adopted) >= gen;
        if (done == n) {
            ei_policy_set_free(old);
            old = NULL;
            break;
        }
        struct timespec ms = { 0, 10 * 1000000 };
        nanosleep(&ms, NULL);
    }
    ei_jsonw_str(&w, "result", "applied");
    ei_jsonw_uint(&w, "generation", gen);
    ei_jsonw_uint(&w, "policies", ei_policy_set_policies(set));
    ei_jsonw_uint(&w, "entries", ei_policy_set_entries(set));
    if (old != NULL) /* a worker is stuck: keep the old set rather than free it under it */
        ei_jsonw_bool(&w, "old_rules_leaked", true);
    ei_jsonw_end(&w);
    emit(&w);
}

int ei_daemon_run(const ei_daemon_options *opt)
{
    size_t nflow = (size_t)opt->queue_last - opt->queue_first + 1;
    size_t nq = nflow + (opt->dns_queue >= 0);
    if (opt->queue_last < opt->queue_first || nq > MAX_QUEUES) {
        fprintf(stderr, "egress-inspector: at most %d queues\n", MAX_QUEUES);
        return 2;
    }
    ei_policy_set *set = ei_rules_load(opt->rules_path, stderr, NULL);
    if (set == NULL)
        return 2;

    /* Signals are blocked in every thread (threads inherit the mask) and read here. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    shared_state sh;
    atomic_init(&sh.policy, set);
    atomic_init(&sh.generation, 1);
    atomic_init(&sh.mode, (int)opt->mode);
    atomic_init(&sh.stop, false);
    atomic_init(&sh.ready, false);
    char node[64] = "node", source[96];
    (void)gethostname(node, sizeof node - 1);
    snprintf(source, sizeof source, "egress-inspector/%s", node);
    sh.audit = ei_audit_new(opt->log_format, source, opt->log_interval_ns, write_line, NULL);
    atomic_init(&sh.reload_failures, 0);
    char err[256];
    sh.resolver = ei_resolver_start(opt->resolver, (uint32_t)(opt->pipeline.dns_timeout_ns / 1000000u),
                                    opt->dns, err, sizeof err);
    if (sh.resolver == NULL)
        fprintf(stderr, "egress-inspector: %s\n", err);

    worker *ws = calloc(nq, sizeof *ws);
    if (ws == NULL || sfd < 0 || sh.audit == NULL || sh.resolver == NULL) {
        if (sh.resolver != NULL)
            fprintf(stderr, "egress-inspector: %s\n", ws == NULL ? "out of memory" : strerror(errno));
        free(ws);
        ei_resolver_stop(sh.resolver);
        ei_audit_free(sh.audit, wall_ns());
        ei_policy_set_free(set);
        return 1;
    }
    keep_resolved(&sh, set);
    int status = 0;
    size_t opened = 0;
    for (; opened < nq; opened++) {
        bool answers = opened == nflow;
        ws[opened] = (worker){ .sh = &sh, .opt = opt, .epfd = -1, .wakefd = -1,
                               .queue = (uint16_t)(answers ? opt->dns_queue : opt->queue_first + (int)opened),
                               .dns_answers = answers };
        pthread_mutex_init(&ws[opened].snap_lock, NULL);
        pthread_mutex_init(&ws[opened].done_lock, NULL);
        atomic_init(&ws[opened].loop_ns, wall_ns());
        if (!worker_open(&ws[opened], err, sizeof err)) {
            fprintf(stderr, "egress-inspector: cannot bind NFQUEUE %s\n", err);
            opened++;
            status = 1;
            break;
        }
    }
    size_t started = 0;
    if (status == 0) {
        for (; started < nq; started++)
            if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0) {
                fprintf(stderr, "egress-inspector: cannot start a queue thread\n");
                status = 1;
                break;
            }
    }
    /* Metrics listen from the start, so that /readyz can say "not yet". */
    metrics_ctx mc = { &sh, ws, nq, opt->dns };
    ei_metrics *metrics = NULL;
    if (status == 0 && opt->metrics_listen != NULL) {
        ei_metrics_source src = { render_metrics, metrics_healthy, metrics_ready, &mc };
        metrics = ei_metrics_start(opt->metrics_listen, &src, err, sizeof err);
        if (metrics == NULL) {
            fprintf(stderr, "egress-inspector: %s\n", err);
            status = 1;
        }
    }
    if (status == 0)
        atomic_store(&sh.ready, true);
    if (status == 0) {
        ei_jsonw w;
        log_begin(&w, "start");
        ei_jsonw_str(&w, "rules", opt->rules_path);
        ei_jsonw_uint(&w, "queue_first", opt->queue_first);
        ei_jsonw_uint(&w, "queue_last", opt->queue_last);
        ei_jsonw_str(&w, "mode", ei_mode_name(opt->mode));
        ei_jsonw_str(&w, "fail", opt->fail_open ? "open" : "closed");
        if (opt->dns_queue >= 0)
            ei_jsonw_uint(&w, "dns_queue", (uint64_t)opt->dns_queue);
        ei_jsonw_str(&w, "dest_check", opt->pipeline.dest_check ? "strict" : "off");
        ei_jsonw_str(&w, "resolver", opt->resolver != NULL ? opt->resolver : "resolv.conf");
        ei_jsonw_uint(&w, "policies", ei_policy_set_policies(set));
        ei_jsonw_uint(&w, "entries", ei_policy_set_entries(set));
        ei_jsonw_end(&w);
        emit(&w);
    }

    /* The rules file's directory is watched, not the file: a ConfigMap update swaps the
     * "..data" symlink beside it, and editors replace a file by renaming over it. */
    char dir_buf[4096], base_buf[4096];
    snprintf(dir_buf, sizeof dir_buf, "%s", opt->rules_path);
    snprintf(base_buf, sizeof base_buf, "%s", opt->rules_path);
    const char *base = basename(base_buf);
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ifd >= 0 && inotify_add_watch(ifd, dirname(dir_buf), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
        close(ifd);
        ifd = -1;
    }

    uint64_t reload_failures = 0;
    while (status == 0) {
        struct pollfd pfd[2] = { { sfd, POLLIN, 0 }, { ifd, POLLIN, 0 } };
        int ready_fds = poll(pfd, ifd >= 0 ? 2 : 1, 1000);
        ei_audit_tick(sh.audit, wall_ns());
        if (ready_fds < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (ifd >= 0 && (pfd[1].revents & POLLIN)) {
            /* Several events come with one change: let them settle, then reload once. */
            bool ours = false;
            for (int round = 0; round < 2; round++) {
                char ev_buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                ssize_t len;
                while ((len = read(ifd, ev_buf, sizeof ev_buf)) > 0)
                    for (char *e = ev_buf; e < ev_buf + len;) {
                        struct inotify_event ev;
                        memcpy(&ev, e, sizeof ev);
                        const char *name = e + sizeof ev;
                        if (ev.len > 0 && (strcmp(name, base) == 0 || strcmp(name, "..data") == 0))
                            ours = true;
                        e += sizeof ev + ev.len;
                    }
                if (round == 0) {
                    struct timespec settle = { 0, 100 * 1000000 };
                    nanosleep(&settle, NULL);
                }
            }
            if (ours)
                reload(&sh, ws, nq, opt->rules_path, "inotify", &reload_failures);
        }
        if (!(pfd[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        ssize_t r = read(sfd, &si, sizeof si);
        if (r != (ssize_t)sizeof si) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            break;
        if (si.ssi_signo == SIGHUP) {
            reload(&sh, ws, nq, opt->rules_path, "SIGHUP", &reload_failures);
        } else {
            ei_mode to = si.ssi_signo == SIGUSR1 ? EI_MODE_ENFORCE : EI_MODE_MONITOR;
            ei_mode from = (ei_mode)atomic_exchange(&sh.mode, (int)to);
            wake_all(ws, nq);
            log_mode(from, to, si.ssi_signo == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
        }
    }

    atomic_store(&sh.ready, false);
    atomic_store(&sh.stop, true);
    wake_all(ws, started);
    for (size_t i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    ei_resolver_stop(sh.resolver); /* before the workers it would tell go away */
    sh.resolver = NULL;
    /* Every queued packet has had its verdict by now: count to show it. */
    uint64_t queued = 0, verdicts = 0, batches = 0, errors = 0;
    for (size_t i = 0; i < opened; i++) {
        if (ws[i].pipe != NULL)
            ei_pipeline_free(ws[i].pipe, wall_ns());
        ws[i].pipe = NULL;
        if (ws[i].nfq == NULL)
            continue;
        ei_nfq_flush(ws[i].nfq, false);
        const ei_nfq_stats *st = ei_nfq_stats_of(ws[i].nfq);
        queued += st->queued;
        verdicts += st->verdicts;
        batches += st->batches;
        errors += st->netlink_errors;
    }
    if (status == 0) {
        ei_jsonw w;
        log_begin(&w, "shutdown");
        ei_jsonw_uint(&w, "queued", queued);
        ei_jsonw_uint(&w, "verdicts", verdicts);
        ei_jsonw_uint(&w, "batches", batches);
        ei_jsonw_uint(&w, "netlink_errors", errors);
        ei_jsonw_uint(&w, "reload_failures", reload_failures);
        ei_jsonw_end(&w);
        emit(&w);
    }
    ei_metrics_stop(metrics);
    ei_audit_free(sh.audit, wall_ns());
    for (size_t i = 0; i < opened; i++) {
        worker_close(&ws[i]);
        pthread_mutex_destroy(&ws[i].snap_lock);
        pthread_mutex_destroy(&ws[i].done_lock);
    }
    free(ws);
    close(sfd);
    if (ifd >= 0)
        close(ifd);
    ei_policy_set_free(atomic_load(&sh.policy));
    return status;
}
