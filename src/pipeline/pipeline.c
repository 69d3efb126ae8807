/* One packet at a time: headers -> flow -> the client's first bytes -> message ->
 * decision. Each flow is decided once; its later packets get the same action.
 *
 * A flow's life: created by its SYN (or, in a capture that starts late, by its first
 * data), then undecided while the client's first message arrives (data packets are held,
 * empty ones pass, since they carry nothing a server could act on), then decided by
 * ei_decide, once, from the whole message or from the reason it could not be read. */
#include "egress_inspector/pipeline.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/http.h"
#include "egress_inspector/preamble.h"
#include "egress_inspector/tls.h"
#include "flow/reasm.h"
#include "flow/table.h"

enum { EXPIRE_BATCH = 256, MAX_TCP_NAMES_PER_PORT = 16, DNS_PORT = 53 };

/* A flow waiting for a lookup: what its decision needs once the answer is in. */
typedef struct {
    ei_flow_key key;
    uint32_t base_seq;     /* tells the flow apart from a later one on the same tuple */
    uint64_t deadline_ns;
    bool done;
    bool have_message;     /* false: a SYN waiting for a tcp:// entry's name */
    ei_l7 l7;
    uint16_t port;
    bool ech;
    uint16_t tls_version;
    uint8_t alpn_len;
    uint8_t alpn[32];
    char host[EI_NAME_MAX + 1]; /* the flow's name (have_message) */
    char name[EI_NAME_MAX + 1]; /* the name looked up */
} dns_wait;

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
    ei_dns_cache *dns;
    ei_lookup_fn on_lookup;
    dns_wait *waits;  /* a ring, oldest first: every wait has the same timeout */
    uint32_t wait_head, nwaits;
    uint64_t expired_ns; /* when flows were last aged */
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
    cfg->dest_check = true;
    cfg->dns_timeout_ns = 2ull * 1000000000ull;
    cfg->max_dns_waits = 1024;
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
    if (p->cfg.max_dns_waits == 0)
        p->cfg.max_dns_waits = 1;
    p->policy = policy;
    p->mode = mode;
    p->on_event = on_event;
    p->on_release = on_release;
    p->ctx = ctx;
    p->scratch = malloc(p->cfg.reassembly_bytes);
    p->waits = calloc(p->cfg.max_dns_waits, sizeof *p->waits);
    if (p->scratch == NULL || p->waits == NULL ||
        !ei_flow_table_init(&p->table, cfg->max_flows, cfg->hash_seed)) {
        free(p->waits);
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

void ei_pipeline_set_dns(ei_pipeline *p, ei_dns_cache *cache, ei_lookup_fn on_lookup)
{
    p->dns = cache;
    p->on_lookup = cache != NULL ? on_lookup : NULL;
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

/* A tcp:// entry's name learned (or looked up) for the flow's destination. */
typedef struct {
    const ei_policy *policy;
    uint16_t port;
    ei_match match;
} tcp_search;

static bool tcp_name_matches(void *ctx, const char *name, size_t len)
{
    tcp_search *t = ctx;
    t->match = ei_policy_match_tcp_name(t->policy, name, len, t->port);
    return t->match.rule == NULL;
}

/* Does a tcp:// entry allow the flow's destination? EI_BIND_UNKNOWN (with the name to
 * look up in *unknown) when an entry's name for this port is not known yet. */
static ei_bind tcp_check(ei_pipeline *p, const ei_flow_facts *facts, const ei_policy *policy,
                         uint64_t now_ns, ei_match *match, const char **unknown)
{
    *unknown = NULL;
    if (p->dns == NULL || !ei_policy_has_tcp_entries(policy))
        return EI_BIND_NO;
    const char *names[MAX_TCP_NAMES_PER_PORT];
    size_t n = ei_policy_tcp_names(policy, facts->dport, names, MAX_TCP_NAMES_PER_PORT);
    for (size_t i = 0; i < n; i++) {
        ei_bind b = ei_dns_cache_check(p->dns, &facts->src, names[i], &facts->dst, now_ns);
        if (b == EI_BIND_YES) {
            *match = ei_policy_match_tcp_name(policy, names[i], strlen(names[i]), facts->dport);
            return EI_BIND_YES;
        }
        if (b == EI_BIND_UNKNOWN && *unknown == NULL)
            *unknown = names[i];
    }
    tcp_search t = { policy, facts->dport, { NULL, 0 } };
    ei_dns_cache_names_for(p->dns, &facts->src, &facts->dst, now_ns, tcp_name_matches, &t);
    if (t.match.rule != NULL) {
        *match = t.match;
        return EI_BIND_YES;
    }
    return *unknown != NULL ? EI_BIND_UNKNOWN : EI_BIND_NO;
}

/* Holds the flow until a lookup of name ends. Returns false when too many flows wait. */
static bool start_wait(ei_pipeline *p, ei_flow *f, uint64_t now_ns, bool have_message,
                       const message *m, const char *host, const char *name)
{
    if (p->nwaits == p->cfg.max_dns_waits) {
        p->count.dns_wait_limit++;
        return false;
    }
    dns_wait *w = &p->waits[(p->wait_head + p->nwaits++) % p->cfg.max_dns_waits];
    memset(w, 0, offsetof(dns_wait, host));
    w->key = f->key;
    w->base_seq = f->base_seq;
    w->deadline_ns = now_ns + p->cfg.dns_timeout_ns;
    w->have_message = have_message;
    if (m != NULL) {
        w->l7 = m->l7;
        w->port = m->port;
        w->ech = m->ech;
        w->tls_version = m->tls_version;
        w->alpn_len = (uint8_t)(m->alpn.len < sizeof w->alpn ? m->alpn.len : sizeof w->alpn);
        if (w->alpn_len > 0)
            memcpy(w->alpn, m->alpn.ptr, w->alpn_len);
    }
    snprintf(w->host, sizeof w->host, "%s", host != NULL ? host : "");
    snprintf(w->name, sizeof w->name, "%s", name);
    f->flags |= EI_FLOW_F_WAIT_DNS;
    p->count.dns_waiting++;
    p->count.dns_lookups++;
    p->on_lookup(p->ctx, name);
    return true;
}

/* Decides flow f, from its message m (NULL when it has none) or from `forced`, the
 * reason its message cannot be trusted. Emits the event, releases held packets, and
 * returns the action for the packet at hand. PASS when nothing can be decided yet; HOLD
 * when the flow now waits for a lookup. `unknown` is the reason to deny a name that is
 * allowed but bound to no known address: EI_REASON_NONE lets the flow wait for a lookup
 * instead, when lookups can be made. */
static ei_action decide(ei_pipeline *p, ei_flow *f, uint64_t now_ns, bool have_message,
                        const message *m, ei_reason forced, ei_reason unknown)
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
    bool may_wait = unknown == EI_REASON_NONE && p->on_lookup != NULL;
    if (d.verdict != EI_VERDICT_ALLOW && facts.problem == EI_REASON_NONE &&
        (!have_message || !(f->flags & EI_FLOW_F_SYN))) {
        /* At SYN time (or at the first sight of a flow whose SYN we missed). */
        const char *lookup;
        ei_match match;
        ei_bind b = tcp_check(p, &facts, d.policy, now_ns, &match, &lookup);
        if (b == EI_BIND_YES) {
            d.verdict = EI_VERDICT_ALLOW;
            d.reason = EI_REASON_ALLOWED_TCP_NAME;
            d.match = match;
        } else if (b == EI_BIND_UNKNOWN && may_wait && !have_message &&
                   start_wait(p, f, now_ns, false, NULL, NULL, lookup)) {
            return EI_ACTION_HOLD;
        }
    }
    if (d.verdict == EI_VERDICT_ALLOW && d.reason == EI_REASON_ALLOWED_NAME && p->cfg.dest_check) {
        ei_bind b = p->dns != NULL
                        ? ei_dns_cache_check(p->dns, &facts.src, facts.host, &facts.dst, now_ns)
                        : EI_BIND_UNKNOWN;
        p->count.dest_checks[b]++;
        if (b == EI_BIND_UNKNOWN && may_wait) {
            if (start_wait(p, f, now_ns, true, m, facts.host, facts.host))
                return EI_ACTION_HOLD;
            d.verdict = EI_VERDICT_DENY;
            d.reason = EI_REASON_HELD_LIMIT;
        } else if (b == EI_BIND_UNKNOWN) {
            d.verdict = EI_VERDICT_DENY;
            d.reason = unknown != EI_REASON_NONE ? unknown : EI_REASON_DNS_UNRESOLVED;
        } else if (b == EI_BIND_NO) {
            d.verdict = EI_VERDICT_DENY;
            d.reason = facts.l7 == EI_L7_TLS ? EI_REASON_SNI_IP_MISMATCH : EI_REASON_HOST_IP_MISMATCH;
        }
    }
    if (d.verdict == EI_VERDICT_PENDING)
        return EI_ACTION_PASS;

    ei_action action = d.verdict == EI_VERDICT_ALLOW || p->mode == EI_MODE_MONITOR
                           ? EI_ACTION_ALLOW : EI_ACTION_DENY;
    f->flags |= EI_FLOW_F_DECIDED;
    f->flags &= (uint8_t)~EI_FLOW_F_WAIT_DNS;
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

static void expire_waits(ei_pipeline *p, uint64_t now_ns, ei_reason why);

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
    return decide(p, f, now_ns, true, &m, why, why);
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
    expire_waits(p, now_ns, EI_REASON_DNS_TIMEOUT);
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
    expire_waits(p, now_ns, reason);
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
    free(p->waits);
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
            return decide(p, f, now_ns, true, &m, EI_REASON_NONE, EI_REASON_NONE);
        *in_preamble = m.in_preamble;
    }
    if (f->reasm == NULL) {
        f->reasm = ei_reasm_new(p->cfg.max_held_packets);
        if (f->reasm == NULL) {
            p->count.out_of_memory++;
            return decide(p, f, now_ns, true, NULL, EI_REASON_REASSEMBLY_LIMIT, EI_REASON_REASSEMBLY_LIMIT);
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
        return decide(p, f, now_ns, true, &m, EI_REASON_NONE, EI_REASON_NONE);
    *in_preamble = m.in_preamble;
    if (r->contig >= p->cfg.reassembly_bytes)
        return decide(p, f, now_ns, true, &m, EI_REASON_REASSEMBLY_LIMIT, EI_REASON_REASSEMBLY_LIMIT);
    return EI_ACTION_PASS;
}

/* Keeps the packet until the flow's verdict, or decides the flow when it may hold no
 * more. Returns the packet's action. */
static ei_action hold(ei_pipeline *p, ei_flow *f, uint64_t packet_id, uint64_t now_ns)
{
    if (f->reasm == NULL) {
        f->reasm = ei_reasm_new(p->cfg.max_held_packets);
        if (f->reasm == NULL) {
            p->count.out_of_memory++;
            ei_action action = decide(p, f, now_ns, true, NULL, EI_REASON_REASSEMBLY_LIMIT,
                                      EI_REASON_REASSEMBLY_LIMIT);
            ei_flow_touch(&p->table, f, now_ns);
            return action;
        }
        p->count.reassembling++;
        p->count.buffered_bytes += ei_reasm_footprint(f->reasm);
    }
    ei_reasm *r = f->reasm;
    if (r->nheld == r->held_cap) {
        ei_action action = decide_unread(p, f, now_ns, EI_REASON_HELD_LIMIT);
        ei_flow_touch(&p->table, f, now_ns);
        return action;
    }
    if (r->nheld == 0 && r->held_since_ns == 0)
        r->held_since_ns = now_ns;
    r->held[r->nheld++] = packet_id;
    p->count.held++;
    return EI_ACTION_HOLD;
}

/* Decides the flow that waited, now that its lookup ended (or never will: `unknown` is
 * the reason to deny a name still bound to nothing). */
static void finish_wait(ei_pipeline *p, dns_wait *w, uint64_t now_ns, ei_reason unknown)
{
    w->done = true;
    p->count.dns_waiting--;
    ei_flow *f = ei_flow_find(&p->table, &w->key);
    if (f == NULL || !(f->flags & EI_FLOW_F_WAIT_DNS) || f->base_seq != w->base_seq)
        return; /* decided meanwhile (evicted, held limit, a new connection on the tuple) */
    f->flags &= (uint8_t)~EI_FLOW_F_WAIT_DNS;
    message m;
    memset(&m, 0, sizeof m);
    m.status = EI_PARSE_OK;
    m.l7 = w->l7;
    m.port = w->port;
    m.ech = w->ech;
    m.tls_version = w->tls_version;
    m.alpn.ptr = w->alpn;
    m.alpn.len = w->alpn_len;
    m.host.ptr = (const uint8_t *)w->host;
    m.host.len = strlen(w->host);
    if (m.host.len == 0)
        m.host.ptr = NULL;
    ei_action action = decide(p, f, now_ns, w->have_message, w->have_message ? &m : NULL,
                              EI_REASON_NONE, unknown);
    if (action == EI_ACTION_PASS) {
        /* A SYN whose tcp:// name turned out not to match: it goes on, undecided. */
        release_held(p, f->reasm, EI_ACTION_PASS);
        drop_reasm(p, f);
    }
    ei_flow_touch(&p->table, f, now_ns);
}

void ei_pipeline_dns_done(ei_pipeline *p, const char *name, uint64_t now_ns)
{
    /* Still bound to nothing after the lookup: it failed (or its answer was evicted
     * already, which only a cache far too small for the node could do). */
    for (uint32_t i = 0; i < p->nwaits; i++) {
        dns_wait *w = &p->waits[(p->wait_head + i) % p->cfg.max_dns_waits];
        if (!w->done && strcmp(w->name, name) == 0)
            finish_wait(p, w, now_ns, EI_REASON_DNS_FAILED);
    }
    ei_pipeline_expire(p, now_ns);
}

/* Pops finished waits, and decides those past their deadline. */
static void expire_waits(ei_pipeline *p, uint64_t now_ns, ei_reason why)
{
    while (p->nwaits > 0) {
        dns_wait *w = &p->waits[p->wait_head];
        if (!w->done && why == EI_REASON_DNS_TIMEOUT && now_ns < w->deadline_ns)
            break;
        if (!w->done)
            finish_wait(p, w, now_ns, why);
        p->wait_head = (p->wait_head + 1) % p->cfg.max_dns_waits;
        p->nwaits--;
    }
}

/* Learns from a DNS answer on its way to a workload (its destination). Never changes the
 * packet's fate: a malformed answer is passed on, counted, and teaches nothing. */
static void snoop_dns(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns)
{
    ei_view msg = pkt->payload;
    if (pkt->l4 == IPPROTO_TCP) {
        /* RFC 7766: a 2-byte length, then the message. Only answers whole in one segment
         * are read: the workload's resolver falls back to nothing we miss, since a name
         * we never learned is looked up by the inspector itself. */
        if (ei_dns_tcp_message(pkt->payload, &msg) != EI_PARSE_OK) {
            p->count.dns_tcp_split++;
            return;
        }
    }
    ei_dns_answer a;
    if (ei_dns_parse_response(msg.ptr, msg.len, &a) != EI_PARSE_OK) {
        p->count.dns_malformed[a.problem]++;
        return;
    }
    p->count.dns_answers++;
    /* Only address questions teach: an answer to another type (TXT, HTTPS, ...) without
     * addresses says nothing about the name's addresses. NXDOMAIN says it has none. */
    bool address_question = a.qtype == 1 || a.qtype == 28;
    if (p->dns == NULL || a.chain_len == 0 || !address_question || (a.rcode != 0 && a.rcode != 3))
        return;
    for (uint8_t i = 0; i < a.chain_len; i++) {
        ei_dns_cache_learn(p->dns, &pkt->dst, a.chain[i], a.addrs, a.naddrs, a.ttl, now_ns);
        p->count.dns_names_learned++;
    }
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
    if (f->flags & EI_FLOW_F_WAIT_DNS) {
        /* The message (or the SYN) is read; only the lookup is missing. Nothing that
         * could open the connection or carry bytes passes before the verdict. */
        if (pkt->payload.len == 0 && !(pkt->tcp_flags & EI_TCP_SYN))
            return EI_ACTION_PASS;
        return hold(p, f, packet_id, now_ns);
    }

    ei_action action = EI_ACTION_PASS;
    bool in_preamble = false;
    if (created && (f->flags & EI_FLOW_F_SYN))
        action = decide(p, f, now_ns, false, NULL, EI_REASON_NONE, EI_REASON_NONE); /* address entries */
    if (action == EI_ACTION_PASS && f->packets < UINT8_MAX)
        f->packets++;
    if (action == EI_ACTION_PASS && pkt->payload.len > 0)
        action = take_client_data(p, f, pkt, now_ns, &in_preamble);
    if (action == EI_ACTION_HOLD)
        return hold(p, f, packet_id, now_ns); /* the flow now waits for a lookup */
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
    if (f->reasm == NULL)
        return EI_ACTION_PASS;
    return hold(p, f, packet_id, now_ns);
}

ei_action ei_pipeline_packet(ei_pipeline *p, int linktype, const uint8_t *data, size_t len,
                             uint64_t now_ns, uint64_t packet_id)
{
    p->count.packets++;
    /* Ageing at most once per millisecond of packet time: timeouts are seconds long. */
    if (now_ns - p->expired_ns >= 1000000u || now_ns < p->expired_ns) {
        p->expired_ns = now_ns;
        ei_pipeline_expire(p, now_ns);
    }
    ei_packet pkt;
    ei_packet_error err = ei_packet_parse(linktype, data, len, &pkt);
    ei_action action;
    if (err != EI_PKT_OK) {
        p->count.packet_errors[err]++;
        /* Not IP, or not TCP/UDP: not ours to judge. Unreadable IP or TCP, or a
         * fragment whose ports cannot be trusted: dropped, never guessed at. */
        action = err == EI_PKT_NOT_IP || err == EI_PKT_OTHER_L4 ? EI_ACTION_PASS : EI_ACTION_DROP;
    } else {
        /* In a capture both directions are there: answers from port 53 are the
         * workloads' DNS. Live, only the answer queue's packets are, since a workload
         * could send anything from port 53 itself. */
        if (pkt.sport == DNS_PORT && pkt.payload.len > 0 && (p->cfg.dns_answers || !p->cfg.oriented))
            snoop_dns(p, &pkt, now_ns);
        if (pkt.l4 == IPPROTO_TCP && !p->cfg.dns_answers)
            action = judge_tcp(p, &pkt, now_ns, packet_id);
        else
            action = EI_ACTION_PASS;
    }
    if (action != EI_ACTION_HOLD)
        p->count.actions[action]++;
    return action;
}

void ei_counters_add(ei_counters *sum, const ei_counters *c)
{
    /* Every field is a uint64_t (counters, gauges, arrays of them): add them as one array. */
    enum { N = sizeof(ei_counters) / sizeof(uint64_t) };
    _Static_assert(sizeof(ei_counters) == N * sizeof(uint64_t), "ei_counters holds only uint64_t");
    uint64_t a[N], b[N];
    memcpy(a, sum, sizeof a);
    memcpy(b, c, sizeof b);
    for (size_t i = 0; i < N; i++)
        a[i] += b[i];
    memcpy(sum, a, sizeof a);
}
