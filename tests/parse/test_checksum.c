/* ei_packet_checksum against sums computed independently (tests/segment.h), and each
 * way a checksum can be wrong or absent. */
#include <string.h>

#include "egress_inspector/packet.h"
#include "segment.h"
#include "unit.h"

static ei_csum sum_of(const uint8_t *buf, size_t n, bool l4)
{
    ei_packet pkt;
    CU_ASSERT_EQUAL_FATAL(ei_packet_parse(EI_LINK_RAW, buf, n, &pkt), EI_PKT_OK);
    return ei_packet_checksum(&pkt, true, l4);
}

static void test_ipv4_tcp(void)
{
    seg s = { .src = { 10, 244, 0, 10 }, .dst = { 203, 0, 113, 10 }, .sport = 40000, .dport = 443,
              .seq = 1, .ack = 2, .flags = 0x18, .data = "odd", .len = 3 };
    uint8_t buf[128];
    size_t n = seg_build(&s, buf);
    CU_ASSERT_EQUAL(sum_of(buf, n, true), EI_CSUM_OK);
    s.bad_checksum = true;
    n = seg_build(&s, buf);
    CU_ASSERT_EQUAL(sum_of(buf, n, true), EI_CSUM_BAD);
    CU_ASSERT_EQUAL(sum_of(buf, n, false), EI_CSUM_OK); /* left to the card: header only */
    s.bad_checksum = false;
    n = seg_build(&s, buf);
    buf[10] ^= 1; /* the IPv4 header's own sum */
    CU_ASSERT_EQUAL(sum_of(buf, n, false), EI_CSUM_BAD);
    /* a capture cut short: nothing to sum, which is not the same as wrong */
    ei_packet pkt;
    n = seg_build(&s, buf);
    CU_ASSERT_EQUAL_FATAL(ei_packet_parse(EI_LINK_RAW, buf, n - 1, &pkt), EI_PKT_OK);
    CU_ASSERT_EQUAL(ei_packet_checksum(&pkt, true, true), EI_CSUM_UNKNOWN);
}

/* IPv6 TCP and UDP, with the pseudo-header of RFC 8200 8.1; UDP's zero means no sum only
 * over IPv4. */
static void test_ipv6_and_udp(void)
{
    uint8_t p[40 + 8 + 4];
    memset(p, 0, sizeof p);
    p[0] = 0x60;
    p[5] = 12;  /* payload length */
    p[6] = 17;  /* UDP */
    p[7] = 64;
    p[8] = 0xfd; p[23] = 0x10;   /* fd00::10 */
    p[24] = 0x20; p[25] = 0x01; p[26] = 0x0d; p[27] = 0xb8; p[39] = 0x10; /* 2001:db8::10 */
    p[40] = 0x9c; p[41] = 0x40; p[42] = 0; p[43] = 53; p[45] = 12;
    memcpy(p + 48, "abcd", 4);
    uint32_t sum = seg_sum(0, p + 8, 32) + 17 + 12;
    uint16_t c = seg_fold(seg_sum(sum, p + 40, 12));
    p[46] = (uint8_t)(c >> 8);
    p[47] = (uint8_t)c;
    CU_ASSERT_EQUAL(sum_of(p, sizeof p, true), EI_CSUM_OK);
    p[49] ^= 0x40;
    CU_ASSERT_EQUAL(sum_of(p, sizeof p, true), EI_CSUM_BAD);
    p[46] = p[47] = 0; /* zero: not "no checksum" over IPv6 */
    CU_ASSERT_EQUAL(sum_of(p, sizeof p, true), EI_CSUM_BAD);

    uint8_t q[20 + 8 + 2] = { 0x45, 0, 0, 30, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                              0, 53, 0x9c, 0x40, 0, 10, 0, 0, 'h', 'i' };
    uint16_t ip = seg_fold(seg_sum(0, q, 20));
    q[10] = (uint8_t)(ip >> 8);
    q[11] = (uint8_t)ip;
    CU_ASSERT_EQUAL(sum_of(q, sizeof q, true), EI_CSUM_OK); /* UDP over IPv4, no sum sent */
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_ipv4_tcp),
        EI_CASE(test_ipv6_and_udp),
    };
    EI_SUITE("checksum", cases);
    return ei_unit_run();
}
