/* The whole pipeline on sequences of packets of a few flows.
 *
 * The input is a list of records: flow (1 byte: which of 4 client 5-tuples, IPv4 or
 * IPv6, the direction, a long pause, "the lookups answer now", "a DNS answer", "not TCP"),
 * TCP flags (1), sequence offset from the flow's ISN (2), payload length (1), payload. The
 * harness builds the IP and TCP (or UDP, for DNS answers from port 53; or, not TCP, UDP,
 * ICMP or GRE as the flags byte says, which meet the coverage rules) headers, so that the
 * fuzzer spends its time on what matters (reassembly, holding, parsing, learning,
 * waiting for lookups, deciding) rather than on checksums and header lengths. Checked:
 * every packet gets exactly one final verdict (answered at once, or released later, at
 * the latest when the pipeline is freed), and held counts never go negative. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/pipeline.h"
#include "fuzz.h"


int LLVMFuzzerInitialize(int *argc, char ***argv);
static ei_policy_set *policy;
static unsigned long verdicts, released_twice;
static unsigned char seen[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char rules[] = "allow allowed.example\nallow *.allowed.example\nallow 203.0.113.250/32:22\n"
                                "allow tcp://db.allowed.example:443\nallow tcp://db.allowed.example:22\n";
    policy = ei_rules_parse(rules, sizeof rules - 1, NULL, NULL, NULL);
    CHECK(policy != NULL);
    return 0;
}

static unsigned long lookups;

static void on_lookup(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    lookups++;
}

static void on_release(void *ctx, uint64_t id, ei_action action)
{
    (void)ctx;
    CHECK(action == EI_ACTION_ALLOW || action == EI_ACTION_ACCEPT || action == EI_ACTION_INSPECT ||
          action == EI_ACTION_DENY || action == EI_ACTION_PASS);
    CHECK(id < sizeof seen);
    if (seen[id]++)
        released_twice++;
    verdicts++;
}

static size_t build(uint8_t *pkt, unsigned flow, uint8_t flags, uint32_t seq, const uint8_t *payload,
                    size_t len)
{
    bool v6 = flow & 4, from_server = flow & 8, dns = flow & 0x40, other = (flow & 0x80) && !dns;
    unsigned which = flow & 3;
    uint8_t client[16] = { 0 }, server[16] = { 0 };
    uint16_t cport = (uint16_t)(40000 + which), sport = which == 3 ? 22 : 443;
    if (v6) {
        client[0] = 0xfd; client[15] = 0x10;
        server[0] = 0x20; server[1] = 0x01; server[15] = which == 3 ? 0xfa : 0x10;
    } else {
        client[0] = 10; client[1] = 244; client[3] = 10;
        server[0] = 203; server[2] = 113; server[3] = which == 3 ? 250 : 10;
    }
    if (dns) { /* the cluster resolver answering the client */
        memset(server, 0, sizeof server);
        server[0] = v6 ? 0xfd : 10;
        server[v6 ? 15 : 3] = 53;
        from_server = true;
    }
    const uint8_t *src = from_server ? server : client, *dst = from_server ? client : server;
    uint8_t proto = dns ? IPPROTO_UDP : IPPROTO_TCP;
    if (other)
        proto = (flags & 1) ? IPPROTO_UDP : (flags & 2) ? (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP) : IPPROTO_GRE;
    size_t ip = v6 ? 40 : 20, l4 = dns || other ? 8 : 20, n = ip + l4 + len;
    memset(pkt, 0, ip + 20);
    if (v6) {
        pkt[0] = 0x60;
        pkt[4] = (uint8_t)((l4 + len) >> 8);
        pkt[5] = (uint8_t)(l4 + len);
        pkt[6] = proto;
        pkt[7] = 64;
        memcpy(pkt + 8, src, 16);
        memcpy(pkt + 24, dst, 16);
    } else {
        pkt[0] = 0x45;
        pkt[2] = (uint8_t)(n >> 8);
        pkt[3] = (uint8_t)n;
        pkt[8] = 64;
        pkt[9] = proto;
        memcpy(pkt + 12, src, 4);
        memcpy(pkt + 16, dst, 4);
    }
    uint8_t *t = pkt + ip;
    if (dns) {
        memset(t, 0, 8);
        t[1] = 53;
        t[2] = (uint8_t)(cport >> 8); t[3] = (uint8_t)cport;
        t[4] = (uint8_t)((8 + len) >> 8); t[5] = (uint8_t)(8 + len);
        memcpy(t + 8, payload, len);
        return n;
    }
    uint16_t sp = from_server ? sport : cport, dp = from_server ? cport : sport;
    if (other) { /* UDP ports; ICMP type (a query, its reply, or what the flags say) and id */
        memset(t, 0, 8);
        t[0] = (uint8_t)(sp >> 8); t[1] = (uint8_t)sp; t[2] = (uint8_t)(dp >> 8); t[3] = (uint8_t)dp;
        if (proto == IPPROTO_UDP) {
            t[4] = (uint8_t)((8 + len) >> 8); t[5] = (uint8_t)(8 + len);
        } else if (proto != IPPROTO_GRE) {
            t[0] = flags & 4 ? (uint8_t)(flags >> 3) : from_server ? (v6 ? 129 : 0) : (v6 ? 128 : 8);
            t[1] = 0;
            t[4] = (uint8_t)(cport >> 8); t[5] = (uint8_t)cport;
        }
        memcpy(t + 8, payload, len);
        return n;
    }
    t[0] = (uint8_t)(sp >> 8); t[1] = (uint8_t)sp; t[2] = (uint8_t)(dp >> 8); t[3] = (uint8_t)dp;
    t[4] = (uint8_t)(seq >> 24); t[5] = (uint8_t)(seq >> 16); t[6] = (uint8_t)(seq >> 8); t[7] = (uint8_t)seq;
    t[12] = 0x50;
    t[13] = flags;
    memcpy(t + 20, payload, len);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ei_pipeline_config cfg;
    ei_pipeline_config_default(&cfg);
    cfg.checksums = EI_CHECKSUM_OFF; /* synthetic packets carry no checksums */
    cfg.max_flows = 3; /* small, so that eviction is exercised too */
    cfg.max_held_packets = 4;
    cfg.reassembly_bytes = 1024;
    cfg.max_dns_waits = 2;
    cfg.ports[0].first = cfg.ports[0].last = 443; /* 22 is not read: coverage decides it */
    cfg.nports = 1;
    ei_pipeline *p = ei_pipeline_new(&cfg, policy, EI_MODE_ENFORCE, NULL, on_release, NULL);
    CHECK(p != NULL);
    ei_dns_cache_config cc;
    ei_dns_cache_config_default(&cc);
    cc.max_entries = 8;
    cc.max_per_workload = 2;
    cc.min_ttl_s = 1;
    ei_dns_cache *cache = ei_dns_cache_new(&cc);
    CHECK(cache != NULL);
    ei_pipeline_set_dns(p, cache, on_lookup);
    memset(seen, 0, sizeof seen);
    verdicts = released_twice = lookups = 0;
    uint8_t pkt[40 + 20 + 256];
    uint64_t id = 0, now = 1000000000ull;
    size_t off = 0;
    while (off + 5 <= size && id < sizeof seen - 1) {
        unsigned flow = data[off];
        uint8_t flags = data[off + 1];
        uint32_t seq = 1000u + (uint32_t)(data[off + 2] << 8 | data[off + 3]);
        size_t len = data[off + 4];
        off += 5;
        if (len > size - off)
            len = size - off;
        size_t n = build(pkt, flow, flags, seq, data + off, len);
        off += len;
        now += (flow & 0x10) ? 40000000000ull : 1000000ull; /* sometimes let flows expire */
        ei_action a = ei_pipeline_packet(p, EI_LINK_RAW, pkt, n, now, ++id, 0);
        if (a != EI_ACTION_HOLD) {
            CHECK(!seen[id]);
            seen[id] = 1;
            verdicts++;
        }
        CHECK(ei_pipeline_counters(p)->held <= id);
        if (flow & 0x20) { /* the lookups answer: allowed.example at .10, db at .20 */
            ei_addr a10 = { .family = 4, .bytes = { 203, 0, 113, 10 } };
            ei_addr a20 = { .family = 4, .bytes = { 203, 0, 113, 20 } };
            ei_dns_cache_learn(cache, NULL, "allowed.example", &a10, 1, 1, now);
            ei_dns_cache_learn(cache, NULL, "db.allowed.example", &a20, 1, 1, now);
            ei_pipeline_dns_done(p, "allowed.example", now);
            ei_pipeline_dns_done(p, "db.allowed.example", now);
        }
        CHECK(ei_pipeline_counters(p)->dns_waiting <= lookups);
    }
    ei_pipeline_free(p, now);
    ei_dns_cache_free(cache);
    CHECK(released_twice == 0);
    CHECK(verdicts == id); /* every packet exactly one final verdict */
    return 0;
}
