/* ei_tls_parse_client_hello (16 KiB scratch, as the pipeline's default) and ei_tls_sniff.
 *
 * Besides memory errors, checks what tls.h promises: views point into the input or the
 * scratch buffer, counts stay within their arrays, a refusal names one of the documented
 * reasons, and NEED_MORE means "a consistent prefix". That last one is checked by parsing
 * two prefixes of the input (one byte short, and a cut chosen from the input), each
 * copied into a buffer of its exact size so that a read past the end is caught: a prefix
 * that is refused must stay refused, and a prefix that already holds a whole ClientHello
 * must give the same answer as the full input. The pipeline reads a client's bytes as they
 * arrive, so a parser that broke this would decide a flow by how it was segmented. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/tls.h"
#include "fuzz.h"


enum { SCRATCH = 16384 };

static uint8_t *scratch_full;
static uint8_t *scratch_prefix;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    scratch_full = malloc(SCRATCH);
    scratch_prefix = malloc(SCRATCH);
    CHECK(scratch_full != NULL && scratch_prefix != NULL);
    return 0;
}

static bool inside(ei_view v, const uint8_t *base, size_t len)
{
    return v.ptr >= base && v.len <= len && (size_t)(v.ptr - base) <= len - v.len;
}

static bool view_ok(ei_view v, const uint8_t *data, size_t len, const uint8_t *scratch)
{
    if (v.len == 0)
        return true;
    return inside(v, data, len) || inside(v, scratch, SCRATCH);
}

static bool view_eq(ei_view a, ei_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_result(ei_parse_status st, const ei_tls_hello *h, const uint8_t *data,
                         size_t len, const uint8_t *scratch)
{
    CHECK(st == EI_PARSE_OK || st == EI_PARSE_NEED_MORE || st == EI_PARSE_MALFORMED);
    if (st == EI_PARSE_MALFORMED) {
        CHECK(h->problem == EI_REASON_TLS_MALFORMED ||
              h->problem == EI_REASON_TLS_DUPLICATE_EXTENSION ||
              h->problem == EI_REASON_MULTIPLE_NAMES ||
              h->problem == EI_REASON_REASSEMBLY_LIMIT);
        return;
    }
    CHECK(h->problem == EI_REASON_NONE);
    if (st != EI_PARSE_OK)
        return;
    CHECK(h->sni_count <= 1); /* two names are refused */
    CHECK(h->sni_count == 1 || h->sni.len == 0);
    CHECK(view_ok(h->sni, data, len, scratch));
    CHECK(h->alpn_count <= EI_TLS_MAX_ALPN);
    for (uint8_t i = 0; i < h->alpn_count; i++) {
        CHECK(h->alpn[i].len > 0);
        CHECK(view_ok(h->alpn[i], data, len, scratch));
    }
    CHECK(h->version_count <= EI_TLS_MAX_VERSIONS);
    CHECK(!h->sslv2 || (h->sni_count == 0 && h->alpn_count == 0));
    /* Touch what the views show. */
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < h->sni.len; i++)
        sum = (uint8_t)(sum + h->sni.ptr[i]);
    (void)sum;
}

static void check_prefix(const uint8_t *data, size_t size, size_t cut, ei_parse_status full,
                         const ei_tls_hello *fh)
{
    if (cut == 0 || cut >= size)
        return;
    uint8_t *copy = malloc(cut);
    CHECK(copy != NULL);
    memcpy(copy, data, cut);

    /* sniff answers for what is there: a refused start stays refused. */
    if (!ei_tls_sniff(copy, cut))
        CHECK(!ei_tls_sniff(data, size));

    ei_tls_hello ph;
    ei_parse_status st = ei_tls_parse_client_hello(copy, cut, scratch_prefix, SCRATCH, &ph);
    check_result(st, &ph, copy, cut, scratch_prefix);
    if (st == EI_PARSE_MALFORMED) {
        CHECK(full == EI_PARSE_MALFORMED);
        CHECK(fh->problem == ph.problem);
    } else if (st == EI_PARSE_OK) {
        CHECK(full == EI_PARSE_OK);
        CHECK(ph.sni_count == fh->sni_count && view_eq(ph.sni, fh->sni));
        CHECK(ph.alpn_count == fh->alpn_count && ph.version_count == fh->version_count);
        CHECK(ph.ech == fh->ech && ph.sslv2 == fh->sslv2);
        CHECK(ph.legacy_version == fh->legacy_version);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool sniff = ei_tls_sniff(data, size);
    CHECK(size > 0 || !sniff);

    ei_tls_hello h;
    ei_parse_status st = ei_tls_parse_client_hello(data, size, scratch_full, SCRATCH, &h);
    check_result(st, &h, data, size, scratch_full);
    if (size > 0 && !sniff)
        CHECK(st == EI_PARSE_MALFORMED);
    if (size == 0)
        CHECK(st == EI_PARSE_NEED_MORE);

    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < size && i < 64; i++)
        hash = (hash ^ data[i]) * 16777619u;
    if (size > 1) {
        check_prefix(data, size, size - 1, st, &h);
        check_prefix(data, size, 1 + (size_t)hash % (size - 1), st, &h);
    }
    return 0;
}
