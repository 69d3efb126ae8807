/* ei_preamble_parse: SOCKS 4/4a/5, STARTTLS dialogues, LDAP StartTLS, PostgreSQL
 * SSLRequest, PROXY v1/v2.
 *
 * Besides memory errors, checks what preamble.h promises: a whole preamble has a kind and
 * a length within the input and within EI_PREAMBLE_MAX ("bytes of preamble read at
 * most"), a name only for SOCKS and inside the input, and no wait beyond the bound. As in
 * fuzz_tls.c, two prefixes of the input (one byte short, and a cut chosen from the input),
 * each in a buffer of its exact size, must agree with the full input: a refused prefix
 * stays refused, a prefix holding a whole preamble reads as the full input does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/preamble.h"
#include "fuzz.h"


static void check_result(ei_parse_status st, const ei_preamble *p, const uint8_t *data,
                         size_t len)
{
    CHECK(st == EI_PARSE_OK || st == EI_PARSE_NEED_MORE || st == EI_PARSE_MALFORMED);
    CHECK(p->kind <= EI_PREAMBLE_PROXY);
    CHECK(ei_preamble_name(p->kind) != NULL);
    if (st == EI_PARSE_NEED_MORE)
        CHECK(len < EI_PREAMBLE_MAX); /* never wait for more than the bound */
    if (st != EI_PARSE_OK)
        return;
    CHECK(p->kind != EI_PREAMBLE_NONE);
    CHECK(p->length >= 1 && p->length <= len);
    CHECK(p->length <= EI_PREAMBLE_MAX);
    if (p->has_name) {
        CHECK(p->kind == EI_PREAMBLE_SOCKS4 || p->kind == EI_PREAMBLE_SOCKS5);
        if (p->name.len > 0) {
            CHECK(p->name.ptr >= data && p->name.len <= len &&
                  (size_t)(p->name.ptr - data) <= p->length - p->name.len);
            volatile uint8_t sum = 0;
            for (size_t i = 0; i < p->name.len; i++)
                sum = (uint8_t)(sum + p->name.ptr[i]);
            (void)sum;
        }
    } else {
        CHECK(p->name.len == 0);
    }
}

static void check_prefix(const uint8_t *data, size_t size, size_t cut, ei_parse_status full,
                         const ei_preamble *fp)
{
    if (cut == 0 || cut >= size)
        return;
    uint8_t *copy = malloc(cut);
    CHECK(copy != NULL);
    memcpy(copy, data, cut);
    ei_preamble pp;
    ei_parse_status st = ei_preamble_parse(copy, cut, &pp);
    check_result(st, &pp, copy, cut);
    if (st == EI_PARSE_MALFORMED) {
        CHECK(full == EI_PARSE_MALFORMED);
    } else if (st == EI_PARSE_OK) {
        CHECK(full == EI_PARSE_OK);
        CHECK(pp.kind == fp->kind && pp.length == fp->length && pp.has_name == fp->has_name);
        CHECK(pp.port == fp->port && pp.name.len == fp->name.len);
        CHECK(pp.name.len == 0 || (size_t)(pp.name.ptr - copy) == (size_t)(fp->name.ptr - data));
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ei_preamble p;
    ei_parse_status st = ei_preamble_parse(data, size, &p);
    check_result(st, &p, data, size);
    if (size == 0)
        CHECK(st == EI_PARSE_NEED_MORE);

    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < size && i < 64; i++)
        hash = (hash ^ data[i]) * 16777619u;
    if (size > 1) {
        check_prefix(data, size, size - 1, st, &p);
        check_prefix(data, size, 1 + (size_t)hash % (size - 1), st, &p);
    }
    return 0;
}
