/* Link, IP and transport headers. Each layer reads its header through a cursor and hands
 * the next layer a cursor over exactly its payload, so no layer can read past the one
 * that contains it (and link padding after the IP datagram is cut off by IP's length). */
#include "egress_inspector/packet.h"

#include <netinet/in.h>
#include <string.h>

#include "parse/cursor.h"

enum {
    ETHERTYPE_IPV4 = 0x0800,
    ETHERTYPE_IPV6 = 0x86dd,
    ETHERTYPE_VLAN = 0x8100,
    ETHERTYPE_QINQ = 0x88a8,
    ETHERTYPE_QINQ_OLD = 0x9100,
};

bool ei_link_supported(int linktype)
{
    switch (linktype) {
    case EI_LINK_NULL: case EI_LINK_ETHERNET: case EI_LINK_RAW: case EI_LINK_LOOP:
    case EI_LINK_SLL: case EI_LINK_IPV4: case EI_LINK_IPV6: case EI_LINK_SLL2:
    case EI_LINK_PPP: case EI_LINK_C_HDLC: case EI_LINK_NFLOG: case EI_LINK_RADIOTAP:
    case 12: case 14: /* DLT_RAW as some BSDs number it */
        return true;
    default:
        return false;
    }
}

const char *ei_packet_error_name(ei_packet_error err)
{
    static const char *const names[EI_PKT_ERROR_COUNT] = {
        [EI_PKT_OK] = "ok",
        [EI_PKT_NOT_IP] = "not_ip",
        [EI_PKT_TRUNCATED_LINK] = "truncated_link",
        [EI_PKT_BAD_IPV4] = "bad_ipv4",
        [EI_PKT_BAD_IPV6] = "bad_ipv6",
        [EI_PKT_IPV6_EXT_LIMIT] = "ipv6_ext_limit",
        [EI_PKT_FRAGMENT] = "ip_fragment",
        [EI_PKT_BAD_TCP] = "bad_tcp",
        [EI_PKT_BAD_UDP] = "bad_udp",
        [EI_PKT_OTHER_L4] = "other_l4",
    };
    return (unsigned)err < EI_PKT_ERROR_COUNT ? names[err] : "unknown";
}

static ei_packet_error parse_ip(ei_cursor c, int depth, ei_packet *out);
static ei_packet_error parse_ethernet(ei_cursor c, int depth, ei_packet *out);
static ei_packet_error parse_ethertype(uint16_t type, ei_cursor c, int depth, ei_packet *out);
static ei_packet_error parse_udp_tunnel(uint16_t sport, uint16_t dport, ei_cursor c, int depth,
                                        ei_packet *out);
static ei_packet_error parse_capwap(ei_cursor c, int depth, ei_packet *out);

enum {
    PORT_GTP_U = 2152,
    PORT_VXLAN = 4789,
    PORT_VXLAN_GPE = 4790,
    PORT_GENEVE = 6081,
    PORT_CAPWAP_DATA = 5247,
    ETHERTYPE_TEB = 0x6558,     /* transparent Ethernet bridging (GRE, Geneve) */
    ETHERTYPE_ERSPAN_2 = 0x88be,
    ETHERTYPE_ERSPAN_3 = 0x22eb,
    ETHERTYPE_PPPOE = 0x8864,
    PPP_IPV4 = 0x0021,
    PPP_IPV6 = 0x0057,
};

/* TCP header (RFC 9293 3.1):
 *   source port (16) | destination port (16) | sequence number (32) |
 *   acknowledgment number (32) | data offset (4) reserved (4) flags (8) | window (16) |
 *   checksum (16) | urgent pointer (16) | options (data offset * 4 - 20) | data
 * Options are walked (at most 40 bytes, so at most 40 steps) only to refuse lengths that
 * run past the header: such a segment is not one a receiver would accept either. */
static ei_packet_error parse_tcp(ei_cursor c, ei_packet *out)
{
    out->sport = ei_cursor_u16(&c);
    out->dport = ei_cursor_u16(&c);
    out->seq = ei_cursor_u32(&c);
    out->ack = ei_cursor_u32(&c);
    uint8_t offset = (uint8_t)(ei_cursor_u8(&c) >> 4);
    out->tcp_flags = ei_cursor_u8(&c);
    ei_cursor_skip(&c, 6); /* window, checksum, urgent pointer */
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
        ei_cursor_skip(&opts, (size_t)olen - 2);
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
        ei_packet_error err = parse_udp_tunnel(out->sport, out->dport,
                                               ei_cursor_from_view(out->payload), depth + 1, &inner);
        if (err == EI_PKT_OK)
            *out = inner;
    }
    return EI_PKT_OK;
}


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
    return parse_ip(c, depth, out);
}

/* VXLAN (RFC 7348 5): flags (1, I set) | reserved (3) | VNI (3) | reserved (1) | Ethernet.
 * Geneve (RFC 8926 3.4): ver (2) opt len (6) | flags (1) | protocol (2) | VNI (3) |
 * reserved (1) | options (opt len * 4) | payload of that protocol. */
static ei_packet_error parse_udp_tunnel(uint16_t sport, uint16_t dport, ei_cursor c, int depth,
                                        ei_packet *out)
{
    if (dport == PORT_GTP_U || sport == PORT_GTP_U)
        return parse_gtp_u(c, depth, out);
    if (dport == PORT_CAPWAP_DATA || sport == PORT_CAPWAP_DATA)
        return parse_capwap(c, depth, out);
    if (dport == PORT_VXLAN || sport == PORT_VXLAN || dport == PORT_VXLAN_GPE) {
        /* VXLAN-GPE (P flag) names its payload in byte 3: 1 IPv4, 2 IPv6, 3 Ethernet */
        uint8_t flags = ei_cursor_u8(&c);
        ei_cursor_skip(&c, 2);
        uint8_t next = ei_cursor_u8(&c);
        ei_cursor_skip(&c, 4);
        if (!ei_cursor_ok(&c) || !(flags & 0x08))
            return EI_PKT_NOT_IP;
        if ((flags & 0x04) && next != 3)
            return next == 1 || next == 2 ? parse_ip(c, depth, out) : EI_PKT_NOT_IP;
        return parse_ethernet(c, depth, out);
    }
    if (dport == PORT_GENEVE) {
        uint8_t ver_opt = ei_cursor_u8(&c);
        ei_cursor_skip(&c, 1);
        uint16_t proto = ei_cursor_u16(&c);
        ei_cursor_skip(&c, 4 + (size_t)(ver_opt & 0x3f) * 4);
        if (!ei_cursor_ok(&c) || ver_opt >> 6 != 0)
            return EI_PKT_NOT_IP;
        return parse_ethertype(proto, c, depth, out);
    }
    return EI_PKT_NOT_IP;
}

/* GRE (RFC 2784, RFC 2890): C (1) R K S ... version (3) | protocol (2) |
 * [checksum + reserved (4)] [key (4)] [sequence (4)]. ERSPAN type II adds 8 bytes before
 * the mirrored Ethernet frame, type III 12 (and 8 more when its O flag is set). */
static ei_packet_error parse_gre(ei_cursor c, int depth, ei_packet *out)
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
    ei_packet_error err = parse_ethertype(proto, c, depth, out);
    return err == EI_PKT_NOT_IP ? EI_PKT_OTHER_L4 : err;
}

static ei_packet_error parse_l4(uint8_t proto, ei_cursor c, int depth, ei_packet *out)
{
    switch (proto) {
    case IPPROTO_TCP:
        return parse_tcp(c, out);
    case IPPROTO_UDP:
        return parse_udp(c, depth, out);
    case IPPROTO_IPIP:
    case IPPROTO_IPV6:
        if (depth < EI_MAX_ENCAP)
            return parse_ip(c, depth + 1, out);
        return EI_PKT_OTHER_L4;
    case IPPROTO_GRE:
        if (depth < EI_MAX_ENCAP)
            return parse_gre(c, depth + 1, out);
        return EI_PKT_OTHER_L4;
    default:
        return EI_PKT_OTHER_L4;
    }
}

/* The IP layer's payload, cut to what the header announces. A capture may hold less
 * (snap length): the packet is still read, and marked truncated. */
static ei_cursor ip_payload(ei_cursor *c, size_t announced, ei_packet *out)
{
    if (announced > ei_cursor_left(c)) {
        out->truncated = true;
        announced = ei_cursor_left(c);
    }
    return ei_cursor_sub(c, announced);
}

/* IPv4 header (RFC 791 3.1):
 *   version (4) IHL (4) | TOS (8) | total length (16) | identification (16) |
 *   flags (3) fragment offset (13) | TTL (8) | protocol (8) | checksum (16) |
 *   source (32) | destination (32) | options (IHL * 4 - 20) */
static ei_packet_error parse_ipv4(ei_cursor c, int depth, ei_packet *out)
{
    uint8_t vihl = ei_cursor_u8(&c);
    ei_cursor_skip(&c, 1);
    uint16_t total = ei_cursor_u16(&c);
    ei_cursor_skip(&c, 2);
    uint16_t frag = ei_cursor_u16(&c);
    ei_cursor_skip(&c, 1);
    uint8_t proto = ei_cursor_u8(&c);
    ei_cursor_skip(&c, 2);
    ei_view src = ei_cursor_bytes(&c, 4);
    ei_view dst = ei_cursor_bytes(&c, 4);
    size_t ihl = (size_t)(vihl & 0x0f) * 4;
    if (!ei_cursor_ok(&c) || vihl >> 4 != 4 || ihl < 20 || total < ihl)
        return EI_PKT_BAD_IPV4;
    ei_cursor_skip(&c, ihl - 20);
    if (!ei_cursor_ok(&c))
        return EI_PKT_BAD_IPV4;
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    out->src.family = out->dst.family = 4;
    memcpy(out->src.bytes, src.ptr, 4);
    memcpy(out->dst.bytes, dst.ptr, 4);
    if (frag & 0x3fff) /* more-fragments flag or a non-zero offset */
        return EI_PKT_FRAGMENT;
    return parse_l4(proto, ip_payload(&c, total - ihl, out), depth, out);
}

/* IPv6 header (RFC 8200 3): version (4) traffic class (8) flow label (20) |
 * payload length (16) | next header (8) | hop limit (8) | source (128) | destination (128),
 * then a chain of extension headers (RFC 8200 4), each starting with next header (8) and
 * a length. The walk stops after EI_MAX_IPV6_EXT_HEADERS headers. */
static ei_packet_error parse_ipv6(ei_cursor c, int depth, ei_packet *out)
{
    uint8_t version = (uint8_t)(ei_cursor_u8(&c) >> 4);
    ei_cursor_skip(&c, 3);
    uint16_t plen = ei_cursor_u16(&c);
    uint8_t next = ei_cursor_u8(&c);
    ei_cursor_skip(&c, 1);
    ei_view src = ei_cursor_bytes(&c, 16);
    ei_view dst = ei_cursor_bytes(&c, 16);
    if (!ei_cursor_ok(&c) || version != 6 || plen == 0) /* 0: jumbogram, never legitimate here */
        return EI_PKT_BAD_IPV6;
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    out->src.family = out->dst.family = 6;
    memcpy(out->src.bytes, src.ptr, 16);
    memcpy(out->dst.bytes, dst.ptr, 16);
    ei_cursor body = ip_payload(&c, plen, out);
    for (int n = 0;; n++) {
        switch (next) {
        case IPPROTO_HOPOPTS:
        case IPPROTO_ROUTING:
        case IPPROTO_DSTOPTS:
        case IPPROTO_FRAGMENT:
        case IPPROTO_AH:
            break;
        default:
            return parse_l4(next, body, depth, out);
        }
        if (n == EI_MAX_IPV6_EXT_HEADERS)
            return EI_PKT_IPV6_EXT_LIMIT;
        uint8_t this_header = next;
        next = ei_cursor_u8(&body);
        uint8_t hlen = ei_cursor_u8(&body);
        size_t ext_len;
        if (this_header == IPPROTO_FRAGMENT) {
            /* offset (13) res (2) M (1), identification (32): a fragment unless both
             * the offset and M are zero (an atomic fragment, RFC 6946) */
            uint16_t off_m = ei_cursor_u16(&body);
            ei_cursor_skip(&body, 4);
            if (!ei_cursor_ok(&body))
                return EI_PKT_BAD_IPV6;
            if ((off_m & 0xfff9) != 0)
                return EI_PKT_FRAGMENT;
            continue;
        }
        ext_len = this_header == IPPROTO_AH ? ((size_t)hlen + 2) * 4 : ((size_t)hlen + 1) * 8;
        ei_cursor_skip(&body, ext_len - 2);
        if (!ei_cursor_ok(&body))
            return EI_PKT_BAD_IPV6;
    }
}

static ei_packet_error parse_ip(ei_cursor c, int depth, ei_packet *out)
{
    int first = ei_cursor_peek(&c);
    if (first == EI_CURSOR_NONE)
        return EI_PKT_BAD_IPV4;
    int version = first >> 4;
    if (version == 4)
        return parse_ipv4(c, depth, out);
    if (version == 6)
        return parse_ipv6(c, depth, out);
    return EI_PKT_NOT_IP;
}

/* PPP protocol numbers for IP, after an optional address/control pair (0xff 0x03). */
static ei_packet_error parse_ppp(ei_cursor c, int depth, ei_packet *out)
{
    if (ei_cursor_peek_at(&c, 0) == 0xff && ei_cursor_peek_at(&c, 1) == 0x03)
        ei_cursor_skip(&c, 2);
    uint16_t proto = ei_cursor_u16(&c);
    if (!ei_cursor_ok(&c))
        return EI_PKT_TRUNCATED_LINK;
    if (proto == PPP_IPV4)
        return parse_ipv4(c, depth, out);
    if (proto == PPP_IPV6)
        return parse_ipv6(c, depth, out);
    return EI_PKT_NOT_IP;
}

static ei_packet_error parse_ethertype(uint16_t type, ei_cursor c, int depth, ei_packet *out)
{
    switch (type) {
    case ETHERTYPE_IPV4:
        return parse_ipv4(c, depth, out);
    case ETHERTYPE_IPV6:
        return parse_ipv6(c, depth, out);
    case ETHERTYPE_TEB:
        return parse_ethernet(c, depth, out);
    case ETHERTYPE_PPPOE:
        /* PPPoE session (RFC 2516 4): ver/type (1) | code (1) | session (2) | length (2) */
        ei_cursor_skip(&c, 6);
        return parse_ppp(c, depth, out);
    default:
        return EI_PKT_NOT_IP;
    }
}

/* destination (6) | source (6) | ethertype (2), tags inserted before the type */
static ei_packet_error parse_ethernet(ei_cursor c, int depth, ei_packet *out)
{
    ei_cursor_skip(&c, 12);
    uint16_t type = ei_cursor_u16(&c);
    for (int tags = 0; type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ ||
                       type == ETHERTYPE_QINQ_OLD; tags++) {
        if (tags == EI_MAX_VLAN_TAGS)
            return EI_PKT_NOT_IP;
        ei_cursor_skip(&c, 2); /* PCP, DEI, VLAN id */
        type = ei_cursor_u16(&c);
    }
    if (!ei_cursor_ok(&c))
        return EI_PKT_TRUNCATED_LINK;
    return parse_ethertype(type, c, depth, out);
}

/* NFLOG (Linux nfnetlink_log as libpcap writes it): family (1) | version (1) |
 * resource id (2), then TLVs: length (2, host order, includes the 4-byte header) |
 * type (2) | value, each padded to 4 bytes. Type 9 (NFULA_PAYLOAD) is the packet. */
static ei_packet_error parse_nflog(ei_cursor c, ei_packet *out)
{
    ei_cursor_skip(&c, 4);
    for (int n = 0; n < 64 && ei_cursor_left(&c) >= 4; n++) {
        size_t tlv_len = ei_cursor_u16le(&c);
        size_t type = ei_cursor_u16le(&c) & 0x7fffu; /* the top bit is NFNL_NLA_F_NESTED */
        if (tlv_len < 4)
            return EI_PKT_TRUNCATED_LINK;
        ei_cursor value = ei_cursor_sub(&c, tlv_len - 4);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        if (type == 9)
            return parse_ip(value, 0, out);
        ei_cursor_skip_upto(&c, (4 - tlv_len % 4) % 4);
    }
    return EI_PKT_NOT_IP;
}

/* IEEE 802.11 data frame: frame control (2) | duration (2) | 3 addresses (18) |
 * sequence (2) | [4th address (6) when to-DS and from-DS] | [QoS control (2) for QoS
 * subtypes] | LLC/SNAP (AA AA 03, OUI) | ethertype. Protected frames carry nothing
 * readable. */
static ei_packet_error parse_80211(ei_cursor c, int depth, bool may_swap, ei_packet *out)
{
    uint8_t fc0 = ei_cursor_u8(&c);
    uint8_t fc1 = ei_cursor_u8(&c);
    if (!ei_cursor_ok(&c))
        return EI_PKT_TRUNCATED_LINK;
    if (may_swap && (fc0 & 0x0c) != 0x08 && (fc1 & 0x0c) == 0x08) {
        uint8_t t = fc0; /* some access points send frame control byte-swapped */
        fc0 = fc1;
        fc1 = t;
    }
    if ((fc0 & 0x0c) != 0x08 || (fc1 & 0x40)) /* not data, or protected */
        return EI_PKT_NOT_IP;
    ei_cursor_skip(&c, 2 + 18 + 2);
    if ((fc1 & 0x03) == 0x03)
        ei_cursor_skip(&c, 6);
    if (fc0 & 0x80)
        ei_cursor_skip(&c, 2);
    uint32_t snap = ei_cursor_u24(&c);
    ei_cursor_skip(&c, 3); /* OUI */
    uint16_t type = ei_cursor_u16(&c);
    if (!ei_cursor_ok(&c))
        return EI_PKT_TRUNCATED_LINK;
    if (snap != 0xaaaa03)
        return EI_PKT_NOT_IP;
    return parse_ethertype(type, c, depth, out);
}

/* Radiotap: version (1) | pad (1) | length (2, little endian) | fields, then 802.11. */
static ei_packet_error parse_radiotap(ei_cursor c, ei_packet *out)
{
    ei_cursor_skip(&c, 2);
    uint16_t rt_len = ei_cursor_u16le(&c);
    if (!ei_cursor_ok(&c) || rt_len < 8)
        return EI_PKT_TRUNCATED_LINK;
    ei_cursor_skip(&c, (size_t)rt_len - 4);
    return parse_80211(c, 0, false, out);
}

/* CAPWAP data (RFC 5415 4.3): preamble (1: version 0, type 0) | HLEN (5 bits, header
 * length in 4-byte words) RID (5) WBID (5) T (1) flags (6) | fragment id (2) |
 * fragment offset (13) reserved (3) | ... With T set, the payload is a native frame of
 * binding WBID (1 = 802.11). */
static ei_packet_error parse_capwap(ei_cursor c, int depth, ei_packet *out)
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
    return parse_80211(c, depth, true, out);
}

/* BSD loopback families: AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30 by OS. */
static ei_packet_error parse_null_family(uint32_t family, ei_cursor c, ei_packet *out)
{
    if (family == 2)
        return parse_ipv4(c, 0, out);
    if (family == 24 || family == 28 || family == 30)
        return parse_ipv6(c, 0, out);
    return EI_PKT_NOT_IP;
}

ei_packet_error ei_packet_parse(int linktype, const uint8_t *data, size_t len, ei_packet *out)
{
    memset(out, 0, sizeof *out);
    ei_cursor c = ei_cursor_make(data, len);
    switch (linktype) {
    case EI_LINK_ETHERNET:
        return parse_ethernet(c, 0, out);
    case EI_LINK_PPP:
        return parse_ppp(c, 0, out);
    case EI_LINK_C_HDLC: {
        /* address (1) | control (1) | ethertype (2) */
        ei_cursor_skip(&c, 2);
        uint16_t type = ei_cursor_u16(&c);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        return parse_ethertype(type, c, 0, out);
    }
    case EI_LINK_NFLOG:
        return parse_nflog(c, out);
    case EI_LINK_RADIOTAP:
        return parse_radiotap(c, out);
    case EI_LINK_SLL: {
        /* packet type (2) | ARPHRD (2) | address length (2) | address (8) | protocol (2) */
        ei_cursor_skip(&c, 14);
        uint16_t type = ei_cursor_u16(&c);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        return parse_ethertype(type, c, 0, out);
    }
    case EI_LINK_SLL2: {
        /* protocol (2) | reserved (2) | ifindex (4) | ARPHRD (2) | packet type (1) |
         * address length (1) | address (8) */
        uint16_t type = ei_cursor_u16(&c);
        ei_cursor_skip(&c, 18);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        return parse_ethertype(type, c, 0, out);
    }
    case EI_LINK_NULL: {
        ei_view fam = ei_cursor_bytes(&c, 4);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        uint32_t family;
        memcpy(&family, fam.ptr, 4);
        /* Host byte order of the capturing machine, which need not be ours: a family
         * is small, so a big value is the other byte order. */
        if (family > 0xffff)
            family = __builtin_bswap32(family);
        return parse_null_family(family, c, out);
    }
    case EI_LINK_LOOP: {
        uint32_t family = ei_cursor_u32(&c);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        return parse_null_family(family, c, out);
    }
    case EI_LINK_RAW: case 12: case 14:
        return parse_ip(c, 0, out);
    case EI_LINK_IPV4:
        return parse_ipv4(c, 0, out);
    case EI_LINK_IPV6:
        return parse_ipv6(c, 0, out);
    default:
        return EI_PKT_NOT_IP;
    }
}
