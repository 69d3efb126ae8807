/* The inspector's own lookups: c-ares, driven from one epoll loop in a thread of its own.
 *
 * Queue threads ask for a name (ei_resolver_lookup); the answer goes into the shared
 * cache under the inspector's own bindings, then every thread that asked is told
 * through its callback. Lookups of the same name are merged while one is in flight.
 * Names of tcp:// entries are looked up ahead of need and again before their TTL ends. */
#ifndef EI_IO_RESOLVER_H
#define EI_IO_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "egress_inspector/dns_cache.h"

/* Upper bounds of the lookup latency histogram, in nanoseconds; the last is +Inf. */
#define EI_RESOLVER_BUCKETS 7
extern const uint64_t ei_resolver_bounds_ns[EI_RESOLVER_BUCKETS];

typedef struct {
    uint64_t lookups;          /* sent to the resolver */
    uint64_t merged;           /* asked while the same name was in flight */
    uint64_t answered;         /* addresses, or the name has none (NXDOMAIN, NODATA) */
    uint64_t failures;         /* timeouts, SERVFAIL, refused, unreachable */
    uint64_t rejected;         /* too many in flight: the asking flows time out */
    uint64_t refreshes;        /* tcp:// names looked up ahead of need */
    uint64_t in_flight;        /* gauge */
    uint64_t latency_buckets[EI_RESOLVER_BUCKETS]; /* not cumulative */
    uint64_t latency_sum_ns;
} ei_resolver_stats;

/* Called in the resolver's thread once a lookup the caller asked for has ended (the
 * cache already holds what it found). Must be quick and thread-safe. */
typedef void (*ei_resolved_fn)(void *ctx, const char *name);

typedef struct ei_resolver ei_resolver;

/* server: "IP" or "IP:PORT" ("[IPv6]:PORT"); NULL for the servers of /etc/resolv.conf.
 * timeout_ms bounds each lookup in all. NULL with a message in err on failure. */
EI_MUST_USE ei_resolver *ei_resolver_start(const char *server, uint32_t timeout_ms, ei_dns_cache *cache,
                                           char *err, size_t errlen);

/* Asks for name (normalized). Thread-safe; never blocks on the network. done(ctx, name)
 * follows, unless the lookup times out (the flows that wait time out by themselves). */
void ei_resolver_lookup(ei_resolver *r, const char *name, ei_resolved_fn done, void *ctx);

/* The names to keep resolved ahead of need (replaces the previous list). Thread-safe. */
void ei_resolver_keep(ei_resolver *r, const char *const *names, size_t n);

/* A consistent copy of the counters; thread-safe. */
void ei_resolver_get_stats(ei_resolver *r, ei_resolver_stats *out);

/* Stops the thread and frees (NULL: nothing); lookups in flight are abandoned, and their
 * done callbacks never come. The cache passed to start stays the caller's. */
void ei_resolver_stop(ei_resolver *r);

#endif
