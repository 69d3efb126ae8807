/* A queue worker. See worker.h. */
#include "io/worker.h"

#include <errno.h>
#include <netinet/in.h> /* before the kernel's headers, which defer to it */
#include <linux/netfilter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "io/clock.h"

enum { LOOP_TICK_MS = 100, RECV_BUDGET = 32, DONE_QUEUE = 256 };

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
static void apply(ei_worker *w, uint64_t pid, ei_action action)
{
    uint32_t id = (uint32_t)pid, mark = (uint32_t)(pid >> 32);
    const ei_daemon_options *opt = w->opt;
    switch (action) {
    case EI_ACTION_PASS:
    case EI_ACTION_ACCEPT: /* allowed, not confirmed: no mark, so it stays queued */
        ei_nfq_verdict(w->nfq, id, NF_ACCEPT, 0);
        break;
    case EI_ACTION_ALLOW:
        ei_nfq_verdict(w->nfq, id, NF_ACCEPT, with_mark(opt, mark, opt->mark_allow));
        break;
    case EI_ACTION_INSPECT: /* both bits: the server's side leaves the queue, the client's stays */
        ei_nfq_verdict(w->nfq, id, NF_ACCEPT, with_mark(opt, mark, opt->mark_allow | opt->mark_deny));
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

/* The pipeline stamps events with its own (monotonic) time; the log wants wall time. */
static void on_event(void *ctx, const ei_flow_event *ev)
{
    ei_worker *w = ctx;
    ei_flow_event stamped = *ev;
    stamped.ts_ns += w->wall_offset;
    ei_audit_decision(w->sh->audit, &stamped);
    if (ev->enforced && ev->proto == IPPROTO_TCP) /* the node rules reset the client; the server is ours to reset */
        ei_reset_server(w->sh->resetter, ev);
}

/* Resolver thread: a lookup this worker asked for has ended. If the list is full the
 * waiting flows run into their own deadline, which is the bound either way. */
static void on_resolved(void *ctx, const char *name)
{
    ei_worker *w = ctx;
    pthread_mutex_lock(&w->done_lock);
    if (w->ndone < DONE_QUEUE)
        snprintf(w->done[w->ndone++], EI_NAME_MAX + 1, "%s", name);
    pthread_mutex_unlock(&w->done_lock);
    uint64_t one = 1;
    ssize_t n = write(w->wakefd, &one, sizeof one);
    (void)n; /* a full eventfd is awake already */
}

static void on_lookup(void *ctx, const char *name)
{
    ei_worker *w = ctx;
    ei_resolver_lookup(w->sh->resolver, name, on_resolved, w);
}

static void take_resolved(ei_worker *w)
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

static void on_packet(void *ctx, uint32_t id, uint32_t mark, unsigned info, const uint8_t *data,
                      size_t len)
{
    ei_worker *w = ctx;
    uint64_t pid = (uint64_t)mark << 32 | id;
    unsigned pinfo = (info & EI_NFQ_CSUM_NOT_READY) ? EI_PKT_CSUM_LATER : 0;
    apply(w, pid, ei_pipeline_packet(w->pipe, EI_LINK_RAW, data, len, w->now, pid, pinfo));
}

/* ---- the loop ---- */

static void adopt(ei_worker *w)
{
    uint64_t gen = atomic_load(&w->sh->generation);
    if (gen != atomic_load(&w->adopted)) {
        ei_pipeline_set_policy(w->pipe, atomic_load(&w->sh->policy));
        atomic_store(&w->adopted, gen);
    }
    uint64_t view_gen = atomic_load(&w->sh->view_generation);
    if (view_gen != atomic_load(&w->view_adopted)) {
        ei_pipeline_set_workloads(w->pipe, atomic_load(&w->sh->view), w->now);
        atomic_store(&w->view_adopted, view_gen);
    }
    ei_mode mode = (ei_mode)atomic_load(&w->sh->mode);
    if (mode != w->mode) {
        ei_pipeline_set_mode(w->pipe, mode);
        w->mode = mode;
    }
}

static void tick(ei_worker *w)
{
    w->now = ei_mono_ns();
    w->wall_offset = ei_wall_ns() - w->now;
}

static void *worker_main(void *arg)
{
    ei_worker *w = arg;
    struct epoll_event ev[4];
    while (!atomic_load(&w->sh->stop)) {
        int n = epoll_wait(w->epfd, ev, 4, LOOP_TICK_MS);
        adopt(w);
        tick(w);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == w->wakefd) {
                uint64_t v;
                ssize_t r = read(w->wakefd, &v, sizeof v);
                (void)r; /* non-blocking: nothing to read is fine */
            }
        }
        if (atomic_load(&w->sh->stop))
            break;
        take_resolved(w);
        (void)ei_nfq_receive(w->nfq, RECV_BUDGET, on_packet, w); /* errors are counted */
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
    tick(w);
    ei_pipeline_flush(w->pipe, w->now, EI_REASON_SHUTDOWN);
    ei_nfq_flush(w->nfq, false);
    return NULL;
}

/* ---- life cycle ---- */

bool ei_worker_open(ei_worker *w, ei_daemon_shared *sh, const ei_daemon_options *opt,
                    uint16_t queue, bool dns_answers, char *err, size_t errlen)
{
    *w = (ei_worker){ .sh = sh, .opt = opt, .queue = queue, .dns_answers = dns_answers,
                      .epfd = -1, .wakefd = -1 };
    pthread_mutex_init(&w->snap_lock, NULL);
    pthread_mutex_init(&w->done_lock, NULL);
    atomic_init(&w->loop_ns, ei_mono_ns());
    atomic_init(&w->adopted, atomic_load(&sh->generation));
    atomic_init(&w->view_adopted, 0); /* the first loop adopts the view */
    tick(w);

    /* The answer queue fails open: a lost answer only means a lookup of our own. */
    ei_nfq_config qc = { .queue = queue, .fail_open = opt->fail_open || dns_answers,
                         .max_len = opt->queue_maxlen, .rcvbuf = 8 << 20 };
    w->nfq = ei_nfq_open(&qc, err, errlen);
    if (w->nfq == NULL)
        return false;
    ei_pipeline_config pc = opt->pipeline;
    pc.live = true;
    pc.dns_answers = dns_answers;
    if (getrandom(&pc.hash_seed, sizeof pc.hash_seed, 0) != (ssize_t)sizeof pc.hash_seed)
        pc.hash_seed = ei_wall_ns() ^ (uint64_t)queue << 48; /* no entropy yet: best effort */
    w->mode = (ei_mode)atomic_load(&sh->mode);
    w->pipe = ei_pipeline_new(&pc, atomic_load(&sh->policy), w->mode, on_event, on_release, w);
    if (w->pipe != NULL)
        ei_pipeline_set_dns(w->pipe, opt->dns, on_lookup);
    w->done = calloc(DONE_QUEUE, sizeof *w->done);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->pipe == NULL || w->done == NULL || w->epfd < 0 || w->wakefd < 0) {
        snprintf(err, errlen, "queue %u: %s", queue,
                 w->pipe == NULL || w->done == NULL ? "out of memory" : strerror(errno));
        return false;
    }
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.fd = ei_nfq_fd(w->nfq);
    int a = epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
    ev.data.fd = w->wakefd;
    int b = epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
    if (a < 0 || b < 0) {
        snprintf(err, errlen, "queue %u: epoll: %s", queue, strerror(errno));
        return false;
    }
    return true;
}

bool ei_worker_start(ei_worker *w)
{
    w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
    return w->started;
}

void ei_workers_wake(ei_worker *ws, size_t n)
{
    uint64_t one = 1;
    for (size_t i = 0; i < n; i++) {
        if (ws[i].wakefd < 0)
            continue;
        ssize_t r = write(ws[i].wakefd, &one, sizeof one);
        (void)r; /* a full eventfd is awake already */
    }
}

void ei_worker_join(ei_worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
}

void ei_worker_close(ei_worker *w, ei_nfq_stats *final)
{
    if (w->pipe != NULL)
        ei_pipeline_free(w->pipe, ei_mono_ns());
    w->pipe = NULL;
    if (final != NULL)
        memset(final, 0, sizeof *final);
    if (w->nfq != NULL) {
        ei_nfq_flush(w->nfq, false);
        if (final != NULL)
            *final = *ei_nfq_stats_of(w->nfq);
        ei_nfq_close(w->nfq);
    }
    w->nfq = NULL;
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wakefd >= 0)
        close(w->wakefd);
    w->epfd = w->wakefd = -1;
    free(w->done);
    w->done = NULL;
    pthread_mutex_destroy(&w->snap_lock);
    pthread_mutex_destroy(&w->done_lock);
}

void ei_worker_snapshot(ei_worker *w, ei_counters *pipeline, ei_nfq_stats *nfq)
{
    pthread_mutex_lock(&w->snap_lock);
    *pipeline = w->snap;
    *nfq = w->nfq_snap;
    pthread_mutex_unlock(&w->snap_lock);
}
