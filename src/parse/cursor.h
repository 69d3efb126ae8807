/* The one way parsers read untrusted bytes.
 *
 * A cursor is a window [ptr, ptr + len) with a read offset and a sticky error flag. Every
 * read checks the bound; a read past the end sets the error, returns zero (or an empty
 * view) and leaves the offset where it was, so later reads fail too. A parser reads a
 * whole structure, then checks the flag once, instead of testing each field.
 *
 * Length-prefixed blocks are read with ei_cursor_block*: it returns a sub-cursor over
 * exactly the announced bytes and skips them in the parent. The parser of a block calls
 * ei_cursor_finished() at its end, which is true only if no read failed and nothing is
 * left over, so a length that lies in either direction is caught where it lies. */
#ifndef EI_PARSE_CURSOR_H
#define EI_PARSE_CURSOR_H

#include "egress_inspector/common.h"

typedef struct {
    const uint8_t *ptr;
    size_t len;
    size_t off;
    bool failed;
} ei_cursor;

static inline ei_cursor ei_cursor_make(const uint8_t *ptr, size_t len)
{
    ei_cursor c = { ptr, len, 0, false };
    return c;
}

static inline ei_cursor ei_cursor_from_view(ei_view v)
{
    return ei_cursor_make(v.ptr, v.len);
}

static inline size_t ei_cursor_left(const ei_cursor *c)
{
    return c->failed ? 0 : c->len - c->off;
}

static inline bool ei_cursor_ok(const ei_cursor *c)
{
    return !c->failed;
}

/* True when every read succeeded and every byte was consumed. */
static inline bool ei_cursor_finished(const ei_cursor *c)
{
    return !c->failed && c->off == c->len;
}

static inline bool ei_cursor_need(ei_cursor *c, size_t n)
{
    if (c->failed || c->len - c->off < n) {
        c->failed = true;
        return false;
    }
    return true;
}

static inline uint8_t ei_cursor_u8(ei_cursor *c)
{
    if (!ei_cursor_need(c, 1))
        return 0;
    return c->ptr[c->off++];
}

static inline uint16_t ei_cursor_u16(ei_cursor *c)
{
    if (!ei_cursor_need(c, 2))
        return 0;
    uint16_t v = (uint16_t)((unsigned)c->ptr[c->off] << 8 | c->ptr[c->off + 1]);
    c->off += 2;
    return v;
}

static inline uint32_t ei_cursor_u24(ei_cursor *c)
{
    if (!ei_cursor_need(c, 3))
        return 0;
    uint32_t v = (uint32_t)c->ptr[c->off] << 16 | (uint32_t)c->ptr[c->off + 1] << 8 |
                 c->ptr[c->off + 2];
    c->off += 3;
    return v;
}

static inline uint32_t ei_cursor_u32(ei_cursor *c)
{
    if (!ei_cursor_need(c, 4))
        return 0;
    uint32_t v = (uint32_t)c->ptr[c->off] << 24 | (uint32_t)c->ptr[c->off + 1] << 16 |
                 (uint32_t)c->ptr[c->off + 2] << 8 | c->ptr[c->off + 3];
    c->off += 4;
    return v;
}

/* A view of the next n bytes, consumed. */
static inline ei_view ei_cursor_bytes(ei_cursor *c, size_t n)
{
    ei_view v = { NULL, 0 };
    if (!ei_cursor_need(c, n))
        return v;
    v.ptr = c->ptr + c->off;
    v.len = n;
    c->off += n;
    return v;
}

static inline void ei_cursor_skip(ei_cursor *c, size_t n)
{
    if (ei_cursor_need(c, n))
        c->off += n;
}

/* Everything not read yet, consumed. */
static inline ei_view ei_cursor_rest(ei_cursor *c)
{
    return ei_cursor_bytes(c, ei_cursor_left(c));
}

/* The next n bytes as a cursor of their own. A failed parent yields a failed child. */
static inline ei_cursor ei_cursor_sub(ei_cursor *c, size_t n)
{
    ei_view v = ei_cursor_bytes(c, n);
    ei_cursor sub = ei_cursor_make(v.ptr, v.len);
    sub.failed = c->failed;
    return sub;
}

/* A block prefixed by an 8-, 16- or 24-bit big-endian length, as TLS writes them. */
static inline ei_cursor ei_cursor_block8(ei_cursor *c)
{
    return ei_cursor_sub(c, ei_cursor_u8(c));
}

static inline ei_cursor ei_cursor_block16(ei_cursor *c)
{
    return ei_cursor_sub(c, ei_cursor_u16(c));
}

static inline ei_cursor ei_cursor_block24(ei_cursor *c)
{
    return ei_cursor_sub(c, ei_cursor_u24(c));
}

#endif
