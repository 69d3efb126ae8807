#include "flow/reasm.h"

#include <stdlib.h>
#include <string.h>

ei_reasm *ei_reasm_new(uint16_t held_cap)
{
    ei_reasm *r = calloc(1, sizeof *r + (size_t)held_cap * sizeof r->held[0]);
    if (r != NULL)
        r->held_cap = held_cap;
    return r;
}

void ei_reasm_free(ei_reasm *r)
{
    if (r == NULL)
        return;
    free(r->buf);
    free(r->have);
    free(r);
}

size_t ei_reasm_footprint(const ei_reasm *r)
{
    size_t bitmap = r->have != NULL ? ((size_t)r->alloc + 7) / 8 : 0;
    return sizeof *r + (size_t)r->held_cap * sizeof r->held[0] + r->alloc + bitmap;
}

static bool has_byte(const ei_reasm *r, size_t i)
{
    return r->have != NULL && (r->have[i / 8] >> (i % 8) & 1);
}

/* Grows buf (and the bitmap, if any) to hold at least `need` bytes, doubling so that a
 * stream that arrives in many small segments is not copied once per segment. */
static bool grow(ei_reasm *r, uint32_t need, uint32_t cap)
{
    if (need <= r->alloc)
        return true;
    uint32_t size = r->alloc ? r->alloc : 512;
    while (size < need)
        size = size > cap / 2 ? cap : size * 2;
    uint8_t *buf = realloc(r->buf, size);
    if (buf == NULL)
        return false;
    r->buf = buf;
    if (r->have != NULL) {
        uint8_t *have = realloc(r->have, ((size_t)size + 7) / 8);
        if (have == NULL)
            return false;
        memset(have + (r->alloc + 7) / 8, 0, (size + 7) / 8 - (r->alloc + 7) / 8);
        r->have = have;
    }
    r->alloc = size;
    return true;
}

ei_reasm_status ei_reasm_add(ei_reasm *r, uint32_t off, const uint8_t *data, size_t len,
                             uint32_t cap)
{
    if (off >= cap)
        return EI_REASM_OK;
    if (len > cap - off)
        len = cap - off;
    uint32_t end = off + (uint32_t)len;

    /* The part that overlaps the in-order prefix only needs comparing. */
    if (off < r->contig) {
        uint32_t n = (end < r->contig ? end : r->contig) - off;
        if (memcmp(r->buf + off, data, n) != 0)
            return EI_REASM_CONFLICT;
        off += n;
        data += n;
    }
    if (off >= end)
        return EI_REASM_OK;
    if (!grow(r, end, cap))
        return EI_REASM_NOMEM;

    if (off == r->contig && r->have == NULL) {
        memcpy(r->buf + off, data, end - off);
        r->contig = end;
        return EI_REASM_OK;
    }

    if (r->have == NULL) {
        r->have = calloc(1, ((size_t)r->alloc + 7) / 8);
        if (r->have == NULL)
            return EI_REASM_NOMEM;
        for (uint32_t i = 0; i < r->contig; i++)
            r->have[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    for (uint32_t i = off; i < end; i++)
        if (has_byte(r, i) && r->buf[i] != data[i - off])
            return EI_REASM_CONFLICT;
    for (uint32_t i = off; i < end; i++) {
        r->buf[i] = data[i - off];
        r->have[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    while (r->contig < r->alloc && has_byte(r, r->contig))
        r->contig++;
    return EI_REASM_OK;
}
