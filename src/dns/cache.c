/* Entries live in one array and link to each other by 32-bit index: a hash chain keyed
 * by (workload, name), one LRU list of every entry that can be evicted, and one list per
 * workload, so that a workload at its bound gives up its own oldest name. */
#include "egress_inspector/dns_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "ilist.h"

#define NONE UINT32_MAX
#define NS_PER_S 1000000000ull

typedef struct {
    ei_addr addr;
    uint64_t expires_ns;
    uint64_t learned_ns;
} bound;

typedef struct {
    ei_addr workload; /* family 0: the inspector's own */
    char *name;       /* NULL: a free entry */
    uint32_t hash;
    uint32_t hnext;
    ei_ilink lru;          /* the cache's LRU list; pinned entries are not on it */
    ei_ilink wlru;         /* its workload's list */
    uint32_t wl;
    uint64_t known_until_ns;
    bool pinned;
    uint8_t naddrs;
    bound addrs[EI_DNS_CACHE_ADDRS];
} entry;

typedef struct {
    ei_addr addr;
    uint32_t hnext; /* hash chain, or the free list */
    ei_ilist entries;       /* its entries, newest first */
    uint32_t count;
} owner;

struct ei_dns_cache {
    pthread_mutex_t lock;
    ei_dns_cache_config cfg;
    entry *e;
    uint32_t ecap, eused, efree;
    uint32_t *buckets;
    uint32_t nbuckets; /* power of two */
    ei_ilist lru;             /* every unpinned entry, newest first */
    uint32_t evictable;
    owner *w;
    uint32_t wcap, wused, wfree;
    uint32_t *wbuckets;
    ei_dns_cache_stats st;
};

void ei_dns_cache_config_default(ei_dns_cache_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_entries = 65536;
    cfg->max_per_workload = 1024;
    cfg->min_ttl_s = 30;
    cfg->max_ttl_s = 3600;
}

static uint64_t addr_hash64(const ei_dns_cache *c, const ei_addr *a)
{
    return ei_hash_word(ei_hash_bytes(c->cfg.hash_seed ^ EI_HASH_BASIS, a->bytes, sizeof a->bytes),
                        a->family);
}

static uint32_t hash_addr(const ei_dns_cache *c, const ei_addr *a)
{
    return ei_hash_fold(addr_hash64(c, a));
}

static uint32_t hash_key(const ei_dns_cache *c, const ei_addr *w, const char *name)
{
    return ei_hash_fold(ei_hash_bytes(addr_hash64(c, w), name, strlen(name)));
}

ei_dns_cache *ei_dns_cache_new(const ei_dns_cache_config *cfg)
{
    ei_dns_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->cfg = *cfg;
    if (c->cfg.max_entries == 0)
        c->cfg.max_entries = 1;
    if (c->cfg.max_per_workload == 0)
        c->cfg.max_per_workload = 1;
    if (c->cfg.max_ttl_s < c->cfg.min_ttl_s)
        c->cfg.max_ttl_s = c->cfg.min_ttl_s;
    c->nbuckets = 1024;
    while (c->nbuckets < c->cfg.max_entries && c->nbuckets < (1u << 24))
        c->nbuckets <<= 1;
    c->buckets = malloc(c->nbuckets * sizeof *c->buckets);
    c->wbuckets = malloc(c->nbuckets * sizeof *c->wbuckets);
    if (c->buckets == NULL || c->wbuckets == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->buckets);
        free(c->wbuckets);
        free(c);
        return NULL;
    }
    memset(c->buckets, 0xff, c->nbuckets * sizeof *c->buckets);
    memset(c->wbuckets, 0xff, c->nbuckets * sizeof *c->wbuckets);
    c->efree = c->wfree = NONE;
    ei_ilist_init(&c->lru);
    return c;
}

void ei_dns_cache_free(ei_dns_cache *c)
{
    if (c == NULL)
        return;
    for (uint32_t i = 0; i < c->eused; i++)
        free(c->e[i].name);
    free(c->e);
    free(c->w);
    free(c->buckets);
    free(c->wbuckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- workloads ---- */

static uint32_t workload_find(const ei_dns_cache *c, const ei_addr *a)
{
    for (uint32_t i = c->wbuckets[hash_addr(c, a) & (c->nbuckets - 1)]; i != NONE; i = c->w[i].hnext)
        if (ei_addr_equal(&c->w[i].addr, a))
            return i;
    return NONE;
}

static uint32_t workload_get(ei_dns_cache *c, const ei_addr *a)
{
    uint32_t i = workload_find(c, a);
    if (i != NONE)
        return i;
    if (c->wfree != NONE) {
        i = c->wfree;
        c->wfree = c->w[i].hnext;
    } else {
        owner *grown = ei_grow32(c->w, sizeof *grown, c->wused, &c->wcap, 64);
        if (grown == NULL)
            return NONE;
        c->w = grown;
        i = c->wused++;
    }
    owner *w = &c->w[i];
    memset(w, 0, sizeof *w);
    w->addr = *a;
    ei_ilist_init(&w->entries);
    uint32_t *b = &c->wbuckets[hash_addr(c, a) & (c->nbuckets - 1)];
    w->hnext = *b;
    *b = i;
    c->st.workloads++;
    return i;
}

static void workload_put(ei_dns_cache *c, uint32_t i)
{
    owner *w = &c->w[i];
    if (--w->count > 0)
        return;
    uint32_t *p = &c->wbuckets[hash_addr(c, &w->addr) & (c->nbuckets - 1)];
    while (*p != i)
        p = &c->w[*p].hnext;
    *p = w->hnext;
    w->hnext = c->wfree;
    c->wfree = i;
    c->st.workloads--;
}

/* ---- entries ---- */

static ei_iarray cache_lru(ei_dns_cache *c)
{
    return (ei_iarray){ c->e, sizeof *c->e, offsetof(entry, lru) };
}

static ei_iarray workload_lru(ei_dns_cache *c)
{
    return (ei_iarray){ c->e, sizeof *c->e, offsetof(entry, wlru) };
}

static void lru_unlink(ei_dns_cache *c, uint32_t i)
{
    entry *x = &c->e[i];
    ei_ilist_unlink(&c->w[x->wl].entries, workload_lru(c), i);
    if (!x->pinned)
        ei_ilist_unlink(&c->lru, cache_lru(c), i);
}

static void lru_push(ei_dns_cache *c, uint32_t i)
{
    entry *x = &c->e[i];
    ei_ilist_push(&c->w[x->wl].entries, workload_lru(c), i);
    if (!x->pinned)
        ei_ilist_push(&c->lru, cache_lru(c), i);
}

static void entry_remove(ei_dns_cache *c, uint32_t i)
{
    entry *x = &c->e[i];
    lru_unlink(c, i);
    uint32_t *p = &c->buckets[x->hash & (c->nbuckets - 1)];
    while (*p != i)
        p = &c->e[*p].hnext;
    *p = x->hnext;
    if (!x->pinned)
        c->evictable--;
    workload_put(c, x->wl);
    free(x->name);
    x->name = NULL;
    x->hnext = c->efree;
    c->efree = i;
    c->st.entries--;
}

static uint32_t entry_find(const ei_dns_cache *c, const ei_addr *w, const char *name, uint32_t h)
{
    for (uint32_t i = c->buckets[h & (c->nbuckets - 1)]; i != NONE; i = c->e[i].hnext)
        if (c->e[i].hash == h && ei_addr_equal(&c->e[i].workload, w) && strcmp(c->e[i].name, name) == 0)
            return i;
    return NONE;
}

static uint32_t entry_new(ei_dns_cache *c, const ei_addr *w, const char *name, uint32_t h,
                          bool pinned)
{
    char *copy = strdup(name);
    uint32_t wl = copy != NULL ? workload_get(c, w) : NONE;
    uint32_t i = NONE;
    if (wl != NONE && c->efree != NONE) {
        i = c->efree;
        c->efree = c->e[i].hnext;
    } else if (wl != NONE) {
        entry *grown = ei_grow32(c->e, sizeof *grown, c->eused, &c->ecap, 256);
        if (grown != NULL) { /* else: no room, the oldest entry makes way below */
            c->e = grown;
            i = c->eused++;
        }
    }
    if (i == NONE) {
        if (wl != NONE) {
            c->w[wl].count++;
            workload_put(c, wl);
        }
        free(copy);
        return NONE;
    }
    entry *x = &c->e[i];
    memset(x, 0, sizeof *x);
    x->workload = *w;
    x->name = copy;
    x->hash = h;
    x->wl = wl;
    x->pinned = pinned;
    c->w[wl].count++;
    uint32_t *b = &c->buckets[h & (c->nbuckets - 1)];
    x->hnext = *b;
    *b = i;
    lru_push(c, i);
    if (!pinned)
        c->evictable++;
    c->st.entries++;
    return i;
}

/* Drops the entry, and says so, when nothing in it is valid any more. */
static bool expire(ei_dns_cache *c, uint32_t i, uint64_t now_ns)
{
    if (c->e[i].pinned || c->e[i].known_until_ns >= now_ns)
        return false;
    entry_remove(c, i);
    c->st.expired++;
    return true;
}

/* A full entry gives up the address learned longest ago: an answer's own addresses (at
 * most EI_DNS_CACHE_ADDRS, learned at the same time) never push each other out. */
static void add_bound(entry *x, const ei_addr *a, uint64_t expires_ns, uint64_t now_ns)
{
    uint8_t oldest = 0;
    for (uint8_t k = 0; k < x->naddrs; k++) {
        if (ei_addr_equal(&x->addrs[k].addr, a)) {
            if (x->addrs[k].expires_ns < expires_ns)
                x->addrs[k].expires_ns = expires_ns;
            x->addrs[k].learned_ns = now_ns;
            return;
        }
        if (x->addrs[k].learned_ns < x->addrs[oldest].learned_ns)
            oldest = k;
    }
    uint8_t k = x->naddrs < EI_DNS_CACHE_ADDRS ? x->naddrs++ : oldest;
    x->addrs[k].addr = *a;
    x->addrs[k].expires_ns = expires_ns;
    x->addrs[k].learned_ns = now_ns;
}

void ei_dns_cache_learn(ei_dns_cache *c, const ei_addr *workload, const char *name,
                        const ei_addr *addrs, size_t n, uint32_t ttl_s, uint64_t now_ns)
{
    static const ei_addr nobody;
    const ei_addr *w = workload != NULL ? workload : &nobody;
    if (ttl_s < c->cfg.min_ttl_s)
        ttl_s = c->cfg.min_ttl_s;
    if (ttl_s > c->cfg.max_ttl_s)
        ttl_s = c->cfg.max_ttl_s;
    uint64_t until = now_ns + ttl_s * NS_PER_S;

    pthread_mutex_lock(&c->lock);
    uint32_t h = hash_key(c, w, name);
    uint32_t i = entry_find(c, w, name, h);
    if (i == NONE) {
        uint32_t wl = workload != NULL ? workload_find(c, w) : NONE;
        if (wl != NONE && c->w[wl].count >= c->cfg.max_per_workload) {
            entry_remove(c, c->w[wl].entries.tail);
            c->st.evicted++;
        }
        if (c->evictable >= c->cfg.max_entries && c->lru.tail != NONE) {
            entry_remove(c, c->lru.tail);
            c->st.evicted++;
        }
        i = entry_new(c, w, name, h, false);
    } else if (!c->e[i].pinned) {
        lru_unlink(c, i);
        lru_push(c, i);
    }
    if (i != NONE) {
        entry *x = &c->e[i];
        for (size_t k = 0; k < n; k++)
            add_bound(x, &addrs[k], until, now_ns);
        if (x->known_until_ns < until)
            x->known_until_ns = until;
        c->st.answers_learned++;
    }
    pthread_mutex_unlock(&c->lock);
}

bool ei_dns_cache_pin(ei_dns_cache *c, const char *name, const ei_addr *addr)
{
    static const ei_addr nobody;
    pthread_mutex_lock(&c->lock);
    uint32_t h = hash_key(c, &nobody, name);
    uint32_t i = entry_find(c, &nobody, name, h);
    if (i != NONE && !c->e[i].pinned) {
        entry_remove(c, i);
        i = NONE;
    }
    if (i == NONE)
        i = entry_new(c, &nobody, name, h, true);
    if (i != NONE) {
        c->e[i].known_until_ns = UINT64_MAX;
        add_bound(&c->e[i], addr, UINT64_MAX, 0);
    }
    pthread_mutex_unlock(&c->lock);
    return i != NONE;
}

/* What one entry says of dst: YES, NO (known, not bound), or UNKNOWN (no valid entry). */
static ei_bind entry_check(ei_dns_cache *c, const ei_addr *w, const char *name,
                           const ei_addr *dst, uint64_t now_ns)
{
    uint32_t i = entry_find(c, w, name, hash_key(c, w, name));
    if (i == NONE || expire(c, i, now_ns))
        return EI_BIND_UNKNOWN;
    const entry *x = &c->e[i];
    for (uint8_t k = 0; k < x->naddrs; k++)
        if (x->addrs[k].expires_ns >= now_ns && ei_addr_equal(&x->addrs[k].addr, dst))
            return EI_BIND_YES;
    return EI_BIND_NO;
}

ei_bind ei_dns_cache_check(ei_dns_cache *c, const ei_addr *workload, const char *name,
                           const ei_addr *dst, uint64_t now_ns)
{
    static const ei_addr nobody;
    pthread_mutex_lock(&c->lock);
    ei_bind own = workload != NULL ? entry_check(c, workload, name, dst, now_ns) : EI_BIND_UNKNOWN;
    ei_bind ours = own == EI_BIND_YES ? own : entry_check(c, &nobody, name, dst, now_ns);
    pthread_mutex_unlock(&c->lock);
    return own > ours ? own : ours;
}

static bool entry_binds(const entry *x, const ei_addr *dst, uint64_t now_ns)
{
    for (uint8_t k = 0; k < x->naddrs; k++)
        if (x->addrs[k].expires_ns >= now_ns && ei_addr_equal(&x->addrs[k].addr, dst))
            return true;
    return false;
}

void ei_dns_cache_names_for(ei_dns_cache *c, const ei_addr *workload, const ei_addr *dst,
                            uint64_t now_ns, ei_dns_name_fn fn, void *ctx)
{
    static const ei_addr nobody;
    pthread_mutex_lock(&c->lock);
    const ei_addr *owners[2] = { workload, &nobody };
    bool go_on = true;
    for (int o = 0; o < 2 && go_on; o++) {
        uint32_t wl = owners[o] != NULL ? workload_find(c, owners[o]) : NONE;
        for (uint32_t i = wl != NONE ? c->w[wl].entries.head : NONE; i != NONE && go_on; i = c->e[i].wlru.next) {
            const entry *x = &c->e[i];
            if ((o == 0 || x->pinned) && entry_binds(x, dst, now_ns))
                go_on = fn(ctx, x->name, strlen(x->name));
        }
    }
    pthread_mutex_unlock(&c->lock);
}

uint32_t ei_dns_cache_remaining(ei_dns_cache *c, const char *name, uint64_t now_ns)
{
    static const ei_addr nobody;
    uint32_t left = 0;
    pthread_mutex_lock(&c->lock);
    uint32_t i = entry_find(c, &nobody, name, hash_key(c, &nobody, name));
    if (i != NONE && c->e[i].pinned)
        left = UINT32_MAX;
    else if (i != NONE && c->e[i].known_until_ns > now_ns)
        left = (uint32_t)((c->e[i].known_until_ns - now_ns) / NS_PER_S);
    pthread_mutex_unlock(&c->lock);
    return left;
}

void ei_dns_cache_get_stats(ei_dns_cache *c, ei_dns_cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    pthread_mutex_unlock(&c->lock);
}
