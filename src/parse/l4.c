/* Transport headers: TCP (its options walked, so a lying data offset is caught) and UDP,
 * whose well-known tunnel ports lead back into tunnel.c. */
#include <netinet/in.h>
#include <string.h>

#include "parse/packet_layers.h"

/* TCP header (RFC 9293 3.1):
 *   source port (16) | destination port (16) | sequence number (32) |
 *   acknowledgment number (32) | data offset (4) reserved (4) flags (8) | window (16) |
 *   checksum (16) | urgent pointer (16) | options (data offset * 4 - 20) | data
 * Options (at most 40 bytes, so at most 40 steps) are kind (1) | length (1) | value, but
 * for EOL (0) and NOP (1). A length that runs past the header is refused: a receiver
 * would not accept the segment either. Which kinds appear is recorded, and the
 * timestamp's TSval (RFC 7323 3: kind 8, length 10, TSval (32), TSecr (32)). */
static uint8_t option_bit(uint8_t kind)
{
    switch (kind) {
    case 2: return EI_TCPOPT_MSS;
    case 3: return EI_TCPOPT_WSCALE;
    case 4: return EI_TCPOPT_SACK_PERM;
    case 5: return EI_TCPOPT_SACK;
    case 8: return EI_TCPOPT_TS;
    case 19: return EI_TCPOPT_MD5;
    case 34: return EI_TCPOPT_FASTOPEN;
    default: return EI_TCPOPT_OTHER;
    }
}

static ei_packet_error parse_tcp(ei_cursor c, ei_packet *out)
{
    out->segment = ei_cursor_remaining(&c);
    out->sport = ei_cursor_u16(&c);
    out->dport = ei_cursor_u16(&c);
    out->seq = ei_cursor_u32(&c);
    out->ack = ei_cursor_u32(&c);
    uint8_t offset = (uint8_t)(ei_cursor_u8(&c) >> 4);
    out->tcp_flags = ei_cursor_u8(&c);
    ei_cursor_skip(&c, 4); /* window, checksum */
    out->urgent = ei_cursor_u16(&c);
    if (!ei_cursor_ok(&c) || offset < 5)
        return EI_PKT_BAD_TCP;
    ei_cursor opts = ei_cursor_sub(&c, (size_t)(offset - 5) * 4);
    while (ei_cursor_left(&opts) > 0) {
        uint8_t kind = ei_cursor_u8(&opts);
        if (kind == 0)
            break;
        if (kind == 1)
            continue;
        uint8_t olen = ei_cursor_u8(&opts);
        if (olen < 2) {
            ei_cursor_fail(&opts);
            break;
        }
        ei_cursor value = ei_cursor_sub(&opts, (size_t)olen - 2);
        out->tcp_options |= option_bit(kind);
        if (kind == 8 && olen == 10)
            out->tsval = ei_cursor_u32(&value);
        else if (kind == 8)
            out->tcp_options |= EI_TCPOPT_OTHER; /* a timestamp of the wrong size */
    }
    if (!ei_cursor_ok(&opts))
        return EI_PKT_BAD_TCP;
    out->l4 = IPPROTO_TCP;
    out->payload = ei_cursor_rest(&c);
    return EI_PKT_OK;
}

/* UDP header (RFC 768): source port | destination port | length | checksum, 16 bits
 * each; length counts the header and must fit inside the IP payload. */
static ei_packet_error parse_udp(ei_cursor c, int depth, ei_packet *out)
{
    out->segment = ei_cursor_remaining(&c);
    out->sport = ei_cursor_u16(&c);
    out->dport = ei_cursor_u16(&c);
    uint16_t len = ei_cursor_u16(&c);
    ei_cursor_skip(&c, 2);
    if (!ei_cursor_ok(&c) || len < 8 || (size_t)len - 8 > ei_cursor_left(&c))
        return EI_PKT_BAD_UDP;
    out->l4 = IPPROTO_UDP;
    out->payload = ei_cursor_bytes(&c, (size_t)len - 8);
    if (depth < EI_MAX_ENCAP) {
        /* A tunnel's inner packet is the one that matters. If it does not read as one,
         * the datagram stays what it was. */
        ei_packet inner = *out;
        ei_packet_error err = pk_udp_tunnel(out->sport, out->dport,
                                               ei_cursor_from_view(out->payload), depth + 1, &inner);
        if (err == EI_PKT_OK)
            *out = inner;
    }
    return EI_PKT_OK;
}

/* ICMP (RFC 792) and ICMPv6 (RFC 4443): type (8) | code (8) | checksum (16) | for the
 * query messages and their replies, identifier (16) | sequence (16). The identifier is
 * what tells one query's exchange from another's, as conntrack's ICMP tracker keys it. */
static void read_icmp(ei_cursor c, ei_packet *out)
{
    out->icmp_type = ei_cursor_u8(&c);
    ei_cursor_skip(&c, 3);
    uint16_t id = ei_cursor_u16(&c);
    if (ei_cursor_ok(&c))
        out->sport = id;
}

ei_packet_error pk_l4(uint8_t proto, ei_cursor c, int depth, ei_packet *out)
{
    out->l4 = proto; /* what the packet is when nothing deeper reads */
    switch (proto) {
    case IPPROTO_TCP:
        return parse_tcp(c, out);
    case IPPROTO_UDP:
        return parse_udp(c, depth, out);
    case IPPROTO_IPIP:
    case IPPROTO_IPV6:
        if (depth < EI_MAX_ENCAP)
            return pk_ip(c, depth + 1, out);
        return EI_PKT_OTHER_L4;
    case IPPROTO_GRE:
        if (depth < EI_MAX_ENCAP)
            return pk_gre(c, depth + 1, out);
        return EI_PKT_OTHER_L4;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
        read_icmp(c, out);
        return EI_PKT_OTHER_L4;
    default:
        return EI_PKT_OTHER_L4;
    }
}
