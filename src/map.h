/* A hash map from byte strings to uint32 values: open addressing with linear probing,
 * load at most 1/2. The policy's name and address tables (src/policy/match.c) and
 * suggest's bookkeeping (src/cli/suggest.c) use it.
 *
 * Keys are hashed by ei_map_hash, FNV-1a read from the key's last byte to its first: the
 * hash of a name's suffix so extends to the next longer suffix, and a caller walking a
 * name's labels (the wildcard lookup) hashes each byte once, passing its own hash to
 * ei_map_find. Lookups may carry attacker-chosen keys; what is inserted is the caller's
 * choice (the policy inserts only the operator's keys, so its longest probe run is fixed
 * when the file is loaded). */
#ifndef EI_MAP_H
#define EI_MAP_H

#include <string.h>

#include "egress_inspector/common.h"

#define EI_NO_VALUE UINT32_MAX /* the value of a slot just made */

typedef struct {
    uint8_t *key; /* NULL: an empty slot */
    uint32_t len;
    uint32_t hash;
    uint32_t value;
} ei_slot;

typedef struct {
    ei_slot *slots;
    uint32_t mask;  /* slot count - 1, a power of two minus one */
    uint32_t count; /* keys in it */
} ei_map;           /* all zeros: empty */

EI_MUST_USE uint32_t ei_map_hash(const uint8_t *key, size_t len);

/* key's slot, or NULL; hash is ei_map_hash(key, len), or the same computed on the way.
 * Here, for its callers to inline: the packet path's name and address lookups. */
static inline const ei_slot *ei_map_find(const ei_map *m, const uint8_t *key, size_t len, uint32_t hash)
{
    if (m->count == 0)
        return NULL;
    for (uint32_t i = hash & m->mask;; i = (i + 1) & m->mask) {
        const ei_slot *s = &m->slots[i];
        if (s->key == NULL)
            return NULL;
        if (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

/* The slot for key (never empty): the existing one, or a new one (its key copied) whose
 * value is EI_NO_VALUE. NULL when memory runs out. */
EI_MUST_USE ei_slot *ei_map_put(ei_map *m, const uint8_t *key, size_t len);

/* Frees the keys and slots; the map is empty again. */
void ei_map_free(ei_map *m);

#endif
