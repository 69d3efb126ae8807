/* A queue worker: one NFQUEUE, one pipeline, one epoll loop, one thread. The daemon
 * (io/daemon.c) opens one per queue, starts them, and stops them; reloads reach them
 * through the shared state, lookups end through their wake-up eventfd.
 *
 * Threads share one thing, the current policy and mode, through atomics: a worker adopts
 * a new policy at the top of its loop and says which generation it runs; the main thread
 * frees an old policy only after every worker has moved past it (io/reload.c). A queue
 * thread never blocks on anything but its epoll_wait: log lines go to a ring
 * (io/logring.h), lookups to the resolver thread, verdicts to a non-blocking send. */
#ifndef EI_IO_WORKER_H
#define EI_IO_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "io/audit.h"
#include "io/daemon.h"
#include "io/logring.h"
#include "io/nfq.h"
#include "io/reset.h"
#include "io/resolver.h"
#include "kube/view.h"

/* What the main thread and the workers share. Owned by the daemon. */
typedef struct {
    _Atomic(ei_policy_set *) policy;
    _Atomic uint64_t generation;
    atomic_int mode;
    atomic_bool stop;
    atomic_bool ready;               /* queues bound, threads running, rules loaded */
    _Atomic uint64_t reload_failures;
    ei_audit *audit;                 /* decision lines; shared, locks inside */
    ei_logring *log;                 /* where every line goes */
    ei_resolver *resolver;           /* the inspector's own lookups */
    ei_resetter *resetter;           /* resets to servers of denied flows; NULL: none */
    /* The pod view, replaced whole by the watch thread (or fixed from files), adopted by
     * each worker at the top of its loop as the policy is. NULL: none. */
    _Atomic(ei_workloads *) view;
    _Atomic uint64_t view_generation;
} ei_daemon_shared;

typedef struct {
    ei_daemon_shared *sh;
    const ei_daemon_options *opt;
    uint16_t queue;
    bool dns_answers;           /* this worker reads the DNS answer queue */
    ei_nfq *nfq;
    ei_pipeline *pipe;
    int epfd;
    int wakefd;
    pthread_t thread;
    bool started;
    _Atomic uint64_t adopted;   /* generation this worker runs */
    _Atomic uint64_t view_adopted; /* view generation this worker runs */
    _Atomic uint64_t loop_ns;   /* monotonic time of the last loop, for /healthz */
    ei_mode mode;
    uint64_t now;               /* pipeline time (monotonic) of this loop */
    uint64_t wall_offset;       /* wall minus monotonic, for log stamps */
    /* What the metrics thread reads: a copy taken once per loop, under the lock. */
    pthread_mutex_t snap_lock;
    ei_counters snap;
    ei_nfq_stats nfq_snap;
    /* Names whose lookup ended, left by the resolver thread for this worker. */
    pthread_mutex_t done_lock;
    char (*done)[EI_NAME_MAX + 1];
    size_t ndone;
} ei_worker;

/* Binds the queue and builds the pipeline. false with a reason in err; the worker must
 * then still be closed. */
EI_MUST_USE bool ei_worker_open(ei_worker *w, ei_daemon_shared *sh, const ei_daemon_options *opt,
                                uint16_t queue, bool dns_answers, char *err, size_t errlen);

/* Starts the worker's thread. false when no thread could be created. */
EI_MUST_USE bool ei_worker_start(ei_worker *w);

/* Wakes every worker (after a reload, a mode change, or sh->stop). */
void ei_workers_wake(ei_worker *ws, size_t n);

/* Waits for a started worker's thread, which ends after sh->stop is set and it is woken,
 * having given every held packet its verdict. */
void ei_worker_join(ei_worker *w);

/* Frees the pipeline (any packet still held is denied: shutdown), sends the last
 * verdicts, unbinds the queue; *final (may be NULL) receives the queue's last counters.
 * After ei_worker_join, or for a worker never started. */
void ei_worker_close(ei_worker *w, ei_nfq_stats *final);

/* A consistent copy of the worker's counters, from any thread. */
void ei_worker_snapshot(ei_worker *w, ei_counters *pipeline, ei_nfq_stats *nfq);

#endif
