/* Settling a flow, once: the facts of its message, ei_decide, the destination binding
 * step (ei_bind_destination), then the verdict applied: the event, the counters, the held
 * packets released. The two decisions are pure functions in src/policy/decide.c; this
 * file gathers what they read and acts on what they say. */
#include <netinet/in.h>
#include <string.h>

#include "egress_inspector/http.h"
#include "egress_inspector/tls.h"
#include "pipeline/internal.h"

void pl_flow_endpoints(const ei_flow *f, ei_flow_event *ev)
{
    const uint8_t *c = pl_client_is_a(f) ? f->key.a : f->key.b;
    const uint8_t *s = pl_client_is_a(f) ? f->key.b : f->key.a;
    memset(&ev->src, 0, sizeof ev->src);
    memset(&ev->dst, 0, sizeof ev->dst);
    ev->src.family = ev->dst.family = f->key.family;
    memcpy(ev->src.bytes, c, 16);
    memcpy(ev->dst.bytes, s, 16);
    ev->sport = pl_client_is_a(f) ? f->key.pa : f->key.pb;
    ev->dport = pl_client_is_a(f) ? f->key.pb : f->key.pa;
    ev->proto = f->key.proto;
    if (f->key.proto == IPPROTO_ICMP || f->key.proto == IPPROTO_ICMPV6)
        ev->dport = 0; /* the key holds the identifier on both sides */
}

void pl_drop_reasm(ei_pipeline *p, ei_flow *f)
{
    if (f->reasm == NULL)
        return;
    p->count.buffered_bytes -= ei_reasm_footprint(f->reasm);
    p->count.reassembling--;
    ei_reasm_free(f->reasm);
    f->reasm = NULL;
}

void pl_release_held(ei_pipeline *p, ei_reasm *r, ei_action action)
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

/* Does a tcp:// entry of policy allow the flow's destination? EI_BIND_UNKNOWN (with the
 * name to look up in *unknown) when an entry's name for this port is not known yet. */
static ei_bind tcp_check_one(ei_pipeline *p, const ei_flow_facts *facts, const ei_policy *policy,
                             uint64_t now_ns, ei_match *match, const char **unknown)
{
    *unknown = NULL;
    if (!ei_policy_has_tcp_entries(policy))
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

/* The same, over every policy that governs the workload: the first that allows decides
 * (its policy in *policy); else UNKNOWN when one entry's name is not known yet. */
static ei_bind tcp_check(ei_pipeline *p, const ei_flow_facts *facts, uint64_t now_ns,
                         ei_decision *d, const char **unknown)
{
    *unknown = NULL;
    if (p->dns == NULL)
        return EI_BIND_NO;
    ei_policy_iter it;
    ei_policy_iter_init(&it, p->policy, &facts->src, facts->workload);
    for (const ei_policy *policy; (policy = ei_policy_iter_next(&it)) != NULL;) {
        const char *name = NULL;
        ei_match match = { NULL, 0 };
        ei_bind b = tcp_check_one(p, facts, policy, now_ns, &match, &name);
        if (b == EI_BIND_YES) {
            d->policy = policy;
            d->match = match;
            return EI_BIND_YES;
        }
        if (b == EI_BIND_UNKNOWN && *unknown == NULL)
            *unknown = name;
    }
    return *unknown != NULL ? EI_BIND_UNKNOWN : EI_BIND_NO;
}

/* The pod that sent the flow, from the view. false when the flow now waits for the
 * view to learn it (the caller holds it): once, only live (workload_wait_ns), and only a
 * flow that nothing else denies already. */
static bool find_workload(ei_pipeline *p, ei_flow *f, ei_flow_facts *facts, uint64_t now_ns,
                          bool have_message, const pl_message *m)
{
    if (p->workloads == NULL)
        return true;
    facts->workload = ei_workloads_find(p->workloads, &facts->src);
    facts->workload_unknown = facts->workload == NULL && !ei_policy_set_covers_source(p->policy, &facts->src);
    if (!facts->workload_unknown || facts->problem != EI_REASON_NONE || p->cfg.workload_wait_ns == 0 ||
        (f->flags & EI_FLOW_F_WAITED_WORKLOAD))
        return true;
    if (!pl_wait_room(&p->pod_waits)) {
        p->count.workload_wait_limit++;
        return true;
    }
    pl_start_wait(p, &p->pod_waits, f, now_ns, have_message, m, facts->host, NULL);
    return false;
}

/* Settles flow f, from its message m (NULL when it has none) or from `forced`, the
 * reason its message cannot be trusted. Emits the event, releases held packets, and
 * returns the action for the packet at hand. PASS when nothing can be decided yet; HOLD
 * when the flow now waits for a lookup. `unknown` is the reason to deny a name that is
 * allowed but bound to no known address: EI_REASON_NONE lets the flow wait for a lookup
 * instead, when lookups can be made. */
ei_action pl_settle(ei_pipeline *p, ei_flow *f, uint64_t now_ns, bool have_message,
                    const pl_message *m, ei_reason forced, ei_reason unknown)
{
    ei_flow_event ev;
    memset(&ev, 0, sizeof ev);
    pl_flow_endpoints(f, &ev);

    ei_flow_facts facts;
    memset(&facts, 0, sizeof facts);
    facts.src = ev.src;
    facts.dst = ev.dst;
    facts.sport = ev.sport;
    facts.dport = ev.dport;
    facts.have_message = have_message;
    facts.problem = forced;
    if (!have_message) {
        ei_reason cover = pl_coverage(p, f->key.proto, &facts.dst, facts.dport);
        facts.uncovered = cover == PL_UNJUDGED ? EI_REASON_NONE : cover;
    }

    char name[EI_NAME_MAX + 1];
    if (m != NULL) {
        ev.l7 = facts.l7 = m->l7;
        ev.ech = m->ech;
        ev.tls_version = m->tls_version;
        ev.quic_version = m->quic_version;
        ev.alpn = m->alpn;
        if (m->port != 0)
            facts.dport = ev.target_port = m->port;
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

    if (!find_workload(p, f, &facts, now_ns, have_message, m))
        return EI_ACTION_HOLD;
    ei_decision d = ei_decide(&facts, p->policy);
    ei_bind_facts bf = { .dest_check = p->cfg.dest_check, .dest = EI_BIND_UNKNOWN, .tcp = EI_BIND_NO,
                         .lookups = p->on_lookup != NULL, .wait_room = pl_wait_room(&p->lookups),
                         .unknown = unknown };
    const char *tcp_lookup = NULL;
    ei_decision tcp_d = d;
    if (d.verdict != EI_VERDICT_ALLOW && facts.problem == EI_REASON_NONE && !facts.workload_unknown &&
        f->key.proto == IPPROTO_TCP &&
        (!have_message || !(f->flags & EI_FLOW_F_SYN))) { /* at SYN time, or first sight */
        bf.tcp = tcp_check(p, &facts, now_ns, &tcp_d, &tcp_lookup);
        bf.tcp_match = tcp_d.match;
        if (bf.tcp == EI_BIND_YES)
            d.policy = tcp_d.policy;
    }
    bool dest_checked = d.verdict == EI_VERDICT_ALLOW && d.reason == EI_REASON_ALLOWED_NAME && bf.dest_check;
    if (dest_checked && p->dns != NULL)
        bf.dest = ei_dns_cache_check(p->dns, &facts.src, facts.host, &facts.dst, now_ns);
    ei_wait wait;
    bool wait_refused;
    d = ei_bind_destination(d, &facts, &bf, &wait, &wait_refused);
    if (dest_checked)
        p->count.dest_checks[bf.dest]++;
    if (wait_refused)
        p->count.dns_wait_limit++;
    if (wait == EI_WAIT_TCP_NAME) {
        pl_start_wait(p, &p->lookups, f, now_ns, false, NULL, NULL, tcp_lookup);
        return EI_ACTION_HOLD;
    }
    if (wait == EI_WAIT_NAME) {
        pl_start_wait(p, &p->lookups, f, now_ns, true, m, facts.host, facts.host);
        return EI_ACTION_HOLD;
    }
    if (d.verdict == EI_VERDICT_PENDING)
        return EI_ACTION_PASS;

    /* The mode in effect: the daemon's monitor mode enforces nothing; in enforce mode, a
     * deny whose every governing policy is in monitor mode is logged, not enforced. */
    ei_mode mode = p->mode == EI_MODE_MONITOR || (d.verdict == EI_VERDICT_DENY && d.monitored)
                       ? EI_MODE_MONITOR : EI_MODE_ENFORCE;
    ei_action action = d.verdict == EI_VERDICT_ALLOW || mode == EI_MODE_MONITOR ? EI_ACTION_ALLOW
                                                                               : EI_ACTION_DENY;
    if (d.verdict == EI_VERDICT_DENY && mode == EI_MODE_MONITOR)
        p->count.denies_monitored[p->mode == EI_MODE_MONITOR ? 0 : 1]++;
    f->flags |= EI_FLOW_F_DECIDED;
    f->flags &= (uint16_t)~EI_FLOW_F_WAIT_DNS;
    f->verdict = (uint8_t)action;
    f->reason = (uint8_t)d.reason;
    p->count.decisions[d.reason]++;
    /* Allowed by what its bytes say: those bytes must be what the server reads. Until
     * the server acknowledges them the flow stays queued (ACCEPT) and they are kept. */
    ei_action release = action;
    if (m != NULL && m->probe && release == EI_ACTION_ALLOW)
        release = EI_ACTION_ACCEPT;
    if (action == EI_ACTION_ALLOW && m != NULL && m->l7 == EI_L7_HTTP && m->http_next > 0 &&
        m->http_next <= UINT32_MAX - f->msg_base) {
        /* Plain HTTP: the next request on the connection is judged too. The client's
         * packets stay queued, and the head judged is kept to compare with any
         * retransmission of it. */
        f->flags |= EI_FLOW_F_HTTP | EI_FLOW_F_SERVER_GONE;
        f->next_req = f->msg_base + (uint32_t)m->http_next;
        f->judged_len = f->reasm != NULL ? f->reasm->contig : 0;
        if (f->judged_len > m->http_next)
            f->judged_len = (uint32_t)m->http_next;
        release = EI_ACTION_INSPECT;
    } else if (d.verdict == EI_VERDICT_ALLOW && p->cfg.confirm && p->mode == EI_MODE_ENFORCE &&
               (f->key.proto == IPPROTO_TCP || (m != NULL && m->l7 == EI_L7_QUIC && !m->probe)) &&
               f->reasm != NULL && f->reasm->contig > 0) {
        /* (QUIC: until the server answers; the client's Initials meanwhile must carry the
         * CRYPTO bytes judged, under the same keys) */
        f->flags |= EI_FLOW_F_CONFIRMING;
        f->judged_len = f->reasm->contig;
        p->count.confirming++;
        release = EI_ACTION_ACCEPT;
    }

    ev.ts_ns = now_ns;
    if (f->reasm != NULL && f->reasm->held_since_ns != 0 && now_ns > f->reasm->held_since_ns)
        ev.held_ns = now_ns - f->reasm->held_since_ns;
    ev.decision = d;
    ev.workload = facts.workload;
    int bucket = 0;
    while (ev.held_ns > ei_latency_bounds_ns[bucket])
        bucket++;
    p->count.latency_buckets[bucket]++;
    p->count.latency_sum_ns += ev.held_ns;
    ev.mode = mode;
    ev.enforced = d.verdict == EI_VERDICT_DENY && mode == EI_MODE_ENFORCE;
    ev.midstream = f->key.proto == IPPROTO_TCP && !(f->flags & EI_FLOW_F_SYN);
    ev.bad_checksum = (f->flags & EI_FLOW_F_BAD_CSUM) != 0;
    if (f->flags & EI_FLOW_F_SYNACK) {
        ev.server_known = true;
        /* the requests of an HTTP connection before this one went whole */
        uint32_t got = f->passed > f->msg_base ? f->passed : f->msg_base;
        ev.server_rcv_nxt[0] = ev.server_rcv_nxt[1] = f->base_seq + got;
        if (f->flags & EI_FLOW_F_REVOKED) /* the judged bytes may or may not be in */
            ev.server_rcv_nxt[1] = f->base_seq + f->msg_base + f->judged_len;
        ev.server_snd_nxt = f->server_next;
    }
    ev.revoked = (f->flags & EI_FLOW_F_REVOKED) != 0;
    if (p->on_event)
        p->on_event(p->ctx, &ev);

    /* Bytes past an HTTP request's end are the next request's: its packets stay held
     * until that one is judged too (pipelining; pipeline.c reads it next). */
    bool more = release == EI_ACTION_INSPECT && f->reasm != NULL && f->reasm->contig > f->judged_len;
    if (!more)
        pl_release_held(p, f->reasm, release);
    if ((release != EI_ACTION_ACCEPT && release != EI_ACTION_INSPECT) || (m != NULL && m->probe))
        pl_drop_reasm(p, f);
    return release;
}

void pl_confirm(ei_pipeline *p, ei_flow *f)
{
    f->flags &= (uint16_t)~EI_FLOW_F_CONFIRMING;
    p->count.confirming--;
    p->count.flows_confirmed++;
    pl_drop_reasm(p, f);
}

ei_action pl_revoke(ei_pipeline *p, ei_flow *f, uint64_t now_ns, ei_reason why)
{
    if (f->flags & EI_FLOW_F_CONFIRMING)
        p->count.confirming--;
    f->flags &= (uint16_t)~(EI_FLOW_F_CONFIRMING | EI_FLOW_F_DECIDED | EI_FLOW_F_HTTP);
    f->flags |= EI_FLOW_F_REVOKED;
    p->count.flows_revoked++;
    return pl_settle_unread(p, f, now_ns, why);
}

/* Decides an undecided flow for a reason outside its message (the flow ended, was
 * evicted, the daemon stops), naming what kind of message had begun. */
ei_action pl_settle_unread(ei_pipeline *p, ei_flow *f, uint64_t now_ns, ei_reason why)
{
    pl_message m;
    memset(&m, 0, sizeof m);
    if (f->key.proto == IPPROTO_UDP) {
        m.l7 = EI_L7_QUIC; /* the only UDP flows read */
        m.quic_version = f->reasm != NULL ? f->reasm->quic.version : 0;
    } else if (f->reasm != NULL && f->reasm->contig > 0) {
        if (ei_tls_sniff(f->reasm->buf, f->reasm->contig))
            m.l7 = EI_L7_TLS;
        else if (ei_http_sniff(f->reasm->buf, f->reasm->contig))
            m.l7 = EI_L7_HTTP;
    }
    return pl_settle(p, f, now_ns, true, &m, why, why);
}
