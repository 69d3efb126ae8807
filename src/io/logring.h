/* The daemon's log output: finished lines go into a bounded ring that a thread of its own
 * writes to a file descriptor, so that a slow reader of the log (a full pipe, a stalled
 * collector, a slow disk) never blocks a queue thread. Putting a line costs a lock held
 * for one memcpy; when the ring is full the line is dropped whole and counted, never cut.
 *
 * Ownership: the ring owns its buffer and its thread; the fd stays the caller's. */
#ifndef EI_IO_LOGRING_H
#define EI_IO_LOGRING_H

#include "egress_inspector/common.h"

typedef struct ei_logring ei_logring;

typedef struct {
    uint64_t lines;         /* lines accepted into the ring */
    uint64_t lines_dropped; /* lines refused because the ring was full */
    uint64_t bytes_dropped;
    uint64_t write_errors;  /* failed write(2)s other than EINTR/EAGAIN (the bytes are lost) */
} ei_logring_stats;

/* Starts the writer thread for fd with a ring of `capacity` bytes (a line longer than the
 * ring is always dropped). NULL with a reason in err when memory or a thread is lacking. */
EI_MUST_USE ei_logring *ei_logring_start(int fd, size_t capacity, char *err, size_t errlen);

/* Queues one whole line (its newline included). Never blocks on the fd; safe from any
 * thread. false: the line was dropped (ring full) and counted, which is all a caller
 * could do about it, so callers may ignore the result. NULL ring: false. */
bool ei_logring_put(ei_logring *r, const char *line, size_t len);

/* A snapshot of the counters, for /metrics and the shutdown line. */
void ei_logring_get_stats(ei_logring *r, ei_logring_stats *out);

/* Writes what is queued, waiting at most timeout_ms for the fd, then stops the thread
 * and frees. Returns the bytes that could not be written in time (0 when all were). */
EI_MUST_USE size_t ei_logring_stop(ei_logring *r, unsigned timeout_ms);

#endif
