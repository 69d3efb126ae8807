/* The daemon's control socket (--control PATH): a Unix stream socket served by a thread
 * of its own (epoll). Each client sends one request line:
 *
 *   observe   every decision line logged from then on, one per line, until it hangs up
 *   status    one JSON object of the daemon's counters (ei_prom_status), then close
 *
 * anything else (or a request over EI_CONTROL_REQUEST_MAX bytes) gets one JSON error line
 * and is closed, as are a client beyond EI_CONTROL_MAX_CLIENTS and one that sends no
 * request within EI_CONTROL_REQUEST_MS.
 *
 * Queue threads hand every decision line to ei_control_put, which never blocks: with no
 * observer it reads one atomic; with observers it copies the line into each one's
 * bounded buffer under a lock held for the copies, and wakes the control thread (a
 * non-blocking eventfd write). A line that does not fit a client's buffer is dropped
 * whole for that client and counted; the next line that fits is preceded by
 * {"event":"observe_dropped","lines":N}. Only the control thread writes to clients, and
 * never blocks on one.
 *
 * Ownership: the module owns its socket file (0600, or 0660 with a group), its clients
 * and its thread; the status source stays the caller's. */
#ifndef EI_IO_CONTROL_H
#define EI_IO_CONTROL_H

#include <stdio.h>

#include "egress_inspector/common.h"

#define EI_CONTROL_MAX_CLIENTS 16
#define EI_CONTROL_REQUEST_MAX 256        /* bytes of a request line, its newline excluded */
#define EI_CONTROL_REQUEST_MS 5000        /* how long a client may take to send it */
#define EI_CONTROL_CLIENT_BUFFER (1u << 20) /* bytes of lines waiting for one observer */

typedef struct ei_control ei_control;

typedef struct {
    uint64_t clients;       /* gauge: connected now, in any state */
    uint64_t observers;     /* gauge: of those, observing */
    uint64_t lines;         /* line copies queued for observers */
    uint64_t lines_dropped; /* line copies dropped: an observer's buffer was full */
    uint64_t refused;       /* clients turned away: too many */
    uint64_t bad_requests;  /* unknown, too long, or none in time */
} ei_control_stats;

/* What a status request reads: status writes one JSON object (no newline needed) to
 * out. Called from the control thread. */
typedef struct {
    void (*status)(void *ctx, FILE *out);
    void *ctx;
} ei_control_source;

/* Serves PATH: a socket file left there is replaced only when nothing listens on it.
 * group: NULL (mode 0600) or a group name (0660, that group). NULL with a reason in err. */
EI_MUST_USE ei_control *ei_control_start(const char *path, const char *group, char *err, size_t errlen);

/* Gives (src) or takes back (NULL) what status requests read; src is copied. Once it
 * returns with NULL, no callback of the old source runs again, so the caller may free
 * what it read. Without a source, status answers with an error line. */
void ei_control_set_source(ei_control *c, const ei_control_source *src);

/* Hands one whole line (its newline included) to every observer. Never blocks; safe
 * from any thread; NULL c: nothing. */
void ei_control_put(ei_control *c, const char *line, size_t len);

/* A snapshot of the counters (zeros for NULL c). */
void ei_control_get_stats(ei_control *c, ei_control_stats *out);

/* Stops accepting and removes the socket file, writes what observers still have
 * waiting (at most about a second), closes every client, stops the thread and frees.
 * NULL: nothing. No ei_control_put may run during or after it. */
void ei_control_stop(ei_control *c);

#endif
