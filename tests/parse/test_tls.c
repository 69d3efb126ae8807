/* TLS ClientHello parser: real layouts, every truncation, every record split, and each
 * way the message can lie or repeat itself. */
#include <string.h>

#include "egress_inspector/tls.h"
#include "unit.h"

enum { BUF = 20000 };

typedef struct {
    uint8_t b[BUF];
    size_t n;
} bytes;

static void put8(bytes *o, unsigned v) { o->b[o->n++] = (uint8_t)v; }
static void put16(bytes *o, unsigned v) { put8(o, v >> 8); put8(o, v); }
static void put24(bytes *o, unsigned v) { put8(o, v >> 16); put16(o, v & 0xffff); }
static void putn(bytes *o, const void *p, size_t n) { memcpy(o->b + o->n, p, n); o->n += n; }
static void fill(bytes *o, uint8_t v, size_t n) { memset(o->b + o->n, v, n); o->n += n; }

/* Length patching: remember where a length goes, write it once the block is done. */
static size_t open16(bytes *o) { o->n += 2; return o->n; }
static void close16(bytes *o, size_t at, int delta)
{
    unsigned len = (unsigned)((int)(o->n - at) + delta);
    o->b[at - 2] = (uint8_t)(len >> 8);
    o->b[at - 1] = (uint8_t)len;
}

typedef struct {
    const char *names[3];   /* host_name entries of one server_name extension */
    int sni_extensions;     /* how many server_name extensions (0 = none) */
    bool sni_after_keyshare;
    size_t keyshare_bytes;  /* 32 for x25519; 1216+32 for a post-quantum hybrid */
    bool ech;
    int dup_alpn;
    int lie;                /* which length lies, see LIE_* */
    int lie_delta;
} hello_spec;

enum { LIE_NONE, LIE_SESSION, LIE_SUITES, LIE_EXTENSIONS, LIE_EXT, LIE_SNI_LIST, LIE_SNI_NAME,
       LIE_HANDSHAKE };

static void add_sni(bytes *o, const hello_spec *s)
{
    put16(o, 0);
    size_t ext = open16(o);
    size_t list = open16(o);
    for (int i = 0; i < 3 && s->names[i]; i++) {
        put8(o, 0);
        size_t name = open16(o);
        putn(o, s->names[i], strlen(s->names[i]));
        close16(o, name, s->lie == LIE_SNI_NAME && i == 0 ? s->lie_delta : 0);
    }
    close16(o, list, s->lie == LIE_SNI_LIST ? s->lie_delta : 0);
    close16(o, ext, s->lie == LIE_EXT ? s->lie_delta : 0);
}

/* A TLS 1.3 ClientHello handshake message (header included) as modern clients send it. */
static void build_handshake(bytes *o, const hello_spec *s)
{
    put8(o, 1);
    size_t hs_at = o->n + 3;
    o->n += 3;
    put16(o, 0x0303);
    fill(o, 0x11, 32);
    put8(o, (unsigned)(32 + (s->lie == LIE_SESSION ? s->lie_delta : 0)));
    fill(o, 0x22, 32);
    size_t suites = open16(o);
    put16(o, 0x1301); put16(o, 0x1302); put16(o, 0xc02f);
    close16(o, suites, s->lie == LIE_SUITES ? s->lie_delta : 0);
    put8(o, 1); put8(o, 0);
    size_t exts = open16(o);
    if (!s->sni_after_keyshare)
        for (int i = 0; i < s->sni_extensions; i++)
            add_sni(o, s);
    /* supported_versions: 1.3, 1.2 and a GREASE value */
    put16(o, 43); put16(o, 7); put8(o, 6); put16(o, 0x5a5a); put16(o, 0x0304); put16(o, 0x0303);
    for (int i = 0; i <= s->dup_alpn; i++) {
        put16(o, 16); put16(o, 14); put16(o, 12);
        put8(o, 2); putn(o, "h2", 2); put8(o, 8); putn(o, "http/1.1", 8);
    }
    /* key_share */
    size_t ks = s->keyshare_bytes ? s->keyshare_bytes : 32;
    put16(o, 51); put16(o, (unsigned)(ks + 6)); put16(o, (unsigned)(ks + 4));
    put16(o, ks > 32 ? 0x11ec : 0x001d); put16(o, (unsigned)ks); fill(o, 0x33, ks);
    if (s->sni_after_keyshare)
        for (int i = 0; i < s->sni_extensions; i++)
            add_sni(o, s);
    if (s->ech) {
        put16(o, 0xfe0d); put16(o, 8); fill(o, 0x44, 8);
    }
    close16(o, exts, s->lie == LIE_EXTENSIONS ? s->lie_delta : 0);
    unsigned hs_len = (unsigned)((int)(o->n - hs_at) + (s->lie == LIE_HANDSHAKE ? s->lie_delta : 0));
    o->b[hs_at - 3] = (uint8_t)(hs_len >> 16);
    o->b[hs_at - 2] = (uint8_t)(hs_len >> 8);
    o->b[hs_at - 1] = (uint8_t)hs_len;
}

/* The handshake message cut into TLS records at the given split points. */
static void build_records(bytes *out, const bytes *hs, const size_t *splits, int nsplits)
{
    size_t start = 0;
    for (int i = 0; i <= nsplits; i++) {
        size_t end = i < nsplits ? splits[i] : hs->n;
        put8(out, 22); put16(out, 0x0301); put16(out, (unsigned)(end - start));
        putn(out, hs->b + start, end - start);
        start = end;
    }
}

static uint8_t scratch[16384];

static ei_parse_status parse(const bytes *b, ei_tls_hello *h)
{
    return ei_tls_parse_client_hello(b->b, b->n, scratch, sizeof scratch, h);
}

static void standard(bytes *stream, hello_spec *spec)
{
    static bytes hs;
    memset(&hs, 0, sizeof hs);
    build_handshake(&hs, spec);
    memset(stream, 0, sizeof *stream);
    build_records(stream, &hs, NULL, 0);
}

static hello_spec spec_for(const char *name)
{
    hello_spec s;
    memset(&s, 0, sizeof s);
    s.names[0] = name;
    s.sni_extensions = 1;
    return s;
}

static void test_reads_name_alpn_versions(void)
{
    static bytes b;
    hello_spec s = spec_for("api.example.com");
    s.ech = true;
    standard(&b, &s);
    ei_tls_hello h;
    CU_ASSERT_EQUAL_FATAL(parse(&b, &h), EI_PARSE_OK);
    CU_ASSERT_EQUAL(h.sni_count, 1);
    CU_ASSERT_EQUAL(h.sni.len, 15);
    CU_ASSERT(memcmp(h.sni.ptr, "api.example.com", 15) == 0);
    CU_ASSERT_EQUAL(h.alpn_count, 2);
    CU_ASSERT(h.alpn[0].len == 2 && memcmp(h.alpn[0].ptr, "h2", 2) == 0);
    CU_ASSERT_EQUAL(h.version_count, 3);
    CU_ASSERT_EQUAL(h.versions[1], 0x0304);
    CU_ASSERT(h.ech);
    CU_ASSERT(ei_tls_sniff(b.b, b.n));
}

static void test_every_truncation_needs_more(void)
{
    static bytes b;
    hello_spec s = spec_for("allowed.example");
    standard(&b, &s);
    for (size_t cut = 0; cut < b.n; cut++) {
        ei_tls_hello h;
        ei_parse_status st = ei_tls_parse_client_hello(b.b, cut, scratch, sizeof scratch, &h);
        CU_ASSERT_EQUAL(st, EI_PARSE_NEED_MORE);
        if (st != EI_PARSE_NEED_MORE) {
            printf("\n  cut at %zu: status %d problem %s\n", cut, st, ei_reason_name(h.problem));
            break;
        }
    }
}

/* A post-quantum-sized hello with the name after the key share, split over two and over
 * three records at every offset: the same name every time. */
static void test_every_record_split(void)
{
    static bytes hs, b;
    hello_spec s = spec_for("pq.allowed.example");
    s.keyshare_bytes = 1216 + 32;
    s.sni_after_keyshare = true;
    memset(&hs, 0, sizeof hs);
    build_handshake(&hs, &s);
    CU_ASSERT(hs.n > 1300); /* larger than one Ethernet segment holds */
    for (size_t k = 1; k < hs.n; k++) {
        size_t splits[2] = { k, k + (hs.n - k) / 2 };
        int nsplits = (k + 1 < hs.n && splits[1] > k) ? 2 : 1;
        memset(&b, 0, sizeof b);
        build_records(&b, &hs, splits, nsplits);
        ei_tls_hello h;
        ei_parse_status st = parse(&b, &h);
        CU_ASSERT_EQUAL(st, EI_PARSE_OK);
        if (st != EI_PARSE_OK || h.sni.len != 18 || memcmp(h.sni.ptr, "pq.allowed.example", 18) != 0) {
            CU_FAIL("record split changed the result");
            printf("\n  split at %zu: status %d\n", k, st);
            break;
        }
        /* and every truncation of the split stream is a prefix, never an answer */
        if (k % 97 == 0)
            for (size_t cut = 0; cut < b.n; cut += 7) {
                ei_parse_status t = ei_tls_parse_client_hello(b.b, cut, scratch, sizeof scratch, &h);
                CU_ASSERT_EQUAL(t, EI_PARSE_NEED_MORE);
            }
    }
}

static void expect_malformed(const hello_spec *s, ei_reason why)
{
    static bytes b;
    hello_spec copy = *s;
    standard(&b, &copy);
    ei_tls_hello h;
    ei_parse_status st = parse(&b, &h);
    CU_ASSERT_EQUAL(st, EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(h.problem, why);
    if (st != EI_PARSE_MALFORMED || h.problem != why)
        printf("\n  lie %d delta %d: status %d problem %s\n", s->lie, s->lie_delta, st,
               ei_reason_name(h.problem));
}

static void test_duplicate_extensions(void)
{
    hello_spec s = spec_for("allowed.example");
    s.sni_extensions = 2;
    expect_malformed(&s, EI_REASON_TLS_DUPLICATE_EXTENSION);
    s = spec_for("allowed.example");
    s.dup_alpn = 1;
    expect_malformed(&s, EI_REASON_TLS_DUPLICATE_EXTENSION);
}

static void test_two_names_in_one_extension(void)
{
    hello_spec s = spec_for("allowed.example");
    s.names[1] = "denied.example";
    expect_malformed(&s, EI_REASON_MULTIPLE_NAMES);
}

static void test_empty_name_is_reported_not_dropped(void)
{
    static bytes b;
    hello_spec s = spec_for("");
    standard(&b, &s);
    ei_tls_hello h;
    CU_ASSERT_EQUAL(parse(&b, &h), EI_PARSE_OK);
    CU_ASSERT_EQUAL(h.sni_count, 1);
    CU_ASSERT_EQUAL(h.sni.len, 0);
}

static void test_lying_lengths(void)
{
    static const int lies[] = { LIE_SESSION, LIE_SUITES, LIE_EXTENSIONS, LIE_EXT,
                                LIE_SNI_LIST, LIE_SNI_NAME, LIE_HANDSHAKE };
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++)
        for (int delta = -3; delta <= 3; delta++) {
            if (delta == 0)
                continue;
            hello_spec s = spec_for("allowed.example");
            s.lie = lies[i];
            s.lie_delta = delta;
            if (lies[i] == LIE_HANDSHAKE && delta > 0) {
                /* a handshake longer than its record may go on in the next record */
                static bytes b;
                ei_tls_hello h;
                standard(&b, &s);
                CU_ASSERT_EQUAL(parse(&b, &h), EI_PARSE_NEED_MORE);
                continue;
            }
            expect_malformed(&s, EI_REASON_TLS_MALFORMED);
        }
}

static void test_record_layer_rules(void)
{
    static bytes b;
    hello_spec s = spec_for("allowed.example");
    standard(&b, &s);
    ei_tls_hello h;
    /* a record that claims more than the hello is a second message in the first flight */
    b.b[4] = (uint8_t)(b.b[4] + 1);
    b.b[b.n++] = 0;
    CU_ASSERT_EQUAL(parse(&b, &h), EI_PARSE_MALFORMED);
    /* a record over 2^14 */
    standard(&b, &s);
    b.b[3] = 0x40; b.b[4] = 0x01;
    CU_ASSERT_EQUAL(parse(&b, &h), EI_PARSE_MALFORMED);
    /* application data before the hello */
    standard(&b, &s);
    b.b[0] = 23;
    CU_ASSERT_FALSE(ei_tls_sniff(b.b, b.n));
    CU_ASSERT_EQUAL(parse(&b, &h), EI_PARSE_MALFORMED);
    /* a zero-length handshake record */
    const uint8_t empty[] = { 22, 3, 1, 0, 0, 22, 3, 1, 0, 4 };
    CU_ASSERT_EQUAL(ei_tls_parse_client_hello(empty, sizeof empty, scratch, sizeof scratch, &h),
                    EI_PARSE_MALFORMED);
}

static void test_oversize_message_is_refused_early(void)
{
    /* a handshake header claiming 1 MiB, in a first record of 4 bytes */
    const uint8_t big[] = { 22, 3, 1, 0, 4, 1, 0x10, 0, 0, 22, 3, 1 };
    ei_tls_hello h;
    CU_ASSERT_EQUAL(ei_tls_parse_client_hello(big, sizeof big, scratch, sizeof scratch, &h),
                    EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(h.problem, EI_REASON_REASSEMBLY_LIMIT);
}

static void test_sslv2_hello_has_no_name(void)
{
    /* SSL 2.0 CLIENT-HELLO offering SSL 3.1: 3 cipher specs (9 bytes), 16-byte challenge */
    static bytes b;
    memset(&b, 0, sizeof b);
    put16(&b, 0x8000 | (9 + 9 + 16));
    put8(&b, 1); put16(&b, 0x0301); put16(&b, 9); put16(&b, 0); put16(&b, 16);
    fill(&b, 0x01, 9); fill(&b, 0x55, 16);
    ei_tls_hello h;
    CU_ASSERT(ei_tls_sniff(b.b, b.n));
    CU_ASSERT_EQUAL(parse(&b, &h), EI_PARSE_OK);
    CU_ASSERT(h.sslv2);
    CU_ASSERT_EQUAL(h.sni_count, 0);
    for (size_t cut = 0; cut < b.n; cut++)
        CU_ASSERT_EQUAL(ei_tls_parse_client_hello(b.b, cut, scratch, sizeof scratch, &h),
                        EI_PARSE_NEED_MORE);
}

static void test_hello_without_extensions(void)
{
    static bytes b, hs;
    memset(&hs, 0, sizeof hs);
    put8(&hs, 1); put24(&hs, 2 + 32 + 1 + 2 + 2 + 2);
    put16(&hs, 0x0301); fill(&hs, 0, 32); put8(&hs, 0);
    put16(&hs, 2); put16(&hs, 0x002f); put8(&hs, 1); put8(&hs, 0);
    memset(&b, 0, sizeof b);
    build_records(&b, &hs, NULL, 0);
    ei_tls_hello h;
    CU_ASSERT_EQUAL(parse(&b, &h), EI_PARSE_OK);
    CU_ASSERT_EQUAL(h.sni_count, 0);
    CU_ASSERT_EQUAL(h.legacy_version, 0x0301);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_reads_name_alpn_versions),
        EI_CASE(test_every_truncation_needs_more),
        EI_CASE(test_every_record_split),
        EI_CASE(test_duplicate_extensions),
        EI_CASE(test_two_names_in_one_extension),
        EI_CASE(test_empty_name_is_reported_not_dropped),
        EI_CASE(test_lying_lengths),
        EI_CASE(test_record_layer_rules),
        EI_CASE(test_oversize_message_is_refused_early),
        EI_CASE(test_sslv2_hello_has_no_name),
        EI_CASE(test_hello_without_extensions),
    };
    EI_SUITE("tls", cases);
    return ei_unit_run();
}
