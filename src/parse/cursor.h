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
 * left over, so a length that lies in either direction is caught where it lies.
 *
 * The fields are private: code outside this file reads a cursor only through these
 * functions, and scripts/check-banned fails the build on any `._off`, `._ptr`, `._len`
 * or `._failed` in src/parse. Peeks and searches answer a question and never fail the
 * cursor; reads and seeks past the end do. */
#ifndef EI_PARSE_CURSOR_H
#define EI_PARSE_CURSOR_H

#include <string.h>

#include "egress_inspector/common.h"

typedef struct {
    const uint8_t *_ptr;
    size_t _len;
    size_t _off;
    bool _failed;
} ei_cursor;

#define EI_CURSOR_NONE (-1) /* what a peek past the end returns */

static inline ei_cursor ei_cursor_make(const uint8_t *ptr, size_t len)
{
    ei_cursor c = { ptr, ptr ? len : 0, 0, false };
    return c;
}

static inline ei_cursor ei_cursor_from_view(ei_view v)
{
    return ei_cursor_make(v.ptr, v.len);
}

/* ---- state ---- */

static inline size_t ei_cursor_left(const ei_cursor *c)
{
    return c->_failed ? 0 : c->_len - c->_off;
}

static inline bool ei_cursor_ok(const ei_cursor *c)
{
    return !c->_failed;
}

/* True when every read succeeded and every byte was consumed. */
static inline bool ei_cursor_finished(const ei_cursor *c)
{
    return !c->_failed && c->_off == c->_len;
}

/* Marks the cursor failed: the parser found the bytes well-formed in length but wrong in
 * content (an option length below its minimum, say). Sticky like any other failure. */
static inline void ei_cursor_fail(ei_cursor *c)
{
    c->_failed = true;
}

/* The size of the whole window, read or not. */
static inline size_t ei_cursor_size(const ei_cursor *c)
{
    return c->_len;
}

/* The read offset, for a parser that must come back (DNS name compression, RFC 1035
 * 4.1.4) or report how many bytes a structure took. */
static inline size_t ei_cursor_tell(const ei_cursor *c)
{
    return c->_off;
}

/* Moves the read offset to `off`, which may be anywhere in [0, len]; past len fails. */
static inline void ei_cursor_seek(ei_cursor *c, size_t off)
{
    if (c->_failed || off > c->_len)
        c->_failed = true;
    else
        c->_off = off;
}

/* The bytes already read, [0, off). */
static inline ei_view ei_cursor_consumed(const ei_cursor *c)
{
    ei_view v = { c->_ptr, c->_off };
    return v;
}

/* The bytes not read yet, without consuming them (an empty view when failed). */
static inline ei_view ei_cursor_remaining(const ei_cursor *c)
{
    ei_view v = { c->_failed ? NULL : c->_ptr + c->_off, ei_cursor_left(c) };
    return v;
}

static inline bool ei_cursor_need(ei_cursor *c, size_t n)
{
    if (c->_failed || c->_len - c->_off < n) {
        c->_failed = true;
        return false;
    }
    return true;
}

/* ---- questions that do not consume ---- */

/* The byte `at` positions ahead, or EI_CURSOR_NONE when there is none. */
static inline int ei_cursor_peek_at(const ei_cursor *c, size_t at)
{
    if (at >= ei_cursor_left(c))
        return EI_CURSOR_NONE;
    return c->_ptr[c->_off + at];
}

static inline int ei_cursor_peek(const ei_cursor *c)
{
    return ei_cursor_peek_at(c, 0);
}

/* How many bytes precede the first `b`, or SIZE_MAX when `b` is not in what is left. */
static inline size_t ei_cursor_find(const ei_cursor *c, uint8_t b)
{
    size_t left = ei_cursor_left(c);
    const uint8_t *at = left ? memchr(c->_ptr + c->_off, b, left) : NULL;
    return at ? (size_t)(at - (c->_ptr + c->_off)) : SIZE_MAX;
}

/* ---- reads ---- */

static inline uint8_t ei_cursor_u8(ei_cursor *c)
{
    if (!ei_cursor_need(c, 1))
        return 0;
    return c->_ptr[c->_off++];
}

/* Big-endian (network order) integers. */
static inline uint16_t ei_cursor_u16(ei_cursor *c)
{
    if (!ei_cursor_need(c, 2))
        return 0;
    const uint8_t *p = c->_ptr + c->_off;
    c->_off += 2;
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t ei_cursor_u24(ei_cursor *c)
{
    if (!ei_cursor_need(c, 3))
        return 0;
    const uint8_t *p = c->_ptr + c->_off;
    c->_off += 3;
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t ei_cursor_u32(ei_cursor *c)
{
    if (!ei_cursor_need(c, 4))
        return 0;
    const uint8_t *p = c->_ptr + c->_off;
    c->_off += 4;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Little-endian integers (radiotap, NFLOG's TLV headers). */
static inline uint16_t ei_cursor_u16le(ei_cursor *c)
{
    if (!ei_cursor_need(c, 2))
        return 0;
    const uint8_t *p = c->_ptr + c->_off;
    c->_off += 2;
    return (uint16_t)((unsigned)p[1] << 8 | p[0]);
}

static inline uint32_t ei_cursor_u32le(ei_cursor *c)
{
    if (!ei_cursor_need(c, 4))
        return 0;
    const uint8_t *p = c->_ptr + c->_off;
    c->_off += 4;
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* A view of the next n bytes, consumed. */
static inline ei_view ei_cursor_bytes(ei_cursor *c, size_t n)
{
    ei_view v = { NULL, 0 };
    if (!ei_cursor_need(c, n))
        return v;
    v.ptr = c->_ptr + c->_off;
    v.len = n;
    c->_off += n;
    return v;
}

/* The next n bytes copied to dst; on failure dst is zero-filled, so a caller that checks
 * the flag late never sees stale bytes. */
static inline void ei_cursor_copy(ei_cursor *c, void *dst, size_t n)
{
    ei_view v = ei_cursor_bytes(c, n);
    if (v.ptr != NULL)
        memcpy(dst, v.ptr, n);
    else if (n > 0)
        memset(dst, 0, n);
}

static inline void ei_cursor_skip(ei_cursor *c, size_t n)
{
    if (ei_cursor_need(c, n))
        c->_off += n;
}

/* Skips up to n bytes, fewer when fewer are left (padding that may end at the end). */
static inline void ei_cursor_skip_upto(ei_cursor *c, size_t n)
{
    size_t left = ei_cursor_left(c);
    ei_cursor_skip(c, n < left ? n : left);
}

/* Everything not read yet, consumed. */
static inline ei_view ei_cursor_rest(ei_cursor *c)
{
    return ei_cursor_bytes(c, ei_cursor_left(c));
}

/* When `stop` is in what is left: the bytes before it as *out, both consumed, true.
 * Otherwise false and nothing consumed (the message may not have arrived whole). */
static inline bool ei_cursor_until(ei_cursor *c, uint8_t stop, ei_view *out)
{
    size_t n = ei_cursor_find(c, stop);
    if (n == SIZE_MAX)
        return false;
    *out = ei_cursor_bytes(c, n);
    ei_cursor_skip(c, 1);
    return true;
}

/* The longest run of bytes, from here, for which keep() is true, consumed. */
static inline ei_view ei_cursor_while(ei_cursor *c, bool (*keep)(uint8_t))
{
    size_t n = 0;
    int b;
    while ((b = ei_cursor_peek_at(c, n)) != EI_CURSOR_NONE && keep((uint8_t)b))
        n++;
    return ei_cursor_bytes(c, n);
}

/* ---- blocks ---- */

/* The next n bytes as a cursor of their own. A failed parent yields a failed child. */
/* A QUIC variable-length integer (RFC 9000 16): the first two bits give its length, 1,
 * 2, 4 or 8 bytes, the other bits its value, most significant first. */
static inline uint64_t ei_cursor_varint(ei_cursor *c)
{
    int first = ei_cursor_peek(c);
    if (first < 0) {
        ei_cursor_fail(c);
        return 0;
    }
    size_t n = (size_t)1 << ((unsigned)first >> 6);
    ei_view v = ei_cursor_bytes(c, n);
    if (v.ptr == NULL)
        return 0;
    uint64_t value = v.ptr[0] & 0x3fu;
    for (size_t i = 1; i < n; i++)
        value = value << 8 | v.ptr[i];
    return value;
}

static inline ei_cursor ei_cursor_sub(ei_cursor *c, size_t n)
{
    ei_view v = ei_cursor_bytes(c, n);
    ei_cursor sub = ei_cursor_make(v.ptr, v.len);
    sub._failed = c->_failed;
    return sub;
}

/* A block prefixed by an 8-, 16- or 24-bit big-endian length, as TLS writes them, and
 * DNS over TCP (RFC 1035 4.2.2) frames its messages. */
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
