/* The resets sent to servers, read back by the packet parser: the flags, sequence numbers
 * and ports the server's stack checks, and checksums it accepts, over IPv4 and IPv6. */
#include <netinet/in.h>
#include <string.h>

#include "egress_inspector/packet.h"
#include "io/reset.h"
#include "unit.h"

static void check_reset(const char *client, const char *server)
{
    ei_flow_event ev;
    memset(&ev, 0, sizeof ev);
    CU_ASSERT_FATAL(ei_addr_parse(client, &ev.src) && ei_addr_parse(server, &ev.dst));
    ev.sport = 40123;
    ev.dport = 443;
    ev.server_known = true;
    ev.server_snd_nxt = 0xfffffff0u;
    uint8_t buf[EI_RESET_PACKET_MAX];
    size_t n = ei_reset_packet(&ev, 0x12345678u, buf);
    ei_packet pkt;
    CU_ASSERT_EQUAL_FATAL(ei_packet_parse_outer(EI_LINK_RAW, buf, n, &pkt), EI_PKT_OK);
    CU_ASSERT_EQUAL(ei_packet_checksum(&pkt, true, true), EI_CSUM_OK);
    CU_ASSERT_EQUAL(pkt.l4, IPPROTO_TCP);
    CU_ASSERT_EQUAL(pkt.tcp_flags, EI_TCP_RST | EI_TCP_ACK);
    CU_ASSERT_EQUAL(pkt.seq, 0x12345678u);
    CU_ASSERT_EQUAL(pkt.ack, 0xfffffff0u);
    CU_ASSERT_EQUAL(pkt.sport, 40123);
    CU_ASSERT_EQUAL(pkt.dport, 443);
    CU_ASSERT(ei_addr_equal(&pkt.src, &ev.src) && ei_addr_equal(&pkt.dst, &ev.dst));
    CU_ASSERT_EQUAL(pkt.payload.len, 0);
}

static void test_ipv4(void)
{
    check_reset("10.244.0.10", "203.0.113.10");
}

static void test_ipv6(void)
{
    check_reset("fd00:10:244::10", "2001:db8::10");
}

int main(void)
{
    static const ei_unit_case cases[] = { EI_CASE(test_ipv4), EI_CASE(test_ipv6) };
    EI_SUITE("reset", cases);
    return ei_unit_run();
}
