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
#include "egress_inspector/tls.h"
#include "flow/segment.h"
#include "pipeline/internal.h"

const uint64_t ei_latency_bounds_ns[EI_LATENCY_BUCKETS] = {
    100000ull, 1000000ull, 10000000ull, 100000000ull, 1000000000ull, UINT64_MAX,
};

const char *ei_action_name(ei_action action)
{
    static const char *const names[EI_ACTION_COUNT] = {
        [EI_ACTION_PASS] = "pass", [EI_ACTION_ALLOW] = "allow", [EI_ACTION_ACCEPT] = "accept",
        [EI_ACTION_INSPECT] = "inspect",
        [EI_ACTION_DENY] = "deny",
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
    /* FTP, SMTP, POP3, IMAP, LDAP, submission, SOCKS, PostgreSQL: where clients
     * honestly speak before their ClientHello or name their target. */
    static const uint16_t preamble_ports[] = { 21, 25, 110, 143, 389, 587, 1080, 5432 };
    memcpy(cfg->preamble_ports, preamble_ports, sizeof preamble_ports);
    cfg->npreamble_ports = sizeof preamble_ports / sizeof preamble_ports[0];
    cfg->confirm = true;
    cfg->checksums = EI_CHECKSUM_VERIFY;
    cfg->dest_check = true;
    cfg->dns_timeout_ns = 2ull * 1000000000ull;
    cfg->dns_asked_only = true;
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
    if (p->cfg.quic == EI_QUIC_INSPECT && !p->cfg.dns_answers) {
        p->quic_plain = malloc(65536); /* a datagram's decrypted Initials: the largest datagram */
        p->quic_crypto = ei_quic_ctx_new();
    }
    bool quic = (p->quic_plain != NULL && p->quic_crypto != NULL) || p->cfg.quic != EI_QUIC_INSPECT ||
                p->cfg.dns_answers;
    p->lookups = (pl_wait_ring){ .cap = p->cfg.max_dns_waits, .timeout_ns = p->cfg.dns_timeout_ns };
    p->pod_waits = (pl_wait_ring){ .cap = p->cfg.max_dns_waits, .timeout_ns = p->cfg.workload_wait_ns };
    p->lookups.items = calloc(p->lookups.cap, sizeof(pl_wait));
    p->pod_waits.items = p->cfg.workload_wait_ns > 0 ? calloc(p->pod_waits.cap, sizeof(pl_wait)) : NULL;
    bool pod_waits = p->cfg.workload_wait_ns == 0 || p->pod_waits.items != NULL;
    p->scratch = malloc(p->cfg.reassembly_bytes);
    bool asked = !p->cfg.dns_asked_only || (!p->cfg.live || p->cfg.dns_answers ? pl_asked_init(p) : true);
    if (p->scratch == NULL || p->lookups.items == NULL || !pod_waits || !asked || !quic ||
        !ei_flow_table_init(&p->table, cfg->max_flows, cfg->hash_seed)) {
        pl_asked_free(p);
        ei_quic_ctx_free(p->quic_crypto);
        free(p->quic_plain);
        free(p->lookups.items);
        free(p->pod_waits.items);
        free(p->scratch);
        free(p);
        return NULL;
    }
    return p;
}

/* Forgets the decided exchanges that are not TCP, so that their next packets are judged
 * by the new policy or mode. Live, a denied one has no state on the node (its first packet
 * was rejected before conntrack kept the entry), so each retry comes back to the queue
 * and would otherwise meet the old verdict; an allowed one has left the queue by its
 * mark, as a TCP connection does. */
static void forget_connectionless(ei_pipeline *p)
{
    ei_flow_table *t = &p->table;
    for (uint32_t i = t->lists[1].head; i != EI_FLOW_NONE;) {
        ei_flow *f = &t->flows[i];
        i = f->lru.next;
        if (f->key.proto != IPPROTO_TCP) {
            ei_flow_remove(t, f);
            p->count.flows--;
        }
    }
}

void ei_pipeline_set_policy(ei_pipeline *p, const ei_policy_set *policy)
{
    if (policy != p->policy)
        forget_connectionless(p);
    p->policy = policy;
}

void ei_pipeline_set_mode(ei_pipeline *p, ei_mode mode)
{
    if (mode != p->mode)
        forget_connectionless(p);
    p->mode = mode;
}

void ei_pipeline_set_workloads(ei_pipeline *p, const ei_workloads *view, uint64_t now_ns)
{
    if (view == p->workloads)
        return;
    if (p->workloads != NULL)
        forget_connectionless(p); /* a pod's labels, so its policies, may have changed */
    p->workloads = view;
    pl_workloads_changed(p, now_ns);
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

/* Packets a decided flow still holds: the next HTTP request's, pipelined behind an
 * allowed one and not judged yet. Denied: their bytes were never judged. */
static void release_leftover(ei_pipeline *p, ei_flow *f)
{
    if (f->reasm != NULL && f->reasm->nheld > 0)
        pl_release_held(p, f->reasm, EI_ACTION_DENY);
}

/* Deletes a flow, deciding it first if it had begun a message or holds packets. */
static void retire(ei_pipeline *p, ei_flow *f, uint64_t now_ns, ei_reason why)
{
    if (!(f->flags & EI_FLOW_F_DECIDED) && f->reasm != NULL)
        (void)pl_settle_unread(p, f, now_ns, why); /* no packet at hand; held ones are released */
    release_leftover(p, f);
    pl_drop_reasm(p, f);
    ei_flow_remove(&p->table, f);
    p->count.flows--;
}

void ei_pipeline_expire(ei_pipeline *p, uint64_t now_ns)
{
    static const ei_reason why[2] = { EI_REASON_INCOMPLETE, EI_REASON_NONE };
    const uint64_t timeout[2] = { p->cfg.undecided_timeout_ns, p->cfg.decided_timeout_ns };
    int budget = EXPIRE_BATCH;
    pl_expire_waits(p, &p->lookups, now_ns, EI_REASON_DNS_TIMEOUT);
    pl_expire_waits(p, &p->pod_waits, now_ns, EI_REASON_DNS_TIMEOUT);
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
    pl_expire_waits(p, &p->pod_waits, now_ns, reason);
    pl_expire_waits(p, &p->lookups, now_ns, reason);
    ei_flow_table *t = &p->table;
    for (int list = 0; list < 2; list++)
        for (uint32_t i = t->lists[list].head; i != EI_FLOW_NONE; i = t->flows[i].lru.next) {
            ei_flow *f = &t->flows[i];
            if (!(f->flags & EI_FLOW_F_DECIDED) && f->reasm != NULL)
                (void)pl_settle_unread(p, f, now_ns, reason); /* releases what it held */
            release_leftover(p, f);
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
    pl_asked_free(p);
    ei_quic_ctx_free(p->quic_crypto);
    free(p->quic_plain);
    free(p->lookups.items);
    free(p->pod_waits.items);
    free(p->scratch);
    free(p);
}

ei_flow *pl_insert_flow(ei_pipeline *p, const ei_flow_key *key, uint64_t now_ns)
{
    ei_flow evicted;
    bool did_evict;
    ei_flow *f = ei_flow_insert(&p->table, key, now_ns, &evicted, &did_evict);
    if (did_evict) {
        p->count.flows_evicted++;
        p->count.flows--;
        if (!(evicted.flags & EI_FLOW_F_DECIDED) && evicted.reasm != NULL) {
            /* The victim is no longer in the table: decide it from a copy. */
            (void)pl_settle_unread(p, &evicted, now_ns, EI_REASON_FLOW_EVICTED); /* its held packets */
        }
        if (evicted.flags & EI_FLOW_F_CONFIRMING)
            p->count.confirming--;
        release_leftover(p, &evicted);
        pl_drop_reasm(p, &evicted);
    }
    if (f == NULL) {
        p->count.out_of_memory++;
        return NULL;
    }
    p->count.flows++;
    p->count.flows_created++;
    return f;
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
    } else if (p->cfg.live || ei_tls_sniff(pkt->payload.ptr, pkt->payload.len) ||
               ei_http_sniff(pkt->payload.ptr, pkt->payload.len)) {
        sender_is_client = true;
    } else {
        /* Data that starts no message we know, from a flow whose start we missed: the
         * client is most likely the side with the ephemeral (higher) port. */
        sender_is_client = pkt->sport >= pkt->dport;
    }

    ei_flow *f = pl_insert_flow(p, key, now_ns);
    if (f == NULL)
        return NULL;
    bool client_a = sender_is_client == sender_is_a;
    f->flags = client_a ? EI_FLOW_F_CLIENT_IS_A : 0;
    if (syn && sender_is_client) {
        f->flags |= EI_FLOW_F_SYN;
        f->base_seq = pkt->seq + 1;
        f->syn_ttl = pkt->ttl;
        if (pkt->tcp_options & EI_TCPOPT_TS) {
            f->flags |= EI_FLOW_F_TS;
            f->ts_recent = pkt->tsval;
        }
    } else if (syn) {
        /* The server's SYN-ACK first: it names the client's sequence number exactly, but
         * live the client's SYN was missed, so the flow is midstream there. */
        f->flags |= EI_FLOW_F_SYNACK | (p->cfg.live ? 0 : EI_FLOW_F_SYN);
        f->base_seq = pkt->ack;
        f->server_isn = pkt->seq;
        f->server_next = pkt->seq + 1;
    } else {
        p->count.flows_midstream++;
        f->base_seq = sender_is_client ? pkt->seq : pkt->ack;
    }
    return f;
}

/* The part of a client segment that lies in the message being read (from msg_base), at
 * offset *rel into it; false when all of it lies before (an old duplicate, or an HTTP
 * body already passed: nothing new). */
static bool stream_part(const ei_flow *f, const ei_packet *pkt, const uint8_t **data,
                        size_t *len, uint32_t *rel)
{
    *data = pkt->payload.ptr;
    *len = pkt->payload.len;
    uint32_t start = pkt->seq + ((pkt->tcp_flags & EI_TCP_SYN) ? 1u : 0u);
    int32_t off = (int32_t)(start - f->base_seq - f->msg_base);
    if (off < 0) { /* begins before the stream did: keep the part inside it */
        size_t skip = (size_t)-(int64_t)off;
        if (skip >= *len)
            return false;
        *data += skip;
        *len -= skip;
        off = 0;
    }
    *rel = (uint32_t)off;
    return true;
}

/* A client segment went to the server: how far the server's stream has come. */
static void note_passed(ei_flow *f, const ei_packet *pkt)
{
    uint32_t end = pkt->seq + (uint32_t)pkt->payload.len - f->base_seq;
    if ((int32_t)(end - f->passed) > 0 && end - f->passed < EI_SEGMENT_WINDOW)
        f->passed = end;
}

/* See internal.h. */
ei_reason pl_stream_add(ei_pipeline *p, ei_reasm *r, uint32_t off, const uint8_t *data, size_t len,
                        ei_reason conflict)
{
    size_t footprint = ei_reasm_footprint(r);
    ei_reasm_status st = ei_reasm_add(r, off, data, len, p->cfg.reassembly_bytes);
    p->count.buffered_bytes += ei_reasm_footprint(r) - footprint;
    if (st == EI_REASM_CONFLICT)
        return conflict;
    if (st == EI_REASM_NOMEM) {
        p->count.out_of_memory++;
        return EI_REASON_REASSEMBLY_LIMIT;
    }
    if (p->count.buffered_bytes > p->cfg.max_buffered_bytes) {
        p->count.buffer_budget_exhausted++;
        return EI_REASON_REASSEMBLY_LIMIT;
    }
    return EI_REASON_NONE;
}

/* See internal.h. */
ei_reasm *pl_flow_reasm(ei_pipeline *p, ei_flow *f)
{
    if (f->reasm == NULL) {
        f->reasm = ei_reasm_new(p->cfg.max_held_packets);
        if (f->reasm == NULL) {
            p->count.out_of_memory++;
            return NULL;
        }
        p->count.reassembling++;
        p->count.buffered_bytes += ei_reasm_footprint(f->reasm);
    }
    return f->reasm;
}

/* The flow reads its next HTTP request, from next_req: undecided again, with the n bytes
 * of it already seen (src, which may lie in the old buffer) and the packets still held. */
static bool http_next_message(ei_pipeline *p, ei_flow *f, const uint8_t *src, size_t n)
{
    ei_reasm *old = f->reasm;
    f->reasm = NULL;
    ei_reasm *r = pl_flow_reasm(p, f);
    if (r == NULL) {
        f->reasm = old;
        return false;
    }
    size_t footprint = ei_reasm_footprint(r);
    ei_reasm_status st = n > 0 ? ei_reasm_add(r, 0, src, n, p->cfg.reassembly_bytes) : EI_REASM_OK;
    p->count.buffered_bytes += ei_reasm_footprint(r) - footprint;
    if (old != NULL) {
        memcpy(r->held, old->held, (size_t)old->nheld * sizeof r->held[0]);
        r->nheld = old->nheld;
        r->held_since_ns = old->held_since_ns;
        f->reasm = old;
        pl_drop_reasm(p, f); /* its held ids moved over, so nothing is released */
        f->reasm = r;
    }
    f->msg_base = f->next_req;
    f->flags &= (uint16_t)~(EI_FLOW_F_DECIDED | EI_FLOW_F_HTTP);
    f->packets = 0;
    return st == EI_REASM_OK;
}

/* See internal.h. */
ei_action pl_http_pipelined(ei_pipeline *p, ei_flow *f, uint64_t now_ns, const uint8_t *src,
                            uint32_t seen)
{
    ei_action action = EI_ACTION_INSPECT;
    while (action == EI_ACTION_INSPECT && (f->flags & EI_FLOW_F_HTTP) &&
           f->next_req - f->msg_base < seen) {
        uint32_t skip = f->next_req - f->msg_base;
        if (!http_next_message(p, f, src + skip, seen - skip))
            return pl_settle_unread(p, f, now_ns, EI_REASON_REASSEMBLY_LIMIT);
        ei_reasm *r = f->reasm;
        pl_message m;
        pl_read_message(&p->cfg, pl_server_port(f), p->scratch, r->buf, r->contig, &m);
        if (m.status == EI_PARSE_NEED_MORE)
            return EI_ACTION_HOLD;
        action = pl_settle(p, f, now_ns, true, &m, EI_REASON_NONE, EI_REASON_NONE);
        src = f->reasm != NULL ? f->reasm->buf : NULL;
        seen = f->reasm != NULL ? f->reasm->contig : 0;
    }
    if (action == EI_ACTION_INSPECT)
        pl_release_held(p, f->reasm, EI_ACTION_INSPECT);
    return action;
}

/* Adds the client's segment to the flow's stream and reads the message when it can.
 * Returns the flow's action if this decided it, else PASS. */
static ei_action take_client_data(ei_pipeline *p, ei_flow *f, const ei_packet *pkt,
                                  uint64_t now_ns, bool *in_preamble)
{
    const uint8_t *data;
    size_t len;
    uint32_t rel;
    if (!stream_part(f, pkt, &data, &len, &rel))
        return EI_ACTION_PASS;
    uint16_t port = pl_server_port(f);
    pl_message m;
    bool whole = false;
    if (f->reasm == NULL && rel == 0) {
        /* The common case: the whole message in the first segment, read in place (and
         * kept only when the verdict must wait for the server's acknowledgement). */
        pl_read_message(&p->cfg, port, p->scratch, data, len, &m);
        whole = m.status != EI_PARSE_NEED_MORE;
        if (whole && !(p->cfg.confirm && p->mode == EI_MODE_ENFORCE)) {
            ei_action action = pl_settle(p, f, now_ns, true, &m, EI_REASON_NONE, EI_REASON_NONE);
            return action == EI_ACTION_INSPECT ? pl_http_pipelined(p, f, now_ns, data, (uint32_t)len)
                                               : action;
        }
        *in_preamble = m.in_preamble;
    }
    ei_reasm *r = pl_flow_reasm(p, f);
    if (r == NULL)
        return pl_settle(p, f, now_ns, true, NULL, EI_REASON_REASSEMBLY_LIMIT, EI_REASON_REASSEMBLY_LIMIT);
    uint32_t before = r->contig;
    ei_reason bad = pl_stream_add(p, r, rel, data, len, EI_REASON_TCP_OVERLAP_CONFLICT);
    if (bad != EI_REASON_NONE)
        return pl_settle_unread(p, f, now_ns, bad);
    if (!whole && r->contig == before)
        return EI_ACTION_PASS;
    if (!whole) /* (when whole, m's views are into the packet, which is still at hand) */
        pl_read_message(&p->cfg, port, p->scratch, r->buf, r->contig, &m);
    if (m.status != EI_PARSE_NEED_MORE) {
        ei_action action = pl_settle(p, f, now_ns, true, &m, EI_REASON_NONE, EI_REASON_NONE);
        return action == EI_ACTION_INSPECT && f->reasm != NULL
                   ? pl_http_pipelined(p, f, now_ns, f->reasm->buf, f->reasm->contig)
                   : action;
    }
    *in_preamble = m.in_preamble;
    if (r->contig >= p->cfg.reassembly_bytes)
        return pl_settle(p, f, now_ns, true, &m, EI_REASON_REASSEMBLY_LIMIT, EI_REASON_REASSEMBLY_LIMIT);
    return EI_ACTION_PASS;
}

/* See internal.h. */
ei_action pl_hold(ei_pipeline *p, ei_flow *f, uint64_t packet_id, uint64_t now_ns)
{
    if (pl_flow_reasm(p, f) == NULL) {
        ei_action action = pl_settle(p, f, now_ns, true, NULL, EI_REASON_REASSEMBLY_LIMIT,
                                     EI_REASON_REASSEMBLY_LIMIT);
        ei_flow_touch(&p->table, f, now_ns);
        return action;
    }
    ei_reasm *r = f->reasm;
    if (r->nheld == r->held_cap) {
        ei_action action = pl_settle_unread(p, f, now_ns, EI_REASON_HELD_LIMIT);
        ei_flow_touch(&p->table, f, now_ns);
        return action;
    }
    if (r->nheld == 0 && r->held_since_ns == 0)
        r->held_since_ns = now_ns;
    r->held[r->nheld++] = packet_id;
    p->count.held++;
    return EI_ACTION_HOLD;
}

/* A server segment. Live, the node rules queue the server's packets only until the
 * flow is settled: its SYN-ACK (the client ISN the server took, its own ISN) and its
 * acknowledgements, one of which confirms an allowed flow. */
static ei_action server_segment(ei_pipeline *p, ei_flow *f, const ei_packet *pkt, uint64_t now_ns)
{
    uint8_t fl = pkt->tcp_flags;
    bool decided = f->flags & EI_FLOW_F_DECIDED;
    if ((fl & (EI_TCP_SYN | EI_TCP_ACK)) == (EI_TCP_SYN | EI_TCP_ACK)) {
        if (!(f->flags & EI_FLOW_F_SYNACK)) {
            /* It acknowledges the SYN judged (and the Fast Open data it took), or it
             * answers another SYN: then the stream judged is not the server's. */
            uint32_t took = f->reasm != NULL ? f->reasm->contig : 0;
            bool other = (f->flags & EI_FLOW_F_SYN) && pkt->ack - f->base_seq > took;
            if (other && !decided)
                return pl_settle_unread(p, f, now_ns, EI_REASON_TCP_SYN_CONFLICT);
            if (other && (f->flags & EI_FLOW_F_CONFIRMING))
                return pl_revoke(p, f, now_ns, EI_REASON_TCP_SYN_CONFLICT);
            f->flags |= EI_FLOW_F_SYNACK;
            f->server_isn = pkt->seq;
            f->server_next = pkt->seq + 1;
            if (!(pkt->tcp_options & EI_TCPOPT_TS))
                f->flags &= (uint16_t)~EI_FLOW_F_TS; /* not negotiated */
        } else if (pkt->seq != f->server_isn && !decided && f->reasm == NULL) {
            /* Another SYN-ACK before the client said anything (a server may answer a
             * retransmitted SYN anew): its first data acknowledges the one it took. */
            f->flags |= EI_FLOW_F_SYNACK2;
            f->server_isn2 = pkt->seq;
        }
    } else if (f->flags & EI_FLOW_F_SYNACK) {
        uint32_t end = pkt->seq + (uint32_t)pkt->payload.len + ((fl & EI_TCP_FIN) ? 1u : 0u);
        if ((int32_t)(end - f->server_next) > 0)
            f->server_next = end;
    }
    if (!decided && (fl & EI_TCP_RST)) {
        retire(p, f, now_ns, EI_REASON_INCOMPLETE); /* refused, or reset: over */
        return EI_ACTION_PASS;
    }
    if (!decided)
        return EI_ACTION_PASS;
    if (f->flags & EI_FLOW_F_HTTP)
        return EI_ACTION_INSPECT;
    if (f->flags & EI_FLOW_F_CONFIRMING) {
        uint32_t acked = pkt->ack - f->base_seq - f->msg_base;
        if (!(fl & EI_TCP_ACK) || (fl & EI_TCP_RST) || acked < f->judged_len ||
            acked > f->judged_len + EI_SEGMENT_WINDOW)
            return EI_ACTION_ACCEPT;
        /* The server has every byte judged: the connection may leave the queue. */
        pl_confirm(p, f);
    }
    return (ei_action)f->verdict;
}

/* A client segment of an allowed flow that waits for its confirmation: bytes that the
 * verdict read must come again unchanged; new bytes are not judged. */
static ei_action confirming_client(ei_pipeline *p, ei_flow *f, const ei_packet *pkt, uint64_t now_ns)
{
    const uint8_t *data;
    size_t len;
    uint32_t rel;
    if (pkt->payload.len == 0 || !stream_part(f, pkt, &data, &len, &rel) || rel >= f->judged_len)
        return EI_ACTION_ACCEPT;
    if (ei_reasm_add(f->reasm, rel, data, len, f->judged_len) == EI_REASM_CONFLICT)
        return pl_revoke(p, f, now_ns, EI_REASON_TCP_OVERLAP_CONFLICT);
    return EI_ACTION_ACCEPT;
}

/* A client segment of an allowed plain HTTP connection, between requests: body bytes
 * pass; the head judged must come again unchanged; the first byte of the next request
 * makes the flow undecided again, from there (PASS: the caller reads it as such). */
static ei_action http_client(ei_pipeline *p, ei_flow *f, const ei_packet *pkt, uint64_t now_ns)
{
    if (pkt->payload.len == 0)
        return EI_ACTION_INSPECT;
    const uint8_t *data;
    size_t len;
    uint32_t rel;
    if (f->reasm != NULL && stream_part(f, pkt, &data, &len, &rel) && rel < f->judged_len &&
        ei_reasm_add(f->reasm, rel, data, len, f->judged_len) == EI_REASM_CONFLICT)
        return pl_revoke(p, f, now_ns, EI_REASON_TCP_OVERLAP_CONFLICT);
    uint32_t end = pkt->seq + (uint32_t)pkt->payload.len - f->base_seq;
    if ((int32_t)(end - f->next_req) <= 0) {
        note_passed(f, pkt);
        return EI_ACTION_INSPECT;
    }
    if (!http_next_message(p, f, NULL, 0))
        return pl_settle_unread(p, f, now_ns, EI_REASON_REASSEMBLY_LIMIT);
    return EI_ACTION_PASS;
}

/* Whether a client SYN starts another connection than the flow's: a new ISN, or the
 * other side's SYN. A retransmitted SYN carries the same sequence number. */
static bool other_syn(const ei_flow *f, const ei_packet *pkt, bool sender_is_a)
{
    return !(f->flags & EI_FLOW_F_SYN) || pkt->seq + 1 != f->base_seq ||
           sender_is_a != pl_client_is_a(f);
}

/* Whether the packet may be read. A wrong checksum is counted; with EI_CHECKSUM_VERIFY
 * the packet is then dropped before anything reads it (the receiver would discard it),
 * with EI_CHECKSUM_REPORT it is read and *bad says so. Live, the kernel has verified the
 * IPv4 header's already (ip_rcv drops a wrong one), and a forwarded header with options
 * (record route) is rewritten before its sum is: only TCP's and UDP's are ours. */
static bool checksum_passes(ei_pipeline *p, const ei_packet *pkt, unsigned info, bool *bad)
{
    *bad = (info & PL_CSUM_WAS_BAD) != 0;
    if (info & PL_CSUM_TAKEN) /* taken already, and passed (or was reported) */
        return true;
    if (p->cfg.checksums == EI_CHECKSUM_OFF ||
        ei_packet_checksum(pkt, !p->cfg.live, !(info & EI_PKT_CSUM_LATER)) != EI_CSUM_BAD)
        return true;
    p->count.bad_checksums++;
    *bad = true;
    return p->cfg.checksums == EI_CHECKSUM_REPORT;
}

static ei_action judge_tcp(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns,
                           uint64_t packet_id, unsigned info)
{
    ei_flow_key key;
    bool sender_is_a;
    ei_flow_key_make(IPPROTO_TCP, &pkt->src, pkt->sport, &pkt->dst, pkt->dport, &key, &sender_is_a);
    ei_flow *f = ei_flow_find(&p->table, &key);
    bool client_syn = (pkt->tcp_flags & (EI_TCP_SYN | EI_TCP_ACK)) == EI_TCP_SYN;
    /* Checksums matter for packets that can still change a flow's fate. */
    bool settled = f != NULL && (f->flags & EI_FLOW_F_DECIDED) && !(f->flags & EI_FLOW_F_CONFIRMING);
    bool bad_sum = false;
    if ((!settled || client_syn) && !checksum_passes(p, pkt, info, &bad_sum))
        return EI_ACTION_DROP;

    if (f != NULL && client_syn && other_syn(f, pkt, sender_is_a)) {
        /* A settled connection may be followed by a new one on its tuple (port reuse,
         * judged afresh from its own SYN). One whose first message is not settled may
         * not: the server keeps the ISN it acknowledged, and another SYN is how a
         * client would show the inspector a stream the server never reads. */
        if (!(f->flags & EI_FLOW_F_DECIDED)) {
            ei_action action = pl_settle_unread(p, f, now_ns, EI_REASON_TCP_SYN_CONFLICT);
            ei_flow_touch(&p->table, f, now_ns);
            return action;
        }
        if (f->flags & EI_FLOW_F_CONFIRMING)
            return pl_revoke(p, f, now_ns, EI_REASON_TCP_SYN_CONFLICT);
        retire(p, f, now_ns, EI_REASON_INCOMPLETE);
        f = NULL;
    }
    bool created = false, uncovered = false;
    if (f == NULL) {
        f = open_flow(p, pkt, &key, sender_is_a, now_ns);
        if (f == NULL)
            return EI_ACTION_PASS;
        created = true;
        if (!pl_port_inspected(&p->cfg, pl_server_port(f))) {
            ei_flow_event ends;
            pl_flow_endpoints(f, &ends);
            if (pl_coverage(p, IPPROTO_TCP, &ends.dst, ends.dport) == PL_UNJUDGED) {
                retire(p, f, now_ns, EI_REASON_NONE); /* not the inspector's to judge */
                return EI_ACTION_PASS;
            }
            uncovered = true;
        }
    } else {
        ei_flow_touch(&p->table, f, now_ns);
    }
    if (bad_sum)
        f->flags |= EI_FLOW_F_BAD_CSUM;
    bool from_client = sender_is_a == pl_client_is_a(f);
    if (!from_client)
        return server_segment(p, f, pkt, now_ns);
    if (f->flags & EI_FLOW_F_CONFIRMING)
        return confirming_client(p, f, pkt, now_ns);
    if ((f->flags & (EI_FLOW_F_DECIDED | EI_FLOW_F_HTTP)) == (EI_FLOW_F_DECIDED | EI_FLOW_F_HTTP)) {
        ei_action action = http_client(p, f, pkt, now_ns);
        if (action != EI_ACTION_PASS)
            return action;
    } else if (f->flags & EI_FLOW_F_DECIDED) {
        return (ei_action)f->verdict;
    }
    if (f->flags & EI_FLOW_F_WAIT_DNS) {
        /* The message (or the SYN) is read; only the lookup is missing. Nothing that
         * could open the connection or carry bytes passes before the verdict. */
        if (pkt->payload.len == 0 && !(pkt->tcp_flags & EI_TCP_SYN))
            return EI_ACTION_PASS;
        return pl_hold(p, f, packet_id, now_ns);
    }

    ei_action action = EI_ACTION_PASS;
    bool in_preamble = false;
    if (created && ((f->flags & EI_FLOW_F_SYN) || uncovered)) /* address entries; or all there is */
        action = pl_settle(p, f, now_ns, false, NULL, EI_REASON_NONE, EI_REASON_NONE);
    if (action == EI_ACTION_PASS && f->packets < UINT8_MAX)
        f->packets++;
    if (action == EI_ACTION_PASS && pkt->payload.len > 0) {
        ei_reason bad = ei_segment_check(f, pkt, p->cfg.live);
        if (bad != EI_REASON_NONE) {
            action = pl_settle_unread(p, f, now_ns, bad);
        } else {
            ei_segment_learn(f, pkt);
            action = take_client_data(p, f, pkt, now_ns, &in_preamble);
        }
    }
    if (action == EI_ACTION_HOLD)
        return pl_hold(p, f, packet_id, now_ns); /* the flow now waits for a lookup */
    if (action == EI_ACTION_PASS) {
        if (f->packets > p->cfg.max_packets_before_name)
            action = pl_settle_unread(p, f, now_ns, EI_REASON_NO_NAME_WITHIN_LIMIT);
        else if (pkt->tcp_flags & (EI_TCP_FIN | EI_TCP_RST) && f->reasm != NULL)
            action = pl_settle_unread(p, f, now_ns, EI_REASON_INCOMPLETE);
        else if (pkt->tcp_flags & (EI_TCP_FIN | EI_TCP_RST)) {
            /* Over before it said anything: forgotten, so that its tuple is free. */
            retire(p, f, now_ns, EI_REASON_INCOMPLETE);
            return EI_ACTION_PASS;
        }
    }
    if (f->flags & EI_FLOW_F_DECIDED)
        ei_flow_touch(&p->table, f, now_ns); /* onto the decided list */
    if (action == EI_ACTION_PASS && in_preamble)
        note_passed(f, pkt);
    if (action != EI_ACTION_PASS || pkt->payload.len == 0 || in_preamble)
        return action;

    /* Undecided, and this packet carries bytes: the server must not see them yet. (No
     * buffer means every byte lay before the stream's start: nothing new to hide.
     * Preamble commands must reach the server, which answers before the client goes on:
     * their grammar is exact and their length bounded.) */
    if (f->reasm == NULL)
        return EI_ACTION_PASS;
    return pl_hold(p, f, packet_id, now_ns);
}

ei_action ei_pipeline_packet(ei_pipeline *p, int linktype, const uint8_t *data, size_t len,
                             uint64_t now_ns, uint64_t packet_id, unsigned info)
{
    p->count.packets++;
    /* Ageing at most once per millisecond of packet time: timeouts are seconds long. */
    if (now_ns - p->expired_ns >= 1000000u || now_ns < p->expired_ns) {
        p->expired_ns = now_ns;
        ei_pipeline_expire(p, now_ns);
    }
    ei_packet pkt;
    ei_packet_error err = p->cfg.tunnels ? ei_packet_parse(linktype, data, len, &pkt)
                                         : ei_packet_parse_outer(linktype, data, len, &pkt);
    ei_action action = EI_ACTION_PASS;
    p->count.packets_truncated += pkt.truncated;
    if (err != EI_PKT_OK) {
        p->count.packet_errors[err]++;
        /* Not IP: not ours to judge. Not TCP or UDP: judged by coverage alone. Unreadable
         * IP or TCP, or a fragment whose ports cannot be trusted: dropped, never guessed
         * at. */
        if (err == EI_PKT_OTHER_L4 && !p->cfg.dns_answers)
            action = pl_judge_uncovered(p, &pkt, now_ns, packet_id);
        else
            action = err == EI_PKT_NOT_IP || err == EI_PKT_OTHER_L4 ? EI_ACTION_PASS : EI_ACTION_DROP;
    } else if ((pkt.dport == DNS_PORT || pkt.sport == DNS_PORT) && pkt.payload.len > 0 &&
               (p->cfg.dns_answers || !p->cfg.live)) {
        /* DNS: a workload's question on its way out (what its answer must match), or an
         * answer to it. In a capture both directions are there; live, only the answer
         * queue's packets are, since a workload could send anything from port 53 itself.
         * A message the receiver's stack will discard (a wrong checksum) counts for
         * nothing; its sum is not taken twice when it is also a TCP flow's. */
        bool bad;
        if (!checksum_passes(p, &pkt, info, &bad)) {
            action = EI_ACTION_DROP;
        } else {
            if (pkt.dport == DNS_PORT)
                pl_note_query(p, &pkt, now_ns);
            else
                pl_snoop_dns(p, &pkt, now_ns);
            if (pkt.l4 == IPPROTO_TCP && !p->cfg.dns_answers)
                action = judge_tcp(p, &pkt, now_ns, packet_id,
                                   info | PL_CSUM_TAKEN | (bad ? PL_CSUM_WAS_BAD : 0));
        }
        if (pkt.l4 == IPPROTO_UDP && !p->cfg.dns_answers && action == EI_ACTION_PASS)
            action = pl_judge_uncovered(p, &pkt, now_ns, packet_id); /* a resolver not named? */
    } else if (pkt.l4 == IPPROTO_TCP && !p->cfg.dns_answers) {
        action = judge_tcp(p, &pkt, now_ns, packet_id, info);
    } else if (!p->cfg.dns_answers) {
        action = pl_judge_uncovered(p, &pkt, now_ns, packet_id);
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
