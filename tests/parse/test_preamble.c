/* Preambles: each kind read whole, and prefix-monotone: once a prefix is refused, no
 * longer stream is accepted (found by fuzz_preamble; its two inputs are kept here). */
#include <string.h>

#include "egress_inspector/preamble.h"
#include "unit.h"

static ei_parse_status parse(const char *data, size_t len, ei_preamble *p)
{
    return ei_preamble_parse((const uint8_t *)data, len, p);
}

/* Every prefix of data: a MALFORMED prefix means a MALFORMED whole. */
static void check_monotone(const char *data, size_t len)
{
    ei_preamble p;
    ei_parse_status whole = parse(data, len, &p);
    for (size_t cut = 1; cut < len; cut++) {
        ei_preamble q;
        if (parse(data, cut, &q) == EI_PARSE_MALFORMED) {
            CU_ASSERT_EQUAL(whole, EI_PARSE_MALFORMED);
            if (whole != EI_PARSE_MALFORMED)
                printf("\n  prefix %zu of %zu refused, whole not\n", cut, len);
        }
    }
}

static void test_fuzzer_found_inputs(void)
{
    check_monotone("@ ", 2);
    static const char tag32[] = "%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%[ ";
    check_monotone(tag32, sizeof tag32 - 1);
    check_monotone("a001 STARTTLS\r\n", 15);
    check_monotone("GET / HTTP/1.1\r\n", 16);
}

static void test_kinds(void)
{
    ei_preamble p;
    const char socks5[] = "\x05\x01\x00\x05\x01\x00\x03\x0ewww.google.com\x01\xbb";
    CU_ASSERT_EQUAL(parse(socks5, sizeof socks5 - 1, &p), EI_PARSE_OK);
    CU_ASSERT(p.has_name && p.name.len == 14 && p.port == 443);
    CU_ASSERT_EQUAL(parse(socks5, 3, &p), EI_PARSE_NEED_MORE);
    CU_ASSERT_EQUAL(p.units, 1); /* the greeting is whole: it may reach the proxy */
    CU_ASSERT_EQUAL(parse(socks5, 2, &p), EI_PARSE_NEED_MORE);
    CU_ASSERT_EQUAL(p.units, 0);
    const char smtp[] = "EHLO client\r\nSTARTTLS\r\n";
    CU_ASSERT_EQUAL(parse(smtp, sizeof smtp - 1, &p), EI_PARSE_OK);
    CU_ASSERT_EQUAL(p.kind, EI_PREAMBLE_STARTTLS);
    CU_ASSERT_EQUAL(p.length, sizeof smtp - 1);
    CU_ASSERT_EQUAL(parse(smtp, 13, &p), EI_PARSE_NEED_MORE);
    CU_ASSERT_EQUAL(p.units, 1);
    CU_ASSERT_EQUAL(parse("EHLO cli", 8, &p), EI_PARSE_NEED_MORE);
    CU_ASSERT_EQUAL(p.units, 0); /* a partial line is held, not passed */
    CU_ASSERT_EQUAL(parse("USER bob\r\n", 10, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8, &p), EI_PARSE_OK);
    CU_ASSERT_EQUAL(p.kind, EI_PREAMBLE_POSTGRES_SSL);
    CU_ASSERT_EQUAL(parse("PROXY TCP4 1.1.1.1 2.2.2.2 1 443\r\n", 34, &p), EI_PARSE_OK);
    CU_ASSERT_EQUAL(p.kind, EI_PREAMBLE_PROXY);
}

/* Nothing of the client's choosing passes before a verdict: each way a preamble could
 * carry free data is refused (the live attack suite sends these to a real server). */
static void test_no_free_data(void)
{
    ei_preamble p;
    char ehlo[600] = "EHLO ";
    memset(ehlo + 5, 'a', 400);
    memcpy(ehlo + 405, "\r\n", 3);
    CU_ASSERT_EQUAL(parse(ehlo, strlen(ehlo), &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("EHLO a b\r\n", 10, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("EHLO a\r\nEHLO b\r\nSTARTTLS\r\n", 26, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("EHLO [IPv6:fd00::1]\r\nSTARTTLS\r\n", 31, &p), EI_PARSE_OK);
    CU_ASSERT_EQUAL(parse("EHLO a\r\nAUTH PLAIN AGJvYgBwdw==\r\n", 33, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("AUTH\r\nSTLS\r\n", 12, &p), EI_PARSE_OK); /* POP3: lists mechanisms */
    CU_ASSERT_EQUAL(parse("NOOP secret\r\n", 13, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("exfiltratedtag123 STARTTLS\r\n", 28, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("a1 STARTTLS\r\n", 13, &p), EI_PARSE_OK);
    /* SOCKS 5: no password exchange, no long method lists */
    CU_ASSERT_EQUAL(parse("\x05\x01\x02\x01\x03bob\x02pw", 11, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("\x05\x04\x00\x01\x02\x03", 6, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("\x05\x02\x00\x00", 4, &p), EI_PARSE_MALFORMED);
    /* SOCKS 4 by address with a user id; by name (4a) the request is judged whole */
    CU_ASSERT_EQUAL(parse("\x04\x01\x01\xbb\x01\x02\x03\x04secret\x00", 15, &p), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(parse("\x04\x01\x01\xbb\x01\x02\x03\x04\x00", 9, &p), EI_PARSE_OK);
    CU_ASSERT_FALSE(p.has_name);
    /* PROXY v2: exactly the addresses of its family, no TLVs */
    uint8_t v2[16 + 12 + 8] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
                                0x21, 0x11, 0, 12 };
    CU_ASSERT_EQUAL(ei_preamble_parse(v2, 28, &p), EI_PARSE_OK);
    v2[15] = 20; /* 8 bytes of TLV after the addresses */
    CU_ASSERT_EQUAL(ei_preamble_parse(v2, sizeof v2, &p), EI_PARSE_MALFORMED);
}

int main(void)
{
    static const ei_unit_case cases[] = { EI_CASE(test_fuzzer_found_inputs), EI_CASE(test_kinds),
                                          EI_CASE(test_no_free_data) };
    EI_SUITE("preamble", cases);
    return ei_unit_run();
}
