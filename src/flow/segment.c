#include "flow/segment.h"

/* Options a data segment may carry: SACK blocks and timestamps. MSS, window scale, SACK
 * permitted and Fast Open belong to SYNs; MD5 (RFC 2385) and TCP-AO make a server without
 * the key drop the segment; MPTCP and unknown kinds are not ours to guess at. */
#define DATA_OPTIONS (EI_TCPOPT_SACK | EI_TCPOPT_TS)

static bool seq_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* Whether ack acknowledges something the server with this ISN sent. */
static bool acks_server(const ei_flow *f, uint32_t isn, uint32_t ack, bool live)
{
    if (seq_before(ack, isn + 1))
        return false;
    return !live || !seq_before(isn == f->server_isn ? f->server_next : isn + 1, ack);
}

ei_reason ei_segment_check(const ei_flow *f, const ei_packet *pkt, bool live)
{
    if (live && !(f->flags & EI_FLOW_F_SYN))
        return EI_REASON_MIDSTREAM;
    if (pkt->tcp_flags & EI_TCP_SYN) {
        /* A server reads data in a SYN only for TCP Fast Open (RFC 7413), which the
         * option announces; if it takes the data after all, its SYN-ACK says so, and if
         * not, the client sends the bytes again, where they must not differ. */
        if ((pkt->tcp_flags & EI_TCP_ACK) || !(pkt->tcp_options & EI_TCPOPT_FASTOPEN))
            return EI_REASON_TCP_DATA_IN_SYN;
        return (pkt->tcp_options & (EI_TCPOPT_MD5 | EI_TCPOPT_OTHER)) ? EI_REASON_TCP_UNEXPECTED_OPTION
                                                                      : EI_REASON_NONE;
    }
    if (!(pkt->tcp_flags & EI_TCP_ACK))
        return EI_REASON_TCP_DATA_WITHOUT_ACK;
    if (pkt->tcp_flags & EI_TCP_URG)
        return EI_REASON_TCP_URGENT;
    if (pkt->tcp_options & ~DATA_OPTIONS)
        return EI_REASON_TCP_UNEXPECTED_OPTION;
    if ((f->flags & EI_FLOW_F_SYN) && f->syn_ttl != 0 && pkt->ttl != f->syn_ttl)
        return EI_REASON_TTL_CHANGED;
    /* PAWS (RFC 7323 5): a timestamp older than the client's last is dropped. A segment
     * without one is read by Linux, BSD and Windows alike (RFC 7323's "SHOULD drop" is
     * tolerated by all three), so it is no insertion. */
    if ((f->flags & EI_FLOW_F_TS) && (pkt->tcp_options & EI_TCPOPT_TS) &&
        seq_before(pkt->tsval, f->ts_recent))
        return EI_REASON_TCP_STALE_TIMESTAMP;
    uint32_t rel = pkt->seq - f->base_seq - f->msg_base;
    if (rel > EI_SEGMENT_WINDOW && -rel > EI_SEGMENT_WINDOW)
        return EI_REASON_TCP_OUT_OF_WINDOW;
    if (f->flags & EI_FLOW_F_SYNACK) {
        /* What the server has sent: its SYN (one sequence number) and any data. Live,
         * the daemon sees every server byte of an unsettled flow before the client can
         * acknowledge it (but for an HTTP connection's later requests, whose server side
         * left the queue); a capture may have missed some, so there only the lower
         * bound is sure. */
        live = live && !(f->flags & EI_FLOW_F_SERVER_GONE);
        if (!acks_server(f, f->server_isn, pkt->ack, live) &&
            !((f->flags & EI_FLOW_F_SYNACK2) && acks_server(f, f->server_isn2, pkt->ack, live)))
            return EI_REASON_TCP_BAD_ACK;
    } else if (live) {
        return EI_REASON_TCP_NO_HANDSHAKE;
    }
    return EI_REASON_NONE;
}

void ei_segment_learn(ei_flow *f, const ei_packet *pkt)
{
    /* The client chose between two SYN-ACKs: the one it acknowledges is the server's. */
    if ((f->flags & EI_FLOW_F_SYNACK2) && acks_server(f, f->server_isn2, pkt->ack, true) &&
        !acks_server(f, f->server_isn, pkt->ack, true)) {
        f->server_isn = f->server_isn2;
        f->server_next = f->server_isn2 + 1;
    }
    f->flags &= (uint16_t)~EI_FLOW_F_SYNACK2;
    if ((f->flags & EI_FLOW_F_TS) && (pkt->tcp_options & EI_TCPOPT_TS) &&
        !seq_before(pkt->tsval, f->ts_recent))
        f->ts_recent = pkt->tsval;
}
