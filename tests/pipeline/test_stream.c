/* The pipeline as the daemon runs it (live: the client's packets and the server's until a
 * flow is settled), on segments with real checksums: that what is judged is what the
 * server reads. Each test is one attack of tests/e2e/attack_test.sh, or the honest
 * behaviour it must not break, at the level of the actions the queue gets. */
#include <string.h>

#include "egress_inspector/pipeline.h"
#include "hello.h"
#include "segment.h"
#include "unit.h"

static const char rules[] = "allow allowed.example\n";

enum { CISN = 1000, SISN = 50000 };

typedef struct {
    ei_pipeline *p;
    ei_policy_set *set;
    uint64_t now, id;
    uint16_t sport, dport;
    uint32_t cnext, snext; /* next sequence numbers of client and server */
    int events;
    ei_flow_event last;
    bool revoked_seen;
    int released[EI_ACTION_COUNT];
} rig;

static void on_event(void *ctx, const ei_flow_event *ev)
{
    rig *r = ctx;
    r->last = *ev;
    r->last.host = NULL;
    r->revoked_seen |= ev->revoked;
    r->events++;
}

static void on_release(void *ctx, uint64_t id, ei_action action)
{
    (void)id;
    ((rig *)ctx)->released[action]++;
}

static void rig_open(rig *r, ei_pipeline_config *cfg)
{
    memset(r, 0, sizeof *r);
    r->set = ei_rules_parse(rules, sizeof rules - 1, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->set);
    ei_pipeline_config def;
    if (cfg == NULL) {
        ei_pipeline_config_default(&def);
        def.live = true;
        def.dest_check = false; /* names here; tests/dns/test_dns.c binds them */
        cfg = &def;
    }
    r->p = ei_pipeline_new(cfg, r->set, EI_MODE_ENFORCE, on_event, on_release, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
    r->now = 1000000000ull;
    r->sport = 40000;
    r->dport = 443;
}

static void rig_close(rig *r)
{
    ei_pipeline_free(r->p, r->now);
    ei_policy_set_free(r->set);
}

static ei_action seg_send(rig *r, const seg *s, unsigned info)
{
    uint8_t buf[2100];
    size_t n = seg_build(s, buf);
    r->now += 1000;
    return ei_pipeline_packet(r->p, EI_LINK_RAW, buf, n, r->now, ++r->id, info);
}

/* A client segment at the client's next sequence number (which advances by len). */
static seg cseg(rig *r, uint8_t flags, const void *data, size_t len)
{
    seg s = { .src = { 10, 244, 0, 10 }, .dst = { 203, 0, 113, 10 }, .sport = r->sport,
              .dport = r->dport, .seq = r->cnext, .ack = r->snext, .flags = flags,
              .data = data, .len = len };
    return s;
}

static seg sseg(rig *r, uint8_t flags, uint32_t ack)
{
    seg s = { .src = { 203, 0, 113, 10 }, .dst = { 10, 244, 0, 10 }, .sport = r->dport,
              .dport = r->sport, .seq = r->snext, .ack = ack, .flags = flags };
    return s;
}

/* SYN and SYN-ACK: both pass. */
static void handshake(rig *r)
{
    r->sport++;
    r->cnext = CISN;
    r->snext = SISN;
    seg syn = cseg(r, EI_TCP_SYN, NULL, 0);
    CU_ASSERT_EQUAL(seg_send(r, &syn, 0), EI_ACTION_PASS);
    r->cnext++;
    seg synack = sseg(r, EI_TCP_SYN | EI_TCP_ACK, r->cnext);
    CU_ASSERT_EQUAL(seg_send(r, &synack, 0), EI_ACTION_PASS);
    r->snext++;
}

/* The client's ClientHello for name (written into h) at its next sequence number. */
static seg hello_seg(rig *r, uint8_t h[300], const char *name)
{
    return cseg(r, EI_TCP_ACK | EI_TCP_PSH, h, make_hello(h, name));
}

static ei_action hello(rig *r, const char *name, bool advance)
{
    uint8_t h[300];
    seg s = hello_seg(r, h, name);
    ei_action a = seg_send(r, &s, 0);
    if (advance)
        r->cnext += (uint32_t)s.len;
    return a;
}

static void test_allowed_flow_is_settled_by_the_servers_ack(void)
{
    rig r;
    rig_open(&r, NULL);
    handshake(&r);
    uint32_t start = r.cnext;
    CU_ASSERT_EQUAL(hello(&r, "allowed.example", true), EI_ACTION_ACCEPT); /* not marked yet */
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_NAME);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->confirming, 1);
    /* the same bytes again (a retransmission) pass; an ACK short of them settles nothing */
    r.cnext = start;
    CU_ASSERT_EQUAL(hello(&r, "allowed.example", true), EI_ACTION_ACCEPT);
    seg part = sseg(&r, EI_TCP_ACK, start + 10);
    CU_ASSERT_EQUAL(seg_send(&r, &part, 0), EI_ACTION_ACCEPT);
    /* the server has every byte judged: the connection may leave the queue */
    seg all = sseg(&r, EI_TCP_ACK, r.cnext);
    CU_ASSERT_EQUAL(seg_send(&r, &all, 0), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->confirming, 0);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->flows_confirmed, 1);
    seg more = cseg(&r, EI_TCP_ACK | EI_TCP_PSH, "more", 4);
    CU_ASSERT_EQUAL(seg_send(&r, &more, 0), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.events, 1);
    rig_close(&r);
}

/* The insertion attack: the judged hello died after the node (TTL, MTU, the server's
 * own drop); another at the same sequence number must never pass. */
static void test_other_bytes_at_the_judged_range_revoke(void)
{
    rig r;
    rig_open(&r, NULL);
    handshake(&r);
    uint32_t start = r.cnext;
    CU_ASSERT_EQUAL(hello(&r, "allowed.example", false), EI_ACTION_ACCEPT);
    CU_ASSERT_EQUAL(hello(&r, "denied.example.", false), EI_ACTION_DENY);
    CU_ASSERT(r.revoked_seen);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_TCP_OVERLAP_CONFLICT);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->flows_revoked, 1);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->confirming, 0);
    /* and the flow stays denied, whatever comes next */
    r.cnext = start;
    CU_ASSERT_EQUAL(hello(&r, "allowed.example", false), EI_ACTION_DENY);
    seg ack = sseg(&r, EI_TCP_ACK, start + 300);
    CU_ASSERT_EQUAL(seg_send(&r, &ack, 0), EI_ACTION_DENY);
    rig_close(&r);
}

static void test_checksums(void)
{
    rig r;
    rig_open(&r, NULL);
    handshake(&r);
    uint8_t h[300];
    seg bad = hello_seg(&r, h, "allowed.example");
    bad.bad_checksum = true;
    CU_ASSERT_EQUAL(seg_send(&r, &bad, 0), EI_ACTION_DROP); /* never read */
    CU_ASSERT_EQUAL(r.events, 0);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->bad_checksums, 1);
    /* left to the card (NFQA_SKB_CSUMNOTREADY): the field is not final, the card fills it */
    CU_ASSERT_EQUAL(seg_send(&r, &bad, EI_PKT_CSUM_LATER), EI_ACTION_ACCEPT);
    rig_close(&r);

    /* report (replay's default): read, counted, and said in the decision line */
    ei_pipeline_config cfg;
    ei_pipeline_config_default(&cfg);
    cfg.dest_check = false;
    cfg.checksums = EI_CHECKSUM_REPORT;
    rig_open(&r, &cfg);
    handshake(&r);
    bad = hello_seg(&r, h, "allowed.example");
    bad.bad_checksum = true;
    CU_ASSERT_NOT_EQUAL(seg_send(&r, &bad, 0), EI_ACTION_DROP);
    CU_ASSERT_EQUAL(r.events, 1);
    CU_ASSERT(r.last.bad_checksum);
    rig_close(&r);
}

static void test_segments_no_honest_client_sends(void)
{
    static const struct {
        const char *what;
        ei_reason want;
    } rows[] = {
        { "no ACK", EI_REASON_TCP_DATA_WITHOUT_ACK },
        { "TTL 2", EI_REASON_TTL_CHANGED },
        { "URG", EI_REASON_TCP_URGENT },
        { "ACK beyond what the server sent", EI_REASON_TCP_BAD_ACK },
        { "SYN+ACK with data", EI_REASON_TCP_DATA_IN_SYN },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        rig r;
        rig_open(&r, NULL);
        handshake(&r);
        uint8_t h[300];
        seg s = hello_seg(&r, h, "allowed.example");
        switch (i) {
        case 0: s.flags = EI_TCP_PSH; break;
        case 1: s.ttl = 2; break;
        case 2: s.flags |= EI_TCP_URG; s.urgent = 5; break;
        case 3: s.ack += 100000; break;
        case 4: s.flags = EI_TCP_SYN | EI_TCP_ACK; break;
        }
        CU_ASSERT_EQUAL(seg_send(&r, &s, 0), EI_ACTION_DENY);
        if (r.last.decision.reason != rows[i].want)
            fprintf(stderr, "\n  %s: %s", rows[i].what, ei_reason_name(r.last.decision.reason));
        CU_ASSERT_EQUAL(r.last.decision.reason, rows[i].want);
        rig_close(&r);
    }
}

static void test_syn_tricks(void)
{
    rig r;
    rig_open(&r, NULL);
    /* another ISN on a connection whose first message is not read: denied, not re-based */
    handshake(&r);
    seg resyn = cseg(&r, EI_TCP_SYN, NULL, 0);
    resyn.seq = 777;
    CU_ASSERT_EQUAL(seg_send(&r, &resyn, 0), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_TCP_SYN_CONFLICT);

    /* a SYN-ACK for an ISN that was not the one judged */
    r.sport++;
    r.cnext = CISN;
    seg syn = cseg(&r, EI_TCP_SYN, NULL, 0);
    CU_ASSERT_EQUAL(seg_send(&r, &syn, 0), EI_ACTION_PASS);
    seg synack = sseg(&r, EI_TCP_SYN | EI_TCP_ACK, 4242);
    CU_ASSERT_EQUAL(seg_send(&r, &synack, 0), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_TCP_SYN_CONFLICT);

    /* a retransmitted SYN (same ISN) changes nothing */
    handshake(&r);
    r.cnext = CISN;
    syn = cseg(&r, EI_TCP_SYN, NULL, 0);
    CU_ASSERT_EQUAL(seg_send(&r, &syn, 0), EI_ACTION_PASS);
    r.cnext = CISN + 1;
    CU_ASSERT_EQUAL(hello(&r, "allowed.example", true), EI_ACTION_ACCEPT);

    /* port reuse after a settled connection: judged afresh from its own SYN */
    seg all = sseg(&r, EI_TCP_ACK, r.cnext);
    CU_ASSERT_EQUAL(seg_send(&r, &all, 0), EI_ACTION_ALLOW);
    r.cnext = 90000;
    syn = cseg(&r, EI_TCP_SYN, NULL, 0);
    CU_ASSERT_EQUAL(seg_send(&r, &syn, 0), EI_ACTION_PASS);
    r.cnext++;
    r.snext = 123456;
    synack = sseg(&r, EI_TCP_SYN | EI_TCP_ACK, r.cnext);
    CU_ASSERT_EQUAL(seg_send(&r, &synack, 0), EI_ACTION_PASS);
    r.snext++;
    CU_ASSERT_EQUAL(hello(&r, "denied.example", true), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_NAME_NOT_ALLOWED);

    /* a connection reset before it said anything is over: its tuple is free again */
    handshake(&r);
    seg rst = sseg(&r, EI_TCP_RST | EI_TCP_ACK, r.cnext);
    CU_ASSERT_EQUAL(seg_send(&r, &rst, 0), EI_ACTION_PASS);
    r.sport--; /* handshake() moves to the next port: stay on this one, new ISN */
    handshake(&r);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_NAME_NOT_ALLOWED); /* no conflict */
    rig_close(&r);
}

static void test_no_trust_without_the_start(void)
{
    rig r;
    rig_open(&r, NULL);
    /* midstream: the daemon restarted, or the flow was evicted */
    r.cnext = CISN + 1;
    r.snext = SISN + 1;
    CU_ASSERT_EQUAL(hello(&r, "allowed.example", true), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_MIDSTREAM);
    /* data that overtakes the server's SYN-ACK */
    r.sport++;
    r.cnext = CISN;
    seg syn = cseg(&r, EI_TCP_SYN, NULL, 0);
    CU_ASSERT_EQUAL(seg_send(&r, &syn, 0), EI_ACTION_PASS);
    r.cnext++;
    CU_ASSERT_EQUAL(hello(&r, "allowed.example", true), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_TCP_NO_HANDSHAKE);
    rig_close(&r);
}

static void test_fast_open(void)
{
    static const uint8_t tfo[12] = { 34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1 };
    rig r;
    rig_open(&r, NULL);
    uint8_t h[300];
    size_t n = make_hello(h, "allowed.example");
    /* data in a plain SYN: the server drops it, so it never decides anything */
    r.sport++;
    r.cnext = CISN;
    seg syn = cseg(&r, EI_TCP_SYN, h, n);
    CU_ASSERT_EQUAL(seg_send(&r, &syn, 0), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_TCP_DATA_IN_SYN);
    /* with a Fast Open cookie it is judged, and the SYN-ACK that takes the data settles */
    r.sport++;
    syn = cseg(&r, EI_TCP_SYN, h, n);
    syn.options = tfo;
    syn.options_len = sizeof tfo;
    CU_ASSERT_EQUAL(seg_send(&r, &syn, 0), EI_ACTION_ACCEPT);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_NAME);
    r.snext = SISN;
    seg synack = sseg(&r, EI_TCP_SYN | EI_TCP_ACK, CISN + 1 + (uint32_t)n);
    CU_ASSERT_EQUAL(seg_send(&r, &synack, 0), EI_ACTION_ALLOW);
    rig_close(&r);
}

static ei_action http(rig *r, const char *text)
{
    seg s = cseg(r, EI_TCP_ACK | EI_TCP_PSH, text, strlen(text));
    r->cnext += (uint32_t)strlen(text);
    return seg_send(r, &s, 0);
}

static void test_every_http_request_is_judged(void)
{
    rig r;
    rig_open(&r, NULL);
    r.dport = 80;
    handshake(&r);
    CU_ASSERT_EQUAL(http(&r, "GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n"), EI_ACTION_INSPECT);
    /* the server's side may leave the queue; the client's stays */
    seg ack = sseg(&r, EI_TCP_ACK, r.cnext);
    CU_ASSERT_EQUAL(seg_send(&r, &ack, 0), EI_ACTION_INSPECT);
    /* a body is not a request, whatever it says */
    CU_ASSERT_EQUAL(http(&r, "POST /up HTTP/1.1\r\nHost: allowed.example\r\nContent-Length: 40\r\n\r\n"),
                    EI_ACTION_INSPECT);
    CU_ASSERT_EQUAL(http(&r, "GET / HTTP/1.1\r\nHost: denied.example\r\n\r\n"), EI_ACTION_INSPECT);
    CU_ASSERT_EQUAL(r.events, 2);
    /* the next request names another host: denied, and reset */
    CU_ASSERT_EQUAL(http(&r, "GET / HTTP/1.1\r\nHost: denied.example\r\n\r\n"), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_NAME_NOT_ALLOWED);
    CU_ASSERT_EQUAL(r.events, 3);

    /* pipelined: both heads in one segment are judged before it passes */
    handshake(&r);
    CU_ASSERT_EQUAL(http(&r, "GET /a HTTP/1.1\r\nHost: allowed.example\r\n\r\n"
                             "GET /b HTTP/1.1\r\nHost: denied.example\r\n\r\n"), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.events, 5);
    /* a second head split over two segments: the first part is held until it is whole */
    handshake(&r);
    CU_ASSERT_EQUAL(http(&r, "GET /a HTTP/1.1\r\nHost: allowed.example\r\n\r\nGET /b HTTP/1.1\r\nHo"),
                    EI_ACTION_HOLD);
    CU_ASSERT_EQUAL(http(&r, "st: allowed.example\r\n\r\n"), EI_ACTION_INSPECT);
    CU_ASSERT_EQUAL(r.released[EI_ACTION_INSPECT], 1);
    /* a body whose end the head does not say: its next request could not be found */
    handshake(&r);
    CU_ASSERT_EQUAL(http(&r, "POST / HTTP/1.1\r\nHost: allowed.example\r\nTransfer-Encoding: chunked\r\n\r\n"),
                    EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_HTTP_BODY_FRAMING);
    rig_close(&r);
}

static void test_preambles_only_on_their_ports(void)
{
    static const uint8_t socks5[] = { 5, 1, 0 };
    rig r;
    rig_open(&r, NULL);
    handshake(&r); /* 443: a SOCKS greeting is not a ClientHello */
    seg s = cseg(&r, EI_TCP_ACK | EI_TCP_PSH, socks5, sizeof socks5);
    CU_ASSERT_EQUAL(seg_send(&r, &s, 0), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_NOT_TLS_OR_HTTP);
    /* another protocol's command line on 443 is judged at once, not held until it times out */
    handshake(&r);
    s = cseg(&r, EI_TCP_ACK | EI_TCP_PSH, "EHLO exfil\r\n", 12);
    CU_ASSERT_EQUAL(seg_send(&r, &s, 0), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_NOT_TLS_OR_HTTP);
    r.dport = 1080; /* SOCKS's own port: the greeting passes, the server must answer */
    handshake(&r);
    s = cseg(&r, EI_TCP_ACK | EI_TCP_PSH, socks5, sizeof socks5);
    CU_ASSERT_EQUAL(seg_send(&r, &s, 0), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(r.events, 2); /* the two denies above; the greeting decides nothing */
    rig_close(&r);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_allowed_flow_is_settled_by_the_servers_ack),
        EI_CASE(test_other_bytes_at_the_judged_range_revoke),
        EI_CASE(test_checksums),
        EI_CASE(test_segments_no_honest_client_sends),
        EI_CASE(test_syn_tricks),
        EI_CASE(test_no_trust_without_the_start),
        EI_CASE(test_fast_open),
        EI_CASE(test_every_http_request_is_judged),
        EI_CASE(test_preambles_only_on_their_ports),
    };
    EI_SUITE("stream", cases);
    return ei_unit_run();
}
