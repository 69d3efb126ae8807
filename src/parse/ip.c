/* IPv4 and IPv6 (with its extension headers, bounded). The payload is cut to the length
 * the header announces, so link padding never reaches TCP. */
#include <netinet/in.h>
#include <string.h>

#include "parse/packet_layers.h"

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

/* The packet's addresses, from the views of a header already checked whole. */
static void set_endpoints(ei_packet *out, uint8_t family, ei_view src, ei_view dst)
{
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    out->src.family = out->dst.family = family;
    memcpy(out->src.bytes, src.ptr, src.len);
    memcpy(out->dst.bytes, dst.ptr, dst.len);
}

/* IPv4 header (RFC 791 3.1):
 *   version (4) IHL (4) | TOS (8) | total length (16) | identification (16) |
 *   flags (3) fragment offset (13) | TTL (8) | protocol (8) | checksum (16) |
 *   source (32) | destination (32) | options (IHL * 4 - 20) */
ei_packet_error pk_ipv4(ei_cursor c, int depth, ei_packet *out)
{
    ei_view whole = ei_cursor_remaining(&c);
    uint8_t vihl = ei_cursor_u8(&c);
    ei_cursor_skip(&c, 1);
    uint16_t total = ei_cursor_u16(&c);
    ei_cursor_skip(&c, 2);
    uint16_t frag = ei_cursor_u16(&c);
    uint8_t ttl = ei_cursor_u8(&c);
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
    set_endpoints(out, 4, src, dst);
    out->ttl = ttl;
    out->ip_header = (ei_view){ whole.ptr, ihl };
    if (frag & 0x3fff) /* more-fragments flag or a non-zero offset */
        return EI_PKT_FRAGMENT;
    return pk_l4(proto, ip_payload(&c, total - ihl, out), depth, out);
}

/* IPv6 header (RFC 8200 3): version (4) traffic class (8) flow label (20) |
 * payload length (16) | next header (8) | hop limit (8) | source (128) | destination (128),
 * then a chain of extension headers (RFC 8200 4), each starting with next header (8) and
 * a length. The walk stops after EI_MAX_IPV6_EXT_HEADERS headers. */
ei_packet_error pk_ipv6(ei_cursor c, int depth, ei_packet *out)
{
    uint8_t version = (uint8_t)(ei_cursor_u8(&c) >> 4);
    ei_cursor_skip(&c, 3);
    uint16_t plen = ei_cursor_u16(&c);
    uint8_t next = ei_cursor_u8(&c);
    uint8_t hop_limit = ei_cursor_u8(&c);
    ei_view src = ei_cursor_bytes(&c, 16);
    ei_view dst = ei_cursor_bytes(&c, 16);
    if (!ei_cursor_ok(&c) || version != 6 || plen == 0) /* 0: jumbogram, never legitimate here */
        return EI_PKT_BAD_IPV6;
    set_endpoints(out, 6, src, dst);
    out->ttl = hop_limit;
    out->ip_header = (ei_view){ NULL, 0 }; /* no header checksum in IPv6 */
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
            return pk_l4(next, body, depth, out);
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

ei_packet_error pk_ip(ei_cursor c, int depth, ei_packet *out)
{
    int first = ei_cursor_peek(&c);
    if (first == EI_CURSOR_NONE)
        return EI_PKT_BAD_IPV4;
    int version = first >> 4;
    if (version == 4)
        return pk_ipv4(c, depth, out);
    if (version == 6)
        return pk_ipv6(c, depth, out);
    return EI_PKT_NOT_IP;
}
