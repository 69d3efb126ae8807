/* Flows that wait: for a lookup of a name (the destination check, a tcp:// entry's
 * name), or for the pod view to learn the address that sent them (a pod that connects
 * before its watch event arrives). Each kind has a ring, oldest first, since every wait
 * of a kind has the same timeout. And the DNS answers to workloads the pipeline learns
 * from on their way. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/internal.h"

bool pl_wait_room(const pl_wait_ring *r)
{
    return r->n < r->cap;
}

/* Holds the flow until the wait ends: a lookup of `name`, or (name NULL) the pod view
 * learning its source. The caller has checked pl_wait_room. */
void pl_start_wait(ei_pipeline *p, pl_wait_ring *r, ei_flow *f, uint64_t now_ns, bool have_message,
                   const pl_message *m, const char *host, const char *name)
{
    pl_wait *w = &r->items[(r->head + r->n++) % r->cap];
    memset(w, 0, offsetof(pl_wait, host));
    w->key = f->key;
    w->base_seq = f->base_seq;
    w->deadline_ns = now_ns + r->timeout_ns;
    w->have_message = have_message;
    if (m != NULL) {
        w->l7 = m->l7;
        w->port = m->port;
        w->ech = m->ech;
        w->tls_version = m->tls_version;
        w->quic_version = m->quic_version;
        w->probe = m->probe;
        w->alpn_len = (uint8_t)(m->alpn.len < sizeof w->alpn ? m->alpn.len : sizeof w->alpn);
        if (w->alpn_len > 0)
            memcpy(w->alpn, m->alpn.ptr, w->alpn_len);
    }
    snprintf(w->host, sizeof w->host, "%s", host != NULL ? host : "");
    snprintf(w->name, sizeof w->name, "%s", name != NULL ? name : "");
    f->flags |= EI_FLOW_F_WAIT_DNS;
    if (name == NULL) {
        f->flags |= EI_FLOW_F_WAITED_WORKLOAD; /* once: its next judgement does not wait */
        p->count.workload_waiting++;
        p->count.workload_waits++;
        return;
    }
    p->count.dns_waiting++;
    p->count.dns_lookups++;
    p->on_lookup(p->ctx, name);
}

/* Decides the flow that waited, now that its wait ended (or never will: `unknown` is the
 * reason to deny a name still bound to nothing). */
static void finish_wait(ei_pipeline *p, pl_wait_ring *r, pl_wait *w, uint64_t now_ns, ei_reason unknown)
{
    w->done = true;
    if (r == &p->pod_waits)
        p->count.workload_waiting--;
    else
        p->count.dns_waiting--;
    ei_flow *f = ei_flow_find(&p->table, &w->key);
    if (f == NULL || !(f->flags & EI_FLOW_F_WAIT_DNS) || f->base_seq != w->base_seq)
        return; /* decided meanwhile (evicted, held limit, a new connection on the tuple) */
    f->flags &= (uint16_t)~EI_FLOW_F_WAIT_DNS;
    pl_message m;
    memset(&m, 0, sizeof m);
    m.status = EI_PARSE_OK;
    m.l7 = w->l7;
    m.port = w->port;
    m.ech = w->ech;
    m.tls_version = w->tls_version;
    m.quic_version = w->quic_version;
    m.probe = w->probe;
    m.alpn.ptr = w->alpn;
    m.alpn.len = w->alpn_len;
    m.host.ptr = (const uint8_t *)w->host;
    m.host.len = strlen(w->host);
    if (m.host.len == 0)
        m.host.ptr = NULL;
    ei_action action = pl_settle(p, f, now_ns, w->have_message, w->have_message ? &m : NULL,
                              EI_REASON_NONE, unknown);
    if (action == EI_ACTION_PASS) {
        /* A SYN that waited (for a tcp:// entry's name that turned out not to match, or
         * for its pod): it goes on, undecided. */
        pl_release_held(p, f->reasm, EI_ACTION_PASS);
        pl_drop_reasm(p, f);
    } else if (action == EI_ACTION_INSPECT && f->reasm != NULL) {
        /* an HTTP request with the next one pipelined behind it: judged in turn */
        ei_action next = pl_http_pipelined(p, f, now_ns, f->reasm->buf, f->reasm->contig);
        (void)next; /* no packet at hand: what each held one gets is released with it */
    }
    ei_flow_touch(&p->table, f, now_ns);
}

void ei_pipeline_dns_done(ei_pipeline *p, const char *name, uint64_t now_ns)
{
    /* Still bound to nothing after the lookup: it failed (or its answer was evicted
     * already, which only a cache far too small for the node could do). */
    pl_wait_ring *r = &p->lookups;
    for (uint32_t i = 0; i < r->n; i++) {
        pl_wait *w = &r->items[(r->head + i) % r->cap];
        if (!w->done && strcmp(w->name, name) == 0)
            finish_wait(p, r, w, now_ns, EI_REASON_DNS_FAILED);
    }
    ei_pipeline_expire(p, now_ns);
}

/* The pod view changed: the flows whose sender it now knows are judged. */
void pl_workloads_changed(ei_pipeline *p, uint64_t now_ns)
{
    pl_wait_ring *r = &p->pod_waits;
    for (uint32_t i = 0; i < r->n; i++) {
        pl_wait *w = &r->items[(r->head + i) % r->cap];
        if (w->done)
            continue;
        ei_addr src;
        ei_flow *f = ei_flow_find(&p->table, &w->key);
        if (f == NULL) {
            finish_wait(p, r, w, now_ns, EI_REASON_NONE); /* gone: only the count is left */
            continue;
        }
        pl_flow_client(f, &src);
        if (p->workloads != NULL && ei_workloads_find(p->workloads, &src) != NULL) {
            p->count.workload_wait_found++;
            finish_wait(p, r, w, now_ns, EI_REASON_NONE);
        }
    }
    pl_expire_waits(p, &p->pod_waits, now_ns, EI_REASON_NONE);
}

/* Pops finished waits. why: EI_REASON_DNS_TIMEOUT decides those past their deadline,
 * EI_REASON_NONE none, any other every one (a capture's end, shutdown). */
void pl_expire_waits(ei_pipeline *p, pl_wait_ring *r, uint64_t now_ns, ei_reason why)
{
    while (r->n > 0) {
        pl_wait *w = &r->items[r->head];
        if (!w->done && (why == EI_REASON_NONE || (why == EI_REASON_DNS_TIMEOUT && now_ns < w->deadline_ns)))
            break;
        if (!w->done) {
            if (r == &p->pod_waits)
                p->count.workload_wait_timeout++;
            /* a pod wait: the view still does not know the sender (workload_unknown);
             * a lookup: the name is still bound to nothing */
            finish_wait(p, r, w, now_ns, r == &p->pod_waits ? EI_REASON_NONE : why);
        }
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
}

/* Learns from a DNS answer on its way to a workload (its destination). Never changes the
 * packet's fate: a malformed answer is passed on, counted, and teaches nothing. */
void pl_snoop_dns(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns)
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
    if (!pl_named_resolver(p, &pkt->src)) {
        p->count.dns_unnamed++; /* a resolver of the workload's own choosing */
        return;
    }
    ei_dns_answer a;
    if (ei_dns_parse_response(msg.ptr, msg.len, &a) != EI_PARSE_OK) {
        p->count.dns_malformed[a.problem]++;
        return;
    }
    if (p->cfg.dns_asked_only && !pl_was_asked(p, pkt, &a, now_ns)) {
        p->count.dns_unasked++; /* an answer to no question the workload asked */
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
