/* ei_segment_check as a table: one honest segment, then each field a server's stack
 * judges changed in turn, each with the reason it must give. */
#include <string.h>

#include "egress_inspector/packet.h"
#include "flow/segment.h"
#include "segment.h"
#include "unit.h"

enum { ISN = 1000, SERVER_ISN = 90000, TSVAL = 5000 };

/* A flow seen from its SYN (TTL 64, timestamps) and its SYN-ACK. */
static ei_flow flow(void)
{
    ei_flow f;
    memset(&f, 0, sizeof f);
    f.flags = EI_FLOW_F_SYN | EI_FLOW_F_SYNACK | EI_FLOW_F_TS;
    f.base_seq = ISN + 1;
    f.syn_ttl = 64;
    f.ts_recent = TSVAL;
    f.server_isn = SERVER_ISN;
    f.server_next = SERVER_ISN + 1;
    return f;
}

static uint8_t ts_opt[12];

static seg honest(void)
{
    seg s = { .src = { 10, 244, 0, 10 }, .dst = { 203, 0, 113, 10 }, .sport = 40000, .dport = 443,
              .seq = ISN + 1, .ack = SERVER_ISN + 1, .flags = EI_TCP_ACK | EI_TCP_PSH,
              .data = "hello", .len = 5 };
    seg_timestamp(ts_opt, TSVAL + 1, 1);
    s.options = ts_opt;
    s.options_len = sizeof ts_opt;
    return s;
}

static ei_reason check(const ei_flow *f, const seg *s, bool live)
{
    uint8_t buf[256];
    size_t n = seg_build(s, buf);
    ei_packet pkt;
    CU_ASSERT_EQUAL_FATAL(ei_packet_parse(EI_LINK_RAW, buf, n, &pkt), EI_PKT_OK);
    return ei_segment_check(f, &pkt, live);
}

static void test_each_field(void)
{
    static const uint8_t md5[20] = { 1, 1, 19, 18 };
    static const uint8_t mptcp[4] = { 30, 4, 0x20, 0x01 };
    static const uint8_t mss[4] = { 2, 4, 5, 0xb4 };
    static const uint8_t tfo[12] = { 34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1 };
    uint8_t old_ts[12];
    seg_timestamp(old_ts, TSVAL - 1, 1);
    struct {
        const char *what;
        seg s;
        ei_reason want;
    } rows[] = {
        { "honest", honest(), EI_REASON_NONE },
        { "no ACK", honest(), EI_REASON_TCP_DATA_WITHOUT_ACK },
        { "SYN without Fast Open", honest(), EI_REASON_TCP_DATA_IN_SYN },
        { "SYN+ACK", honest(), EI_REASON_TCP_DATA_IN_SYN },
        { "Fast Open SYN", honest(), EI_REASON_NONE },
        { "URG", honest(), EI_REASON_TCP_URGENT },
        { "MD5", honest(), EI_REASON_TCP_UNEXPECTED_OPTION },
        { "MPTCP", honest(), EI_REASON_TCP_UNEXPECTED_OPTION },
        { "MSS on data", honest(), EI_REASON_TCP_UNEXPECTED_OPTION },
        { "TTL 2", honest(), EI_REASON_TTL_CHANGED },
        { "older timestamp", honest(), EI_REASON_TCP_STALE_TIMESTAMP },
        { "no timestamp (tolerated by servers)", honest(), EI_REASON_NONE },
        { "ACK of data never sent", honest(), EI_REASON_TCP_BAD_ACK },
        { "ACK before the SYN-ACK", honest(), EI_REASON_TCP_BAD_ACK },
        { "2 MiB ahead", honest(), EI_REASON_TCP_OUT_OF_WINDOW },
        { "2 MiB behind", honest(), EI_REASON_TCP_OUT_OF_WINDOW },
    };
    rows[1].s.flags = EI_TCP_PSH;
    rows[2].s.flags = EI_TCP_SYN;
    rows[2].s.seq = ISN;
    rows[3].s.flags = EI_TCP_SYN | EI_TCP_ACK;
    rows[4].s.flags = EI_TCP_SYN;
    rows[4].s.seq = ISN;
    rows[4].s.options = tfo;
    rows[4].s.options_len = sizeof tfo;
    rows[5].s.flags |= EI_TCP_URG;
    rows[5].s.urgent = 1;
    rows[6].s.options = md5;
    rows[6].s.options_len = sizeof md5;
    rows[7].s.options = mptcp;
    rows[7].s.options_len = sizeof mptcp;
    rows[8].s.options = mss;
    rows[8].s.options_len = sizeof mss;
    rows[9].s.ttl = 2;
    rows[10].s.options = old_ts;
    rows[11].s.options_len = 0;
    rows[12].s.ack = SERVER_ISN + 1 + 100000;
    rows[13].s.ack = SERVER_ISN;
    rows[14].s.seq = ISN + 1 + (2u << 20);
    rows[15].s.seq = ISN + 1 - (2u << 20);
    ei_flow f = flow();
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ei_reason got = check(&f, &rows[i].s, true);
        if (got != rows[i].want)
            fprintf(stderr, "\n  %s: %s, want %s", rows[i].what, ei_reason_name(got),
                    ei_reason_name(rows[i].want));
        CU_ASSERT_EQUAL(got, rows[i].want);
    }
}

static void test_what_live_requires(void)
{
    seg s = honest();
    ei_flow f = flow();
    f.flags &= (uint16_t)~EI_FLOW_F_SYN; /* its start was missed (restart, eviction) */
    CU_ASSERT_EQUAL(check(&f, &s, true), EI_REASON_MIDSTREAM);
    CU_ASSERT_EQUAL(check(&f, &s, false), EI_REASON_NONE); /* a capture may start late */
    f = flow();
    f.flags &= (uint16_t)~EI_FLOW_F_SYNACK; /* data before the SYN-ACK went by */
    CU_ASSERT_EQUAL(check(&f, &s, true), EI_REASON_TCP_NO_HANDSHAKE);
    s.options_len = 0; /* without the SYN-ACK, timestamps are not known to be agreed */
    CU_ASSERT_EQUAL(check(&f, &s, false), EI_REASON_NONE);
    /* a capture may miss server data: only the lower bound of the ACK is sure there */
    f = flow();
    s = honest();
    s.ack = SERVER_ISN + 1 + 500;
    CU_ASSERT_EQUAL(check(&f, &s, true), EI_REASON_TCP_BAD_ACK);
    CU_ASSERT_EQUAL(check(&f, &s, false), EI_REASON_NONE);
    f.server_next = SERVER_ISN + 1 + 500; /* live: the server did send 500 bytes */
    CU_ASSERT_EQUAL(check(&f, &s, true), EI_REASON_NONE);
}

static void test_two_synacks_the_client_chooses(void)
{
    ei_flow f = flow();
    f.flags |= EI_FLOW_F_SYNACK2;
    f.server_isn2 = 777000;
    seg s = honest();
    s.ack = 777001;
    CU_ASSERT_EQUAL(check(&f, &s, true), EI_REASON_NONE);
    uint8_t buf[256];
    size_t n = seg_build(&s, buf);
    ei_packet pkt;
    CU_ASSERT_EQUAL_FATAL(ei_packet_parse(EI_LINK_RAW, buf, n, &pkt), EI_PKT_OK);
    ei_segment_learn(&f, &pkt);
    CU_ASSERT_EQUAL(f.server_isn, 777000u);
    CU_ASSERT_FALSE(f.flags & EI_FLOW_F_SYNACK2);
    CU_ASSERT_EQUAL(f.ts_recent, (uint32_t)TSVAL + 1);
    s.ack = SERVER_ISN + 1; /* the other one is no longer the server's */
    CU_ASSERT_EQUAL(check(&f, &s, true), EI_REASON_TCP_BAD_ACK);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_each_field),
        EI_CASE(test_what_live_requires),
        EI_CASE(test_two_synacks_the_client_chooses),
    };
    EI_SUITE("segment", cases);
    return ei_unit_run();
}
