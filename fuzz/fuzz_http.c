/* ei_http_parse_request and ei_http_sniff.
 *
 * Besides memory errors, checks what http.h promises: views point into the input, a
 * refusal names a documented reason, a Host header that is present gives a non-NULL host,
 * and NEED_MORE means "the head has not ended yet". As in fuzz_tls.c, two prefixes (one
 * byte short, and a cut chosen from the input), each in a buffer of its exact size, must
 * agree with the full input: a refused prefix stays refused, a prefix holding a whole head
 * reads exactly as the full input does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/http.h"
#include "fuzz.h"


static bool inside(ei_view v, const uint8_t *base, size_t len)
{
    if (v.len == 0)
        return v.ptr == NULL || (v.ptr >= base && (size_t)(v.ptr - base) <= len);
    return v.ptr >= base && v.len <= len && (size_t)(v.ptr - base) <= len - v.len;
}

static size_t offset_of(ei_view v, const uint8_t *base)
{
    return v.ptr == NULL ? SIZE_MAX : (size_t)(v.ptr - base);
}

static void check_result(ei_parse_status st, const ei_http_request *r, const uint8_t *data,
                         size_t len)
{
    CHECK(st == EI_PARSE_OK || st == EI_PARSE_NEED_MORE || st == EI_PARSE_MALFORMED);
    if (st == EI_PARSE_NEED_MORE)
        return; /* nothing in *r is promised yet */
    if (st == EI_PARSE_MALFORMED)
        CHECK(r->problem == EI_REASON_HTTP_MALFORMED || r->problem == EI_REASON_HTTP_MULTIPLE_HOST ||
              r->problem == EI_REASON_HTTP_HOST_MISMATCH || r->problem == EI_REASON_HTTP_BODY_FRAMING);
    else
        CHECK(r->problem == EI_REASON_NONE && r->line_ok && r->head_len > 0 && r->head_len <= len);
    CHECK(r->problem != EI_REASON_HTTP_MULTIPLE_HOST || r->host_headers >= 2);
    CHECK(r->host_headers < 2 || st == EI_PARSE_MALFORMED);
    CHECK(inside(r->host, data, len));
    if (r->host_headers >= 1)
        CHECK(r->host.ptr != NULL);
    if (r->host.ptr == NULL)
        CHECK(r->host.len == 0);
    if (r->line_ok) {
        CHECK(inside(r->method, data, len) && r->method.len > 0);
        CHECK(inside(r->target, data, len) && r->target.len > 0);
        CHECK(r->version_minor <= 9);
        CHECK(r->form <= EI_HTTP_ASTERISK_FORM);
    }
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < r->host.len; i++)
        sum = (uint8_t)(sum + r->host.ptr[i]);
    (void)sum;
}

static void check_prefix(const uint8_t *data, size_t size, size_t cut, ei_parse_status full,
                         const ei_http_request *fr)
{
    if (cut == 0 || cut >= size)
        return;
    uint8_t *copy = malloc(cut);
    CHECK(copy != NULL);
    memcpy(copy, data, cut);

    if (!ei_http_sniff(copy, cut))
        CHECK(!ei_http_sniff(data, size));

    ei_http_request pr;
    ei_parse_status st = ei_http_parse_request(copy, cut, &pr);
    check_result(st, &pr, copy, cut);
    if (st == EI_PARSE_MALFORMED) {
        CHECK(full == EI_PARSE_MALFORMED);
        CHECK(pr.problem == fr->problem);
    } else if (st == EI_PARSE_OK) {
        CHECK(full == EI_PARSE_OK);
    }
    if (st != EI_PARSE_NEED_MORE) {
        /* A whole head was in the prefix: the same head, read the same way. */
        CHECK(pr.line_ok == fr->line_ok && pr.form == fr->form);
        CHECK(pr.host_headers == fr->host_headers && pr.connect_port == fr->connect_port);
        CHECK(pr.host.len == fr->host.len);
        CHECK(offset_of(pr.host, copy) == offset_of(fr->host, data));
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool sniff = ei_http_sniff(data, size);
    CHECK(size > 0 || !sniff);

    ei_http_request r;
    ei_parse_status st = ei_http_parse_request(data, size, &r);
    check_result(st, &r, data, size);
    if (size > 0 && !sniff)
        CHECK(st == EI_PARSE_MALFORMED);

    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < size && i < 64; i++)
        hash = (hash ^ data[i]) * 16777619u;
    if (size > 1) {
        check_prefix(data, size, size - 1, st, &r);
        check_prefix(data, size, 1 + (size_t)hash % (size - 1), st, &r);
    }
    return 0;
}
