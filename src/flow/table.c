#include "flow/table.h"

#include <stdlib.h>
#include <string.h>

enum { INITIAL_CAPACITY = 1024 };

void ei_flow_key_make(uint8_t proto, const ei_addr *src, uint16_t sport, const ei_addr *dst,
                      uint16_t dport, ei_flow_key *key, bool *sender_is_a)
{
    int c = memcmp(src->bytes, dst->bytes, sizeof src->bytes);
    bool src_first = c < 0 || (c == 0 && sport <= dport);
    const ei_addr *a = src_first ? src : dst, *b = src_first ? dst : src;
    memset(key, 0, sizeof *key); /* the padding too: keys compare and copy as whole bytes */
    memcpy(key->a, a->bytes, sizeof key->a);
    memcpy(key->b, b->bytes, sizeof key->b);
    key->pa = src_first ? sport : dport;
    key->pb = src_first ? dport : sport;
    key->family = src->family;
    key->proto = proto;
    *sender_is_a = src_first;
}

static bool key_eq(const ei_flow_key *x, const ei_flow_key *y)
{
    return x->pa == y->pa && x->pb == y->pb && x->family == y->family && x->proto == y->proto &&
           memcmp(x->a, y->a, sizeof x->a) == 0 && memcmp(x->b, y->b, sizeof x->b) == 0;
}

/* A keyed mix of the tuple (multiply-xorshift rounds over 64-bit words): cheap, and with a
 * secret seed a remote peer cannot pick ports that pile into one chain. */
static uint32_t key_hash(const ei_flow_table *t, const ei_flow_key *key)
{
    uint64_t h = ei_hash_bytes(t->seed, key->a, 32); /* a and b, side by side */
    h = ei_hash_word(h, (uint64_t)key->proto << 40 | (uint64_t)key->pa << 24 |
                            (uint64_t)key->pb << 8 | key->family);
    return (uint32_t)h & (t->nbuckets - 1);
}

static uint32_t index_of(const ei_flow_table *t, const ei_flow *f)
{
    return (uint32_t)(f - t->flows);
}

/* The list an entry is on now, which lags its DECIDED flag until the next touch. */
static int list_of(const ei_flow *f)
{
    return (f->flags & EI_FLOW_F_ON_DECIDED_LIST) ? 1 : 0;
}

static ei_iarray lru_array(ei_flow_table *t)
{
    return (ei_iarray){ t->flows, sizeof *t->flows, offsetof(ei_flow, lru) };
}

static void lru_unlink(ei_flow_table *t, ei_flow *f, int list)
{
    ei_ilist_unlink(&t->lists[list], lru_array(t), index_of(t, f));
}

static void lru_push_head(ei_flow_table *t, ei_flow *f, int list)
{
    ei_ilist_push(&t->lists[list], lru_array(t), index_of(t, f));
}

static void hash_link(ei_flow_table *t, ei_flow *f)
{
    uint32_t h = key_hash(t, &f->key);
    f->hnext = t->buckets[h];
    t->buckets[h] = index_of(t, f);
}

static void hash_unlink(ei_flow_table *t, ei_flow *f)
{
    uint32_t i = index_of(t, f);
    uint32_t *link = &t->buckets[key_hash(t, &f->key)];
    while (*link != i)
        link = &t->flows[*link].hnext;
    *link = f->hnext;
}

/* Doubles the entry array (up to max_flows) and rehashes; the new entries go to the
 * free list. Pointers to entries are invalid afterwards. */
static bool grow(ei_flow_table *t)
{
    uint32_t cap = t->capacity ? t->capacity : INITIAL_CAPACITY / 2;
    cap = cap > t->max_flows / 2 ? t->max_flows : cap * 2;
    uint32_t nb = 1;
    while (nb < cap)
        nb *= 2;
    ei_flow *flows = realloc(t->flows, (size_t)cap * sizeof *flows);
    if (flows == NULL)
        return false;
    t->flows = flows;
    uint32_t *buckets = malloc((size_t)nb * sizeof *buckets);
    if (buckets == NULL)
        return false;
    free(t->buckets);
    t->buckets = buckets;
    t->nbuckets = nb;
    memset(buckets, 0xff, (size_t)nb * sizeof *buckets);
    for (uint32_t i = 0; i < t->capacity; i++)
        if (flows[i].key.family != 0)
            hash_link(t, &flows[i]);
    for (uint32_t i = cap; i > t->capacity; i--) {
        memset(&flows[i - 1], 0, sizeof flows[0]);
        flows[i - 1].hnext = t->free_head;
        t->free_head = i - 1;
    }
    t->capacity = cap;
    return true;
}

bool ei_flow_table_init(ei_flow_table *t, uint32_t max_flows, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->max_flows = max_flows ? max_flows : 1;
    t->seed = seed;
    t->free_head = EI_FLOW_NONE;
    ei_ilist_init(&t->lists[0]);
    ei_ilist_init(&t->lists[1]);
    return grow(t);
}

void ei_flow_table_destroy(ei_flow_table *t)
{
    free(t->flows);
    free(t->buckets);
    memset(t, 0, sizeof *t);
}

ei_flow *ei_flow_find(ei_flow_table *t, const ei_flow_key *key)
{
    for (uint32_t i = t->buckets[key_hash(t, key)]; i != EI_FLOW_NONE; i = t->flows[i].hnext)
        if (key_eq(&t->flows[i].key, key))
            return &t->flows[i];
    return NULL;
}

void ei_flow_remove(ei_flow_table *t, ei_flow *f)
{
    hash_unlink(t, f);
    lru_unlink(t, f, list_of(f));
    memset(f, 0, sizeof *f);
    f->hnext = t->free_head;
    t->free_head = index_of(t, f);
    t->count--;
}

ei_flow *ei_flow_oldest(ei_flow_table *t, int decided)
{
    uint32_t i = t->lists[decided ? 1 : 0].tail;
    return i == EI_FLOW_NONE ? NULL : &t->flows[i];
}

ei_flow *ei_flow_insert(ei_flow_table *t, const ei_flow_key *key, uint64_t now_ns,
                        ei_flow *evicted, bool *did_evict)
{
    *did_evict = false;
    if (t->free_head == EI_FLOW_NONE && t->capacity < t->max_flows && !grow(t))
        return NULL;
    if (t->free_head == EI_FLOW_NONE) {
        /* Decided flows are cheaper to lose: a decided flow that comes back is decided
         * again from its next packet, while an undecided one loses its buffered bytes. */
        ei_flow *victim = ei_flow_oldest(t, 1);
        if (victim == NULL)
            victim = ei_flow_oldest(t, 0);
        if (victim == NULL) /* a full table has entries; this only calms the compiler */
            return NULL;
        *evicted = *victim;
        *did_evict = true;
        ei_flow_remove(t, victim);
    }
    uint32_t i = t->free_head;
    ei_flow *f = &t->flows[i];
    t->free_head = f->hnext;
    memset(f, 0, sizeof *f);
    f->key = *key;
    f->last_ns = now_ns;
    hash_link(t, f);
    lru_push_head(t, f, 0);
    t->count++;
    return f;
}

void ei_flow_touch(ei_flow_table *t, ei_flow *f, uint64_t now_ns)
{
    f->last_ns = now_ns;
    lru_unlink(t, f, list_of(f));
    if (f->flags & EI_FLOW_F_DECIDED)
        f->flags |= EI_FLOW_F_ON_DECIDED_LIST;
    else
        f->flags &= (uint16_t)~EI_FLOW_F_ON_DECIDED_LIST;
    lru_push_head(t, f, list_of(f));
}
