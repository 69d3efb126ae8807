/* The pipeline end to end on synthetic packets: decisions, holds and releases, modes,
 * bounds, and the invariant that every packet gets exactly one verdict. */
#include <netinet/in.h>
#include <string.h>

#include "egress_inspector/pipeline.h"
#include "hello.h"
#include "unit.h"

static const char rules[] =
    "allow allowed.example\n"
    "allow *.allowed.example\n"
    "allow 203.0.113.250/32:22\n";

typedef struct {
    ei_flow_event last;
    char host[300];
    int events;
    int released[EI_ACTION_COUNT];
    int verdicts;          /* final verdicts handed out: direct answers plus releases */
    uint64_t released_ids[64];
    int nreleased;
} sink;

static void on_event(void *ctx, const ei_flow_event *ev)
{
    sink *s = ctx;
    s->last = *ev;
    s->host[0] = '\0';
    if (ev->host != NULL) {
        memcpy(s->host, ev->host, ev->host_len);
        s->host[ev->host_len] = '\0';
    }
    s->events++;
}

static void on_release(void *ctx, uint64_t id, ei_action action)
{
    sink *s = ctx;
    s->released[action]++;
    s->verdicts++;
    if (s->nreleased < 64)
        s->released_ids[s->nreleased++] = id;
}

typedef struct {
    ei_pipeline *p;
    ei_policy_set *set;
    sink s;
    uint64_t now;
    uint64_t id;
    uint32_t cseq;  /* client's next sequence number */
    uint16_t sport;
    uint8_t dst_last;
    uint16_t dport;
} rig;

static void rig_open(rig *r, ei_mode mode, uint32_t max_flows)
{
    memset(r, 0, sizeof *r);
    r->set = ei_rules_parse(rules, sizeof rules - 1, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->set);
    ei_pipeline_config cfg;
    ei_pipeline_config_default(&cfg);
    cfg.checksums = EI_CHECKSUM_OFF; /* synthetic packets carry no checksums */
    cfg.confirm = false;             /* tests/pipeline/test_stream.c covers it */
    if (max_flows)
        cfg.max_flows = max_flows;
    cfg.max_held_packets = 8;
    cfg.dest_check = false; /* these tests read names; tests/test_dns.c binds them */
    r->p = ei_pipeline_new(&cfg, r->set, mode, on_event, on_release, &r->s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
    r->now = 1000000000ull;
    r->sport = 40000;
    r->dst_last = 10;
    r->dport = 443;
}

static void rig_close(rig *r)
{
    ei_pipeline_free(r->p, r->now);
    ei_policy_set_free(r->set);
}

/* Sends one IPv4 TCP packet from the client (or the server) and returns the action. */
static ei_action send_tcp(rig *r, bool from_client, uint8_t flags, uint32_t seq,
                          const void *data, size_t len)
{
    static uint8_t pkt[2000];
    size_t n = 20 + 20 + len;
    memset(pkt, 0, 40);
    pkt[0] = 0x45;
    pkt[2] = (uint8_t)(n >> 8);
    pkt[3] = (uint8_t)n;
    pkt[8] = 64;
    pkt[9] = IPPROTO_TCP;
    const uint8_t client[4] = { 10, 244, 0, 10 }, server[4] = { 203, 0, 113, r->dst_last };
    memcpy(pkt + 12, from_client ? client : server, 4);
    memcpy(pkt + 16, from_client ? server : client, 4);
    uint16_t sp = from_client ? r->sport : r->dport, dp = from_client ? r->dport : r->sport;
    pkt[20] = (uint8_t)(sp >> 8); pkt[21] = (uint8_t)sp;
    pkt[22] = (uint8_t)(dp >> 8); pkt[23] = (uint8_t)dp;
    pkt[24] = (uint8_t)(seq >> 24); pkt[25] = (uint8_t)(seq >> 16);
    pkt[26] = (uint8_t)(seq >> 8); pkt[27] = (uint8_t)seq;
    pkt[32] = 0x50;
    pkt[33] = flags;
    if (len)
        memcpy(pkt + 40, data, len);
    r->now += 1000;
    ei_action a = ei_pipeline_packet(r->p, EI_LINK_RAW, pkt, n, r->now, ++r->id, 0);
    if (a != EI_ACTION_HOLD)
        r->s.verdicts++;
    return a;
}

static ei_action syn(rig *r)
{
    r->cseq = 5000;
    return send_tcp(r, true, EI_TCP_SYN, r->cseq++, NULL, 0);
}

static ei_action data(rig *r, const void *bytes, size_t len)
{
    ei_action a = send_tcp(r, true, EI_TCP_ACK | EI_TCP_PSH, r->cseq, bytes, len);
    r->cseq += (uint32_t)len;
    return a;
}

static void test_allow_and_deny_by_name(void)
{
    rig r;
    uint8_t h[300];
    rig_open(&r, EI_MODE_ENFORCE, 0);
    CU_ASSERT_EQUAL(syn(&r), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(data(&r, h, make_hello(h, "API.Allowed.Example.")), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.s.events, 1);
    CU_ASSERT_STRING_EQUAL(r.s.host, "api.allowed.example");
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_ALLOWED_NAME);
    CU_ASSERT_STRING_EQUAL(r.s.last.decision.match.rule, "*.allowed.example");
    /* later packets of the decided flow get the same answer, without a new event */
    CU_ASSERT_EQUAL(data(&r, "more", 4), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.s.events, 1);

    r.sport++;
    syn(&r);
    CU_ASSERT_EQUAL(data(&r, h, make_hello(h, "allowed.example.evil.test")), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_NAME_NOT_ALLOWED);
    CU_ASSERT(r.s.last.enforced);
    rig_close(&r);
}

static void test_monitor_computes_the_same_and_lets_through(void)
{
    rig r;
    uint8_t h[300];
    rig_open(&r, EI_MODE_MONITOR, 0);
    syn(&r);
    CU_ASSERT_EQUAL(data(&r, h, make_hello(h, "denied.example")), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.s.last.decision.verdict, EI_VERDICT_DENY);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_NAME_NOT_ALLOWED);
    CU_ASSERT_FALSE(r.s.last.enforced);
    CU_ASSERT_EQUAL(r.s.last.mode, EI_MODE_MONITOR);
    /* switching to enforce applies to new flows */
    ei_pipeline_set_mode(r.p, EI_MODE_ENFORCE);
    r.sport++;
    syn(&r);
    CU_ASSERT_EQUAL(data(&r, h, make_hello(h, "denied.example")), EI_ACTION_DENY);
    rig_close(&r);
}

static void test_split_hello_is_held_then_released(void)
{
    rig r;
    uint8_t h[300];
    rig_open(&r, EI_MODE_ENFORCE, 0);
    size_t n = make_hello(h, "allowed.example");
    for (size_t cut = 1; cut < n; cut++) {
        r.sport++;
        syn(&r);
        uint64_t first_id = r.id + 1;
        CU_ASSERT_EQUAL(data(&r, h, cut), EI_ACTION_HOLD);
        int before = r.s.nreleased;
        CU_ASSERT_EQUAL(data(&r, h + cut, n - cut), EI_ACTION_ALLOW);
        CU_ASSERT_EQUAL(r.s.nreleased, before + 1);
        CU_ASSERT_EQUAL(r.s.released_ids[before % 64], first_id);
        r.s.nreleased = 0;
    }
    CU_ASSERT_EQUAL(r.s.released[EI_ACTION_ALLOW], (int)(n - 1));
    CU_ASSERT_EQUAL(r.s.verdicts, (int)r.id);
    rig_close(&r);
}

static void test_padding_never_decides(void)
{
    rig r;
    uint8_t h[300];
    rig_open(&r, EI_MODE_ENFORCE, 0);
    syn(&r);
    for (int i = 0; i < 40; i++)
        CU_ASSERT_EQUAL(send_tcp(&r, true, EI_TCP_ACK, r.cseq, NULL, 0), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(r.s.events, 0);
    CU_ASSERT_EQUAL(data(&r, h, make_hello(h, "denied.example")), EI_ACTION_DENY);
    /* and a flow that never names anything is decided at the packet bound */
    r.sport++;
    syn(&r);
    ei_action a = EI_ACTION_PASS;
    for (int i = 0; i < 100 && a == EI_ACTION_PASS; i++)
        a = send_tcp(&r, true, EI_TCP_ACK, r.cseq, NULL, 0);
    CU_ASSERT_EQUAL(a, EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_NO_NAME_WITHIN_LIMIT);
    rig_close(&r);
}

static void test_conflicting_retransmission_denies(void)
{
    rig r;
    uint8_t h[300], evil[300];
    rig_open(&r, EI_MODE_ENFORCE, 0);
    size_t n = make_hello(h, "denied.example");
    make_hello(evil, "allowed.example");
    syn(&r);
    CU_ASSERT_EQUAL(send_tcp(&r, true, EI_TCP_ACK, 5001, h, 60), EI_ACTION_HOLD);
    CU_ASSERT_EQUAL(send_tcp(&r, true, EI_TCP_ACK, 5001, evil, n), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_TCP_OVERLAP_CONFLICT);
    CU_ASSERT_EQUAL(r.s.released[EI_ACTION_DENY], 1);
    rig_close(&r);
}

static void test_address_entry_decides_at_syn(void)
{
    rig r;
    rig_open(&r, EI_MODE_ENFORCE, 0);
    r.dst_last = 250;
    r.dport = 22;
    CU_ASSERT_EQUAL(syn(&r), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_ALLOWED_ADDRESS);
    CU_ASSERT_EQUAL(data(&r, "SSH-2.0-x\r\n", 11), EI_ACTION_ALLOW);
    r.dport = 23;
    r.sport++;
    CU_ASSERT_EQUAL(syn(&r), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(data(&r, "SSH-2.0-x\r\n", 11), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_NOT_TLS_OR_HTTP);
    rig_close(&r);
}

static void test_eviction_and_shutdown_release_held_packets(void)
{
    rig r;
    uint8_t h[300];
    rig_open(&r, EI_MODE_ENFORCE, 2);
    size_t n = make_hello(h, "allowed.example");
    for (int i = 0; i < 3; i++) {
        r.sport++;
        syn(&r);
        CU_ASSERT_EQUAL(data(&r, h, n / 2), EI_ACTION_HOLD);
    }
    /* the third flow pushed out the first, whose held packet was denied */
    CU_ASSERT_EQUAL(r.s.released[EI_ACTION_DENY], 1);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_FLOW_EVICTED);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->flows_evicted, 1);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->held, 2);
    ei_pipeline_flush(r.p, r.now, EI_REASON_SHUTDOWN);
    CU_ASSERT_EQUAL(r.s.released[EI_ACTION_DENY], 3);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_SHUTDOWN);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->held, 0);
    CU_ASSERT_EQUAL(r.s.verdicts, (int)r.id);
    rig_close(&r);
}

static void test_held_limit(void)
{
    rig r;
    uint8_t h[300];
    rig_open(&r, EI_MODE_ENFORCE, 0);
    make_hello(h, "allowed.example");
    syn(&r);
    ei_action a = EI_ACTION_HOLD;
    for (int i = 0; i < 20 && a == EI_ACTION_HOLD; i++)
        a = send_tcp(&r, true, EI_TCP_ACK, r.cseq, h, 20); /* the same bytes again and again */
    CU_ASSERT_EQUAL(a, EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_HELD_LIMIT);
    CU_ASSERT_EQUAL(r.s.verdicts, (int)r.id);
    rig_close(&r);
}

static void test_idle_undecided_flow_expires(void)
{
    rig r;
    uint8_t h[300];
    rig_open(&r, EI_MODE_ENFORCE, 0);
    syn(&r);
    CU_ASSERT_EQUAL(data(&r, h, make_hello(h, "allowed.example") / 2), EI_ACTION_HOLD);
    ei_pipeline_expire(r.p, r.now + 31ull * 1000000000ull);
    CU_ASSERT_EQUAL(r.s.last.decision.reason, EI_REASON_INCOMPLETE);
    CU_ASSERT_EQUAL(r.s.released[EI_ACTION_DENY], 1);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->flows, 0);
    rig_close(&r);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_allow_and_deny_by_name),
        EI_CASE(test_monitor_computes_the_same_and_lets_through),
        EI_CASE(test_split_hello_is_held_then_released),
        EI_CASE(test_padding_never_decides),
        EI_CASE(test_conflicting_retransmission_denies),
        EI_CASE(test_address_entry_decides_at_syn),
        EI_CASE(test_eviction_and_shutdown_release_held_packets),
        EI_CASE(test_held_limit),
        EI_CASE(test_idle_undecided_flow_expires),
    };
    EI_SUITE("pipeline", cases);
    return ei_unit_run();
}
