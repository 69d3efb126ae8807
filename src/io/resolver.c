/* c-ares without a thread per lookup: the channel tells us which sockets to watch
 * (ARES_OPT_SOCK_STATE_CB), epoll watches them, and ares_timeout bounds each wait. */
#include "io/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "io/clock.h"
#include "egress_inspector/policy.h"

enum {
    INBOX = 4096,      /* requests not yet taken by the resolver thread */
    MAX_IN_FLIGHT = 1024,
    MAX_WAITERS = 64,  /* distinct askers (queue threads) per name */
    MAX_KEEP = 4096,   /* tcp:// names kept resolved */
    REFRESH_AHEAD_S = 5,
    MAX_ADDRS = 32,
};

const uint64_t ei_resolver_bounds_ns[EI_RESOLVER_BUCKETS] = {
    1000000ull, 5000000ull, 20000000ull, 100000000ull, 500000000ull, 2000000000ull, UINT64_MAX,
};

typedef struct {
    ei_resolved_fn done;
    void *ctx;
} waiter;

typedef struct {
    char name[EI_NAME_MAX + 1];
    waiter w;
} request;


typedef struct {
    ei_resolver *owner;
    bool used;
    char name[EI_NAME_MAX + 1];
    uint64_t started_ns;
    uint16_t nwaiters;
    waiter waiters[MAX_WAITERS];
} flight;

struct ei_resolver {
    pthread_t thread;
    int epfd;
    int wakefd;
    atomic_bool stop;
    ares_channel ch;
    ei_dns_cache *cache;
    pthread_mutex_t lock; /* inbox, keep, st */
    request *inbox;
    size_t ninbox;
    char (*keep)[EI_NAME_MAX + 1];
    size_t nkeep;
    ei_resolver_stats st;
    flight *flights;          /* the resolver thread's alone */
    uint64_t next_refresh_ns; /* likewise */
    atomic_bool keep_changed;
};

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    ei_resolver *r = data;
    struct epoll_event ev = { .events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u) };
    ev.data.fd = fd;
    if (!readable && !writable) {
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void count_latency(ei_resolver *r, uint64_t took_ns)
{
    int b = 0;
    while (took_ns > ei_resolver_bounds_ns[b])
        b++;
    r->st.latency_buckets[b]++;
    r->st.latency_sum_ns += took_ns;
}

/* A lookup ended: the cache learns what it found, then the askers hear of it. */
static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    flight *f = arg;
    ei_resolver *r = f->owner;
    if (status == ARES_EDESTRUCTION) { /* the channel is going away: nobody waits */
        f->used = false;
        ares_freeaddrinfo(res);
        return;
    }
    ei_addr addrs[MAX_ADDRS];
    size_t n = 0;
    uint32_t ttl = UINT32_MAX;
    bool answered = status == ARES_SUCCESS || status == ARES_ENOTFOUND || status == ARES_ENODATA;
    if (status == ARES_SUCCESS && res != NULL) {
        for (struct ares_addrinfo_node *node = res->nodes; node != NULL && n < MAX_ADDRS; node = node->ai_next) {
            ei_addr *a = &addrs[n];
            memset(a, 0, sizeof *a);
            if (node->ai_family == AF_INET) {
                a->family = 4;
                memcpy(a->bytes, &((const struct sockaddr_in *)(const void *)node->ai_addr)->sin_addr, 4);
            } else if (node->ai_family == AF_INET6) {
                a->family = 6;
                memcpy(a->bytes, &((const struct sockaddr_in6 *)(const void *)node->ai_addr)->sin6_addr, 16);
            } else {
                continue;
            }
            n++;
            if (node->ai_ttl >= 0 && (uint32_t)node->ai_ttl < ttl)
                ttl = (uint32_t)node->ai_ttl;
        }
    }
    ares_freeaddrinfo(res);
    if (answered)
        ei_dns_cache_learn(r->cache, NULL, f->name, addrs, n, ttl == UINT32_MAX ? 0 : ttl, ei_mono_ns());

    pthread_mutex_lock(&r->lock);
    r->st.in_flight--;
    if (answered)
        r->st.answered++;
    else
        r->st.failures++;
    count_latency(r, ei_mono_ns() - f->started_ns);
    pthread_mutex_unlock(&r->lock);
    /* A timeout is left to the waiting flows' own deadline (dns_timeout); any other
     * failure is told at once (dns_failed). */
    if (status != ARES_ETIMEOUT)
        for (uint16_t i = 0; i < f->nwaiters; i++)
            f->waiters[i].done(f->waiters[i].ctx, f->name);
    f->used = false;
}

static flight *find_flight(ei_resolver *r, const char *name)
{
    for (size_t i = 0; i < MAX_IN_FLIGHT; i++)
        if (r->flights[i].used && strcmp(r->flights[i].name, name) == 0)
            return &r->flights[i];
    return NULL;
}

static void start_lookup(ei_resolver *r, const char *name, const waiter *w, bool refresh)
{
    flight *f = find_flight(r, name);
    if (f != NULL) {
        bool known = w == NULL;
        for (uint16_t i = 0; i < f->nwaiters && !known; i++)
            known = f->waiters[i].done == w->done && f->waiters[i].ctx == w->ctx;
        if (!known && f->nwaiters < MAX_WAITERS)
            f->waiters[f->nwaiters++] = *w;
        pthread_mutex_lock(&r->lock);
        r->st.merged++;
        pthread_mutex_unlock(&r->lock);
        return;
    }
    for (size_t i = 0; i < MAX_IN_FLIGHT && f == NULL; i++)
        if (!r->flights[i].used)
            f = &r->flights[i];
    pthread_mutex_lock(&r->lock);
    if (f == NULL) {
        r->st.rejected++;
        pthread_mutex_unlock(&r->lock);
        return;
    }
    r->st.lookups++;
    r->st.in_flight++;
    if (refresh)
        r->st.refreshes++;
    pthread_mutex_unlock(&r->lock);
    memset(f, 0, sizeof *f);
    f->owner = r;
    f->used = true;
    /* The queue threads hand over names the policy parser checked: at most EI_NAME_MAX. */
    size_t len = strnlen(name, EI_NAME_MAX);
    memcpy(f->name, name, len);
    f->name[len] = '\0';
    f->started_ns = ei_mono_ns();
    if (w != NULL)
        f->waiters[f->nwaiters++] = *w;
    char absolute[EI_NAME_MAX + 2]; /* a trailing dot: no search domains */
    memcpy(absolute, f->name, len);
    absolute[len] = '.';
    absolute[len + 1] = '\0';
    struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC };
    ares_getaddrinfo(r->ch, absolute, NULL, &hints, on_answer, f);
}

/* Takes the requests the queue threads left, and refreshes tcp:// names due. */
static void take_work(ei_resolver *r)
{
    request batch[64];
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t n = r->ninbox < 64 ? r->ninbox : 64;
        memcpy(batch, r->inbox + r->ninbox - n, n * sizeof *batch);
        r->ninbox -= n;
        pthread_mutex_unlock(&r->lock);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            start_lookup(r, batch[i].name, &batch[i].w, false);
    }
    uint64_t now = ei_mono_ns();
    if (!atomic_exchange(&r->keep_changed, false) && now < r->next_refresh_ns)
        return;
    r->next_refresh_ns = now + 1000000000ull;
    pthread_mutex_lock(&r->lock);
    size_t nkeep = r->nkeep;
    char (*keep)[EI_NAME_MAX + 1] = nkeep ? malloc(nkeep * sizeof *keep) : NULL;
    if (keep != NULL)
        memcpy(keep, r->keep, nkeep * sizeof *keep);
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; keep != NULL && i < nkeep; i++)
        if (ei_dns_cache_remaining(r->cache, keep[i], now) <= REFRESH_AHEAD_S && find_flight(r, keep[i]) == NULL)
            start_lookup(r, keep[i], NULL, true);
    free(keep);
}

static void *resolver_main(void *arg)
{
    ei_resolver *r = arg;
    struct epoll_event ev[16];
    while (!atomic_load(&r->stop)) {
        struct timeval max = { 0, 200000 }, tv;
        struct timeval *t = ares_timeout(r->ch, &max, &tv);
        int ms = (int)(t->tv_sec * 1000 + t->tv_usec / 1000);
        int n = epoll_wait(r->epfd, ev, 16, ms > 0 ? ms : 1);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == r->wakefd) {
                uint64_t v;
                ssize_t got = read(fd, &v, sizeof v);
                (void)got;
                continue;
            }
            bool rd = ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP);
            bool wr = ev[i].events & EPOLLOUT;
            ares_process_fd(r->ch, rd ? fd : ARES_SOCKET_BAD, wr ? fd : ARES_SOCKET_BAD);
        }
        ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
        take_work(r);
    }
    return NULL;
}

ei_resolver *ei_resolver_start(const char *server, uint32_t timeout_ms, ei_dns_cache *cache,
                               char *err, size_t errlen)
{
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        return NULL;
    }
    ei_resolver *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cache = cache;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&r->lock, NULL);
    atomic_init(&r->stop, false);
    atomic_init(&r->keep_changed, false);
    if (r->epfd < 0 || r->wakefd < 0) {
        snprintf(err, errlen, "resolver: %s", strerror(errno));
        goto fail;
    }
    r->inbox = calloc(INBOX, sizeof *r->inbox);
    if (r->inbox == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    r->flights = calloc(MAX_IN_FLIGHT, sizeof *r->flights);
    if (r->flights == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.fd = r->wakefd;
    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev);

    /* Two tries; c-ares doubles the second one's timeout: a lookup ends (answered or
     * not) within the bound. */
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.timeout = (int)(timeout_ms / 3 > 50 ? timeout_ms / 3 : 50);
    o.tries = 2;
    char dns_only[] = "b"; /* the node's /etc/hosts is not the workloads' */
    o.lookups = dns_only;
    o.flags = ARES_FLAG_NOSEARCH;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = r;
    rc = ares_init_options(&r->ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
                                       ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        goto fail;
    }
    if (server != NULL && (rc = ares_set_servers_ports_csv(r->ch, server)) != ARES_SUCCESS) {
        snprintf(err, errlen, "--resolver '%s': %s", server, ares_strerror(rc));
        ares_destroy(r->ch);
        goto fail;
    }
    if (pthread_create(&r->thread, NULL, resolver_main, r) != 0) {
        snprintf(err, errlen, "cannot start the resolver thread");
        ares_destroy(r->ch);
        goto fail;
    }
    return r;
fail:
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->wakefd >= 0)
        close(r->wakefd);
    free(r->inbox);
    free(r->flights);
    pthread_mutex_destroy(&r->lock);
    free(r);
    ares_library_cleanup();
    return NULL;
}

static void wake(ei_resolver *r)
{
    uint64_t one = 1;
    ssize_t n = write(r->wakefd, &one, sizeof one);
    (void)n;
}

void ei_resolver_lookup(ei_resolver *r, const char *name, ei_resolved_fn done, void *ctx)
{
    pthread_mutex_lock(&r->lock);
    bool queued = r->ninbox < INBOX;
    if (queued) {
        request *q = &r->inbox[r->ninbox++];
        snprintf(q->name, sizeof q->name, "%s", name);
        q->w.done = done;
        q->w.ctx = ctx;
    } else {
        r->st.rejected++;
    }
    pthread_mutex_unlock(&r->lock);
    if (queued)
        wake(r);
}

void ei_resolver_keep(ei_resolver *r, const char *const *names, size_t n)
{
    if (n > MAX_KEEP)
        n = MAX_KEEP;
    char (*keep)[EI_NAME_MAX + 1] = n ? calloc(n, sizeof *keep) : NULL;
    if (n > 0 && keep == NULL)
        return; /* out of memory: the previous list stays */
    for (size_t i = 0; i < n; i++)
        snprintf(keep[i], sizeof keep[i], "%s", names[i]);
    pthread_mutex_lock(&r->lock);
    free(r->keep);
    r->keep = keep;
    r->nkeep = n;
    pthread_mutex_unlock(&r->lock);
    atomic_store(&r->keep_changed, true);
    wake(r);
}

void ei_resolver_get_stats(ei_resolver *r, ei_resolver_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->st;
    pthread_mutex_unlock(&r->lock);
}

void ei_resolver_stop(ei_resolver *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, true);
    wake(r);
    pthread_join(r->thread, NULL);
    ares_destroy(r->ch); /* lookups in flight end with ARES_EDESTRUCTION */
    close(r->epfd);
    close(r->wakefd);
    free(r->inbox);
    free(r->flights);
    free(r->keep);
    pthread_mutex_destroy(&r->lock);
    free(r);
    ares_library_cleanup();
}
