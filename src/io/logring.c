/* A byte ring of whole lines, one writer thread. See logring.h. */
#include "io/logring.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/clock.h"

enum { CHUNK = 64 * 1024 }; /* bytes the writer takes out per write(2) */

struct ei_logring {
    int fd;
    pthread_t thread;
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t more;
    char *buf;
    char *chunk;            /* the writer's: what it writes, out of the lock */
    size_t cap, head, used; /* bytes [head, head + used) mod cap are queued */
    size_t in_flight;       /* bytes the writer took out and is writing */
    bool stop;
    uint64_t deadline_ns;   /* when stopping: give up on the fd after this */
    ei_logring_stats st;
};

/* Writes all of [p, p + n) unless the deadline passes first (then: false). The fd may be
 * blocking or not; poll bounds the wait either way. */
static bool write_all(ei_logring *r, const char *p, size_t n, uint64_t deadline_ns)
{
    while (n > 0) {
        ssize_t w = write(r->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            pthread_mutex_lock(&r->lock);
            r->st.write_errors++;
            pthread_mutex_unlock(&r->lock);
            return true; /* the fd is gone: these bytes are lost, counted */
        }
        if (w < 0 && errno == EINTR)
            continue;
        uint64_t now = ei_mono_ns();
        if (deadline_ns != 0 && now >= deadline_ns)
            return false;
        struct pollfd pfd = { r->fd, POLLOUT, 0 };
        (void)poll(&pfd, 1, deadline_ns ? (int)((deadline_ns - now) / 1000000u) + 1 : 1000);
    }
    return true;
}

static void *writer_main(void *arg)
{
    ei_logring *r = arg;
    /* Cancellation is possible only inside write(2): stop cancels a writer stuck on a
     * blocking fd past its deadline, never one holding the lock. */
    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    char *chunk = r->chunk;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (r->used == 0 && !r->stop)
            pthread_cond_wait(&r->more, &r->lock);
        if (r->used == 0)
            break; /* stopping, and all written */
        size_t n = r->used < CHUNK ? r->used : CHUNK;
        for (size_t i = 0, at = r->head; i < n;) { /* at most two runs: to the end, from 0 */
            size_t run = r->cap - at < n - i ? r->cap - at : n - i;
            memcpy(chunk + i, r->buf + at, run);
            i += run;
            at = 0;
        }
        r->head = (r->head + n) % r->cap;
        r->used -= n;
        r->in_flight = n;
        uint64_t deadline = r->stop ? r->deadline_ns : 0;
        pthread_mutex_unlock(&r->lock);
        (void)pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        bool done = write_all(r, chunk, n, deadline);
        (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        pthread_mutex_lock(&r->lock);
        r->in_flight = 0;
        if (!done) {
            r->used += n; /* not written in time: counted as left over by stop */
            r->head = (r->head + r->cap - n) % r->cap;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

ei_logring *ei_logring_start(int fd, size_t capacity, char *err, size_t errlen)
{
    ei_logring *r = calloc(1, sizeof *r);
    if (r == NULL || capacity == 0 || (r->buf = malloc(capacity)) == NULL ||
        (r->chunk = malloc(CHUNK)) == NULL) {
        snprintf(err, errlen, "log ring: out of memory");
        if (r != NULL)
            free(r->buf);
        free(r);
        return NULL;
    }
    r->fd = fd;
    r->cap = capacity;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->more, NULL);
    if (pthread_create(&r->thread, NULL, writer_main, r) != 0) {
        snprintf(err, errlen, "log ring: cannot start the writer thread");
        pthread_cond_destroy(&r->more);
        pthread_mutex_destroy(&r->lock);
        free(r->chunk);
        free(r->buf);
        free(r);
        return NULL;
    }
    return r;
}

bool ei_logring_put(ei_logring *r, const char *line, size_t len)
{
    if (r == NULL)
        return false;
    pthread_mutex_lock(&r->lock);
    if (len > r->cap - r->used || r->stop) {
        r->st.lines_dropped++;
        r->st.bytes_dropped += len;
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    size_t tail = (r->head + r->used) % r->cap;
    size_t run = r->cap - tail < len ? r->cap - tail : len;
    memcpy(r->buf + tail, line, run);
    memcpy(r->buf, line + run, len - run);
    r->used += len;
    r->st.lines++;
    pthread_cond_signal(&r->more);
    pthread_mutex_unlock(&r->lock);
    return true;
}

void ei_logring_get_stats(ei_logring *r, ei_logring_stats *out)
{
    memset(out, 0, sizeof *out);
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    *out = r->st;
    pthread_mutex_unlock(&r->lock);
}

size_t ei_logring_stop(ei_logring *r, unsigned timeout_ms)
{
    if (r == NULL)
        return 0;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    r->deadline_ns = ei_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    pthread_cond_signal(&r->more);
    pthread_mutex_unlock(&r->lock);
    /* A writer on a non-blocking fd gives up at the deadline by itself; one blocked in
     * write(2) on a stalled reader is cancelled there, with what it held counted lost. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(timeout_ms / 1000u + 1u);
    if (pthread_timedjoin_np(r->thread, NULL, &until) != 0) {
        pthread_cancel(r->thread);
        pthread_join(r->thread, NULL);
    }
    size_t left = r->used + r->in_flight;
    pthread_cond_destroy(&r->more);
    pthread_mutex_destroy(&r->lock);
    free(r->chunk);
    free(r->buf);
    free(r);
    return left;
}
