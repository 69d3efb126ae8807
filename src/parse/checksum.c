/* Internet checksums (RFC 1071) as a receiver checks them: the IPv4 header's, and TCP's
 * or UDP's over the pseudo-header (IPv4: source, destination, zero, protocol, length;
 * IPv6, RFC 8200 8.1: source, destination, upper-layer length (32), zeros, next header).
 * A packet whose sum is wrong is one the server's stack discards, so nothing it carries
 * may count as what the server received. */
#include <netinet/in.h>

#include "egress_inspector/packet.h"
#include "parse/cursor.h"

/* Adds the bytes as big-endian 16-bit words (an odd last byte padded with zero). */
static uint64_t sum_bytes(uint64_t sum, ei_view v)
{
    ei_cursor c = ei_cursor_from_view(v);
    while (ei_cursor_left(&c) >= 4)
        sum += ei_cursor_u32(&c);
    while (ei_cursor_left(&c) >= 2)
        sum += ei_cursor_u16(&c);
    if (ei_cursor_left(&c) == 1)
        sum += (uint64_t)ei_cursor_u8(&c) << 8;
    return sum;
}

static bool folds_to_ones(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

ei_csum ei_packet_checksum(const ei_packet *pkt, bool header, bool l4)
{
    if (pkt->truncated || pkt->segment.ptr == NULL)
        return EI_CSUM_UNKNOWN;
    uint64_t sum = 0;
    if (pkt->src.family == 4) {
        if (header && (pkt->ip_header.ptr == NULL || !folds_to_ones(sum_bytes(0, pkt->ip_header))))
            return EI_CSUM_BAD;
        if (!l4)
            return EI_CSUM_OK;
        if (pkt->l4 == IPPROTO_UDP && pkt->segment.len >= 8 &&
            pkt->segment.ptr[6] == 0 && pkt->segment.ptr[7] == 0)
            return EI_CSUM_OK; /* no checksum sent (IPv4 only) */
        sum = sum_bytes(sum, (ei_view){ pkt->src.bytes, 4 });
        sum = sum_bytes(sum, (ei_view){ pkt->dst.bytes, 4 });
    } else {
        if (!l4)
            return EI_CSUM_OK;
        sum = sum_bytes(sum, (ei_view){ pkt->src.bytes, 16 });
        sum = sum_bytes(sum, (ei_view){ pkt->dst.bytes, 16 });
    }
    sum += pkt->l4;
    sum += pkt->segment.len;
    return folds_to_ones(sum_bytes(sum, pkt->segment)) ? EI_CSUM_OK : EI_CSUM_BAD;
}
