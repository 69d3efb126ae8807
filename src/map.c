/* The byte-string hash map (map.h). */
#include "map.h"

#include <stdlib.h>
#include <string.h>

enum { MAP_MIN_SLOTS = 16 };

uint32_t ei_map_hash(const uint8_t *key, size_t len)
{
    uint64_t h = EI_HASH_BASIS;
    while (len > 0)
        h = ei_hash_byte(h, key[--len]);
    return ei_hash_fold(h);
}

static bool map_grow(ei_map *m)
{
    uint32_t nslots = m->slots != NULL ? (m->mask + 1) * 2 : MAP_MIN_SLOTS;
    ei_slot *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return false;
    for (uint32_t i = 0; m->slots != NULL && i <= m->mask; i++) {
        if (m->slots[i].key == NULL)
            continue;
        uint32_t j = m->slots[i].hash & (nslots - 1);
        while (slots[j].key != NULL)
            j = (j + 1) & (nslots - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->mask = nslots - 1;
    return true;
}

ei_slot *ei_map_put(ei_map *m, const uint8_t *key, size_t len)
{
    uint32_t hash = ei_map_hash(key, len);
    const ei_slot *found = ei_map_find(m, key, len, hash);
    if (found != NULL)
        return &m->slots[found - m->slots];
    if ((m->slots == NULL || (m->count + 1) * 2 > m->mask + 1) && !map_grow(m))
        return NULL;
    uint32_t i = hash & m->mask;
    while (m->slots[i].key != NULL)
        i = (i + 1) & m->mask;
    uint8_t *copy = malloc(len > 0 ? len : 1); /* an empty key is a key too */
    if (copy == NULL)
        return NULL;
    memcpy(copy, key, len);
    ei_slot *s = &m->slots[i];
    s->key = copy;
    s->len = (uint32_t)len;
    s->hash = hash;
    s->value = EI_NO_VALUE;
    m->count++;
    return s;
}

void ei_map_free(ei_map *m)
{
    for (uint32_t i = 0; m->slots != NULL && i <= m->mask; i++)
        free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

