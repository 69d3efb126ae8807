#include "io/jsonw.h"

#include <inttypes.h>
#include <stdio.h>
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
    put(w, w->first ? "\"" : ",\"", w->first ? 1 : 2);
    w->first = false;
    put(w, k, strlen(k));
    put(w, "\":", 2);
}

void ei_jsonw_begin(ei_jsonw *w)
{
    w->len = 0;
    w->first = true;
    w->overflow = false;
    put(w, "{", 1);
}

void ei_jsonw_strn(ei_jsonw *w, const char *k, const char *value, size_t len, bool lower)
{
    size_t mark = w->len;
    key(w, k);
    if (value == NULL) {
        put(w, "null", 4);
    } else {
        put(w, "\"", 1);
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)value[i];
            char esc[8];
            if (lower && ch >= 'A' && ch <= 'Z')
                ch = (unsigned char)(ch + 32);
            if (ch == '"' || ch == '\\') {
                esc[0] = '\\';
                esc[1] = (char)ch;
                put(w, esc, 2);
            } else if (ch < 0x20 || ch >= 0x7f) {
                /* Bytes outside printable ASCII are escaped as code points U+0000-U+00FF,
                 * which keeps the line valid JSON whatever the wire held. */
                int n = snprintf(esc, sizeof esc, "\\u%04x", ch);
                put(w, esc, (size_t)n);
            } else {
                put(w, (const char *)&ch, 1);
            }
        }
        put(w, "\"", 1);
    }
    if (w->overflow)
        w->len = mark;
}

void ei_jsonw_str(ei_jsonw *w, const char *k, const char *value)
{
    ei_jsonw_strn(w, k, value, value ? strlen(value) : 0, false);
}

void ei_jsonw_uint(ei_jsonw *w, const char *k, uint64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, value);
    key(w, k);
    put(w, num, (size_t)n);
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
