/* DNS: the answer parser on hand-built messages (every truncation, pointer loops, lying
 * lengths), the cache's bounds and TTLs, and the pipeline's destination binding: learned
 * answers, waits for a lookup, timeouts, tcp:// entries at SYN time. */
#include <netinet/in.h>
#include <string.h>

#include "egress_inspector/dns.h"
#include "egress_inspector/dns_cache.h"
#include "egress_inspector/pipeline.h"
#include "hello.h"
#include "unit.h"

#define S 1000000000ull

/* ---- a small DNS message writer ---- */

typedef struct {
    uint8_t b[1024];
    size_t n;
} msg;

static void put8(msg *m, unsigned v) { m->b[m->n++] = (uint8_t)v; }
static void put16(msg *m, unsigned v) { put8(m, v >> 8); put8(m, v & 0xff); }
static void put32(msg *m, uint32_t v) { put16(m, v >> 16); put16(m, v & 0xffff); }

/* Writes a name in labels; returns its offset (for pointers to it). */
static size_t put_name(msg *m, const char *name)
{
    size_t at = m->n;
    while (*name) {
        size_t l = strcspn(name, ".");
        put8(m, (unsigned)l);
        memcpy(m->b + m->n, name, l);
        m->n += l;
        name += l + (name[l] == '.');
    }
    put8(m, 0);
    return at;
}

static void put_ptr(msg *m, size_t off) { put16(m, 0xc000u | (unsigned)off); }

static void header(msg *m, unsigned flags, unsigned qd, unsigned an)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, flags);
    put16(m, qd);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
}

/* Header and question; returns the question name's offset. */
static size_t question(msg *m, const char *qname, unsigned an, unsigned qtype)
{
    header(m, 0x8180, 1, an);
    size_t q = put_name(m, qname);
    put16(m, qtype);
    put16(m, 1);
    return q;
}

static void rr_head(msg *m, unsigned type, uint32_t ttl, unsigned rdlen)
{
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
    put16(m, rdlen);
}

static void rr_a(msg *m, size_t owner, uint32_t ttl, const uint8_t ip[4])
{
    put_ptr(m, owner);
    rr_head(m, 1, ttl, 4);
    memcpy(m->b + m->n, ip, 4);
    m->n += 4;
}

static const uint8_t IP10[4] = { 203, 0, 113, 10 }, IP99[4] = { 203, 0, 113, 99 };

/* ---- parser ---- */

static void test_parse_a(void)
{
    msg m;
    size_t q = question(&m, "Allowed.EXAMPLE", 1, 1);
    rr_a(&m, q, 300, IP10);
    ei_dns_answer a;
    CU_ASSERT_EQUAL_FATAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_OK);
    CU_ASSERT_EQUAL(a.chain_len, 1);
    CU_ASSERT_STRING_EQUAL(a.chain[0], "allowed.example");
    CU_ASSERT_EQUAL(a.naddrs, 1);
    CU_ASSERT_EQUAL(a.addrs[0].family, 4);
    CU_ASSERT_EQUAL(memcmp(a.addrs[0].bytes, IP10, 4), 0);
    CU_ASSERT_EQUAL(a.ttl, 300);
    CU_ASSERT_EQUAL(a.rcode, 0);
    CU_ASSERT_EQUAL(a.qtype, 1);
}

static void test_parse_cname_chain_and_compression(void)
{
    msg m;
    size_t q = question(&m, "www.allowed.example", 3, 1);
    put_ptr(&m, q);
    rr_head(&m, 5, 300, 0);
    size_t rdlen_at = m.n - 2, start = m.n;
    size_t edge = put_name(&m, "edge.cdn.test");
    m.b[rdlen_at + 1] = (uint8_t)(m.n - start);
    put_ptr(&m, edge);
    rr_head(&m, 5, 60, 6);
    size_t pop = m.n;
    put8(&m, 3);
    memcpy(m.b + m.n, "pop", 3);
    m.n += 3;
    put_ptr(&m, edge + 5); /* "cdn.test" inside edge.cdn.test */
    rr_a(&m, pop, 20, IP10);
    ei_dns_answer a;
    CU_ASSERT_EQUAL_FATAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_OK);
    CU_ASSERT_EQUAL_FATAL(a.chain_len, 3);
    CU_ASSERT_STRING_EQUAL(a.chain[1], "edge.cdn.test");
    CU_ASSERT_STRING_EQUAL(a.chain[2], "pop.cdn.test");
    CU_ASSERT_EQUAL(a.naddrs, 1);
    CU_ASSERT_EQUAL(a.ttl, 20);

    /* Every shorter prefix is refused, never half-read. */
    for (size_t cut = 0; cut < m.n; cut++)
        CU_ASSERT_EQUAL(ei_dns_parse_response(m.b, cut, &a), EI_PARSE_MALFORMED);
}

/* DNS over TCP: the 2-byte length frames the message; one that does not end in the
 * segment is not read, and bytes after it are left alone. */
static void test_tcp_framing(void)
{
    msg m;
    size_t q = question(&m, "allowed.example", 1, 1);
    rr_a(&m, q, 300, IP10);
    uint8_t seg[1100];
    seg[0] = (uint8_t)(m.n >> 8);
    seg[1] = (uint8_t)m.n;
    memcpy(seg + 2, m.b, m.n);
    seg[m.n + 2] = 0xee; /* the start of a second message */
    ei_view msg_view;
    CU_ASSERT_EQUAL_FATAL(ei_dns_tcp_message((ei_view){ seg, m.n + 3 }, &msg_view), EI_PARSE_OK);
    CU_ASSERT_EQUAL(msg_view.len, m.n);
    CU_ASSERT_PTR_EQUAL(msg_view.ptr, seg + 2);
    ei_dns_answer a;
    CU_ASSERT_EQUAL(ei_dns_parse_response(msg_view.ptr, msg_view.len, &a), EI_PARSE_OK);
    CU_ASSERT_EQUAL(ei_dns_tcp_message((ei_view){ seg, m.n + 2 }, &msg_view), EI_PARSE_OK);
    /* one byte short, and every shorter cut, down to half a length */
    for (size_t cut = m.n + 1; cut > 0; cut--) {
        CU_ASSERT_EQUAL(ei_dns_tcp_message((ei_view){ seg, cut }, &msg_view), EI_PARSE_NEED_MORE);
        CU_ASSERT_EQUAL(msg_view.len, 0);
    }
    CU_ASSERT_EQUAL(ei_dns_tcp_message((ei_view){ NULL, 0 }, &msg_view), EI_PARSE_NEED_MORE);
}

static void test_parse_refuses_loops_and_lies(void)
{
    msg m;
    ei_dns_answer a;
    /* A record name that points at itself. */
    question(&m, "allowed.example", 1, 1);
    size_t self = m.n;
    put_ptr(&m, self);
    rr_head(&m, 1, 300, 4);
    memcpy(m.b + m.n, IP10, 4);
    m.n += 4;
    CU_ASSERT_EQUAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(a.problem, EI_DNS_BAD_NAME);

    /* A pointer forward, past the end. */
    question(&m, "allowed.example", 1, 1);
    put_ptr(&m, 0x3fff);
    rr_head(&m, 1, 300, 4);
    memcpy(m.b + m.n, IP10, 4);
    m.n += 4;
    CU_ASSERT_EQUAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_MALFORMED);

    /* An A record 5 bytes long for the name asked about. */
    size_t q = question(&m, "allowed.example", 1, 1);
    put_ptr(&m, q);
    rr_head(&m, 1, 300, 5);
    memset(m.b + m.n, 1, 5);
    m.n += 5;
    CU_ASSERT_EQUAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(a.problem, EI_DNS_BAD_RDATA);

    /* RDLENGTH past the end. */
    q = question(&m, "allowed.example", 1, 1);
    put_ptr(&m, q);
    rr_head(&m, 1, 300, 400);
    CU_ASSERT_EQUAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(a.problem, EI_DNS_TRUNCATED);

    /* A query, not an answer; two questions. */
    header(&m, 0x0100, 1, 0);
    put_name(&m, "allowed.example");
    put32(&m, 0x00010001);
    CU_ASSERT_EQUAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(a.problem, EI_DNS_NOT_RESPONSE);
    header(&m, 0x8180, 2, 0);
    CU_ASSERT_EQUAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(a.problem, EI_DNS_BAD_QUESTION);
}

static void test_parse_chain_bound(void)
{
    msg m;
    size_t owner = question(&m, "c0.test", 11, 1);
    for (int i = 1; i <= 11; i++) {
        char next[16];
        snprintf(next, sizeof next, "c%d.test", i);
        put_ptr(&m, owner);
        rr_head(&m, 5, 300, (unsigned)strlen(next) + 2);
        owner = put_name(&m, next);
    }
    ei_dns_answer a;
    CU_ASSERT_EQUAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(a.problem, EI_DNS_CHAIN_TOO_LONG);
}

static void test_parse_teaches_only_about_the_question(void)
{
    msg m;
    ei_dns_answer a;
    /* An address for another name than the one asked about binds nothing. */
    question(&m, "allowed.example", 1, 1);
    size_t other = put_name(&m, "evil.test");
    rr_head(&m, 1, 300, 4);
    memcpy(m.b + m.n, IP99, 4);
    m.n += 4;
    (void)other;
    CU_ASSERT_EQUAL_FATAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_OK);
    CU_ASSERT_EQUAL(a.naddrs, 0);

    /* One label holding a dot is not two labels. */
    header(&m, 0x8180, 1, 1);
    put8(&m, 15);
    memcpy(m.b + m.n, "allowed.example", 15);
    m.n += 15;
    put8(&m, 0);
    put32(&m, 0x00010001);
    rr_a(&m, 12, 300, IP99);
    CU_ASSERT_EQUAL_FATAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_OK);
    CU_ASSERT_EQUAL(a.chain_len, 0);

    /* NXDOMAIN: fine, and empty. */
    header(&m, 0x8183, 1, 0);
    put_name(&m, "allowed.example");
    put32(&m, 0x00010001);
    CU_ASSERT_EQUAL_FATAL(ei_dns_parse_response(m.b, m.n, &a), EI_PARSE_OK);
    CU_ASSERT_EQUAL(a.rcode, 3);
    CU_ASSERT_EQUAL(a.naddrs, 0);
    CU_ASSERT_EQUAL(a.chain_len, 1);
}

/* ---- cache ---- */

static ei_addr v4(const uint8_t ip[4])
{
    ei_addr a;
    memset(&a, 0, sizeof a);
    a.family = 4;
    memcpy(a.bytes, ip, 4);
    return a;
}

static const uint8_t POD1[4] = { 10, 244, 0, 10 }, POD2[4] = { 10, 244, 0, 11 };

static ei_dns_cache *cache_with(uint32_t entries, uint32_t per_workload, uint32_t min_ttl,
                                uint32_t max_ttl)
{
    ei_dns_cache_config cfg;
    ei_dns_cache_config_default(&cfg);
    cfg.max_entries = entries;
    cfg.max_per_workload = per_workload;
    cfg.min_ttl_s = min_ttl;
    cfg.max_ttl_s = max_ttl;
    ei_dns_cache *c = ei_dns_cache_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    return c;
}

static void test_cache_binds_per_workload_and_expires(void)
{
    ei_dns_cache *c = cache_with(100, 10, 1, 10);
    ei_addr w1 = v4(POD1), w2 = v4(POD2), a10 = v4(IP10), a99 = v4(IP99);
    uint64_t t = 1000 * S;
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "allowed.example", &a10, t), EI_BIND_UNKNOWN);
    ei_dns_cache_learn(c, &w1, "allowed.example", &a10, 1, 300, t); /* clamped to 10 s */
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "allowed.example", &a10, t), EI_BIND_YES);
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "allowed.example", &a99, t), EI_BIND_NO);
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w2, "allowed.example", &a10, t), EI_BIND_UNKNOWN);
    /* A second answer adds its address; both hold within their TTLs. */
    ei_dns_cache_learn(c, &w1, "allowed.example", &a99, 1, 5, t + 2 * S);
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "allowed.example", &a10, t + 3 * S), EI_BIND_YES);
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "allowed.example", &a99, t + 3 * S), EI_BIND_YES);
    /* .99 expires at t+7, .10 at t+10; then nothing is known. */
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "allowed.example", &a99, t + 8 * S), EI_BIND_NO);
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "allowed.example", &a10, t + 8 * S), EI_BIND_YES);
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "allowed.example", &a10, t + 11 * S), EI_BIND_UNKNOWN);
    ei_dns_cache_stats st;
    ei_dns_cache_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.expired, 1);
    CU_ASSERT_EQUAL(st.entries, 0);
    /* The inspector's own bindings serve every workload. */
    ei_dns_cache_learn(c, NULL, "api.allowed.example", &a10, 1, 5, t);
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w2, "api.allowed.example", &a10, t), EI_BIND_YES);
    CU_ASSERT(ei_dns_cache_remaining(c, "api.allowed.example", t) >= 4);
    ei_dns_cache_free(c);
}

static void test_cache_bounds(void)
{
    ei_dns_cache *c = cache_with(3, 2, 30, 3600);
    ei_addr w1 = v4(POD1), w2 = v4(POD2), a10 = v4(IP10);
    uint64_t t = 1000 * S;
    ei_dns_cache_learn(c, &w1, "a.example", &a10, 1, 60, t);
    ei_dns_cache_learn(c, &w1, "b.example", &a10, 1, 60, t);
    ei_dns_cache_learn(c, &w1, "c.example", &a10, 1, 60, t); /* w1 at its bound: a goes */
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "a.example", &a10, t), EI_BIND_UNKNOWN);
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w1, "c.example", &a10, t), EI_BIND_YES);
    ei_dns_cache_learn(c, &w2, "d.example", &a10, 1, 60, t);
    ei_dns_cache_learn(c, &w2, "e.example", &a10, 1, 60, t); /* the cache is full: LRU goes */
    ei_dns_cache_stats st;
    ei_dns_cache_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.evicted, 2);
    CU_ASSERT_EQUAL(st.entries, 3);
    /* Pinned names are neither evicted nor expired. */
    CU_ASSERT_TRUE(ei_dns_cache_pin(c, "db.example", &a10));
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%d.example", i);
        ei_dns_cache_learn(c, &w1, name, &a10, 1, 60, t);
    }
    CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w2, "db.example", &a10, t + 100000 * S), EI_BIND_YES);
    CU_ASSERT_EQUAL(ei_dns_cache_remaining(c, "db.example", t), UINT32_MAX);
    ei_dns_cache_free(c);
}

/* Found by fuzz_dns: a full entry (16 addresses, long TTL) then an answer of 16 other
 * addresses with a short TTL; the answer's addresses used to replace one another. */
static void test_cache_new_answer_keeps_all_its_addresses(void)
{
    ei_dns_cache *c = cache_with(10, 10, 1, 3600);
    ei_addr w = v4(POD1), old[EI_DNS_CACHE_ADDRS], fresh[EI_DNS_CACHE_ADDRS];
    for (int i = 0; i < EI_DNS_CACHE_ADDRS; i++) {
        const uint8_t a[4] = { 198, 51, 100, (uint8_t)i }, b[4] = { 203, 0, 113, (uint8_t)i };
        old[i] = v4(a);
        fresh[i] = v4(b);
    }
    ei_dns_cache_learn(c, &w, "cdn.example", old, EI_DNS_CACHE_ADDRS, 3600, 1000 * S);
    ei_dns_cache_learn(c, &w, "cdn.example", fresh, EI_DNS_CACHE_ADDRS, 5, 1001 * S);
    for (int i = 0; i < EI_DNS_CACHE_ADDRS; i++)
        CU_ASSERT_EQUAL(ei_dns_cache_check(c, &w, "cdn.example", &fresh[i], 1001 * S), EI_BIND_YES);
    ei_dns_cache_free(c);
}

/* ---- the pipeline ---- */

static const char rules[] =
    "allow allowed.example\n"
    "allow *.allowed.example\n"
    "allow 203.0.113.250/32:22\n"
    "allow tcp://db.allowed.example:5432\n";

typedef struct {
    ei_pipeline *p;
    ei_policy_set *set;
    ei_dns_cache *cache;
    ei_flow_event last;
    int events;
    int released[EI_ACTION_COUNT];
    char looked_up[8][EI_NAME_MAX + 1];
    int lookups;
    uint64_t now, id;
    uint16_t sport;
    uint32_t cseq;
} rig;

static void on_event(void *ctx, const ei_flow_event *ev)
{
    rig *r = ctx;
    r->last = *ev;
    r->last.host = NULL;
    r->events++;
}

static void on_release(void *ctx, uint64_t id, ei_action action)
{
    rig *r = ctx;
    (void)id;
    r->released[action]++;
}

static void on_lookup(void *ctx, const char *name)
{
    rig *r = ctx;
    if (r->lookups < 8)
        snprintf(r->looked_up[r->lookups], EI_NAME_MAX + 1, "%s", name);
    r->lookups++;
}

/* The rigs' pipeline: synthetic packets carry no checksums, and the confirmation of an
 * allow by the server is tests/pipeline/test_stream.c's. */
static void rig_config(ei_pipeline_config *cfg, bool live)
{
    ei_pipeline_config_default(cfg);
    cfg->checksums = EI_CHECKSUM_OFF;
    cfg->confirm = false;
    cfg->live = live;
}

static void rig_open_with(rig *r, const ei_pipeline_config *cfg, bool lookups, ei_mode mode)
{
    memset(r, 0, sizeof *r);
    r->set = ei_rules_parse(rules, sizeof rules - 1, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->set);
    r->cache = cache_with(1000, 100, 30, 3600);
    r->p = ei_pipeline_new(cfg, r->set, mode, on_event, on_release, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
    ei_pipeline_set_dns(r->p, r->cache, lookups ? on_lookup : NULL);
    r->now = 1000 * S;
    r->sport = 40000;
}

static void rig_open(rig *r, bool live, bool lookups, ei_mode mode, uint16_t max_waits)
{
    ei_pipeline_config cfg;
    rig_config(&cfg, live);
    if (max_waits)
        cfg.max_dns_waits = max_waits;
    rig_open_with(r, &cfg, lookups, mode);
}

static void rig_close(rig *r)
{
    ei_pipeline_free(r->p, r->now);
    ei_dns_cache_free(r->cache);
    ei_policy_set_free(r->set);
}

/* An IPv4 packet: TCP (proto 6) or UDP (17) with the given payload. */
static ei_action send_ip(rig *r, uint8_t proto, const uint8_t src[4], uint16_t sp,
                         const uint8_t dst[4], uint16_t dp, uint8_t flags, uint32_t seq,
                         const void *data, size_t len)
{
    static uint8_t pkt[2000];
    size_t l4 = proto == IPPROTO_TCP ? 20 : 8, n = 20 + l4 + len;
    memset(pkt, 0, 20 + l4);
    pkt[0] = 0x45;
    pkt[2] = (uint8_t)(n >> 8);
    pkt[3] = (uint8_t)n;
    pkt[8] = 64;
    pkt[9] = proto;
    memcpy(pkt + 12, src, 4);
    memcpy(pkt + 16, dst, 4);
    pkt[20] = (uint8_t)(sp >> 8); pkt[21] = (uint8_t)sp;
    pkt[22] = (uint8_t)(dp >> 8); pkt[23] = (uint8_t)dp;
    if (proto == IPPROTO_TCP) {
        pkt[24] = (uint8_t)(seq >> 24); pkt[25] = (uint8_t)(seq >> 16);
        pkt[26] = (uint8_t)(seq >> 8); pkt[27] = (uint8_t)seq;
        pkt[32] = 0x50;
        pkt[33] = flags;
    } else {
        pkt[24] = (uint8_t)((8 + len) >> 8);
        pkt[25] = (uint8_t)(8 + len);
    }
    if (len > 0)
        memcpy(pkt + 20 + l4, data, len);
    r->now += 1000;
    return ei_pipeline_packet(r->p, EI_LINK_RAW, pkt, n, r->now, ++r->id, 0);
}

static const uint8_t DNS_SERVER[4] = { 10, 96, 0, 10 };

/* The workload's question for name (type A), from port 53000 to a resolver. */
static ei_action ask_of(rig *r, const uint8_t from[4], const uint8_t resolver[4], const char *name)
{
    msg m;
    header(&m, 0x0100, 1, 0);
    put_name(&m, name);
    put16(&m, 1);
    put16(&m, 1);
    return send_ip(r, IPPROTO_UDP, from, 53000, resolver, 53, 0, 0, m.b, m.n);
}

static ei_action ask(rig *r, const uint8_t from[4], const char *name)
{
    return ask_of(r, from, DNS_SERVER, name);
}

/* The resolver's answer to it, without the question (an unasked answer). */
static ei_action answer_only(rig *r, const uint8_t from[4], const uint8_t to[4], const char *name,
                             const uint8_t ip[4])
{
    msg m;
    size_t q = question(&m, name, 1, 1);
    rr_a(&m, q, 300, ip);
    return send_ip(r, IPPROTO_UDP, from, 53, to, 53000, 0, 0, m.b, m.n);
}

/* The workload asks, the resolver answers. */
static ei_action answer(rig *r, const uint8_t to[4], const char *name, const uint8_t ip[4])
{
    CU_ASSERT_EQUAL(ask(r, to, name), EI_ACTION_PASS);
    return answer_only(r, DNS_SERVER, to, name, ip);
}

/* The client's SYN (its action is returned), then the server's SYN-ACK, which the
 * daemon's queue sees too. The server's ISN is chosen so that the acknowledgement field
 * send_ip leaves at zero acknowledges exactly the SYN-ACK. */
static ei_action syn_to(rig *r, const uint8_t dst[4], uint16_t dport)
{
    r->sport++;
    r->cseq = 7000;
    ei_action a = send_ip(r, IPPROTO_TCP, POD1, r->sport, dst, dport, EI_TCP_SYN, r->cseq++, NULL, 0);
    static uint8_t synack[40];
    memset(synack, 0, sizeof synack);
    synack[0] = 0x45;
    synack[3] = 40;
    synack[8] = 64;
    synack[9] = IPPROTO_TCP;
    memcpy(synack + 12, dst, 4);
    memcpy(synack + 16, POD1, 4);
    synack[20] = (uint8_t)(dport >> 8); synack[21] = (uint8_t)dport;
    synack[22] = (uint8_t)(r->sport >> 8); synack[23] = (uint8_t)r->sport;
    memset(synack + 24, 0xff, 4); /* ISN 0xffffffff */
    synack[28] = (uint8_t)(r->cseq >> 24); synack[29] = (uint8_t)(r->cseq >> 16);
    synack[30] = (uint8_t)(r->cseq >> 8); synack[31] = (uint8_t)r->cseq;
    synack[32] = 0x50;
    synack[33] = EI_TCP_SYN | EI_TCP_ACK;
    r->now += 1000;
    ei_action server = ei_pipeline_packet(r->p, EI_LINK_RAW, synack, sizeof synack, r->now, ++r->id, 0);
    CU_ASSERT(server != EI_ACTION_HOLD && server != EI_ACTION_DROP);
    return a;
}

static ei_action data_to(rig *r, const uint8_t dst[4], uint16_t dport, const void *d, size_t len)
{
    ei_action a = send_ip(r, IPPROTO_TCP, POD1, r->sport, dst, dport, EI_TCP_ACK | EI_TCP_PSH,
                          r->cseq, d, len);
    r->cseq += (uint32_t)len;
    return a;
}

static ei_action tls_flow(rig *r, const uint8_t dst[4], const char *name)
{
    uint8_t h[512];
    size_t n = make_hello(h, name);
    CU_ASSERT_EQUAL(syn_to(r, dst, 443), EI_ACTION_PASS);
    return data_to(r, dst, 443, h, n);
}

static void test_capture_answers_bind(void)
{
    rig r;
    rig_open(&r, false, false, EI_MODE_ENFORCE, 0);
    CU_ASSERT_EQUAL(answer(&r, POD1, "allowed.example", IP10), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_answers, 1);
    CU_ASSERT_EQUAL(tls_flow(&r, IP10, "allowed.example"), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_NAME);
    CU_ASSERT_EQUAL(tls_flow(&r, IP99, "allowed.example"), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_SNI_IP_MISMATCH);
    /* No answer for this name and no way to look it up (replay): denied. */
    CU_ASSERT_EQUAL(tls_flow(&r, IP10, "api.allowed.example"), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_DNS_UNRESOLVED);
    /* A malformed answer passes and teaches nothing. */
    uint8_t junk[12] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0 };
    CU_ASSERT_EQUAL(send_ip(&r, IPPROTO_UDP, DNS_SERVER, 53, POD1, 53000, 0, 0, junk, 12), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_malformed[EI_DNS_TRUNCATED], 1);
    rig_close(&r);
}

static void test_live_answers_only_from_the_answer_queue(void)
{
    /* On a flow queue, a packet from port 53 is the workload's own: it teaches nothing.
     * And a question there went to no named resolver (the node rules let those go
     * before the flow queue): with --coverage all it is denied. */
    rig r;
    rig_open(&r, true, false, EI_MODE_ENFORCE, 0);
    CU_ASSERT_EQUAL(ask(&r, POD1, "allowed.example"), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_DNS_RESOLVER_NOT_NAMED);
    (void)answer_only(&r, DNS_SERVER, POD1, "allowed.example", IP10);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_answers, 0);
    CU_ASSERT_EQUAL(tls_flow(&r, IP10, "allowed.example"), EI_ACTION_DENY);
    rig_close(&r);

    /* The answer queue learns, for the cache the flow queues share. */
    ei_policy_set *set = ei_rules_parse(rules, sizeof rules - 1, NULL, NULL, NULL);
    ei_dns_cache *cache = cache_with(100, 10, 30, 3600);
    ei_pipeline_config cfg;
    rig_config(&cfg, true);
    cfg.dns_answers = true;
    rig a;
    memset(&a, 0, sizeof a);
    a.p = ei_pipeline_new(&cfg, set, EI_MODE_ENFORCE, on_event, on_release, &a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.p);
    ei_pipeline_set_dns(a.p, cache, NULL);
    a.now = 1000 * S;
    CU_ASSERT_EQUAL(answer(&a, POD1, "allowed.example", IP10), EI_ACTION_PASS);
    ei_addr w = v4(POD1), d = v4(IP10);
    CU_ASSERT_EQUAL(ei_dns_cache_check(cache, &w, "allowed.example", &d, a.now), EI_BIND_YES);
    ei_pipeline_free(a.p, a.now);
    ei_dns_cache_free(cache);
    ei_policy_set_free(set);
}

/* Only answers to questions the workload asked, from the resolvers named, teach: not an
 * answer nobody asked for, nor one to another question, nor one from a resolver of the
 * workload's own choosing, and a question teaches once. */
static void test_only_asked_answers_from_named_resolvers_teach(void)
{
    static const uint8_t ROGUE[4] = { 198, 51, 100, 53 };
    rig r;
    rig_open(&r, false, false, EI_MODE_ENFORCE, 0);
    ei_addr w = v4(POD1), d = v4(IP99);
    CU_ASSERT_EQUAL(answer_only(&r, DNS_SERVER, POD1, "allowed.example", IP99), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_unasked, 1);
    CU_ASSERT_EQUAL(ask(&r, POD1, "other.example"), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(answer_only(&r, DNS_SERVER, POD1, "allowed.example", IP99), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_unasked, 2);
    CU_ASSERT_EQUAL(ei_dns_cache_check(r.cache, &w, "allowed.example", &d, r.now), EI_BIND_UNKNOWN);
    /* asked and answered: bound; the same answer again teaches nothing more */
    CU_ASSERT_EQUAL(answer(&r, POD1, "allowed.example", IP10), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(answer_only(&r, DNS_SERVER, POD1, "allowed.example", IP99), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_unasked, 3);
    CU_ASSERT_EQUAL(ei_dns_cache_check(r.cache, &w, "allowed.example", &d, r.now), EI_BIND_NO);
    /* a question asked of the resolver, answered by another address: not the resolver's */
    CU_ASSERT_EQUAL(ask(&r, POD1, "late.example"), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(answer_only(&r, ROGUE, POD1, "late.example", IP99), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_unasked, 4);
    rig_close(&r);

    /* --dns-from: a question asked of a resolver not named teaches nothing either */
    ei_pipeline_config cfg;
    rig_config(&cfg, false);
    CU_ASSERT(ei_addr_parse("10.96.0.0", &cfg.dns_from[0]));
    cfg.dns_from_bits[0] = 12;
    cfg.ndns_from = 1;
    rig_open_with(&r, &cfg, false, EI_MODE_ENFORCE);
    CU_ASSERT_EQUAL(answer(&r, POD1, "allowed.example", IP10), EI_ACTION_PASS); /* 10.96.0.10 */
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_answers, 1);
    /* and with --coverage all (the default) the question itself is denied, its answer
     * with it (one exchange, one decision) */
    CU_ASSERT_EQUAL(ask_of(&r, POD1, ROGUE, "rogue.example"), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(answer_only(&r, ROGUE, POD1, "rogue.example", IP99), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->decisions[EI_REASON_DNS_RESOLVER_NOT_NAMED], 1);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_unnamed, 1);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_answers, 1);
    rig_close(&r);
    /* --coverage inspected: DNS anywhere is left alone, and still teaches nothing */
    cfg.coverage = EI_COVERAGE_INSPECTED;
    rig_open_with(&r, &cfg, false, EI_MODE_ENFORCE);
    CU_ASSERT_EQUAL(ask_of(&r, POD1, ROGUE, "rogue.example"), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(answer_only(&r, ROGUE, POD1, "rogue.example", IP99), EI_ACTION_PASS);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_unnamed, 1);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_answers, 0);
    rig_close(&r);
}

/* A datagram to one pod that carries (VXLAN) an answer to another: the daemon judges
 * packets as the node forwards them, so it is one malformed answer to the first pod, and
 * teaches the second nothing; replay, which looks through tunnels, reads the inner one. */
static void test_tunnelled_answer_teaches_live_nothing(void)
{
    for (int tunnels = 0; tunnels < 2; tunnels++) {
        rig r;
        ei_pipeline_config cfg;
        rig_config(&cfg, !tunnels);
        cfg.dns_answers = !tunnels;
        cfg.tunnels = tunnels;
        rig_open_with(&r, &cfg, false, EI_MODE_ENFORCE);
        CU_ASSERT_EQUAL(ask(&r, POD2, "allowed.example"), EI_ACTION_PASS); /* pod 2 did ask */
        /* the inner packet: the resolver's answer to pod 2, as answer_only builds it */
        msg m;
        size_t q = question(&m, "allowed.example", 1, 1);
        rr_a(&m, q, 300, IP99);
        uint8_t inner[14 + 20 + 8 + sizeof m.b];
        size_t n = 0;
        memset(inner, 0, 14);
        inner[12] = 0x08; /* Ethernet, IPv4 */
        n = 14;
        uint8_t *ip = inner + n;
        memset(ip, 0, 28);
        ip[0] = 0x45;
        ip[2] = (uint8_t)((28 + m.n) >> 8); ip[3] = (uint8_t)(28 + m.n);
        ip[8] = 64; ip[9] = IPPROTO_UDP;
        memcpy(ip + 12, DNS_SERVER, 4);
        memcpy(ip + 16, POD2, 4);
        ip[20] = 0; ip[21] = 53; ip[22] = 53000 >> 8; ip[23] = 53000 & 0xff;
        ip[24] = (uint8_t)((8 + m.n) >> 8); ip[25] = (uint8_t)(8 + m.n);
        memcpy(ip + 28, m.b, m.n);
        n += 28 + m.n;
        uint8_t vxlan[8 + sizeof inner] = { 0x08, 0, 0, 0, 0, 0, 1, 0 };
        memcpy(vxlan + 8, inner, n);
        /* the outer datagram: to pod 1, from port 53 to VXLAN's port */
        CU_ASSERT_EQUAL(send_ip(&r, IPPROTO_UDP, DNS_SERVER, 53, POD1, 4789, 0, 0, vxlan, 8 + n), EI_ACTION_PASS);
        ei_addr w2 = v4(POD2), d = v4(IP99);
        CU_ASSERT_EQUAL(ei_dns_cache_check(r.cache, &w2, "allowed.example", &d, r.now),
                        tunnels ? EI_BIND_YES : EI_BIND_UNKNOWN);
        rig_close(&r);
    }
}

static void test_wait_for_lookup(void)
{
    rig r;
    rig_open(&r, true, true, EI_MODE_ENFORCE, 0);
    CU_ASSERT_EQUAL(tls_flow(&r, IP10, "allowed.example"), EI_ACTION_HOLD);
    CU_ASSERT_EQUAL_FATAL(r.lookups, 1);
    CU_ASSERT_STRING_EQUAL(r.looked_up[0], "allowed.example");
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_waiting, 1);
    /* More bytes of the waiting flow are held too; an address-allowed flow goes on. */
    CU_ASSERT_EQUAL(data_to(&r, IP10, 443, "x", 1), EI_ACTION_HOLD);
    const uint8_t ssh[4] = { 203, 0, 113, 250 };
    r.sport = 50000;
    CU_ASSERT_EQUAL(syn_to(&r, ssh, 22), EI_ACTION_ALLOW);
    r.sport = 40001;
    /* The answer comes in: the held packets go with the verdict. */
    r.now += 3000000; /* 3 ms */
    ei_addr a10 = v4(IP10);
    ei_dns_cache_learn(r.cache, NULL, "allowed.example", &a10, 1, 60, r.now);
    ei_pipeline_dns_done(r.p, "allowed.example", r.now);
    CU_ASSERT_EQUAL(r.released[EI_ACTION_ALLOW], 2);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_NAME);
    CU_ASSERT(r.last.held_ns >= 3000000);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_waiting, 0);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->held, 0);
    /* The next flow to it is decided at once: the binding is cached. */
    CU_ASSERT_EQUAL(tls_flow(&r, IP10, "allowed.example"), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.lookups, 1);
    /* A lookup that fails denies its flows. */
    CU_ASSERT_EQUAL(tls_flow(&r, IP10, "api.allowed.example"), EI_ACTION_HOLD);
    ei_pipeline_dns_done(r.p, "api.allowed.example", r.now);
    CU_ASSERT_EQUAL(r.released[EI_ACTION_DENY], 1);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_DNS_FAILED);
    rig_close(&r);
}

static void test_lookup_timeout(void)
{
    for (int mode = 0; mode < 2; mode++) {
        rig r;
        rig_open(&r, true, true, (ei_mode)mode, 0);
        CU_ASSERT_EQUAL(tls_flow(&r, IP10, "allowed.example"), EI_ACTION_HOLD);
        r.now += 1900000000ull;
        ei_pipeline_expire(r.p, r.now);
        CU_ASSERT_EQUAL(r.events, 0);
        r.now += 200000000ull;
        ei_pipeline_expire(r.p, r.now);
        CU_ASSERT_EQUAL(r.events, 1);
        CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_DNS_TIMEOUT);
        /* Monitor mode computes the same, and lets the flow through. */
        CU_ASSERT_EQUAL(r.released[mode == EI_MODE_ENFORCE ? EI_ACTION_DENY : EI_ACTION_ALLOW], 1);
        CU_ASSERT_EQUAL(r.last.enforced, mode == EI_MODE_ENFORCE);
        /* A late answer finds nothing waiting. */
        ei_pipeline_dns_done(r.p, "allowed.example", r.now);
        CU_ASSERT_EQUAL(r.events, 1);
        rig_close(&r);
    }
}

static void test_wait_bound_and_shutdown(void)
{
    rig r;
    rig_open(&r, true, true, EI_MODE_ENFORCE, 1);
    CU_ASSERT_EQUAL(tls_flow(&r, IP10, "allowed.example"), EI_ACTION_HOLD);
    CU_ASSERT_EQUAL(tls_flow(&r, IP10, "api.allowed.example"), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_HELD_LIMIT);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->dns_wait_limit, 1);
    /* Shutdown gives the waiting flow its verdict. */
    ei_pipeline_flush(r.p, r.now, EI_REASON_SHUTDOWN);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_SHUTDOWN);
    CU_ASSERT_EQUAL(r.released[EI_ACTION_DENY], 1);
    rig_close(&r);
}

static void test_tcp_entry_at_syn(void)
{
    rig r;
    rig_open(&r, true, true, EI_MODE_ENFORCE, 0);
    const uint8_t db[4] = { 203, 0, 113, 20 }, other[4] = { 203, 0, 113, 21 };
    /* Nothing known of the name: the SYN waits for the lookup. */
    CU_ASSERT_EQUAL(syn_to(&r, db, 5432), EI_ACTION_HOLD);
    CU_ASSERT_STRING_EQUAL(r.looked_up[0], "db.allowed.example");
    ei_addr a = v4(db);
    ei_dns_cache_learn(r.cache, NULL, "db.allowed.example", &a, 1, 60, r.now);
    ei_pipeline_dns_done(r.p, "db.allowed.example", r.now);
    CU_ASSERT_EQUAL(r.released[EI_ACTION_ALLOW], 1);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_ALLOWED_TCP_NAME);
    /* Known now: another address is not the name's; its SYN goes on undecided. */
    int events = r.events;
    CU_ASSERT_EQUAL(syn_to(&r, other, 5432), EI_ACTION_PASS);
    CU_ASSERT_NOT_EQUAL(data_to(&r, other, 5432, "\0\0\0\x08\x04\xd2\x16\x2f", 8), EI_ACTION_ALLOW);
    CU_ASSERT_EQUAL(r.events, events);
    CU_ASSERT_EQUAL(syn_to(&r, db, 5432), EI_ACTION_ALLOW);
    rig_close(&r);
}

int main(void)
{
    static const ei_unit_case parser[] = {
        EI_CASE(test_parse_a),
        EI_CASE(test_parse_cname_chain_and_compression),
        EI_CASE(test_parse_refuses_loops_and_lies),
        EI_CASE(test_parse_chain_bound),
        EI_CASE(test_tcp_framing),
        EI_CASE(test_parse_teaches_only_about_the_question),
    };
    static const ei_unit_case cache[] = {
        EI_CASE(test_cache_binds_per_workload_and_expires),
        EI_CASE(test_cache_bounds),
        EI_CASE(test_cache_new_answer_keeps_all_its_addresses),
    };
    static const ei_unit_case pipeline[] = {
        EI_CASE(test_capture_answers_bind),
        EI_CASE(test_live_answers_only_from_the_answer_queue),
        EI_CASE(test_only_asked_answers_from_named_resolvers_teach),
        EI_CASE(test_tunnelled_answer_teaches_live_nothing),
        EI_CASE(test_wait_for_lookup),
        EI_CASE(test_lookup_timeout),
        EI_CASE(test_wait_bound_and_shutdown),
        EI_CASE(test_tcp_entry_at_syn),
    };
    EI_SUITE("dns_parser", parser);
    EI_SUITE("dns_cache", cache);
    EI_SUITE("dns_pipeline", pipeline);
    return ei_unit_run();
}
