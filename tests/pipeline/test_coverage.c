/* Coverage (--coverage all): the egress the inspector does not read is decided at its
 * first packet by address entries (and tcp:// ones) alone, each deny with its own
 * reason, once per exchange; DNS only to the named resolvers; --coverage inspected
 * leaves all of it alone. */
#include <netinet/in.h>
#include <string.h>

#include "egress_inspector/pipeline.h"
#include "unit.h"

static const char rules[] =
    "allow allowed.example\n"
    "allow 203.0.113.250/32\n"      /* anything to it */
    "allow 203.0.113.251/32:5000\n" /* TCP or UDP to one port */
    "allow tcp://db.example:5432\n";

typedef struct {
    ei_pipeline *p;
    ei_policy_set *set;
    ei_dns_cache *cache;
    ei_flow_event last;
    int events;
    uint64_t now, id;
} rig;

static void on_event(void *ctx, const ei_flow_event *ev)
{
    rig *r = ctx;
    r->last = *ev;
    r->events++;
}

static void on_release(void *ctx, uint64_t id, ei_action action)
{
    (void)ctx; (void)id; (void)action;
}

static const uint8_t POD[4] = { 10, 244, 0, 10 };

static void rig_config(ei_pipeline_config *cfg)
{
    ei_pipeline_config_default(cfg);
    cfg->checksums = EI_CHECKSUM_OFF; /* synthetic packets carry no checksums */
    cfg->confirm = false;
    cfg->dest_check = false;
    cfg->ports[0].first = cfg->ports[0].last = 80;
    cfg->ports[1].first = cfg->ports[1].last = 443;
    cfg->nports = 2;
    cfg->quic = EI_QUIC_BLOCK; /* test_quic_pipeline.c reads QUIC */
    CU_ASSERT(ei_addr_parse("10.96.0.10", &cfg->dns_from[0]));
    cfg->dns_from_bits[0] = 32;
    cfg->ndns_from = 1;
}

static void rig_open(rig *r, const ei_pipeline_config *cfg, ei_mode mode)
{
    memset(r, 0, sizeof *r);
    r->set = ei_rules_parse(rules, sizeof rules - 1, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->set);
    ei_dns_cache_config cc;
    ei_dns_cache_config_default(&cc);
    r->cache = ei_dns_cache_new(&cc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->cache);
    r->p = ei_pipeline_new(cfg, r->set, mode, on_event, on_release, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
    ei_pipeline_set_dns(r->p, r->cache, NULL);
    r->now = 1000000000ull;
    ei_addr pod, db;
    memset(&pod, 0, sizeof pod);
    pod.family = 4;
    memcpy(pod.bytes, POD, 4);
    CU_ASSERT(ei_addr_parse("203.0.113.20", &db));
    ei_dns_cache_learn(r->cache, &pod, "db.example", &db, 1, 300, r->now);
}

static void rig_close(rig *r)
{
    ei_pipeline_free(r->p, r->now);
    ei_dns_cache_free(r->cache);
    ei_policy_set_free(r->set);
}

/* One IPv4 packet of protocol proto from a to b, its transport header and payload given
 * whole in l4 (ports, ICMP type and identifier: the caller's). */
static ei_action send_ip(rig *r, uint8_t proto, const uint8_t a[4], const uint8_t b[4],
                         const uint8_t *l4, size_t n)
{
    uint8_t pkt[200];
    memset(pkt, 0, 20);
    pkt[0] = 0x45;
    pkt[3] = (uint8_t)(20 + n);
    pkt[8] = 64;
    pkt[9] = proto;
    memcpy(pkt + 12, a, 4);
    memcpy(pkt + 16, b, 4);
    memcpy(pkt + 20, l4, n);
    r->now += 1000;
    return ei_pipeline_packet(r->p, EI_LINK_RAW, pkt, 20 + n, r->now, ++r->id, 0);
}

static const uint8_t *server(uint8_t last)
{
    static uint8_t addr[8][4];
    static unsigned next;
    uint8_t *s = addr[next++ % 8];
    s[0] = 203; s[1] = 0; s[2] = 113; s[3] = last;
    return s;
}

/* TCP (a SYN, or data when flags say so) from the pod to 203.0.113.last:port. */
static ei_action tcp_to(rig *r, uint8_t last, uint16_t port, uint8_t flags, bool data)
{
    uint8_t t[28] = { 0x9c, 0x40, (uint8_t)(port >> 8), (uint8_t)port, 0, 0, 0x13, 0x88 };
    t[12] = 0x50;
    t[13] = flags;
    memcpy(t + 20, "SSH-2.0-", 8);
    return send_ip(r, IPPROTO_TCP, POD, server(last), t, data ? 28 : 20);
}

static ei_action udp(rig *r, const uint8_t a[4], uint16_t sport, const uint8_t b[4], uint16_t dport)
{
    uint8_t u[12] = { (uint8_t)(sport >> 8), (uint8_t)sport, (uint8_t)(dport >> 8), (uint8_t)dport,
                      0, 12, 0, 0, 'q', 'u', 'i', 'c' };
    return send_ip(r, IPPROTO_UDP, a, b, u, sizeof u);
}

static ei_action icmp(rig *r, const uint8_t a[4], const uint8_t b[4], uint8_t type, uint16_t id)
{
    uint8_t m[16] = { type, 0, 0, 0, (uint8_t)(id >> 8), (uint8_t)id, 0, 1, 'p', 'i', 'n', 'g' };
    return send_ip(r, IPPROTO_ICMP, a, b, m, sizeof m);
}

static void test_tcp_to_other_ports(void)
{
    rig r;
    ei_pipeline_config cfg;
    rig_config(&cfg);
    rig_open(&r, &cfg, EI_MODE_ENFORCE);
    CU_ASSERT_EQUAL(tcp_to(&r, 10, 22, EI_TCP_SYN, false), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_PORT_NOT_INSPECTED);
    CU_ASSERT_EQUAL(r.last.proto, IPPROTO_TCP);
    CU_ASSERT_EQUAL(r.last.dport, 22);
    CU_ASSERT(r.last.enforced);
    CU_ASSERT_EQUAL(tcp_to(&r, 10, 22, EI_TCP_ACK, true), EI_ACTION_DENY); /* the same flow */
    CU_ASSERT_EQUAL(r.events, 1);
    CU_ASSERT_EQUAL(tcp_to(&r, 250, 22, EI_TCP_SYN, false), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_ADDRESS);
    /* a tcp:// entry: to an address its name has, on its port */
    CU_ASSERT_EQUAL(tcp_to(&r, 20, 5432, EI_TCP_SYN, false), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_TCP_NAME);
    CU_ASSERT_EQUAL(tcp_to(&r, 21, 5432, EI_TCP_SYN, false), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_PORT_NOT_INSPECTED);
    /* first seen midstream (data, no SYN): decided at once by the same rule */
    CU_ASSERT_EQUAL(tcp_to(&r, 11, 8443, EI_TCP_ACK, true), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_PORT_NOT_INSPECTED);
    /* an inspected port waits for its message */
    CU_ASSERT_EQUAL(tcp_to(&r, 12, 443, EI_TCP_SYN, false), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(r.events, 5);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->decisions[EI_REASON_PORT_NOT_INSPECTED], 3);
    rig_close(&r);
}

static void test_udp_icmp_and_other_protocols(void)
{
    rig r;
    ei_pipeline_config cfg;
    rig_config(&cfg);
    rig_open(&r, &cfg, EI_MODE_ENFORCE);
    CU_ASSERT_EQUAL(udp(&r, POD, 40000, server(10), 443), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_QUIC_NOT_INSPECTED);
    CU_ASSERT_EQUAL(r.last.proto, IPPROTO_UDP);
    CU_ASSERT_EQUAL(udp(&r, server(10), 443, POD, 40000), EI_ACTION_DENY); /* its reply */
    CU_ASSERT_EQUAL(r.events, 1);
    CU_ASSERT_EQUAL(udp(&r, POD, 40001, server(10), 5000), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_UDP_NOT_INSPECTED);
    CU_ASSERT_EQUAL(udp(&r, POD, 40002, server(251), 5000), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(udp(&r, POD, 40003, server(251), 5001), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(udp(&r, POD, 40004, server(250), 443), EI_ACTION_ALLOW);

    CU_ASSERT_EQUAL(icmp(&r, POD, server(10), 8, 77), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ICMP_NOT_INSPECTED);
    CU_ASSERT_EQUAL(r.last.sport, 77);
    CU_ASSERT_EQUAL(r.last.dport, 0);
    int events = r.events;
    CU_ASSERT_EQUAL(icmp(&r, POD, server(250), 8, 78), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(icmp(&r, server(250), POD, 0, 78), EI_ACTION_ALLOW); /* the echo reply */
    CU_ASSERT_EQUAL(icmp(&r, POD, server(251), 8, 79), EI_ACTION_DENY); /* a port entry: not ICMP */
    CU_ASSERT_EQUAL(icmp(&r, POD, server(10), 3, 0), EI_ACTION_PASS);   /* an error opens nothing */
    CU_ASSERT_EQUAL(icmp(&r, server(9), POD, 0, 80), EI_ACTION_PASS);   /* a reply to nothing */
    CU_ASSERT_EQUAL(r.events, events + 2);

    uint8_t gre[8] = { 0, 0, 0x65, 0x58 };
    CU_ASSERT_EQUAL(send_ip(&r, IPPROTO_GRE, POD, server(10), gre, sizeof gre), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_PROTO_NOT_INSPECTED);
    CU_ASSERT_EQUAL(r.last.proto, IPPROTO_GRE);
    uint8_t sctp[12] = { 0x9c, 0x40, 0x0b, 0x59 };
    CU_ASSERT_EQUAL(send_ip(&r, IPPROTO_SCTP, POD, server(250), sctp, sizeof sctp), EI_ACTION_ALLOW);
    rig_close(&r);
}

static void test_dns_only_to_named_resolvers(void)
{
    static const uint8_t resolver[4] = { 10, 96, 0, 10 }, rogue[4] = { 198, 51, 100, 53 };
    for (int live = 0; live < 2; live++) {
        rig r;
        ei_pipeline_config cfg;
        rig_config(&cfg);
        cfg.live = live;
        if (live)
            cfg.ndns_from = 0;
        rig_open(&r, &cfg, EI_MODE_ENFORCE);
        /* Live, the node rules let DNS to the named resolvers go before the flow queue:
         * what the flow queue gets went elsewhere, whatever its (DNAT'd) address says,
         * and the daemon need not be told the resolvers. */
        if (!live) {
            CU_ASSERT_EQUAL(udp(&r, POD, 40000, resolver, 53), EI_ACTION_PASS);
            CU_ASSERT_EQUAL(r.events, 0);
        }
        CU_ASSERT_EQUAL(udp(&r, POD, 40001, rogue, 53), EI_ACTION_DENY);
        CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_DNS_RESOLVER_NOT_NAMED);
        uint8_t t[20] = { 0x9c, 0x42, 0, 53 };
        t[12] = 0x50;
        t[13] = EI_TCP_SYN;
        CU_ASSERT_EQUAL(send_ip(&r, IPPROTO_TCP, POD, rogue, t, sizeof t), EI_ACTION_DENY);
        CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_DNS_RESOLVER_NOT_NAMED);
        rig_close(&r);
    }
    /* a capture with no resolver named (replay's default): DNS anywhere is left alone;
     * live the node rules then let all of it go, and none reaches the flow queue */
    rig r;
    ei_pipeline_config cfg;
    rig_config(&cfg);
    cfg.ndns_from = 0;
    rig_open(&r, &cfg, EI_MODE_ENFORCE);
    CU_ASSERT_EQUAL(udp(&r, POD, 40001, rogue, 53), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(r.events, 0);
    rig_close(&r);
}

static void test_monitor_and_inspected_only(void)
{
    rig r;
    ei_pipeline_config cfg;
    rig_config(&cfg);
    rig_open(&r, &cfg, EI_MODE_MONITOR);
    CU_ASSERT_EQUAL(udp(&r, POD, 40000, server(10), 443), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.last.decision.verdict, EI_VERDICT_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_QUIC_NOT_INSPECTED);
    CU_ASSERT(!r.last.enforced);
    CU_ASSERT_EQUAL(tcp_to(&r, 10, 22, EI_TCP_SYN, false), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_PORT_NOT_INSPECTED);
    rig_close(&r);

    /* A denied exchange's retries come back (live, nothing of it stays on the node):
     * after a mode change or a reload they are judged afresh, with a line of their own. */
    rig_open(&r, &cfg, EI_MODE_ENFORCE);
    CU_ASSERT_EQUAL(udp(&r, POD, 40000, server(10), 5000), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(udp(&r, POD, 40000, server(10), 5000), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.events, 1);
    ei_pipeline_set_mode(r.p, EI_MODE_MONITOR);
    CU_ASSERT_EQUAL(udp(&r, POD, 40000, server(10), 5000), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.events, 2);
    CU_ASSERT(!r.last.enforced);
    ei_pipeline_set_mode(r.p, EI_MODE_ENFORCE);
    static const char wider[] = "allow 203.0.113.10/32\n";
    ei_policy_set *set = ei_rules_parse(wider, sizeof wider - 1, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT_EQUAL(icmp(&r, POD, server(10), 8, 5), EI_ACTION_DENY);
    ei_pipeline_set_policy(r.p, set);
    CU_ASSERT_EQUAL(icmp(&r, POD, server(10), 8, 5), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_ADDRESS);
    rig_close(&r);
    ei_policy_set_free(set);

    cfg.coverage = EI_COVERAGE_INSPECTED;
    rig_open(&r, &cfg, EI_MODE_ENFORCE);
    CU_ASSERT_EQUAL(udp(&r, POD, 40000, server(10), 443), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(icmp(&r, POD, server(10), 8, 77), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(tcp_to(&r, 10, 22, EI_TCP_SYN, false), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(tcp_to(&r, 10, 22, EI_TCP_ACK, true), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(r.events, 0);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->flows, 0); /* nothing kept of them */
    rig_close(&r);
}

/* Every port, the library's default: TCP is read wherever it goes. */
static void test_every_port_read_by_default(void)
{
    rig r;
    ei_pipeline_config cfg;
    rig_config(&cfg);
    cfg.nports = 0;
    rig_open(&r, &cfg, EI_MODE_ENFORCE);
    CU_ASSERT_EQUAL(tcp_to(&r, 10, 22, EI_TCP_SYN, false), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(tcp_to(&r, 10, 22, EI_TCP_ACK, true), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_NOT_TLS_OR_HTTP);
    rig_close(&r);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_tcp_to_other_ports),
        EI_CASE(test_udp_icmp_and_other_protocols),
        EI_CASE(test_dns_only_to_named_resolvers),
        EI_CASE(test_monitor_and_inspected_only),
        EI_CASE(test_every_port_read_by_default),
    };
    EI_SUITE("coverage", cases);
    return ei_unit_run();
}
