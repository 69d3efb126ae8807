/* Link, IP and transport headers: the entry and the link layers (the other layers are in
 * ip.c, l4.c and tunnel.c; packet_layers.h maps them). Each layer reads its header
 * through a cursor and hands the next layer a cursor over exactly its payload, so no layer
 * can read past the one that contains it (and link padding after the IP datagram is cut
 * off by IP's length). */
#include "egress_inspector/packet.h"

#include <netinet/in.h>
#include <string.h>

#include "parse/packet_layers.h"

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

/* PPP protocol numbers for IP, after an optional address/control pair (0xff 0x03). */
static ei_packet_error parse_ppp(ei_cursor c, int depth, ei_packet *out)
{
    if (ei_cursor_peek_at(&c, 0) == 0xff && ei_cursor_peek_at(&c, 1) == 0x03)
        ei_cursor_skip(&c, 2);
    uint16_t proto = ei_cursor_u16(&c);
    if (!ei_cursor_ok(&c))
        return EI_PKT_TRUNCATED_LINK;
    if (proto == PPP_IPV4)
        return pk_ipv4(c, depth, out);
    if (proto == PPP_IPV6)
        return pk_ipv6(c, depth, out);
    return EI_PKT_NOT_IP;
}

ei_packet_error pk_ethertype(uint16_t type, ei_cursor c, int depth, ei_packet *out)
{
    switch (type) {
    case ETHERTYPE_IPV4:
        return pk_ipv4(c, depth, out);
    case ETHERTYPE_IPV6:
        return pk_ipv6(c, depth, out);
    case ETHERTYPE_TEB:
        return pk_ethernet(c, depth, out);
    case ETHERTYPE_PPPOE:
        /* PPPoE session (RFC 2516 4): ver/type (1) | code (1) | session (2) | length (2) */
        ei_cursor_skip(&c, 6);
        return parse_ppp(c, depth, out);
    default:
        return EI_PKT_NOT_IP;
    }
}

/* destination (6) | source (6) | ethertype (2), tags inserted before the type */
ei_packet_error pk_ethernet(ei_cursor c, int depth, ei_packet *out)
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
    return pk_ethertype(type, c, depth, out);
}

/* NFLOG (Linux nfnetlink_log as libpcap writes it): family (1) | version (1) |
 * resource id (2), then TLVs: length (2, host order, includes the 4-byte header) |
 * type (2) | value, each padded to 4 bytes. Type 9 (NFULA_PAYLOAD) is the packet. */
static ei_packet_error parse_nflog(ei_cursor c, int depth, ei_packet *out)
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
            return pk_ip(value, depth, out);
        ei_cursor_skip_upto(&c, (4 - tlv_len % 4) % 4);
    }
    return EI_PKT_NOT_IP;
}

/* IEEE 802.11 data frame: frame control (2) | duration (2) | 3 addresses (18) |
 * sequence (2) | [4th address (6) when to-DS and from-DS] | [QoS control (2) for QoS
 * subtypes] | LLC/SNAP (AA AA 03, OUI) | ethertype. Protected frames carry nothing
 * readable. */
ei_packet_error pk_80211(ei_cursor c, int depth, bool may_swap, ei_packet *out)
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
    return pk_ethertype(type, c, depth, out);
}

/* Radiotap: version (1) | pad (1) | length (2, little endian) | fields, then 802.11. */
static ei_packet_error parse_radiotap(ei_cursor c, int depth, ei_packet *out)
{
    ei_cursor_skip(&c, 2);
    uint16_t rt_len = ei_cursor_u16le(&c);
    if (!ei_cursor_ok(&c) || rt_len < 8)
        return EI_PKT_TRUNCATED_LINK;
    ei_cursor_skip(&c, (size_t)rt_len - 4);
    return pk_80211(c, depth, false, out);
}

/* BSD loopback families: AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30 by OS. */
static ei_packet_error parse_null_family(uint32_t family, ei_cursor c, int depth, ei_packet *out)
{
    if (family == 2)
        return pk_ipv4(c, depth, out);
    if (family == 24 || family == 28 || family == 30)
        return pk_ipv6(c, depth, out);
    return EI_PKT_NOT_IP;
}

/* depth0: EI_MAX_ENCAP when no tunnel may be entered (every layer checks depth against
 * it before going into one). */
static ei_packet_error parse_from(int linktype, const uint8_t *data, size_t len, int depth0,
                                  ei_packet *out)
{
    memset(out, 0, sizeof *out);
    ei_cursor c = ei_cursor_make(data, len);
    switch (linktype) {
    case EI_LINK_ETHERNET:
        return pk_ethernet(c, depth0, out);
    case EI_LINK_PPP:
        return parse_ppp(c, depth0, out);
    case EI_LINK_C_HDLC: {
        /* address (1) | control (1) | ethertype (2) */
        ei_cursor_skip(&c, 2);
        uint16_t type = ei_cursor_u16(&c);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        return pk_ethertype(type, c, depth0, out);
    }
    case EI_LINK_NFLOG:
        return parse_nflog(c, depth0, out);
    case EI_LINK_RADIOTAP:
        return parse_radiotap(c, depth0, out);
    case EI_LINK_SLL: {
        /* packet type (2) | ARPHRD (2) | address length (2) | address (8) | protocol (2) */
        ei_cursor_skip(&c, 14);
        uint16_t type = ei_cursor_u16(&c);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        return pk_ethertype(type, c, depth0, out);
    }
    case EI_LINK_SLL2: {
        /* protocol (2) | reserved (2) | ifindex (4) | ARPHRD (2) | packet type (1) |
         * address length (1) | address (8) */
        uint16_t type = ei_cursor_u16(&c);
        ei_cursor_skip(&c, 18);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        return pk_ethertype(type, c, depth0, out);
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
        return parse_null_family(family, c, depth0, out);
    }
    case EI_LINK_LOOP: {
        uint32_t family = ei_cursor_u32(&c);
        if (!ei_cursor_ok(&c))
            return EI_PKT_TRUNCATED_LINK;
        return parse_null_family(family, c, depth0, out);
    }
    case EI_LINK_RAW: case 12: case 14:
        return pk_ip(c, depth0, out);
    case EI_LINK_IPV4:
        return pk_ipv4(c, depth0, out);
    case EI_LINK_IPV6:
        return pk_ipv6(c, depth0, out);
    default:
        return EI_PKT_NOT_IP;
    }
}

ei_packet_error ei_packet_parse(int linktype, const uint8_t *data, size_t len, ei_packet *out)
{
    return parse_from(linktype, data, len, 0, out);
}

ei_packet_error ei_packet_parse_outer(int linktype, const uint8_t *data, size_t len, ei_packet *out)
{
    return parse_from(linktype, data, len, EI_MAX_ENCAP, out);
}
