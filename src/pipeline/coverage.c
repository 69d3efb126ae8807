/* Coverage: the egress the inspector does not read. With --coverage all (the default) a
 * workload's flow that carries no message the inspector reads (TCP to a port outside
 * --ports, UDP, ICMP queries, other IP protocols) is decided at its first packet by the
 * address entries alone (TCP: tcp:// entries too), and denied with a reason of its own
 * otherwise; DNS goes only to the resolvers the operator named. With --coverage
 * inspected only TCP to the inspected ports is judged, and the rest is left to whatever
 * else the cluster enforces (a NetworkPolicy). */
#include <netinet/in.h>
#include <string.h>

#include "egress_inspector/quic.h"
#include "pipeline/internal.h"

bool pl_port_inspected(const ei_pipeline_config *cfg, uint16_t port)
{
    if (cfg->nports == 0)
        return true;
    for (uint8_t i = 0; i < cfg->nports; i++)
        if (port >= cfg->ports[i].first && port <= cfg->ports[i].last)
            return true;
    return false;
}

ei_reason pl_coverage(const ei_pipeline *p, uint8_t proto, const ei_addr *dst, uint16_t dport)
{
    if (proto == IPPROTO_TCP && pl_port_inspected(&p->cfg, dport))
        return EI_REASON_NONE;
    if (p->cfg.coverage == EI_COVERAGE_INSPECTED)
        return PL_UNJUDGED;
    if (dport == DNS_PORT && (proto == IPPROTO_UDP || proto == IPPROTO_TCP)) {
        /* Live, the node rules let DNS to the named resolvers (to any, when none is
         * named) go before it reaches a flow queue: they know the conntrack entry's
         * original destination, where the packet, after a DNAT, shows the resolver
         * pod's. What comes here went elsewhere. */
        bool named = !p->cfg.live && pl_named_resolver(p, dst);
        return named ? PL_UNJUDGED : EI_REASON_DNS_RESOLVER_NOT_NAMED;
    }
    switch (proto) {
    case IPPROTO_TCP:
        return EI_REASON_PORT_NOT_INSPECTED;
    case IPPROTO_UDP:
        return dport == 443 ? EI_REASON_QUIC_NOT_INSPECTED : EI_REASON_UDP_NOT_INSPECTED;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
        return EI_REASON_ICMP_NOT_INSPECTED;
    default:
        return EI_REASON_PROTO_NOT_INSPECTED;
    }
}

/* ICMP messages that open an exchange (RFC 792: echo, timestamp, information, address
 * mask requests; RFC 4443 and RFC 4620: echo request, node information query), and their
 * replies. Errors and neighbour discovery open nothing: live they reach the queue only
 * as RELATED to a connection already judged. */
static bool icmp_query(uint8_t proto, uint8_t type)
{
    if (proto == IPPROTO_ICMP)
        return type == 8 || type == 13 || type == 15 || type == 17;
    return type == 128 || type == 139;
}

static bool icmp_reply(uint8_t proto, uint8_t type)
{
    if (proto == IPPROTO_ICMP)
        return type == 0 || type == 14 || type == 16 || type == 18;
    return type == 129 || type == 140;
}

ei_action pl_judge_uncovered(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns, uint64_t packet_id)
{
    bool icmp = pkt->l4 == IPPROTO_ICMP || pkt->l4 == IPPROTO_ICMPV6;
    bool query = !icmp || icmp_query(pkt->l4, pkt->icmp_type);
    if (icmp && !query && !icmp_reply(pkt->l4, pkt->icmp_type))
        return EI_ACTION_PASS;
    /* ICMP: the identifier on both sides, so that the reply finds its query's entry. */
    uint16_t sport = pkt->sport, dport = icmp ? pkt->sport : pkt->dport;
    ei_flow_key key;
    bool sender_is_a;
    ei_flow_key_make(pkt->l4, &pkt->src, sport, &pkt->dst, dport, &key, &sender_is_a);
    ei_flow *f = ei_flow_find(&p->table, &key);
    bool from_client = f != NULL && sender_is_a == pl_client_is_a(f);
    if (f != NULL && (f->flags & EI_FLOW_F_DECIDED) && f->reason == EI_REASON_QUIC_VERSION_UNKNOWN &&
        from_client && ei_quic_sniff(pkt->payload.ptr, pkt->payload.len)) {
        /* After Version Negotiation a client starts over on the same tuple, in a version
         * it shares with the server: a new exchange, judged afresh. */
        ei_flow_remove(&p->table, f);
        p->count.flows--;
        f = NULL;
    }
    if (f != NULL && !(f->flags & EI_FLOW_F_DECIDED)) /* a QUIC flow, its ClientHello read */
        return pl_quic_datagram(p, f, pkt, from_client, now_ns, packet_id);
    if (f != NULL && (f->flags & EI_FLOW_F_CONFIRMING))
        return pl_quic_confirming(p, f, pkt, from_client, now_ns);
    if (f != NULL) {
        ei_flow_touch(&p->table, f, now_ns);
        return (ei_action)f->verdict;
    }
    if (!query)
        return EI_ACTION_PASS; /* a reply to nothing seen */
    /* Live, the node rules queue only what a workload sends first. A capture may begin
     * with a service's reply (a DNS answer): its receiver is then the client. */
    bool sender_is_client = p->cfg.live || icmp || !(pkt->sport < 1024 && pkt->dport >= 1024);
    const ei_addr *server = sender_is_client ? &pkt->dst : &pkt->src;
    uint16_t server_port = icmp ? 0 : sender_is_client ? pkt->dport : pkt->sport;
    /* QUIC: on UDP 443, and wherever a client's first datagram is a QUIC long header of a
     * version we decrypt (the Initial proves it, or the flow is denied). */
    bool quic = pkt->l4 == IPPROTO_UDP && p->cfg.quic == EI_QUIC_INSPECT && sender_is_client &&
                server_port != DNS_PORT &&
                (server_port == 443 || ei_quic_sniff(pkt->payload.ptr, pkt->payload.len));
    if (!quic && pl_coverage(p, pkt->l4, server, server_port) == PL_UNJUDGED)
        return EI_ACTION_PASS;
    f = pl_insert_flow(p, &key, now_ns);
    if (f == NULL)
        return EI_ACTION_DROP; /* no memory for its decision: fail closed */
    f->flags = sender_is_client == sender_is_a ? EI_FLOW_F_CLIENT_IS_A : 0;
    if (quic)
        return pl_quic_datagram(p, f, pkt, true, now_ns, packet_id);
    ei_action action = pl_settle(p, f, now_ns, false, NULL, EI_REASON_NONE, EI_REASON_NONE);
    ei_flow_touch(&p->table, f, now_ns); /* onto the decided list */
    return action;
}
