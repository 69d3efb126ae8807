/* Link, IP and transport headers: every link type we read, options and extension
 * headers, their bounds, and every truncation of each packet. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/packet.h"
#include "unit.h"

typedef struct {
    uint8_t b[2048];
    size_t n;
} bytes;

static void put8(bytes *o, unsigned v) { o->b[o->n++] = (uint8_t)v; }
static void put16(bytes *o, unsigned v) { put8(o, v >> 8); put8(o, v & 0xff); }
static void put32(bytes *o, uint32_t v) { put16(o, v >> 16); put16(o, v & 0xffff); }
static void putn(bytes *o, const void *p, size_t n) { memcpy(o->b + o->n, p, n); o->n += n; }

static const char payload[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

static void tcp(bytes *o, bool with_options)
{
    put16(o, 40000); put16(o, 443); put32(o, 1000); put32(o, 2000);
    put8(o, with_options ? 0xa0 : 0x50); put8(o, 0x18); put16(o, 65535); put16(o, 0); put16(o, 0);
    if (with_options) { /* MSS, SACK permitted, timestamps, NOP, window scale */
        put8(o, 2); put8(o, 4); put16(o, 1460); put8(o, 4); put8(o, 2);
        put8(o, 8); put8(o, 10); put32(o, 1); put32(o, 0); put8(o, 1); put8(o, 3); put8(o, 3); put8(o, 7);
    }
    putn(o, payload, sizeof payload - 1);
}

static void ipv4(bytes *o, bool options, uint16_t frag, bytes *l4)
{
    size_t ihl = options ? 24 : 20;
    put8(o, 0x40 | (unsigned)(ihl / 4)); put8(o, 0); put16(o, (unsigned)(ihl + l4->n));
    put16(o, 1); put16(o, frag); put8(o, 64); put8(o, IPPROTO_TCP); put16(o, 0);
    put32(o, 0x0af40010); put32(o, 0xcb00710a);
    if (options) { put8(o, 1); put8(o, 1); put8(o, 1); put8(o, 0); }
    putn(o, l4->b, l4->n);
}

static void ipv6(bytes *o, int ext_headers, bool fragment, bytes *l4)
{
    put32(o, 0x60000000);
    put16(o, (unsigned)(l4->n + (size_t)ext_headers * 8 + (fragment ? 8 : 0)));
    put8(o, ext_headers > 0 ? 0 : (fragment ? 44 : IPPROTO_TCP)); put8(o, 64);
    uint8_t src[16] = { 0xfd, 0, 0, 0x10, 0x02, 0x44, [15] = 0x10 };
    uint8_t dst[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x10 };
    putn(o, src, 16); putn(o, dst, 16);
    for (int i = 0; i < ext_headers; i++) { /* hop-by-hop first, then destination options */
        int next = i + 1 < ext_headers ? 60 : (fragment ? 44 : IPPROTO_TCP);
        put8(o, (unsigned)next); put8(o, 0); put16(o, 0x0104); put32(o, 0);
    }
    if (fragment) { put8(o, IPPROTO_TCP); put8(o, 0); put16(o, 0x0001); put32(o, 7); }
    putn(o, l4->b, l4->n);
}

static void ether(bytes *o, int vlans, uint16_t type, bytes *l3)
{
    for (int i = 0; i < 12; i++)
        put8(o, (unsigned)i);
    for (int i = 0; i < vlans; i++) { put16(o, i == 0 ? 0x88a8 : 0x8100); put16(o, 100); }
    put16(o, type);
    putn(o, l3->b, l3->n);
}

static void expect_tcp(int link, const bytes *b, int family)
{
    ei_packet p;
    CU_ASSERT_EQUAL_FATAL(ei_packet_parse(link, b->b, b->n, &p), EI_PKT_OK);
    CU_ASSERT_EQUAL(p.l4, IPPROTO_TCP);
    CU_ASSERT_EQUAL(p.src.family, family);
    CU_ASSERT_EQUAL(p.sport, 40000);
    CU_ASSERT_EQUAL(p.dport, 443);
    CU_ASSERT_EQUAL(p.seq, 1000);
    CU_ASSERT_EQUAL(p.tcp_flags, EI_TCP_PSH | EI_TCP_ACK);
    CU_ASSERT_EQUAL(p.payload.len, sizeof payload - 1);
    CU_ASSERT(p.payload.ptr && memcmp(p.payload.ptr, payload, p.payload.len) == 0);
    CU_ASSERT_FALSE(p.truncated);
    /* No truncation of a well-formed packet reads past its end or invents a payload. */
    for (size_t cut = 0; cut < b->n; cut++) {
        ei_packet q;
        ei_packet_error err = ei_packet_parse(link, b->b, cut, &q);
        if (err == EI_PKT_OK)
            CU_ASSERT(q.truncated && q.payload.len < p.payload.len);
    }
}

static void test_ethernet_ipv4(void)
{
    bytes l4 = { 0 }, l3 = { 0 }, l2 = { 0 };
    tcp(&l4, true);
    ipv4(&l3, true, 0x4000, &l4);
    ether(&l2, 0, 0x0800, &l3);
    expect_tcp(EI_LINK_ETHERNET, &l2, 4);
    /* Ethernet padding after the datagram is not payload */
    memset(l2.b + l2.n, 0, 16);
    l2.n += 16;
    ei_packet p;
    CU_ASSERT_EQUAL(ei_packet_parse(EI_LINK_ETHERNET, l2.b, l2.n, &p), EI_PKT_OK);
    CU_ASSERT_EQUAL(p.payload.len, sizeof payload - 1);
}

static void test_vlan_tags_bounded(void)
{
    bytes l4 = { 0 }, l3 = { 0 }, l2 = { 0 }, deep = { 0 };
    tcp(&l4, false);
    ipv4(&l3, false, 0, &l4);
    ether(&l2, 2, 0x0800, &l3);
    expect_tcp(EI_LINK_ETHERNET, &l2, 4);
    ether(&deep, EI_MAX_VLAN_TAGS + 1, 0x0800, &l3);
    ei_packet p;
    CU_ASSERT_NOT_EQUAL(ei_packet_parse(EI_LINK_ETHERNET, deep.b, deep.n, &p), EI_PKT_OK);
}

static void test_ipv6_extension_headers(void)
{
    bytes l4 = { 0 }, ok = { 0 }, many = { 0 };
    tcp(&l4, false);
    ipv6(&ok, 3, false, &l4);
    expect_tcp(EI_LINK_RAW, &ok, 6);
    ipv6(&many, EI_MAX_IPV6_EXT_HEADERS + 1, false, &l4);
    ei_packet p;
    CU_ASSERT_EQUAL(ei_packet_parse(EI_LINK_RAW, many.b, many.n, &p), EI_PKT_IPV6_EXT_LIMIT);
}

static void test_fragments_are_flagged(void)
{
    bytes l4 = { 0 }, v4 = { 0 }, v6 = { 0 };
    tcp(&l4, false);
    ipv4(&v4, false, 0x2000, &l4); /* more fragments */
    ipv6(&v6, 0, true, &l4);
    ei_packet p;
    CU_ASSERT_EQUAL(ei_packet_parse(EI_LINK_RAW, v4.b, v4.n, &p), EI_PKT_FRAGMENT);
    CU_ASSERT_EQUAL(ei_packet_parse(EI_LINK_RAW, v6.b, v6.n, &p), EI_PKT_FRAGMENT);
}

static void test_cooked_and_loopback_links(void)
{
    bytes l4 = { 0 }, l3 = { 0 }, sll = { 0 }, sll2 = { 0 }, null = { 0 };
    tcp(&l4, false);
    ipv6(&l3, 0, false, &l4);
    put16(&sll, 4); put16(&sll, 1); put16(&sll, 6); putn(&sll, "\1\2\3\4\5\6\0\0", 8);
    put16(&sll, 0x86dd); putn(&sll, l3.b, l3.n);
    expect_tcp(EI_LINK_SLL, &sll, 6);
    put16(&sll2, 0x86dd); put16(&sll2, 0); put32(&sll2, 2); put16(&sll2, 1); put8(&sll2, 4);
    put8(&sll2, 6); putn(&sll2, "\1\2\3\4\5\6\0\0", 8); putn(&sll2, l3.b, l3.n);
    expect_tcp(EI_LINK_SLL2, &sll2, 6);
    put8(&null, 30); put8(&null, 0); put8(&null, 0); put8(&null, 0); /* AF_INET6 on macOS, LE */
    putn(&null, l3.b, l3.n);
    expect_tcp(EI_LINK_NULL, &null, 6);
}

static void test_ip_in_ip(void)
{
    bytes l4 = { 0 }, inner = { 0 }, outer = { 0 };
    tcp(&l4, false);
    ipv4(&inner, false, 0, &l4);
    ipv6(&outer, 0, false, &inner);
    outer.b[6] = IPPROTO_IPIP;
    expect_tcp(EI_LINK_RAW, &outer, 4);
    /* as the node sees it (the daemon): an IPv6 packet carrying something not TCP/UDP,
     * never the packet inside it */
    ei_packet p;
    CU_ASSERT_EQUAL(ei_packet_parse_outer(EI_LINK_RAW, outer.b, outer.n, &p), EI_PKT_OTHER_L4);
    CU_ASSERT_EQUAL(p.src.family, 6);
}

static void test_bad_headers(void)
{
    bytes l4 = { 0 }, l3 = { 0 };
    tcp(&l4, false);
    l4.b[12] = 0x40; /* data offset 4: shorter than the fixed header */
    ipv4(&l3, false, 0, &l4);
    ei_packet p;
    CU_ASSERT_EQUAL(ei_packet_parse(EI_LINK_RAW, l3.b, l3.n, &p), EI_PKT_BAD_TCP);
    memset(&l4, 0, sizeof l4);
    memset(&l3, 0, sizeof l3);
    tcp(&l4, true);
    l4.b[21] = 40; /* MSS option claiming 40 bytes */
    ipv4(&l3, false, 0, &l4);
    CU_ASSERT_EQUAL(ei_packet_parse(EI_LINK_RAW, l3.b, l3.n, &p), EI_PKT_BAD_TCP);
    l3.b[0] = 0x44; /* IHL 16 bytes */
    CU_ASSERT_EQUAL(ei_packet_parse(EI_LINK_RAW, l3.b, l3.n, &p), EI_PKT_BAD_IPV4);
}

/* ei_addr_format writes addresses by hand (it runs on every decision line): it must
 * agree with inet_ntop on every address, IPv6 zero runs and dotted tails included. */
static void test_addr_format_matches_inet_ntop(void)
{
    srand(7);
    for (int n = 0; n < 100000; n++) {
        ei_addr a;
        memset(&a, 0, sizeof a);
        a.family = n % 3 == 0 ? 4 : 6;
        for (int i = 0; i < (a.family == 4 ? 4 : 16); i++)
            a.bytes[i] = rand() % 4 == 0 ? (uint8_t)rand() : 0;
        if (n % 11 == 0 && a.family == 6) {
            memset(a.bytes, 0, 10);
            a.bytes[10] = a.bytes[11] = 0xff;
        }
        char mine[EI_ADDR_STRLEN], libc[INET6_ADDRSTRLEN];
        ei_addr_format(&a, mine);
        inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.bytes, libc, sizeof libc);
        CU_ASSERT_STRING_EQUAL(mine, libc);
    }
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_ethernet_ipv4),
        EI_CASE(test_vlan_tags_bounded),
        EI_CASE(test_ipv6_extension_headers),
        EI_CASE(test_fragments_are_flagged),
        EI_CASE(test_cooked_and_loopback_links),
        EI_CASE(test_ip_in_ip),
        EI_CASE(test_bad_headers),
        EI_CASE(test_addr_format_matches_inet_ntop),
    };
    EI_SUITE("packet", cases);
    return ei_unit_run();
}
