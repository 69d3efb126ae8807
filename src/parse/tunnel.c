/* Tunnels a node sees pod traffic inside: GRE (and ERSPAN), GTP-U, VXLAN, Geneve and
 * CAPWAP. Each hands the inner packet to the link or IP layer, one depth deeper. */
#include <string.h>

#include "parse/packet_layers.h"

/* GTP-U (3GPP TS 29.281 5.1): flags (1: version 3 bits, PT, E, S, PN) | type (1) |
 * length (2) | TEID (4) | [sequence (2) | N-PDU (1) | next extension type (1)] when any of
 * E, S, PN is set, then extension headers (length in 4-byte units, last byte the next
 * type). Type 255 (G-PDU) carries a user IP packet. */
static ei_packet_error parse_gtp_u(ei_cursor c, int depth, ei_packet *out)
{
    uint8_t flags = ei_cursor_u8(&c);
    uint8_t type = ei_cursor_u8(&c);
    ei_cursor_skip(&c, 6);
    if (!ei_cursor_ok(&c) || flags >> 5 != 1 || type != 255)
        return EI_PKT_NOT_IP;
    if (flags & 0x07) {
        ei_cursor_skip(&c, 3);
        uint8_t next = ei_cursor_u8(&c);
        for (int n = 0; next != 0 && n < EI_MAX_IPV6_EXT_HEADERS; n++) {
            uint8_t units = ei_cursor_u8(&c);
            if (units == 0)
                return EI_PKT_NOT_IP;
            ei_cursor_skip(&c, (size_t)units * 4 - 2);
            next = ei_cursor_u8(&c);
        }
        if (!ei_cursor_ok(&c) || next != 0)
            return EI_PKT_NOT_IP;
    }
    return pk_ip(c, depth, out);
}

/* VXLAN (RFC 7348 5): flags (1, I set) | reserved (3) | VNI (3) | reserved (1) | Ethernet.
 * Geneve (RFC 8926 3.4): ver (2) opt len (6) | flags (1) | protocol (2) | VNI (3) |
 * reserved (1) | options (opt len * 4) | payload of that protocol. */
ei_packet_error pk_udp_tunnel(uint16_t sport, uint16_t dport, ei_cursor c, int depth,
                                        ei_packet *out)
{
    if (dport == PORT_GTP_U || sport == PORT_GTP_U)
        return parse_gtp_u(c, depth, out);
    if (dport == PORT_CAPWAP_DATA || sport == PORT_CAPWAP_DATA)
        return pk_capwap(c, depth, out);
    if (dport == PORT_VXLAN || sport == PORT_VXLAN || dport == PORT_VXLAN_GPE) {
        /* VXLAN-GPE (P flag) names its payload in byte 3: 1 IPv4, 2 IPv6, 3 Ethernet */
        uint8_t flags = ei_cursor_u8(&c);
        ei_cursor_skip(&c, 2);
        uint8_t next = ei_cursor_u8(&c);
        ei_cursor_skip(&c, 4);
        if (!ei_cursor_ok(&c) || !(flags & 0x08))
            return EI_PKT_NOT_IP;
        if ((flags & 0x04) && next != 3)
            return next == 1 || next == 2 ? pk_ip(c, depth, out) : EI_PKT_NOT_IP;
        return pk_ethernet(c, depth, out);
    }
    if (dport == PORT_GENEVE) {
        uint8_t ver_opt = ei_cursor_u8(&c);
        ei_cursor_skip(&c, 1);
        uint16_t proto = ei_cursor_u16(&c);
        ei_cursor_skip(&c, 4 + (size_t)(ver_opt & 0x3f) * 4);
        if (!ei_cursor_ok(&c) || ver_opt >> 6 != 0)
            return EI_PKT_NOT_IP;
        return pk_ethertype(proto, c, depth, out);
    }
    return EI_PKT_NOT_IP;
}

/* GRE (RFC 2784, RFC 2890): C (1) R K S ... version (3) | protocol (2) |
 * [checksum + reserved (4)] [key (4)] [sequence (4)]. ERSPAN type II adds 8 bytes before
 * the mirrored Ethernet frame, type III 12 (and 8 more when its O flag is set). */
ei_packet_error pk_gre(ei_cursor c, int depth, ei_packet *out)
{
    uint16_t flags = ei_cursor_u16(&c);
    uint16_t proto = ei_cursor_u16(&c);
    if (!ei_cursor_ok(&c) || (flags & 0x0007) != 0)
        return EI_PKT_OTHER_L4;
    ei_cursor_skip(&c, ((flags & 0x8000) ? 4u : 0u) + ((flags & 0x2000) ? 4u : 0u) +
                           ((flags & 0x1000) ? 4u : 0u));
    if (proto == ETHERTYPE_ERSPAN_2) {
        ei_cursor_skip(&c, 8);
        proto = ETHERTYPE_TEB;
    } else if (proto == ETHERTYPE_ERSPAN_3) {
        ei_cursor_skip(&c, 11);
        uint8_t o = ei_cursor_u8(&c);
        ei_cursor_skip(&c, (o & 0x01) ? 8 : 0);
        proto = ETHERTYPE_TEB;
    }
    if (!ei_cursor_ok(&c))
        return EI_PKT_OTHER_L4;
    ei_packet_error err = pk_ethertype(proto, c, depth, out);
    return err == EI_PKT_NOT_IP ? EI_PKT_OTHER_L4 : err;
}

/* CAPWAP data (RFC 5415 4.3): preamble (1: version 0, type 0) | HLEN (5 bits, header
 * length in 4-byte words) RID (5) WBID (5) T (1) flags (6) | fragment id (2) |
 * fragment offset (13) reserved (3) | ... With T set, the payload is a native frame of
 * binding WBID (1 = 802.11). */
ei_packet_error pk_capwap(ei_cursor c, int depth, ei_packet *out)
{
    uint32_t head = ei_cursor_u32(&c);
    if (!ei_cursor_ok(&c) || head >> 24 != 0)
        return EI_PKT_NOT_IP;
    size_t hlen = (size_t)(head >> 19 & 0x1f) * 4;
    unsigned wbid = head >> 9 & 0x1f, t = head >> 8 & 1, fragment = head >> 7 & 1;
    if (hlen < 8 || !t || wbid != 1 || fragment)
        return EI_PKT_NOT_IP;
    ei_cursor_skip(&c, hlen - 4);
    if (!ei_cursor_ok(&c))
        return EI_PKT_NOT_IP;
    return pk_80211(c, depth, true, out);
}
