/* A minimal valid TLS ClientHello, for the tests that drive the pipeline with packets. */
#ifndef EI_TESTS_HELLO_H
#define EI_TESTS_HELLO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A minimal valid ClientHello record for name. */
static inline size_t make_hello(uint8_t *out, const char *name)
{
    size_t nl = strlen(name), ext = 9 + nl, body = 2 + 32 + 1 + 4 + 2 + 2 + ext;
    size_t i = 0;
    out[i++] = 22; out[i++] = 3; out[i++] = 1;
    out[i++] = (uint8_t)((body + 4) >> 8); out[i++] = (uint8_t)(body + 4);
    out[i++] = 1; out[i++] = 0; out[i++] = (uint8_t)(body >> 8); out[i++] = (uint8_t)body;
    out[i++] = 3; out[i++] = 3;
    memset(out + i, 7, 32); i += 32;
    out[i++] = 0;
    out[i++] = 0; out[i++] = 2; out[i++] = 0x13; out[i++] = 0x01;
    out[i++] = 1; out[i++] = 0;
    out[i++] = (uint8_t)(ext >> 8); out[i++] = (uint8_t)ext;
    out[i++] = 0; out[i++] = 0;
    out[i++] = (uint8_t)((nl + 5) >> 8); out[i++] = (uint8_t)(nl + 5);
    out[i++] = (uint8_t)((nl + 3) >> 8); out[i++] = (uint8_t)(nl + 3);
    out[i++] = 0;
    out[i++] = (uint8_t)(nl >> 8); out[i++] = (uint8_t)nl;
    memcpy(out + i, name, nl);
    return i + nl;
}

#endif
