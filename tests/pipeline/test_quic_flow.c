/* QUIC flows through the pipeline, on the RFC 9001 and RFC 9369 client Initials (their
 * ClientHello names example.com): decided as TLS is, held while a lookup runs, the
 * version in the event, --quic block, and what a UDP 443 datagram that is no Initial
 * gets. The fail-closed cases on crafted datagrams are tests/pcaps/quic/. */
#include <netinet/in.h>
#include <string.h>

#include "../parse/quic_vectors.h"
#include "egress_inspector/pipeline.h"
#include "unit.h"

typedef struct {
    ei_pipeline *p;
    ei_policy_set *set;
    ei_dns_cache *cache;
    ei_flow_event last;
    int events, lookups, released[EI_ACTION_COUNT];
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
    (void)id;
    ((rig *)ctx)->released[action]++;
}

static void on_lookup(void *ctx, const char *name)
{
    (void)name;
    ((rig *)ctx)->lookups++;
}

static void rig_open(rig *r, const char *rules, bool dest_check, int quic)
{
    memset(r, 0, sizeof *r);
    r->set = ei_rules_parse(rules, strlen(rules), NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->set);
    ei_dns_cache_config cc;
    ei_dns_cache_config_default(&cc);
    r->cache = ei_dns_cache_new(&cc);
    ei_pipeline_config cfg;
    ei_pipeline_config_default(&cfg);
    cfg.checksums = EI_CHECKSUM_OFF;
    cfg.live = true;
    cfg.dest_check = dest_check;
    cfg.quic = quic;
    r->p = ei_pipeline_new(&cfg, r->set, EI_MODE_ENFORCE, on_event, on_release, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
    ei_pipeline_set_dns(r->p, r->cache, on_lookup);
    r->now = 1000000000ull;
}

static void rig_close(rig *r)
{
    ei_pipeline_free(r->p, r->now);
    ei_dns_cache_free(r->cache);
    ei_policy_set_free(r->set);
}

/* One UDP datagram between the pod 10.244.0.10:40000 and 203.0.113.10:443. */
static ei_action datagram(rig *r, bool from_pod, const uint8_t *payload, size_t n)
{
    static uint8_t pkt[28 + 2400];
    const uint8_t pod[4] = { 10, 244, 0, 10 }, server[4] = { 203, 0, 113, 10 };
    size_t len = 28 + n;
    memset(pkt, 0, 28);
    pkt[0] = 0x45;
    pkt[2] = (uint8_t)(len >> 8);
    pkt[3] = (uint8_t)len;
    pkt[8] = 64;
    pkt[9] = IPPROTO_UDP;
    memcpy(pkt + 12, from_pod ? pod : server, 4);
    memcpy(pkt + 16, from_pod ? server : pod, 4);
    uint16_t sp = from_pod ? 40000 : 443, dp = from_pod ? 443 : 40000;
    pkt[20] = (uint8_t)(sp >> 8); pkt[21] = (uint8_t)sp;
    pkt[22] = (uint8_t)(dp >> 8); pkt[23] = (uint8_t)dp;
    pkt[24] = (uint8_t)((8 + n) >> 8); pkt[25] = (uint8_t)(8 + n);
    memcpy(pkt + 28, payload, n);
    r->now += 1000000;
    return ei_pipeline_packet(r->p, EI_LINK_RAW, pkt, len, r->now, ++r->id, 0);
}

static void test_decided_as_tls_is(void)
{
    rig r;
    rig_open(&r, "allow example.com\n", false, EI_QUIC_INSPECT);
    /* allowed, but kept in the queue (no mark) until the server answers */
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9001_INITIAL, sizeof RFC9001_INITIAL), EI_ACTION_ACCEPT);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_NAME);
    CU_ASSERT_EQUAL(r.last.l7, EI_L7_QUIC);
    CU_ASSERT_EQUAL(r.last.proto, IPPROTO_UDP);
    CU_ASSERT_EQUAL(r.last.quic_version, 1);
    CU_ASSERT_EQUAL(r.last.host_len, 11);
    CU_ASSERT(memcmp(r.last.host, "example.com", 11) == 0);
    CU_ASSERT_EQUAL(r.last.alpn.len, 4);
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9001_INITIAL, sizeof RFC9001_INITIAL), EI_ACTION_ACCEPT);
    CU_ASSERT_EQUAL(datagram(&r, false, RFC9369_INITIAL, 40), EI_ACTION_ALLOW); /* the server's answer */
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9001_INITIAL, sizeof RFC9001_INITIAL), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.events, 1); /* one exchange, one decision */
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->flows_confirmed, 1);
    rig_close(&r);

    /* Before the server answers, an Initial under other keys (another connection ID, or
     * another version) could show it another ClientHello: the allow is revoked. */
    static uint8_t other[sizeof RFC9001_INITIAL];
    memcpy(other, RFC9001_INITIAL, sizeof other);
    other[6] ^= 1; /* a byte of the Destination Connection ID */
    rig_open(&r, "allow example.com\n", false, EI_QUIC_INSPECT);
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9001_INITIAL, sizeof RFC9001_INITIAL), EI_ACTION_ACCEPT);
    CU_ASSERT_EQUAL(datagram(&r, true, other, sizeof other), EI_ACTION_DENY);
    CU_ASSERT(r.last.revoked);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_QUIC_MALFORMED);
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9001_INITIAL, sizeof RFC9001_INITIAL), EI_ACTION_DENY);
    rig_close(&r);
    rig_open(&r, "allow example.com\n", false, EI_QUIC_INSPECT);
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9001_INITIAL, sizeof RFC9001_INITIAL), EI_ACTION_ACCEPT);
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9369_INITIAL, sizeof RFC9369_INITIAL), EI_ACTION_DENY);
    CU_ASSERT(r.last.revoked);
    rig_close(&r);

    rig_open(&r, "allow other.example\n", false, EI_QUIC_INSPECT);
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9369_INITIAL, sizeof RFC9369_INITIAL), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_NAME_NOT_ALLOWED);
    CU_ASSERT_EQUAL(r.last.quic_version, 0x6b3343cf);
    CU_ASSERT(r.last.enforced);
    rig_close(&r);
}

/* The name is allowed, its addresses unknown: the datagram is held while the inspector
 * looks it up, and the decision keeps what the Initial said. */
static void test_held_for_a_lookup(void)
{
    rig r;
    rig_open(&r, "allow example.com\n", true, EI_QUIC_INSPECT);
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9001_INITIAL, sizeof RFC9001_INITIAL), EI_ACTION_HOLD);
    CU_ASSERT_EQUAL(r.lookups, 1);
    CU_ASSERT_EQUAL(datagram(&r, false, (const uint8_t *)"server", 6), EI_ACTION_PASS);
    ei_addr pod, server;
    CU_ASSERT(ei_addr_parse("10.244.0.10", &pod));
    CU_ASSERT(ei_addr_parse("203.0.113.10", &server));
    ei_dns_cache_learn(r.cache, &pod, "example.com", &server, 1, 300, r.now);
    ei_pipeline_dns_done(r.p, "example.com", r.now);
    CU_ASSERT_EQUAL(r.events, 1);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_NAME);
    CU_ASSERT_EQUAL(r.last.l7, EI_L7_QUIC);
    CU_ASSERT_EQUAL(r.last.quic_version, 1);
    CU_ASSERT_EQUAL(r.released[EI_ACTION_ACCEPT], 1); /* allowed; confirmed by the server's answer */
    rig_close(&r);
}

static void test_no_initial_and_block(void)
{
    rig r;
    static uint8_t junk[1200];
    memset(junk, 0x41, sizeof junk);
    rig_open(&r, "allow example.com\n", false, EI_QUIC_INSPECT);
    CU_ASSERT_EQUAL(datagram(&r, true, junk, sizeof junk), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_QUIC_NOT_INITIAL);
    CU_ASSERT_EQUAL(r.last.l7, EI_L7_QUIC);
    rig_close(&r);

    rig_open(&r, "allow example.com\n", false, EI_QUIC_BLOCK);
    CU_ASSERT_EQUAL(datagram(&r, true, RFC9001_INITIAL, sizeof RFC9001_INITIAL), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_QUIC_NOT_INSPECTED);
    rig_close(&r);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_decided_as_tls_is),
        EI_CASE(test_held_for_a_lookup),
        EI_CASE(test_no_initial_and_block),
    };
    EI_SUITE("quic_flow", cases);
    return ei_unit_run();
}
