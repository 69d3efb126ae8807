/* One flow, asked by its facts, through the pipeline (see explain.h). The packets are a
 * capture's: the client's SYN, the server's SYN-ACK, the client's ACK and first message,
 * the server's acknowledgement; then the pipeline is flushed, as at a capture's end. */
#include "io/explain.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "egress_inspector/quic.h"
#include "io/clock.h"
#include "io/log.h"

enum { CLIENT_PORT = 40000, CLIENT_ISN = 1000, SERVER_ISN = 5000000, MAX_PACKET = 1400 };

typedef struct {
    ei_explain_result *out;
    int events;
} collect;

static void on_event(void *ctx, const ei_flow_event *ev)
{
    collect *c = ctx;
    if (c->events++ > 0)
        return; /* a later line (a revoked allow) is not the flow's decision */
    ei_explain_result *r = c->out;
    ei_jsonw w;
    ei_log_format_event(&w, ev);
    snprintf(r->line, sizeof r->line, "%s", w.buf);
    r->decided = true;
    r->verdict = ev->decision.verdict;
    r->reason = ev->decision.reason;
    r->mode = ev->mode;
    snprintf(r->policy, sizeof r->policy, "%s", ei_policy_name(ev->decision.policy));
    snprintf(r->rule, sizeof r->rule, "%s", ev->decision.match.rule ? ev->decision.match.rule : "");
    r->rule_line = ev->decision.match.line;
}

static void on_release(void *ctx, uint64_t id, ei_action action)
{
    (void)ctx, (void)id, (void)action;
}

static size_t put16(uint8_t *p, size_t at, unsigned v)
{
    p[at] = (uint8_t)(v >> 8);
    p[at + 1] = (uint8_t)v;
    return at + 2;
}

/* A TLS 1.3 ClientHello naming name: the fields a server reads, nothing else. */
static size_t client_hello(const char *name, uint8_t *p, size_t cap)
{
    size_t n = strlen(name);
    size_t ext = 9 + n + 7;     /* server_name, supported_versions */
    size_t body = 2 + 32 + 1 + 4 + 2 + 2 + ext;
    if (5 + 4 + body > cap)
        return 0;
    size_t at = 0;
    p[at++] = 22; /* handshake */
    at = put16(p, at, 0x0301);
    at = put16(p, at, (unsigned)(4 + body));
    p[at++] = 1; /* client_hello */
    p[at++] = (uint8_t)(body >> 16);
    at = put16(p, at, (unsigned)body);
    at = put16(p, at, 0x0303);
    memset(p + at, 0x42, 32); /* random */
    at += 32;
    p[at++] = 0; /* no session id */
    at = put16(p, at, 2);
    at = put16(p, at, 0x1301); /* TLS_AES_128_GCM_SHA256 */
    p[at++] = 1;
    p[at++] = 0; /* null compression */
    at = put16(p, at, (unsigned)ext);
    at = put16(p, at, 0); /* server_name */
    at = put16(p, at, (unsigned)(5 + n));
    at = put16(p, at, (unsigned)(3 + n));
    p[at++] = 0; /* host_name */
    at = put16(p, at, (unsigned)n);
    memcpy(p + at, name, n);
    at += n;
    at = put16(p, at, 43); /* supported_versions: TLS 1.3 */
    at = put16(p, at, 3);
    p[at++] = 2;
    at = put16(p, at, 0x0304);
    return at;
}

/* A GET naming the host, or (target_port) a proxy's CONNECT to host:target_port. */
static size_t http_request(const char *name, uint16_t target_port, uint8_t *p, size_t cap)
{
    int n = target_port != 0
                ? snprintf((char *)p, cap, "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n", name, target_port,
                           name, target_port)
                : snprintf((char *)p, cap, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: egress-inspector-explain\r\n\r\n",
                           name);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* A SOCKS 5 greeting (no authentication) and its CONNECT to name:target_port by name
 * (RFC 1928), in one segment. 0: the name is longer than SOCKS carries. */
static size_t socks_request(const char *name, uint16_t target_port, uint8_t *p, size_t cap)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || 3 + 5 + n + 2 > cap)
        return 0;
    static const uint8_t head[] = { 5, 1, 0, 5, 1, 0, 3 }; /* VER NMETHODS NOAUTH | VER CONNECT RSV DOMAIN */
    memcpy(p, head, sizeof head);
    p[sizeof head] = (uint8_t)n;
    memcpy(p + sizeof head + 1, name, n);
    return put16(p, sizeof head + 1 + n, target_port);
}

/* A QUIC version 1 client Initial naming name, padded to EI_QUIC_MIN_DATAGRAM bytes: the
 * ClientHello (its handshake message, without client_hello's record header) in one
 * CRYPTO frame, sealed as a client seals it (parse/quic.c). */
static size_t quic_initial(const char *name, uint8_t *p, size_t cap)
{
    uint8_t hello[MAX_PACKET], frames[MAX_PACKET];
    size_t n = client_hello(name, hello, sizeof hello);
    static const ei_quic_conn conn = { 1, 8, { 0x65, 0x78, 0x70, 0x6c, 0x61, 0x69, 0x6e, 0x21 } };
    size_t head = 1 + 4 + 1 + conn.dcid_len + 1 + 1 + 2 + 4, tag = 16;
    size_t payload = EI_QUIC_MIN_DATAGRAM - head - tag;
    if (n <= 5 || 4 + (n - 5) > payload)
        return 0;
    frames[0] = 0x06; /* CRYPTO, offset 0, a 2-byte length */
    frames[1] = 0;
    put16(frames, 2, (unsigned)(0x4000 | (n - 5)));
    memcpy(frames + 4, hello + 5, n - 5);
    memset(frames + 4 + (n - 5), 0, payload - 4 - (n - 5)); /* PADDING */
    return ei_quic_seal_initial(NULL, &conn, 0, frames, payload, p, cap);
}

typedef struct {
    ei_pipeline *p;
    const ei_explain_flow *flow;
    const ei_addr *dst;
    uint64_t now, id;
} sender;

/* The IP header of a packet from a to b carrying l4 bytes of proto; its length. The
 * header and the l4 header after it (up to 20 bytes) are zeroed. */
static size_t ip_header(uint8_t *pkt, const ei_addr *a, const ei_addr *b, uint8_t proto, size_t l4)
{
    bool v6 = a->family == 6;
    size_t ip = v6 ? 40 : 20;
    memset(pkt, 0, ip + 20);
    if (v6) {
        pkt[0] = 0x60;
        put16(pkt, 4, (unsigned)l4);
        pkt[6] = proto;
        pkt[7] = 64;
        memcpy(pkt + 8, a->bytes, 16);
        memcpy(pkt + 24, b->bytes, 16);
    } else {
        pkt[0] = 0x45;
        put16(pkt, 2, (unsigned)(20 + l4));
        pkt[6] = 0x40; /* DF */
        pkt[8] = 64;
        pkt[9] = proto;
        memcpy(pkt + 12, a->bytes, 4);
        memcpy(pkt + 16, b->bytes, 4);
    }
    return ip;
}

/* One TCP segment, client to server (from_client) or back. */
static void segment(sender *s, bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
                    const uint8_t *payload, size_t len)
{
    uint8_t pkt[MAX_PACKET + 80];
    const ei_addr *a = from_client ? &s->flow->src : s->dst, *b = from_client ? s->dst : &s->flow->src;
    size_t ip = ip_header(pkt, a, b, IPPROTO_TCP, 20 + len);
    uint8_t *t = pkt + ip;
    put16(t, 0, from_client ? CLIENT_PORT : s->flow->port);
    put16(t, 2, from_client ? s->flow->port : CLIENT_PORT);
    for (int i = 0; i < 4; i++) {
        t[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
        t[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
    }
    t[12] = 0x50;
    t[13] = flags;
    put16(t, 14, 64240);
    if (len > 0)
        memcpy(t + 20, payload, len);
    s->now += 1000000; /* 1 ms */
    ei_action action = ei_pipeline_packet(s->p, EI_LINK_RAW, pkt, ip + 20 + len, s->now, ++s->id, 0);
    (void)action; /* the decision comes through on_event */
}

/* One UDP datagram, client to server. */
static void datagram(sender *s, const uint8_t *payload, size_t len)
{
    uint8_t pkt[MAX_PACKET + 80];
    size_t ip = ip_header(pkt, &s->flow->src, s->dst, IPPROTO_UDP, 8 + len);
    uint8_t *u = pkt + ip;
    put16(u, 0, CLIENT_PORT);
    put16(u, 2, s->flow->port);
    put16(u, 4, (unsigned)(8 + len));
    memcpy(u + 8, payload, len);
    s->now += 1000000;
    ei_action action = ei_pipeline_packet(s->p, EI_LINK_RAW, pkt, ip + 8 + len, s->now, ++s->id, 0);
    (void)action;
}

/* An address of the flow's family that no address entry covers on its port. */
static void pick_destination(const ei_policy_set *set, const ei_explain_flow *flow, ei_addr *dst)
{
    static const char *const v4[] = { "198.18.0.1", "198.51.100.254", "100.64.255.254", "10.255.255.254" };
    static const char *const v6[] = { "2001:db8:ffff::1", "fd00:ffff::1", "2001:2::1" };
    const char *const *list = flow->src.family == 6 ? v6 : v4;
    size_t n = flow->src.family == 6 ? sizeof v6 / sizeof v6[0] : sizeof v4 / sizeof v4[0];
    for (size_t i = 0; i < n; i++) {
        if (ei_addr_parse(list[i], dst) && !ei_policy_set_any_address(set, dst, flow->port))
            return;
    }
    bool ok = ei_addr_parse(list[0], dst); /* every one is allowed: so is the flow, by address */
    (void)ok;
}

bool ei_explain(const ei_pipeline_config *cfg, const ei_policy_set *set, const ei_workloads *view,
                ei_dns_cache *dns, ei_mode mode, const ei_explain_flow *flow, ei_explain_result *out)
{
    memset(out, 0, sizeof *out);
    uint8_t msg[MAX_PACKET];
    size_t len = 0;
    if (flow->name != NULL) {
        len = flow->l7 == EI_L7_HTTP    ? http_request(flow->name, flow->target_port, msg, sizeof msg)
              : flow->l7 == EI_L7_SOCKS ? socks_request(flow->name, flow->target_port, msg, sizeof msg)
              : flow->l7 == EI_L7_QUIC  ? quic_initial(flow->name, msg, sizeof msg)
                                        : client_hello(flow->name, msg, sizeof msg);
        if (len == 0)
            return false;
    }
    ei_pipeline_config pc = *cfg;
    pc.live = false;
    pc.checksums = EI_CHECKSUM_OFF; /* the packets are ours */
    collect c = { out, 0 };
    ei_pipeline *p = ei_pipeline_new(&pc, set, mode, on_event, on_release, &c);
    if (p == NULL)
        return false;
    ei_pipeline_set_dns(p, dns, NULL);
    if (view != NULL)
        ei_pipeline_set_workloads(p, view, 0);
    out->dst = flow->dst;
    if (!flow->dst_given)
        pick_destination(set, flow, &out->dst);
    sender s = { p, flow, &out->dst, ei_wall_ns(), 0 }; /* the line's ts: now */
    const uint32_t c0 = CLIENT_ISN, s0 = SERVER_ISN;
    if (flow->l7 == EI_L7_QUIC) { /* one datagram: the Initial decides */
        datagram(&s, msg, len);
        ei_pipeline_flush(p, s.now, EI_REASON_INCOMPLETE);
        ei_pipeline_free(p, s.now);
        return true;
    }
    segment(&s, true, 0x02, c0, 0, NULL, 0);                   /* SYN */
    segment(&s, false, 0x12, s0, c0 + 1, NULL, 0);             /* SYN-ACK */
    segment(&s, true, 0x10, c0 + 1, s0 + 1, NULL, 0);          /* ACK */
    if (len > 0) {
        segment(&s, true, 0x18, c0 + 1, s0 + 1, msg, len);     /* the message */
        segment(&s, false, 0x10, s0 + 1, c0 + 1 + (uint32_t)len, NULL, 0);
    }
    ei_pipeline_flush(p, s.now, EI_REASON_INCOMPLETE);
    ei_pipeline_free(p, s.now);
    return true;
}
