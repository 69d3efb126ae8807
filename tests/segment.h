/* TCP segments as a stack would send them, with every field a test may want to get wrong:
 * IPv4 with TTL, TCP with options, and correct checksums unless asked otherwise. For the
 * tests of what the server's stream is (tests/flow/test_segment.c,
 * tests/pipeline/test_stream.c). */
#ifndef EI_TESTS_SEGMENT_H
#define EI_TESTS_SEGMENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t src[4], dst[4];
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;          /* EI_TCP_* */
    uint8_t ttl;            /* 0: 64 */
    uint16_t urgent;
    const uint8_t *options; /* raw option bytes, padded by the builder to 4 */
    size_t options_len;
    const void *data;
    size_t len;
    bool bad_checksum;      /* the TCP checksum off by one */
} seg;

static inline uint32_t seg_sum(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static inline uint16_t seg_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static inline void seg_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Writes the packet into out (room for 60 + len bytes); returns its length. */
static inline size_t seg_build(const seg *s, uint8_t *out)
{
    size_t olen = (s->options_len + 3) / 4 * 4, tcp = 20 + olen, n = 20 + tcp + s->len;
    memset(out, 0, 20 + tcp);
    out[0] = 0x45;
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    out[8] = s->ttl ? s->ttl : 64;
    out[9] = IPPROTO_TCP;
    memcpy(out + 12, s->src, 4);
    memcpy(out + 16, s->dst, 4);
    uint16_t ipsum = seg_fold(seg_sum(0, out, 20));
    out[10] = (uint8_t)(ipsum >> 8);
    out[11] = (uint8_t)ipsum;
    uint8_t *t = out + 20;
    t[0] = (uint8_t)(s->sport >> 8); t[1] = (uint8_t)s->sport;
    t[2] = (uint8_t)(s->dport >> 8); t[3] = (uint8_t)s->dport;
    seg_put32(t + 4, s->seq);
    seg_put32(t + 8, s->ack);
    t[12] = (uint8_t)((tcp / 4) << 4);
    t[13] = s->flags;
    t[14] = 0xff; t[15] = 0xff; /* window */
    t[18] = (uint8_t)(s->urgent >> 8); t[19] = (uint8_t)s->urgent;
    if (s->options_len)
        memcpy(t + 20, s->options, s->options_len);
    if (s->len)
        memcpy(t + tcp, s->data, s->len);
    uint32_t sum = seg_sum(0, out + 12, 8) + IPPROTO_TCP + (uint32_t)(tcp + s->len);
    uint16_t csum = seg_fold(seg_sum(sum, t, tcp + s->len));
    if (s->bad_checksum)
        csum++;
    t[16] = (uint8_t)(csum >> 8);
    t[17] = (uint8_t)csum;
    return n;
}

/* A timestamp option (kind 8) with NOPs before it, as Linux sends it. */
static inline void seg_timestamp(uint8_t opt[12], uint32_t tsval, uint32_t tsecr)
{
    opt[0] = 1; opt[1] = 1; opt[2] = 8; opt[3] = 10;
    seg_put32(opt + 4, tsval);
    seg_put32(opt + 8, tsecr);
}

#endif
