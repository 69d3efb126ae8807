/* The name -> address cache that binds a flow's name to its destination.
 *
 * Entries belong to a workload (the addresses a workload's own DNS answers gave it) or to
 * nobody (the inspector's own lookups and the --hosts file, which every workload may
 * use). Each address keeps its own expiry, so answers that rotate addresses add up
 * within their TTLs. An answer without addresses is remembered too (negative caching):
 * a name known to have no address binds nothing, and needs no lookup.
 *
 * Bounded in total and per workload: learning into a full cache evicts the least recently
 * used entry (of the same workload first when that workload is at its bound); evictions
 * are counted. Entries from the hosts file are pinned: never evicted, never expired.
 *
 * One cache serves every queue thread (a workload's DNS answer and its connection may
 * reach different queues), so every function takes the cache's lock. Callbacks run under
 * it and must not call back into the cache. */
#ifndef EGRESS_INSPECTOR_DNS_CACHE_H
#define EGRESS_INSPECTOR_DNS_CACHE_H

#include "egress_inspector/common.h"
#include "egress_inspector/policy.h"

#define EI_DNS_CACHE_ADDRS 16 /* addresses kept per name and workload */

typedef struct {
    uint32_t max_entries;      /* names, all workloads together */
    uint32_t max_per_workload;
    uint32_t min_ttl_s;        /* TTLs are clamped into [min_ttl_s, max_ttl_s] */
    uint32_t max_ttl_s;
    uint64_t hash_seed;
} ei_dns_cache_config;

/* 65536 entries, 1024 per workload, TTLs clamped to [30 s, 3600 s]. */
void ei_dns_cache_config_default(ei_dns_cache_config *cfg);

typedef struct {
    uint64_t answers_learned;
    uint64_t evicted;         /* by either bound */
    uint64_t expired;
    uint64_t entries;         /* gauge, pinned ones included */
    uint64_t workloads;       /* gauge */
} ei_dns_cache_stats;

/* ei_bind (the answer of ei_dns_cache_check) is in policy.h: the decision reads it. */

typedef struct ei_dns_cache ei_dns_cache;

/* NULL when memory runs out. */
EI_MUST_USE ei_dns_cache *ei_dns_cache_new(const ei_dns_cache_config *cfg);
void ei_dns_cache_free(ei_dns_cache *c);

/* Records that name (normalized) has addrs (n may be 0: the name has none) for ttl_s
 * seconds, clamped. workload NULL: learned by the inspector itself. */
void ei_dns_cache_learn(ei_dns_cache *c, const ei_addr *workload, const char *name,
                        const ei_addr *addrs, size_t n, uint32_t ttl_s, uint64_t now_ns);

/* A pinned binding (hosts file). Returns false when memory runs out. */
EI_MUST_USE bool ei_dns_cache_pin(ei_dns_cache *c, const char *name, const ei_addr *addr);

/* Does name bind dst for this workload: by its own answers, or by the inspector's? */
EI_MUST_USE ei_bind ei_dns_cache_check(ei_dns_cache *c, const ei_addr *workload, const char *name,
                                       const ei_addr *dst, uint64_t now_ns);

/* Calls fn for each name this workload learned (and each pinned name) bound to dst
 * right now, until fn returns false. */
typedef bool (*ei_dns_name_fn)(void *ctx, const char *name, size_t len);
void ei_dns_cache_names_for(ei_dns_cache *c, const ei_addr *workload, const ei_addr *dst,
                            uint64_t now_ns, ei_dns_name_fn fn, void *ctx);

/* Seconds until the inspector's own binding of name expires: 0 when it has none (or it
 * has expired), UINT32_MAX when pinned. */
EI_MUST_USE uint32_t ei_dns_cache_remaining(ei_dns_cache *c, const char *name, uint64_t now_ns);

void ei_dns_cache_get_stats(ei_dns_cache *c, ei_dns_cache_stats *out);

#endif
