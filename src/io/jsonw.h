/* A small JSON line writer into a fixed buffer: strings are escaped byte by byte, so
 * names from the wire (which may hold quotes, control bytes or invalid UTF-8) always come
 * out as valid JSON.
 *
 * Every field goes in whole or not at all: one that does not fit is left out, the line
 * goes on with the next, and ei_jsonw_end adds "truncated":true. Room for closing every
 * open object is always kept, so a line is valid JSON whatever was left out. Callers
 * write the fields a reader must never miss (verdict, reason, policy, mode) first, and
 * cut raw wire names with ei_jsonw_raw_name. */
#ifndef EI_IO_JSONW_H
#define EI_IO_JSONW_H

#include "egress_inspector/common.h"

#define EI_JSONW_MAX 4096
#define EI_JSONW_DEPTH 4          /* objects open at once, the line's own included */
#define EI_JSONW_RAW_NAME_MAX 256 /* bytes of a raw wire name kept in a log line */

typedef struct {
    char buf[EI_JSONW_MAX];
    size_t len;
    unsigned depth;  /* objects open */
    unsigned skipped_from; /* depth of the outermost object left out; 0: none */
    bool first;      /* no field yet in the innermost open object */
    bool truncated;  /* a field was left out for want of room */
} ei_jsonw;

void ei_jsonw_begin(ei_jsonw *w);
void ei_jsonw_str(ei_jsonw *w, const char *key, const char *value);
/* A string known to need no escaping (our own names, formatted numbers and addresses,
 * normalized hostnames): copied as is. NULL is written as null. */
void ei_jsonw_lit(ei_jsonw *w, const char *key, const char *value);
/* value may be NULL (written as null) and need not be NUL-terminated. Upper-case ASCII
 * is lowered when lower is set. */
void ei_jsonw_strn(ei_jsonw *w, const char *key, const char *value, size_t len, bool lower);
/* A name as the wire gave it (lowered): at most EI_JSONW_RAW_NAME_MAX bytes of it, and
 * when it was longer, KEY_truncated:true after it. */
void ei_jsonw_raw_name(ei_jsonw *w, const char *key, const char *value, size_t len);
void ei_jsonw_uint(ei_jsonw *w, const char *key, uint64_t value);
void ei_jsonw_bool(ei_jsonw *w, const char *key, bool value);
void ei_jsonw_null(ei_jsonw *w, const char *key);
/* A number written as given (the caller formats it). */
void ei_jsonw_number(ei_jsonw *w, const char *key, const char *number);
/* Opens a nested object under key: write its fields, then ei_jsonw_close. Beyond
 * EI_JSONW_DEPTH the object and what goes in it are left out (truncated). */
void ei_jsonw_object(ei_jsonw *w, const char *key);
void ei_jsonw_close(ei_jsonw *w);
/* Closes every open object, adds "truncated":true when a field was left out, ends the
 * line with "\n" and NUL-terminates it. Returns the line's length. */
size_t ei_jsonw_end(ei_jsonw *w);

#endif
