/* ei_packet_parse on every link type we read: the first input byte picks the link type,
 * the rest is the frame. Beyond what ASan and UBSan see, checks the header's contract:
 * the payload is a view into the frame, and a packet read as OK is TCP or UDP over
 * IPv4 or IPv6. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/packet.h"
#include "fuzz.h"


static const int links[] = {
    EI_LINK_NULL, EI_LINK_ETHERNET, EI_LINK_PPP, EI_LINK_C_HDLC, EI_LINK_RADIOTAP,
    EI_LINK_RAW,  EI_LINK_LOOP,     EI_LINK_SLL, EI_LINK_IPV4,   EI_LINK_IPV6,
    EI_LINK_NFLOG, EI_LINK_SLL2,
};
#define NLINKS (sizeof links / sizeof links[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int link = links[data[0] % NLINKS];
    CHECK(ei_link_supported(link));
    const uint8_t *frame = data + 1;
    size_t len = size - 1;

    ei_packet pkt;
    memset(&pkt, 0xa5, sizeof pkt); /* nothing may be read from *out before it is set */
    ei_packet_error err = ei_packet_parse(link, frame, len, &pkt);
    CHECK((unsigned)err < EI_PKT_ERROR_COUNT);
    CHECK(ei_packet_error_name(err) != NULL);
    if (err != EI_PKT_OK)
        return 0;

    CHECK(pkt.l4 == IPPROTO_TCP || pkt.l4 == IPPROTO_UDP);
    CHECK(pkt.src.family == 4 || pkt.src.family == 6);
    CHECK(pkt.dst.family == pkt.src.family);
    if (pkt.payload.len > 0) {
        CHECK(pkt.payload.ptr >= frame);
        CHECK(pkt.payload.len <= len);
        CHECK((size_t)(pkt.payload.ptr - frame) <= len - pkt.payload.len);
        /* Touch every payload byte: ASan reports a view that leaves the frame. */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < pkt.payload.len; i++)
            sum = (uint8_t)(sum + pkt.payload.ptr[i]);
        (void)sum;
    }
    char a[EI_ADDR_STRLEN], b[EI_ADDR_STRLEN];
    ei_addr_format(&pkt.src, a);
    ei_addr_format(&pkt.dst, b);
    CHECK(strlen(a) < EI_ADDR_STRLEN && strlen(b) < EI_ADDR_STRLEN);
    /* Addresses round-trip through their text, and an IPv4 address leaves bytes 4-15
     * zero (flow keys compare all 16). */
    ei_addr back;
    CHECK(ei_addr_parse(a, &back));
    CHECK(back.family == pkt.src.family && memcmp(back.bytes, pkt.src.bytes, 16) == 0);
    CHECK(ei_addr_parse(b, &back));
    CHECK(back.family == pkt.dst.family && memcmp(back.bytes, pkt.dst.bytes, 16) == 0);
    return 0;
}
