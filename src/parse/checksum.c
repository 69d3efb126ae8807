/* Internet checksums (RFC 1071) as a receiver checks them: the IPv4 header's, and TCP's
 * or UDP's over the pseudo-header (IPv4: source, destination, zero, protocol, length;
 * IPv6, RFC 8200 8.1: source, destination, upper-layer length (32), zeros, next header).
 * A packet whose sum is wrong is one the server's stack discards, so nothing it carries
 * may count as what the server received. */
#include <netinet/in.h>
#include <string.h>

#include "egress_inspector/packet.h"
#include "parse/cursor.h"

/* Adds the bytes as 16-bit words in the machine's own byte order (an odd last byte
 * padded with zero), eight at a time. A ones' complement sum is the same in either byte
 * order but for a swap of its two bytes (RFC 1071 2.B), and the only value compared,
 * 0xffff, is its own swap: so no word is ever swapped. */
static uint64_t sum_bytes(uint64_t sum, ei_view v)
{
    ei_cursor c = ei_cursor_from_view(v);
    while (ei_cursor_left(&c) >= 8) {
        uint64_t w;
        memcpy(&w, ei_cursor_bytes(&c, 8).ptr, 8);
        sum += (w & 0xffffffffu) + (w >> 32); /* two 32-bit halves: no carry is lost */
    }
    uint8_t tail[8] = { 0 };
    size_t n = ei_cursor_left(&c);
    if (n > 0) {
        memcpy(tail, ei_cursor_bytes(&c, n).ptr, n);
        uint64_t w;
        memcpy(&w, tail, 8);
        sum += (w & 0xffffffffu) + (w >> 32);
    }
    return sum;
}

/* A 16-bit value in network byte order, as sum_bytes would have read it from memory. */
static uint64_t word(uint16_t v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    uint16_t w;
    memcpy(&w, b, 2);
    return w;
}

uint64_t ei_csum_add(uint64_t sum, ei_view bytes)
{
    return sum_bytes(sum, bytes);
}

uint16_t ei_csum_field(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* A received packet's sum, its checksum field included, is all ones. */
static bool folds_to_ones(uint64_t sum)
{
    return ei_csum_field(sum) == 0;
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
    sum += word(pkt->l4);
    sum += word((uint16_t)pkt->segment.len); /* IPv6's 32-bit length: at most 65535 here */
    return folds_to_ones(sum_bytes(sum, pkt->segment)) ? EI_CSUM_OK : EI_CSUM_BAD;
}
