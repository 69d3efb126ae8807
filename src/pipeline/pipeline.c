/* One packet at a time: headers -> flow -> the client's first bytes -> message ->
 * decision. Each flow is decided once; its later packets get the same action.
 *
 * A flow's life: created by its SYN (or, in a capture that starts late, by its first
 * data), then undecided while the client's first message arrives (data packets are held,
 * empty ones pass, since they carry nothing a server could act on), then decided by
 * ei_decide, once, from the whole message or from the reason it could not be read. */
#include "egress_inspector/pipeline.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/http.h"
#include "egress_inspector/preamble.h"
#include "egress_inspector/tls.h"
#include "flow/reasm.h"
#include "flow/table.h"

enum { EXPIRE_BATCH = 256 };

struct ei_pipeline {
    ei_pipeline_config cfg;
    const ei_policy_set *policy;
    ei_mode mode;
    ei_event_fn on_event;
    ei_release_fn on_release;
    void *ctx;
    ei_flow_table table;
    ei_counters count;
    uint8_t *scratch; /* TLS records joined into one handshake message */
};

/* What the client's first bytes say, before the policy is asked. */
typedef struct {
    ei_parse_status status;
    ei_l7 l7;
    ei_reason problem;
    ei_view host;      /* raw; ptr NULL when the message names nothing */
    uint16_t port;     /* a CONNECT target's port, else 0 */
    bool ech;
    uint16_t tls_version;
    ei_view alpn;
    bool in_preamble;  /* the bytes so far end inside (or right after) a preamble */
} message;

const uint64_t ei_latency_bounds_ns[EI_LATENCY_BUCKETS] = {
    100000ull, 1000000ull, 10000000ull, 100000000ull, 1000000000ull, UINT64_MAX,
};

const char *ei_action_name(ei_action action)
{
    static const char *const names[EI_ACTION_COUNT] = {
        [EI_ACTION_PASS] = "pass", [EI_ACTION_ALLOW] = "allow", [EI_ACTION_DENY] = "deny",
        [EI_ACTION_HOLD] = "hold", [EI_ACTION_DROP] = "drop",
    };
    return (unsigned)action < EI_ACTION_COUNT ? names[action] : "unknown";
}

void ei_pipeline_config_default(ei_pipeline_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_flows = 262144;
    cfg->reassembly_bytes = 16384;
    cfg->max_buffered_bytes = 64ull << 20;
    cfg->max_held_packets = 32;
    cfg->max_packets_before_name = 64;
    cfg->undecided_timeout_ns = 30ull * 1000000000ull;
    cfg->decided_timeout_ns = 300ull * 1000000000ull;
    cfg->preambles = true;
}

ei_pipeline *ei_pipeline_new(const ei_pipeline_config *cfg, const ei_policy_set *policy,
                             ei_mode mode, ei_event_fn on_event, ei_release_fn on_release,
                             void *ctx)
{
    ei_pipeline *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->cfg = *cfg;
    if (p->cfg.reassembly_bytes < 64)
        p->cfg.reassembly_bytes = 64;
    if (p->cfg.max_held_packets == 0)
        p->cfg.max_held_packets = 1;
    p->policy = policy;
    p->mode = mode;
    p->on_event = on_event;
    p->on_release = on_release;
    p->ctx = ctx;
    p->scratch = malloc(p->cfg.reassembly_bytes);
    if (p->scratch == NULL || !ei_flow_table_init(&p->table, cfg->max_flows, cfg->hash_seed)) {
        free(p->scratch);
        free(p);
        return NULL;
    }
    return p;
}

void ei_pipeline_set_policy(ei_pipeline *p, const ei_policy_set *policy)
{
    p->policy = policy;
}

void ei_pipeline_set_mode(ei_pipeline *p, ei_mode mode)
{
    p->mode = mode;
}

const ei_counters *ei_pipeline_counters(const ei_pipeline *p)
{
    return &p->count;
}

static bool client_is_a(const ei_flow *f)
{
    return (f->flags & EI_FLOW_F_CLIENT_IS_A) != 0;
}

static void flow_endpoints(const ei_flow *f, ei_flow_event *ev)
{
    const uint8_t *c = client_is_a(f) ? f->key.a : f->key.b;
    const uint8_t *s = client_is_a(f) ? f->key.b : f->key.a;
    memset(&ev->src, 0, sizeof ev->src);
    memset(&ev->dst, 0, sizeof ev->dst);
    ev->src.family = ev->dst.family = f->key.family;
    memcpy(ev->src.bytes, c, 16);
    memcpy(ev->dst.bytes, s, 16);
    ev->sport = client_is_a(f) ? f->key.pa : f->key.pb;
    ev->dport = client_is_a(f) ? f->key.pb : f->key.pa;
}

static void drop_reasm(ei_pipeline *p, ei_flow *f)
{
    if (f->reasm == NULL)
        return;
    p->count.buffered_bytes -= ei_reasm_footprint(f->reasm);
    p->count.reassembling--;
    ei_reasm_free(f->reasm);
    f->reasm = NULL;
}

static void release_held(ei_pipeline *p, ei_reasm *r, ei_action action)
{
    if (r == NULL)
        return;
    for (uint16_t i = 0; i < r->nheld; i++) {
        if (p->on_release)
            p->on_release(p->ctx, r->held[i], action);
        p->count.actions[action]++;
    }
    p->count.released += r->nheld;
    p->count.held -= r->nheld;
    r->nheld = 0;
}

static uint16_t highest_version(const ei_tls_hello *h)
{
    uint16_t best = 0;
    for (uint8_t i = 0; i < h->version_count; i++)
        if ((h->versions[i] & 0x0f0f) != 0x0a0a && h->versions[i] > best) /* skip GREASE */
            best = h->versions[i];
    return best ? best : h->legacy_version;
}

/* Reads the client's first bytes as a ClientHello or an HTTP request head, after a
 * preamble (SOCKS, STARTTLS, PROXY) if there is one. A SOCKS preamble that names its
 * target is itself the message: the proxy connects to that name. */
static void read_message(ei_pipeline *p, const uint8_t *data, size_t len, message *m)
{
    memset(m, 0, sizeof *m);
    ei_preamble pre;
    if (p->cfg.preambles && !ei_tls_sniff(data, len)) {
        ei_parse_status st = ei_preamble_parse(data, len, &pre);
        if (st == EI_PARSE_NEED_MORE || (st == EI_PARSE_OK && !pre.has_name && pre.length == len)) {
            /* Passed on (the server must answer) only once a whole preamble message
             * is in: a partial first line could still be the start of a request. */
            m->status = EI_PARSE_NEED_MORE;
            m->in_preamble = st == EI_PARSE_OK || pre.units > 0;
            return;
        }
        if (st == EI_PARSE_OK && pre.has_name) {
            m->status = EI_PARSE_OK;
            m->l7 = EI_L7_SOCKS;
            m->host = pre.name;
            m->port = pre.port;
            return;
        }
        if (st == EI_PARSE_OK) {
            data += pre.length;
            len -= pre.length;
        }
    }
    if (ei_tls_sniff(data, len)) {
        ei_tls_hello hello;
        m->l7 = EI_L7_TLS;
        m->status = ei_tls_parse_client_hello(data, len, p->scratch, p->cfg.reassembly_bytes,
                                              &hello);
        m->problem = hello.problem;
        if (hello.sni_count > 0)
            m->host = hello.sni;
        m->ech = hello.ech;
        m->tls_version = highest_version(&hello);
        if (hello.alpn_count > 0)
            m->alpn = hello.alpn[0];
    } else if (ei_http_sniff(data, len)) {
        ei_http_request req;
        m->l7 = EI_L7_HTTP;
        m->status = ei_http_parse_request(data, len, &req);
        m->problem = req.problem;
        m->host = req.host;
        m->port = req.connect_port;
        if (m->status == EI_PARSE_MALFORMED && !req.line_ok && req.host_headers == 0) {
            m->l7 = EI_L7_NONE; /* lines of text, but no request: some other protocol */
            m->problem = EI_REASON_NONE;
        }
    } else {
        m->status = EI_PARSE_OK; /* a complete answer: this is neither */
    }
}

/* Decides flow f, from its message m (NULL when it has none) or from `forced`, the
 * reason its message cannot be trusted. Emits the event, releases held packets, and
 * returns the action for the packet at hand. PASS when nothing can be decided yet. */
static ei_action decide(ei_pipeline *p, ei_flow *f, uint64_t now_ns, bool have_message,
                        const message *m, ei_reason forced)
{
    ei_flow_event ev;
    memset(&ev, 0, sizeof ev);
    flow_endpoints(f, &ev);

    ei_flow_facts facts;
    memset(&facts, 0, sizeof facts);
    facts.src = ev.src;
    facts.dst = ev.dst;
    facts.sport = ev.sport;
    facts.dport = ev.dport;
    facts.have_message = have_message;
    facts.problem = forced;

    char name[EI_NAME_MAX + 1];
    if (m != NULL) {
        ev.l7 = facts.l7 = m->l7;
        ev.ech = m->ech;
        ev.tls_version = m->tls_version;
        ev.alpn = m->alpn;
        if (m->port != 0)
            facts.dport = m->port;
        if (facts.problem == EI_REASON_NONE)
            facts.problem = m->problem;
        if (m->host.ptr != NULL) {
            size_t name_len = 0;
            ei_reason bad = ei_name_normalize(m->host.ptr, m->host.len, name, &name_len);
            if (bad == EI_REASON_NONE) {
                facts.host = ev.host = name;
                facts.host_len = ev.host_len = name_len;
                ev.host_valid = true;
            } else {
                ev.host = (const char *)m->host.ptr;
                ev.host_len = m->host.len;
                if (facts.problem == EI_REASON_NONE)
                    facts.problem = bad;
            }
        }
    }

    ei_decision d = ei_decide(&facts, p->policy);
    if (d.verdict == EI_VERDICT_PENDING)
        return EI_ACTION_PASS;

    ei_action action = d.verdict == EI_VERDICT_ALLOW || p->mode == EI_MODE_MONITOR
                           ? EI_ACTION_ALLOW : EI_ACTION_DENY;
    f->flags |= EI_FLOW_F_DECIDED;
    f->verdict = (uint8_t)action;
    f->reason = (uint8_t)d.reason;
    p->count.decisions[d.reason]++;

    ev.ts_ns = now_ns;
    if (f->reasm != NULL && f->reasm->held_since_ns != 0 && now_ns > f->reasm->held_since_ns)
        ev.held_ns = now_ns - f->reasm->held_since_ns;
    ev.decision = d;
    int bucket = 0;
    while (ev.held_ns > ei_latency_bounds_ns[bucket])
        bucket++;
    p->count.latency_buckets[bucket]++;
    p->count.latency_sum_ns += ev.held_ns;
    ev.mode = p->mode;
    ev.enforced = d.verdict == EI_VERDICT_DENY && p->mode == EI_MODE_ENFORCE;
    ev.midstream = !(f->flags & EI_FLOW_F_SYN);
    if (p->on_event)
        p->on_event(p->ctx, &ev);

    release_held(p, f->reasm, action);
    drop_reasm(p, f);
    return action;
}

/* Decides an undecided flow for a reason outside its message (the flow ended, was
 * evicted, the daemon stops), naming what kind of message had begun. */
static ei_action decide_unread(ei_pipeline *p, ei_flow *f, uint64_t now_ns, ei_reason why)
{
    message m;
    memset(&m, 0, sizeof m);
    if (f->reasm != NULL && f->reasm->contig > 0) {
        if (ei_tls_sniff(f->reasm->buf, f->reasm->contig))
            m.l7 = EI_L7_TLS;
        else if (ei_http_sniff(f->reasm->buf, f->reasm->contig))
            m.l7 = EI_L7_HTTP;
    }
    return decide(p, f, now_ns, true, &m, why);
}

/* Deletes a flow, deciding it first if it had begun a message or holds packets. */
static void retire(ei_pipeline *p, ei_flow *f, uint64_t now_ns, ei_reason why)
{
    if (!(f->flags & EI_FLOW_F_DECIDED) && f->reasm != NULL)
        decide_unread(p, f, now_ns, why);
    drop_reasm(p, f);
    ei_flow_remove(&p->table, f);
    p->count.flows--;
}

void ei_pipeline_expire(ei_pipeline *p, uint64_t now_ns)
{
    static const ei_reason why[2] = { EI_REASON_INCOMPLETE, EI_REASON_NONE };
    const uint64_t timeout[2] = { p->cfg.undecided_timeout_ns, p->cfg.decided_timeout_ns };
    int budget = EXPIRE_BATCH;
    for (int list = 0; list < 2; list++) {
        ei_flow *f;
        while (budget-- > 0 && (f = ei_flow_oldest(&p->table, list)) != NULL &&
               now_ns > f->last_ns + timeout[list]) {
            p->count.flows_expired++;
            retire(p, f, now_ns, why[list]);
        }
    }
}

void ei_pipeline_flush(ei_pipeline *p, uint64_t now_ns, ei_reason reason)
{
    ei_flow_table *t = &p->table;
    for (uint32_t i = t->head[0]; i != EI_FLOW_NONE; i = t->flows[i].next) {
        ei_flow *f = &t->flows[i];
        if (!(f->flags & EI_FLOW_F_DECIDED) && f->reasm != NULL)
            decide_unread(p, f, now_ns, reason);
    }
}

void ei_pipeline_free(ei_pipeline *p, uint64_t now_ns)
{
    if (p == NULL)
        return;
    ei_pipeline_flush(p, now_ns, EI_REASON_SHUTDOWN);
    for (uint32_t i = 0; i < p->table.capacity; i++)
        ei_reasm_free(p->table.flows[i].reasm);
    ei_flow_table_destroy(&p->table);
    free(p->scratch);
    free(p);
}

/* A flow table entry for a packet of an unknown connection, or NULL when the packet
 * cannot start one (a pure ACK or RST in the middle of a connection we never saw). */
static ei_flow *open_flow(ei_pipeline *p, const ei_packet *pkt, const ei_flow_key *key,
                          bool sender_is_a, uint64_t now_ns)
{
    bool syn = pkt->tcp_flags & EI_TCP_SYN, ack = pkt->tcp_flags & EI_TCP_ACK;
    bool sender_is_client;
    if (pkt->tcp_flags & EI_TCP_RST)
        return NULL;
    if (syn) {
        sender_is_client = !ack;
    } else if (pkt->payload.len == 0) {
        return NULL;
    } else if (p->cfg.oriented || ei_tls_sniff(pkt->payload.ptr, pkt->payload.len) ||
               ei_http_sniff(pkt->payload.ptr, pkt->payload.len)) {
        sender_is_client = true;
    } else {
        /* Data that starts no message we know, from a flow whose start we missed: the
         * client is most likely the side with the ephemeral (higher) port. */
        sender_is_client = pkt->sport >= pkt->dport;
    }

    ei_flow evicted;
    bool did_evict;
    ei_flow *f = ei_flow_insert(&p->table, key, now_ns, &evicted, &did_evict);
    if (did_evict) {
        p->count.flows_evicted++;
        p->count.flows--;
        if (!(evicted.flags & EI_FLOW_F_DECIDED) && evicted.reasm != NULL) {
            /* The victim is no longer in the table: decide it from a copy. */
            decide_unread(p, &evicted, now_ns, EI_REASON_FLOW_EVICTED);
        }
        drop_reasm(p, &evicted);
    }
    if (f == NULL) {
        p->count.out_of_memory++;
        return NULL;
    }
    p->count.flows++;
    p->count.flows_created++;
    bool client_a = sender_is_client == sender_is_a;
    f->flags = (uint8_t)((client_a ? EI_FLOW_F_CLIENT_IS_A : 0) | EI_FLOW_F_ORIENTED);
    if (syn) {
        f->flags |= EI_FLOW_F_SYN;
        f->base_seq = sender_is_client ? pkt->seq + 1 : pkt->ack;
    } else {
        p->count.flows_midstream++;
        f->base_seq = sender_is_client ? pkt->seq : pkt->ack;
    }
    return f;
}

/* Adds the client's segment to the flow's stream and reads the message when it can.
 * Returns the flow's action if this decided it, else PASS. */
static ei_action take_client_data(ei_pipeline *p, ei_flow *f, const ei_packet *pkt,
                                  uint64_t now_ns, bool *in_preamble)
{
    const uint8_t *data = pkt->payload.ptr;
    size_t len = pkt->payload.len;
    uint32_t start = pkt->seq + ((pkt->tcp_flags & EI_TCP_SYN) ? 1u : 0u);
    int32_t rel = (int32_t)(start - f->base_seq);
    if (rel < 0) { /* begins before the stream did: keep the part inside it */
        size_t skip = (size_t)-(int64_t)rel;
        if (skip >= len)
            return EI_ACTION_PASS;
        data += skip;
        len -= skip;
        rel = 0;
    }
    message m;
    if (f->reasm == NULL && rel == 0) {
        /* The common case: the whole message in the first segment, read in place. */
        read_message(p, data, len, &m);
        if (m.status != EI_PARSE_NEED_MORE)
            return decide(p, f, now_ns, true, &m, EI_REASON_NONE);
        *in_preamble = m.in_preamble;
    }
    if (f->reasm == NULL) {
        f->reasm = ei_reasm_new(p->cfg.max_held_packets);
        if (f->reasm == NULL) {
            p->count.out_of_memory++;
            return decide(p, f, now_ns, true, NULL, EI_REASON_REASSEMBLY_LIMIT);
        }
        p->count.reassembling++;
        p->count.buffered_bytes += ei_reasm_footprint(f->reasm);
    }
    ei_reasm *r = f->reasm;
    uint32_t before = r->contig;
    size_t footprint = ei_reasm_footprint(r);
    ei_reasm_status st = ei_reasm_add(r, (uint32_t)rel, data, len, p->cfg.reassembly_bytes);
    p->count.buffered_bytes += ei_reasm_footprint(r) - footprint;
    if (st == EI_REASM_CONFLICT)
        return decide_unread(p, f, now_ns, EI_REASON_TCP_OVERLAP_CONFLICT);
    if (st == EI_REASM_NOMEM || p->count.buffered_bytes > p->cfg.max_buffered_bytes) {
        if (st == EI_REASM_NOMEM)
            p->count.out_of_memory++;
        else
            p->count.buffer_budget_exhausted++;
        return decide_unread(p, f, now_ns, EI_REASON_REASSEMBLY_LIMIT);
    }
    if (r->contig == before)
        return EI_ACTION_PASS;
    read_message(p, r->buf, r->contig, &m);
    if (m.status != EI_PARSE_NEED_MORE)
        return decide(p, f, now_ns, true, &m, EI_REASON_NONE);
    *in_preamble = m.in_preamble;
    if (r->contig >= p->cfg.reassembly_bytes)
        return decide(p, f, now_ns, true, &m, EI_REASON_REASSEMBLY_LIMIT);
    return EI_ACTION_PASS;
}

static ei_action judge_tcp(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns,
                           uint64_t packet_id)
{
    ei_flow_key key;
    bool sender_is_a;
    ei_flow_key_make(&pkt->src, pkt->sport, &pkt->dst, pkt->dport, &key, &sender_is_a);
    ei_flow *f = ei_flow_find(&p->table, &key);
    bool client_syn = (pkt->tcp_flags & (EI_TCP_SYN | EI_TCP_ACK)) == EI_TCP_SYN;

    /* A SYN that starts a new connection on a known tuple (port reuse): the old one is
     * over. A retransmitted SYN carries the same sequence number and changes nothing. */
    if (f != NULL && client_syn &&
        (!(f->flags & EI_FLOW_F_SYN) || pkt->seq + 1 != f->base_seq ||
         sender_is_a != client_is_a(f))) {
        retire(p, f, now_ns, EI_REASON_INCOMPLETE);
        f = NULL;
    }
    bool created = false;
    if (f == NULL) {
        f = open_flow(p, pkt, &key, sender_is_a, now_ns);
        if (f == NULL)
            return EI_ACTION_PASS;
        created = true;
    } else {
        ei_flow_touch(&p->table, f, now_ns);
    }
    if (pkt->tcp_flags & (EI_TCP_FIN | EI_TCP_RST))
        f->flags |= EI_FLOW_F_CLOSED;

    if (f->flags & EI_FLOW_F_DECIDED)
        return (ei_action)f->verdict;
    bool from_client = sender_is_a == client_is_a(f);
    if (!from_client)
        return EI_ACTION_PASS; /* the server's packets do not decide anything */

    ei_action action = EI_ACTION_PASS;
    bool in_preamble = false;
    if (created && (f->flags & EI_FLOW_F_SYN))
        action = decide(p, f, now_ns, false, NULL, EI_REASON_NONE); /* address entries */
    if (action == EI_ACTION_PASS && f->packets < UINT8_MAX)
        f->packets++;
    if (action == EI_ACTION_PASS && pkt->payload.len > 0)
        action = take_client_data(p, f, pkt, now_ns, &in_preamble);
    if (action == EI_ACTION_PASS) {
        if (f->packets > p->cfg.max_packets_before_name)
            action = decide_unread(p, f, now_ns, EI_REASON_NO_NAME_WITHIN_LIMIT);
        else if (pkt->tcp_flags & (EI_TCP_FIN | EI_TCP_RST) && f->reasm != NULL)
            action = decide_unread(p, f, now_ns, EI_REASON_INCOMPLETE);
    }
    if (f->flags & EI_FLOW_F_DECIDED)
        ei_flow_touch(&p->table, f, now_ns); /* onto the decided list */
    if (action != EI_ACTION_PASS || pkt->payload.len == 0 || in_preamble)
        return action;

    /* Undecided, and this packet carries bytes: the server must not see them yet. (No
     * buffer means every byte lay before the stream's start: nothing new to hide.
     * Preamble commands must reach the server, which answers before the client goes on:
     * their grammar is exact and their length bounded.) */
    ei_reasm *r = f->reasm;
    if (r == NULL)
        return EI_ACTION_PASS;
    if (r->nheld == r->held_cap) {
        action = decide_unread(p, f, now_ns, EI_REASON_HELD_LIMIT);
        ei_flow_touch(&p->table, f, now_ns);
        return action;
    }
    if (r->nheld == 0 && r->held_since_ns == 0)
        r->held_since_ns = now_ns;
    r->held[r->nheld++] = packet_id;
    p->count.held++;
    return EI_ACTION_HOLD;
}

ei_action ei_pipeline_packet(ei_pipeline *p, int linktype, const uint8_t *data, size_t len,
                             uint64_t now_ns, uint64_t packet_id)
{
    p->count.packets++;
    ei_pipeline_expire(p, now_ns);
    ei_packet pkt;
    ei_packet_error err = ei_packet_parse(linktype, data, len, &pkt);
    ei_action action;
    if (err != EI_PKT_OK) {
        p->count.packet_errors[err]++;
        /* Not IP, or not TCP/UDP: not ours to judge. Unreadable IP or TCP, or a
         * fragment whose ports cannot be trusted: dropped, never guessed at. */
        action = err == EI_PKT_NOT_IP || err == EI_PKT_OTHER_L4 ? EI_ACTION_PASS : EI_ACTION_DROP;
    } else if (pkt.l4 == IPPROTO_TCP) {
        action = judge_tcp(p, &pkt, now_ns, packet_id);
    } else {
        action = EI_ACTION_PASS;
    }
    if (action != EI_ACTION_HOLD)
        p->count.actions[action]++;
    return action;
}
