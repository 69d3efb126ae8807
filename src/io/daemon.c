/* The daemon's orchestration: load the rules, start the log ring, the control socket
 * (io/control.c), the resolver and one worker per queue (io/worker.c), serve /metrics
 * (io/prom.c), then read signals and
 * rules-file changes (io/reload.c) until told to stop, and stop in the one order that is
 * safe: readers before what they read.
 *
 * Signals are read from a signalfd by the main thread alone; no work happens in a signal
 * handler. */
#include "io/daemon.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "io/clock.h"
#include "io/control.h"
#include "io/jsonw.h"
#include "io/log.h"
#include "io/metrics.h"
#include "io/prom.h"
#include "io/reload.h"
#include "io/rules_load.h"
#include "io/worker.h"

enum {
    MAX_QUEUES = 64,
    LOG_DRAIN_MS = 2000,      /* how long shutdown waits for the log's reader */
};

/* A view replaced while a worker may still judge with it: freed once every worker runs
 * a later generation. */
typedef struct {
    ei_workloads *view;
    uint64_t generation; /* the one that replaced it */
} retired_view;

enum { MAX_RETIRED = 64 };

typedef struct {
    ei_daemon_shared sh;
    const ei_daemon_options *opt;
    ei_worker *ws;
    size_t nq;                /* workers opened (the array's length) */
    ei_metrics *metrics;
    ei_control *control;      /* --control; NULL: none */
    int sfd;
    ei_rules_watch watch;
    ei_kube_watch *kube;
    pthread_mutex_t view_lock; /* publishing, retiring, and the metrics' look at the view */
    retired_view retired[MAX_RETIRED];
    size_t nretired;
    bool workers_running;
} ei_daemon;

static void emit(ei_daemon *d, ei_jsonw *w)
{
    ei_jsonw_end(w);
    (void)ei_logring_put(d->sh.log, w->buf, w->len); /* a dropped line is counted */
}

/* ---- /metrics, /healthz, /readyz (the metrics thread) ---- */

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

/* ---- the pod view ---- */

/* Frees the retired views no worker can still hold. Under view_lock. */
static void reap_views(ei_daemon *d)
{
    uint64_t oldest = atomic_load(&d->sh.view_generation);
    for (size_t i = 0; i < d->nq && d->workers_running; i++) {
        uint64_t g = atomic_load(&d->ws[i].view_adopted);
        oldest = g < oldest ? g : oldest;
    }
    size_t kept = 0;
    for (size_t i = 0; i < d->nretired; i++) {
        if (!d->workers_running || d->retired[i].generation <= oldest)
            ei_workloads_free(d->retired[i].view);
        else
            d->retired[kept++] = d->retired[i];
    }
    d->nretired = kept;
}

/* The watch thread's new view: every worker adopts it at its next loop. */
static void publish_view(void *ctx, ei_workloads *view)
{
    ei_daemon *d = ctx;
    pthread_mutex_lock(&d->view_lock);
    reap_views(d);
    if (d->nretired == MAX_RETIRED) { /* a worker is stuck: keep its view, drop the new one */
        pthread_mutex_unlock(&d->view_lock);
        ei_workloads_free(view);
        return;
    }
    ei_workloads *old = atomic_exchange(&d->sh.view, view);
    uint64_t gen = atomic_fetch_add(&d->sh.view_generation, 1) + 1;
    if (old != NULL)
        d->retired[d->nretired++] = (retired_view){ old, gen };
    if (d->workers_running)
        ei_workers_wake(d->ws, d->nq);
    pthread_mutex_unlock(&d->view_lock);
}

/* What /metrics and the control socket's status show. queues: MAX_QUEUES of them. */
static void gather(ei_daemon *d, ei_prom_snapshot *out, ei_prom_queue *queues)
{
    ei_prom_snapshot s = { .queues = queues, .nqueues = d->nq };
    for (size_t i = 0; i < d->nq; i++) {
        ei_counters c;
        queues[i] = (ei_prom_queue){ .queue = d->ws[i].queue };
        ei_worker_snapshot(&d->ws[i], &c, &queues[i].nfq);
        ei_counters_add(&s.sum, &c);
        queues[i].kernel_known = kernel_drops(queues[i].queue, &queues[i].kernel_queue_dropped,
                                              &queues[i].kernel_user_dropped);
    }
    ei_dns_cache_get_stats(d->opt->dns, &s.cache);
    s.has_resolver = d->sh.resolver != NULL;
    if (s.has_resolver)
        ei_resolver_get_stats(d->sh.resolver, &s.resolver);
    ei_logring_get_stats(d->sh.log, &s.log);
    s.resets = ei_reset_stats_of(d->sh.resetter);
    s.mode = (ei_mode)atomic_load(&d->sh.mode);
    s.generation = atomic_load(&d->sh.generation);
    s.reload_failures = atomic_load(&d->sh.reload_failures);
    pthread_mutex_lock(&d->view_lock);
    const ei_workloads *view = atomic_load(&d->sh.view);
    s.has_view = view != NULL;
    if (view != NULL)
        s.view = *ei_workloads_stats_of(view);
    pthread_mutex_unlock(&d->view_lock);
    s.has_watch = d->kube != NULL;
    if (d->kube != NULL)
        ei_kube_watch_stats(d->kube, &s.watch);
    ei_control_get_stats(d->control, &s.control);
    *out = s;
}

static void render_metrics(void *arg, FILE *out)
{
    ei_prom_queue queues[MAX_QUEUES];
    ei_prom_snapshot s;
    gather(arg, &s, queues);
    ei_prom_render(&s, out);
}

/* The control thread's status request: the same snapshot, as one JSON object. */
static void render_status(void *arg, FILE *out)
{
    ei_prom_queue queues[MAX_QUEUES];
    ei_prom_snapshot s;
    gather(arg, &s, queues);
    ei_prom_status(&s, out);
}

static bool metrics_healthy(void *arg)
{
    ei_daemon *d = arg;
    uint64_t now = ei_mono_ns();
    for (size_t i = 0; i < d->nq; i++)
        if (now > atomic_load(&d->ws[i].loop_ns) + 5000000000ull)
            return false;
    return d->nq > 0;
}

static bool metrics_ready(void *arg)
{
    ei_daemon *d = arg;
    bool synced = true;
    if (d->kube != NULL) { /* not ready until the pods and namespaces are known */
        ei_kube_stats st;
        ei_kube_watch_stats(d->kube, &st);
        synced = st.synced;
    }
    return atomic_load(&d->sh.ready) && atomic_load(&d->sh.policy) != NULL && synced;
}

/* ---- start ---- */

static int block_signals(void)
{
    /* Blocked in every thread (threads inherit the mask) and read here. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &mask, SFD_CLOEXEC);
}

static void write_audit_line(void *ctx, const char *line, size_t len)
{
    ei_daemon *d = ctx;
    (void)ei_logring_put(d->sh.log, line, len); /* never blocks; a dropped line is counted */
    ei_control_put(d->control, line, len);      /* the same: per observer */
}

/* Everything but the queue threads. 0, or the exit status. */
static int start_services(ei_daemon *d, ei_policy_set *set, char *err, size_t errlen)
{
    const ei_daemon_options *opt = d->opt;
    atomic_init(&d->sh.policy, set);
    atomic_init(&d->sh.generation, 1);
    atomic_init(&d->sh.mode, (int)opt->mode);
    atomic_init(&d->sh.stop, false);
    atomic_init(&d->sh.ready, false);
    atomic_init(&d->sh.reload_failures, 0);
    /* --kube: an empty view until the first list, so that no address is a pod's yet */
    ei_workloads *view = opt->view;
    if (view == NULL && opt->kube != NULL && (view = ei_workloads_build(NULL, 0, NULL, 0, true)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    atomic_init(&d->sh.view, view);
    atomic_init(&d->sh.view_generation, 1);
    d->sfd = block_signals();
    if (d->sfd < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        return 1;
    }
    d->sh.log = ei_logring_start(STDOUT_FILENO, opt->log_buffer, err, errlen);
    if (d->sh.log == NULL)
        return 1;
    if (opt->control_path != NULL) { /* before the first decision line, which it shows */
        d->control = ei_control_start(opt->control_path, opt->control_group, err, errlen);
        if (d->control == NULL)
            return 1;
    }
    char node[64] = "node", source[96];
    (void)gethostname(node, sizeof node - 1);
    snprintf(source, sizeof source, "egress-inspector/%s", node);
    d->sh.audit = ei_audit_new(opt->log_format, source, opt->log_interval_ns, write_audit_line, d);
    if (d->sh.audit == NULL) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    d->sh.resolver = ei_resolver_start(opt->resolver, (uint32_t)(opt->pipeline.dns_timeout_ns / 1000000u),
                                       opt->dns, err, errlen);
    if (d->sh.resolver == NULL)
        return 1;
    d->sh.resetter = ei_reset_open();
    if (d->sh.resetter == NULL) { /* denied flows still reset their client: go on, say so */
        ei_jsonw w;
        ei_log_begin_event(&w, "warning", ei_wall_ns());
        ei_jsonw_lit(&w, "what", "no raw socket: servers of denied flows are not reset");
        ei_jsonw_str(&w, "error", strerror(errno));
        emit(d, &w);
    }
    ei_reload_keep_resolved(&d->sh, set);
    return 0;
}

static int start_workers(ei_daemon *d, size_t want, char *err, size_t errlen)
{
    const ei_daemon_options *opt = d->opt;
    size_t nflow = (size_t)opt->queue_last - opt->queue_first + 1;
    d->ws = calloc(want, sizeof *d->ws);
    if (d->ws == NULL) {
        snprintf(err, errlen, "out of memory");
        return 1;
    }
    for (; d->nq < want; d->nq++) {
        bool answers = d->nq == nflow;
        uint16_t queue = (uint16_t)(answers ? opt->dns_queue : opt->queue_first + (int)d->nq);
        char why[200];
        if (!ei_worker_open(&d->ws[d->nq], &d->sh, opt, queue, answers, why, sizeof why)) {
            d->nq++; /* opened in part: closed with the others */
            snprintf(err, errlen, "cannot bind NFQUEUE %s", why);
            return 1;
        }
    }
    for (size_t i = 0; i < d->nq; i++)
        if (!ei_worker_start(&d->ws[i])) {
            snprintf(err, errlen, "cannot start a queue thread");
            return 1;
        }
    pthread_mutex_lock(&d->view_lock);
    d->workers_running = true;
    pthread_mutex_unlock(&d->view_lock);
    if (opt->kube != NULL) {
        d->kube = ei_kube_watch_start(opt->kube, publish_view, d, err, errlen);
        if (d->kube == NULL)
            return 1;
    }
    return 0;
}

static void log_start(ei_daemon *d, const ei_policy_set *set)
{
    const ei_daemon_options *opt = d->opt;
    ei_jsonw w;
    ei_log_begin_event(&w, "start", ei_wall_ns());
    ei_jsonw_str(&w, "rules", opt->rules_path);
    ei_jsonw_uint(&w, "queue_first", opt->queue_first);
    ei_jsonw_uint(&w, "queue_last", opt->queue_last);
    ei_jsonw_lit(&w, "mode", ei_mode_name(opt->mode));
    ei_jsonw_lit(&w, "fail", opt->fail_open ? "open" : "closed");
    if (opt->dns_queue >= 0)
        ei_jsonw_uint(&w, "dns_queue", (uint64_t)opt->dns_queue);
    ei_jsonw_lit(&w, "dest_check", opt->pipeline.dest_check ? "strict" : "off");
    ei_jsonw_str(&w, "resolver", opt->resolver != NULL ? opt->resolver : "resolv.conf");
    ei_jsonw_uint(&w, "policies", ei_policy_set_policies(set));
    ei_jsonw_uint(&w, "entries", ei_policy_set_entries(set));
    if (opt->kube != NULL) {
        ei_jsonw_str(&w, "kube_server", opt->kube->server);
        ei_jsonw_str(&w, "node", opt->kube->node_name);
    } else if (opt->view != NULL) {
        ei_jsonw_uint(&w, "pods", ei_workloads_stats_of(opt->view)->pods);
    }
    emit(d, &w);
}

/* ---- the main loop ---- */

static void set_mode(ei_daemon *d, ei_mode to, const char *signal_name)
{
    ei_mode from = (ei_mode)atomic_exchange(&d->sh.mode, (int)to);
    ei_workers_wake(d->ws, d->nq);
    ei_jsonw w;
    ei_log_begin_event(&w, "mode", ei_wall_ns());
    ei_jsonw_lit(&w, "from", ei_mode_name(from));
    ei_jsonw_lit(&w, "to", ei_mode_name(to));
    ei_jsonw_lit(&w, "signal", signal_name);
    emit(d, &w);
}

/* Returns when a stop signal arrives or the signalfd fails. */
static void serve(ei_daemon *d)
{
    const char *path = d->opt->rules_path;
    for (;;) {
        struct pollfd pfd[2] = { { d->sfd, POLLIN, 0 }, { d->watch.fd, POLLIN, 0 } };
        int ready_fds = poll(pfd, d->watch.fd >= 0 ? 2 : 1, 1000);
        ei_audit_tick(d->sh.audit, ei_wall_ns());
        if (ready_fds < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        pthread_mutex_lock(&d->view_lock);
        reap_views(d); /* the views the workers have moved past */
        pthread_mutex_unlock(&d->view_lock);
        if (d->watch.fd >= 0 && (pfd[1].revents & POLLIN) && ei_rules_watch_changed(&d->watch))
            ei_reload(&d->sh, d->ws, d->nq, path, "inotify");
        if (!(pfd[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        ssize_t r = read(d->sfd, &si, sizeof si);
        if (r != (ssize_t)sizeof si) {
            if (r < 0 && errno == EINTR)
                continue;
            return;
        }
        switch (si.ssi_signo) {
        case SIGHUP: ei_reload(&d->sh, d->ws, d->nq, path, "SIGHUP"); break;
        case SIGUSR1: set_mode(d, EI_MODE_ENFORCE, "SIGUSR1"); break;
        case SIGUSR2: set_mode(d, EI_MODE_MONITOR, "SIGUSR2"); break;
        default: return; /* SIGTERM, SIGINT */
        }
    }
}

/* ---- stop: readers first, then what they read ---- */

static void stop_all(ei_daemon *d, bool log_shutdown)
{
    atomic_store(&d->sh.ready, false);
    ei_metrics_stop(d->metrics); /* reads workers, the cache, the resolver, the ring */
    d->metrics = NULL;
    ei_control_set_source(d->control, NULL); /* its status reads what metrics read */
    ei_kube_watch_stop(d->kube); /* publishes to the workers */
    d->kube = NULL;
    atomic_store(&d->sh.stop, true);
    ei_workers_wake(d->ws, d->nq);
    for (size_t i = 0; i < d->nq; i++)
        ei_worker_join(&d->ws[i]); /* each gives its held packets their verdicts */
    ei_resolver_stop(d->sh.resolver); /* tells workers; they are gone now */
    d->sh.resolver = NULL;
    ei_reset_close(d->sh.resetter);
    d->sh.resetter = NULL;
    /* Every queued packet has had its verdict by now: count to show it. */
    ei_nfq_stats total = { 0 };
    for (size_t i = 0; i < d->nq; i++) {
        ei_nfq_stats st;
        ei_worker_close(&d->ws[i], &st);
        total.queued += st.queued;
        total.verdicts += st.verdicts;
        total.batches += st.batches;
        total.netlink_errors += st.netlink_errors;
        total.verdicts_lost += st.verdicts_lost;
    }
    free(d->ws);
    d->ws = NULL;
    pthread_mutex_lock(&d->view_lock);
    d->workers_running = false;
    reap_views(d); /* no worker left: every retired view goes */
    pthread_mutex_unlock(&d->view_lock);
    ei_workloads_free(atomic_load(&d->sh.view));
    ei_audit_free(d->sh.audit, ei_wall_ns()); /* its last aggregate lines go to the ring */
    d->sh.audit = NULL;
    if (log_shutdown) {
        ei_logring_stats ls;
        ei_logring_get_stats(d->sh.log, &ls);
        ei_jsonw w;
        ei_log_begin_event(&w, "shutdown", ei_wall_ns());
        ei_jsonw_uint(&w, "queued", total.queued);
        ei_jsonw_uint(&w, "verdicts", total.verdicts);
        ei_jsonw_uint(&w, "batches", total.batches);
        ei_jsonw_uint(&w, "netlink_errors", total.netlink_errors);
        ei_jsonw_uint(&w, "verdicts_lost", total.verdicts_lost);
        ei_jsonw_uint(&w, "reload_failures", atomic_load(&d->sh.reload_failures));
        ei_jsonw_uint(&w, "log_lines_dropped", ls.lines_dropped);
        emit(d, &w);
    }
    /* no decision line comes any more: observers get their last ones, then the end */
    ei_control_stop(d->control);
    d->control = NULL;
    size_t unwritten = ei_logring_stop(d->sh.log, LOG_DRAIN_MS);
    if (unwritten > 0)
        fprintf(stderr, "egress-inspector: %zu bytes of log could not be written before exit\n", unwritten);
    d->sh.log = NULL;
    if (d->sfd >= 0)
        close(d->sfd);
    ei_rules_watch_close(&d->watch);
    ei_policy_set_free(atomic_load(&d->sh.policy));
}

int ei_daemon_run(const ei_daemon_options *opt)
{
    size_t nflow = (size_t)opt->queue_last - opt->queue_first + 1;
    size_t want = nflow + (opt->dns_queue >= 0);
    if (opt->queue_last < opt->queue_first || want > MAX_QUEUES) {
        fprintf(stderr, "egress-inspector: at most %d queues\n", MAX_QUEUES);
        return 2;
    }
    ei_policy_set *set = ei_rules_load(opt->rules_path, stderr, NULL);
    if (set == NULL) {
        ei_workloads_free(opt->view);
        return 2;
    }

    if (ei_policy_set_selects(set) && opt->view == NULL && opt->kube == NULL) {
        fprintf(stderr, "egress-inspector: policy '%s' selects pods by labels: give --kube auto, "
                "--kubeconfig FILE or --pods FILE\n", ei_policy_set_first_selecting(set));
        ei_policy_set_free(set);
        ei_workloads_free(opt->view);
        return 2;
    }
    ei_daemon d = { .opt = opt, .sfd = -1, .watch = { .fd = -1 } };
    pthread_mutex_init(&d.view_lock, NULL);
    char err[256] = "";
    int status = start_services(&d, set, err, sizeof err);
    if (status == 0)
        status = start_workers(&d, want, err, sizeof err);
    /* Metrics listen before ready, so that /readyz can say "not yet". */
    if (status == 0 && opt->metrics_listen != NULL) {
        ei_metrics_source src = { render_metrics, metrics_healthy, metrics_ready, &d };
        d.metrics = ei_metrics_start(opt->metrics_listen, &src, err, sizeof err);
        status = d.metrics == NULL;
    }
    if (status == 0) { /* status requests read the workers: only now are they there */
        ei_control_source csrc = { render_status, &d };
        ei_control_set_source(d.control, &csrc);
    }
    if (status == 0) {
        ei_rules_watch_open(&d.watch, opt->rules_path);
        atomic_store(&d.sh.ready, true);
        log_start(&d, set);
        serve(&d);
    } else {
        fprintf(stderr, "egress-inspector: %s\n", err);
    }
    stop_all(&d, status == 0);
    pthread_mutex_destroy(&d.view_lock);
    return status;
}
