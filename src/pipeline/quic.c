/* QUIC flows: a UDP exchange whose client speaks QUIC is read like a TLS connection. Its
 * CRYPTO data, decrypted from the client's Initials, is put in order by offset in the
 * flow's buffer (conflicting bytes deny, as TCP's do); its datagrams are held until the
 * ClientHello is whole, which with a post-quantum key share takes two of them; then the
 * flow is decided by the same policy, binding and logs as TLS over TCP. */
#include <netinet/in.h>
#include <string.h>

#include "egress_inspector/quic.h"
#include "egress_inspector/tls.h"
#include "pipeline/internal.h"

/* Adds the datagram's CRYPTO frames to the stream. EI_REASON_NONE, or why it cannot. */
static ei_reason add_crypto(ei_pipeline *p, ei_reasm *r, const ei_quic_datagram *d)
{
    for (uint8_t i = 0; i < d->ncrypto; i++) {
        const ei_quic_crypto *c = &d->crypto[i];
        if (c->offset >= p->cfg.reassembly_bytes)
            return EI_REASON_REASSEMBLY_LIMIT; /* nothing a ClientHello needs lies there */
        ei_reason bad = pl_stream_add(p, r, (uint32_t)c->offset, c->data.ptr, c->data.len,
                                      EI_REASON_QUIC_CRYPTO_CONFLICT);
        if (bad != EI_REASON_NONE)
            return bad;
    }
    return EI_REASON_NONE;
}

ei_action pl_quic_confirming(ei_pipeline *p, ei_flow *f, const ei_packet *pkt, bool from_client,
                             uint64_t now_ns)
{
    ei_flow_touch(&p->table, f, now_ns);
    if (!from_client) {
        /* The server answered: what it read of the client came through here, and every
         * client datagram since the verdict was held to the bytes judged. */
        if (!ei_quic_sniff(pkt->payload.ptr, pkt->payload.len))
            return EI_ACTION_ACCEPT; /* not a QUIC long header: no answer to an Initial */
        pl_confirm(p, f);
        return EI_ACTION_ALLOW;
    }
    ei_quic_datagram d;
    if (ei_quic_read_datagram(p->quic_crypto, pkt->payload.ptr, pkt->payload.len, &f->reasm->quic,
                              p->quic_plain, &d) != EI_PARSE_OK) {
        /* 0-RTT alone may follow the Initial; an Initial that does not read under the
         * flow's keys (another connection ID, a lie) is how a server could be shown
         * another ClientHello than the one judged */
        if (d.problem == EI_REASON_QUIC_NOT_INITIAL && ei_quic_sniff(pkt->payload.ptr, pkt->payload.len))
            return EI_ACTION_ACCEPT;
        return pl_revoke(p, f, now_ns, d.problem);
    }
    for (uint8_t i = 0; i < d.ncrypto; i++) {
        const ei_quic_crypto *c = &d.crypto[i];
        if (c->offset < f->judged_len &&
            ei_reasm_add(f->reasm, (uint32_t)c->offset, c->data.ptr, c->data.len, f->judged_len) ==
                EI_REASM_CONFLICT)
            return pl_revoke(p, f, now_ns, EI_REASON_QUIC_CRYPTO_CONFLICT);
    }
    return EI_ACTION_ACCEPT;
}

ei_action pl_quic_datagram(ei_pipeline *p, ei_flow *f, const ei_packet *pkt, bool from_client,
                           uint64_t now_ns, uint64_t packet_id)
{
    ei_flow_touch(&p->table, f, now_ns);
    if (!from_client)
        return EI_ACTION_PASS; /* (captures) the server's Initial and Handshake packets */
    ei_reasm *r = pl_flow_reasm(p, f);
    if (r == NULL)
        return pl_settle(p, f, now_ns, true, NULL, EI_REASON_REASSEMBLY_LIMIT, EI_REASON_REASSEMBLY_LIMIT);
    const ei_quic_conn *conn = r->quic.version != 0 ? &r->quic : NULL;
    ei_quic_datagram d;
    if (ei_quic_read_datagram(p->quic_crypto, pkt->payload.ptr, pkt->payload.len, conn, p->quic_plain, &d) != EI_PARSE_OK) {
        /* 0-RTT packets may arrive before their Initial (reordered, or sent so): they are
         * held with the flow, unread, until the Initial decides it. */
        if (d.problem == EI_REASON_QUIC_NOT_INITIAL && conn == NULL &&
            ei_quic_sniff(pkt->payload.ptr, pkt->payload.len) && f->packets++ < p->cfg.max_packets_before_name)
            return pl_hold(p, f, packet_id, now_ns);
        return pl_settle_unread(p, f, now_ns, d.problem);
    }
    if (conn == NULL)
        r->quic = d.conn;
    ei_reason bad = add_crypto(p, r, &d);
    if (bad != EI_REASON_NONE)
        return pl_settle_unread(p, f, now_ns, bad);
    if (f->packets < UINT8_MAX)
        f->packets++;
    ei_tls_hello hello;
    pl_message m;
    memset(&m, 0, sizeof m);
    ei_parse_status st = ei_tls_parse_handshake(r->buf, r->contig, &hello);
    pl_message_from_hello(&hello, st, EI_L7_QUIC, &m);
    m.quic_version = r->quic.version;
    /* An Initial in a version that forces negotiation is judged (a denied name is denied
     * in it too), but the server reads nothing of it: the flow's next Initial, in the
     * version the client and server share, is a new exchange that must be judged. */
    m.probe = ei_quic_version_forces_negotiation(r->quic.version);
    if (m.status == EI_PARSE_NEED_MORE) {
        if (r->contig >= p->cfg.reassembly_bytes)
            return pl_settle(p, f, now_ns, true, &m, EI_REASON_REASSEMBLY_LIMIT, EI_REASON_REASSEMBLY_LIMIT);
        if (f->packets > p->cfg.max_packets_before_name)
            return pl_settle(p, f, now_ns, true, &m, EI_REASON_NO_NAME_WITHIN_LIMIT,
                             EI_REASON_NO_NAME_WITHIN_LIMIT);
        return pl_hold(p, f, packet_id, now_ns); /* the ClientHello goes on in the next one */
    }
    ei_action action = pl_settle(p, f, now_ns, true, &m, EI_REASON_NONE, EI_REASON_NONE);
    if (action == EI_ACTION_HOLD)
        return pl_hold(p, f, packet_id, now_ns); /* waiting for a lookup */
    if (m.probe && (f->flags & EI_FLOW_F_DECIDED)) {
        ei_flow_remove(&p->table, f);
        p->count.flows--;
    }
    return action;
}
