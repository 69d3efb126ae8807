/* The JSON line writer. See jsonw.h. */
#include "io/jsonw.h"

#include <string.h>

#define TRUNCATED_FIELD ",\"truncated\":true"

/* Objects open and written (a left-out object and those inside it are not). */
static unsigned written_depth(const ei_jsonw *w)
{
    return w->skipped_from ? w->skipped_from - 1u : w->depth;
}

/* What a field may still use: the buffer less what the end always needs, a '}' per
 * open nested object, ,"truncated":true, and "}\n" with the NUL. */
static size_t room(const ei_jsonw *w)
{
    size_t tail = (written_depth(w) - 1u) + (sizeof TRUNCATED_FIELD - 1) + 3;
    return EI_JSONW_MAX - tail - w->len;
}

/* A field is written between field_open and field_done; when any part did not fit it is
 * rolled back whole. */
typedef struct {
    size_t len;
    bool first;
    bool failed;
} field;

static field field_open(ei_jsonw *w, const char *k)
{
    field f = { w->len, w->first, false };
    size_t n = strlen(k);
    if (w->depth == 0 || w->skipped_from != 0 || n + 4 > room(w)) {
        f.failed = true;
        return f;
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
    return f;
}

static void put(ei_jsonw *w, field *f, const char *s, size_t n)
{
    if (f->failed || n > room(w)) {
        f->failed = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void field_done(ei_jsonw *w, const field *f)
{
    if (!f->failed)
        return;
    w->len = f->len;
    w->first = f->first;
    w->truncated = true;
}

void ei_jsonw_begin(ei_jsonw *w)
{
    w->buf[0] = '{';
    w->len = 1;
    w->depth = 1;
    w->skipped_from = 0;
    w->first = true;
    w->truncated = false;
}

/* Bytes that cannot stand for themselves inside a JSON string: '"' and '\\' take a
 * backslash, bytes outside printable ASCII become \u00XX (code points U+0000-U+00FF,
 * which keeps the line valid JSON whatever the wire held). Runs of other bytes are copied
 * whole. */
static bool needs_escape(unsigned char ch)
{
    return ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\';
}

/* Writes "value" escaped; false when it does not fit. */
static bool put_escaped(ei_jsonw *w, const char *value, size_t len, bool lower)
{
    static const char hex[] = "0123456789abcdef";
    if (len > (EI_JSONW_MAX - 2) / 6 || 2 + len * 6 > room(w)) {
        /* the worst case (6 bytes out per byte in) may not fit: count exactly */
        size_t need = 2;
        for (size_t i = 0; i < len && need <= room(w); i++) {
            unsigned char ch = (unsigned char)value[i];
            need += !needs_escape(ch) ? 1 : ch == '"' || ch == '\\' ? 2 : 6;
        }
        if (need > room(w))
            return false;
    }
    char *o = w->buf + w->len;
    *o++ = '"';
    for (size_t i = 0; i < len;) {
        size_t run = i;
        while (run < len && !needs_escape((unsigned char)value[run]))
            run++;
        memcpy(o, value + i, run - i);
        if (lower)
            for (char *c = o; c < o + (run - i); c++)
                *c = (char)ei_ascii_lower((uint8_t)*c);
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
    return true;
}

void ei_jsonw_strn(ei_jsonw *w, const char *k, const char *value, size_t len, bool lower)
{
    field f = field_open(w, k);
    if (value == NULL)
        put(w, &f, "null", 4);
    else if (!f.failed && !put_escaped(w, value, len, lower))
        f.failed = true;
    field_done(w, &f);
}

void ei_jsonw_raw_name(ei_jsonw *w, const char *k, const char *value, size_t len)
{
    bool cut = value != NULL && len > EI_JSONW_RAW_NAME_MAX;
    ei_jsonw_strn(w, k, value, cut ? EI_JSONW_RAW_NAME_MAX : len, true);
    if (cut) {
        char flag[64];
        size_t n = strlen(k);
        if (n > sizeof flag - sizeof "_truncated")
            n = sizeof flag - sizeof "_truncated";
        memcpy(flag, k, n);
        memcpy(flag + n, "_truncated", sizeof "_truncated");
        ei_jsonw_bool(w, flag, true);
    }
}

void ei_jsonw_lit(ei_jsonw *w, const char *k, const char *value)
{
    field f = field_open(w, k);
    if (value == NULL) {
        put(w, &f, "null", 4);
    } else {
        /* the hot path of every decision line: one bound check, one copy */
        size_t n = strlen(value);
        if (!f.failed && n + 2 <= room(w)) {
            char *o = w->buf + w->len;
            o[0] = '"';
            memcpy(o + 1, value, n);
            o[n + 1] = '"';
            w->len += n + 2;
        } else {
            f.failed = true;
        }
    }
    field_done(w, &f);
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
    field f = field_open(w, k);
    put(w, &f, num + n, sizeof num - n);
    field_done(w, &f);
}

void ei_jsonw_bool(ei_jsonw *w, const char *k, bool value)
{
    field f = field_open(w, k);
    put(w, &f, value ? "true" : "false", value ? 4 : 5);
    field_done(w, &f);
}

void ei_jsonw_null(ei_jsonw *w, const char *k)
{
    field f = field_open(w, k);
    put(w, &f, "null", 4);
    field_done(w, &f);
}

void ei_jsonw_number(ei_jsonw *w, const char *k, const char *number)
{
    field f = field_open(w, k);
    put(w, &f, number, strlen(number));
    field_done(w, &f);
}

void ei_jsonw_object(ei_jsonw *w, const char *k)
{
    field f = field_open(w, k);
    if (w->depth >= EI_JSONW_DEPTH)
        f.failed = true;
    put(w, &f, "{", 2); /* '{' now, and room for its '}' from now on */
    if (!f.failed)
        w->len--;
    field_done(w, &f);
    w->depth++;
    w->first = true;
    /* A left-out object still counts as open, so that what goes in it is left out too
     * and its close writes nothing. */
    if (f.failed && w->skipped_from == 0)
        w->skipped_from = w->depth;
}

void ei_jsonw_close(ei_jsonw *w)
{
    if (w->depth <= 1)
        return; /* the line's own object is closed by ei_jsonw_end */
    if (w->skipped_from == 0 || w->depth < w->skipped_from)
        w->buf[w->len++] = '}'; /* room() kept this byte */
    if (w->depth == w->skipped_from)
        w->skipped_from = 0;
    w->depth--;
    w->first = false;
}

size_t ei_jsonw_end(ei_jsonw *w)
{
    while (w->depth > 1)
        ei_jsonw_close(w);
    if (w->truncated) {
        memcpy(w->buf + w->len, TRUNCATED_FIELD, sizeof TRUNCATED_FIELD - 1);
        w->len += sizeof TRUNCATED_FIELD - 1;
    }
    memcpy(w->buf + w->len, "}\n", 3);
    w->len += 2;
    w->depth = 0;
    return w->len;
}
