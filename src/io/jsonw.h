/* A small JSON line writer into a fixed buffer: strings are escaped byte by byte, so
 * names from the wire (which may hold quotes, control bytes or invalid UTF-8) always come
 * out as valid JSON. Output that does not fit is cut at a field boundary and flagged. */
#ifndef EI_IO_JSONW_H
#define EI_IO_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EI_JSONW_MAX 4096

typedef struct {
    char buf[EI_JSONW_MAX];
    size_t len;
    bool first;
    bool overflow;
} ei_jsonw;

void ei_jsonw_begin(ei_jsonw *w);
void ei_jsonw_str(ei_jsonw *w, const char *key, const char *value);
/* A string known to need no escaping (our own names, formatted numbers and addresses,
 * normalized hostnames): copied as is. NULL is written as null. */
void ei_jsonw_lit(ei_jsonw *w, const char *key, const char *value);
/* value may be NULL (written as null) and need not be NUL-terminated. Upper-case ASCII
 * is lowered when lower is set. */
void ei_jsonw_strn(ei_jsonw *w, const char *key, const char *value, size_t len, bool lower);
void ei_jsonw_uint(ei_jsonw *w, const char *key, uint64_t value);
void ei_jsonw_bool(ei_jsonw *w, const char *key, bool value);
void ei_jsonw_null(ei_jsonw *w, const char *key);
/* A number written as given (the caller formats it). */
void ei_jsonw_number(ei_jsonw *w, const char *key, const char *number);
/* Opens a nested object under key: write its fields, then ei_jsonw_close. value must be
 * "{". */
void ei_jsonw_raw(ei_jsonw *w, const char *key, const char *value);
void ei_jsonw_close(ei_jsonw *w);
/* Ends the object with "}\n". Returns the line's length. */
size_t ei_jsonw_end(ei_jsonw *w);

#endif
