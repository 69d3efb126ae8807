#include "io/jsonw.h"

#include <string.h>

enum { RESERVE = 3 }; /* room always kept for "}\n" and the NUL */

static void put(ei_jsonw *w, const char *s, size_t n)
{
    if (w->overflow || n > EI_JSONW_MAX - RESERVE - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void key(ei_jsonw *w, const char *k)
{
    size_t n = strlen(k);
    if (w->overflow || n + 4 > EI_JSONW_MAX - RESERVE - w->len) {
        w->overflow = true;
        return;
    }
    char *o = w->buf + w->len;
    if (!w->first)
        *o++ = ',';
    *o++ = '"';
    memcpy(o, k, n);
    o += n;
    *o++ = '"';
    *o++ = ':';
    w->len = (size_t)(o - w->buf);
    w->first = false;
}

void ei_jsonw_begin(ei_jsonw *w)
{
    w->len = 0;
    w->first = true;
    w->overflow = false;
    put(w, "{", 1);
}

/* Bytes that cannot stand for themselves inside a JSON string: '"' and '\\' take a
 * backslash, bytes outside printable ASCII become \u00XX (code points U+0000-U+00FF,
 * which keeps the line valid JSON whatever the wire held). Runs of other bytes are copied
 * whole. */
static bool needs_escape(unsigned char ch)
{
    return ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\';
}

void ei_jsonw_strn(ei_jsonw *w, const char *k, const char *value, size_t len, bool lower)
{
    static const char hex[] = "0123456789abcdef";
    size_t mark = w->len;
    key(w, k);
    if (value == NULL) {
        put(w, "null", 4);
    } else if (!w->overflow && len <= (EI_JSONW_MAX - RESERVE - 2 - w->len) / 6) {
        /* Worst case 6 bytes out per byte in: the room is checked once for the value. */
        char *o = w->buf + w->len;
        *o++ = '"';
        for (size_t i = 0; i < len;) {
            size_t run = i;
            while (run < len && !needs_escape((unsigned char)value[run]))
                run++;
            memcpy(o, value + i, run - i);
            if (lower)
                for (char *c = o; c < o + (run - i); c++)
                    if (*c >= 'A' && *c <= 'Z')
                        *c = (char)(*c + 32);
            o += run - i;
            if (run == len)
                break;
            unsigned char ch = (unsigned char)value[run];
            if (ch == '"' || ch == '\\') {
                *o++ = '\\';
                *o++ = (char)ch;
            } else {
                memcpy(o, "\\u00", 4);
                o[4] = hex[ch >> 4];
                o[5] = hex[ch & 15];
                o += 6;
            }
            i = run + 1;
        }
        *o++ = '"';
        w->len = (size_t)(o - w->buf);
    } else {
        w->overflow = true;
    }
    if (w->overflow)
        w->len = mark;
}

void ei_jsonw_lit(ei_jsonw *w, const char *k, const char *value)
{
    if (value == NULL) {
        ei_jsonw_null(w, k);
        return;
    }
    size_t n = strlen(value), mark = w->len;
    key(w, k);
    if (w->overflow || n + 2 > EI_JSONW_MAX - RESERVE - w->len) {
        w->overflow = true;
        w->len = mark;
        return;
    }
    char *o = w->buf + w->len;
    *o++ = '"';
    memcpy(o, value, n);
    o[n] = '"';
    w->len += n + 2;
}

void ei_jsonw_str(ei_jsonw *w, const char *k, const char *value)
{
    ei_jsonw_strn(w, k, value, value ? strlen(value) : 0, false);
}

void ei_jsonw_uint(ei_jsonw *w, const char *k, uint64_t value)
{
    char num[24];
    size_t n = sizeof num;
    do {
        num[--n] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    key(w, k);
    put(w, num + n, sizeof num - n);
}

void ei_jsonw_bool(ei_jsonw *w, const char *k, bool value)
{
    key(w, k);
    put(w, value ? "true" : "false", value ? 4 : 5);
}

void ei_jsonw_null(ei_jsonw *w, const char *k)
{
    key(w, k);
    put(w, "null", 4);
}

void ei_jsonw_number(ei_jsonw *w, const char *k, const char *number)
{
    key(w, k);
    put(w, number, strlen(number));
}

void ei_jsonw_raw(ei_jsonw *w, const char *k, const char *value)
{
    key(w, k);
    put(w, value, strlen(value));
    w->first = true;
}

void ei_jsonw_close(ei_jsonw *w)
{
    put(w, "}", 1);
    w->first = false;
}

size_t ei_jsonw_end(ei_jsonw *w)
{
    /* RESERVE guarantees the closing bytes fit even after an overflow. */
    memcpy(w->buf + w->len, "}\n", 3);
    w->len += 2;
    return w->len;
}
