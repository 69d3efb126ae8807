/* Resets to servers. See reset.h. */
#include "io/reset.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ei_resetter {
    int fd4, fd6;  /* SOCK_RAW, IPPROTO_RAW: we write the IP header (IP_HDRINCL) */
    atomic_uint_fast64_t sent, errors;
};

ei_resetter *ei_reset_open(void)
{
    ei_resetter *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
    r->fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
    if (r->fd4 < 0 || r->fd6 < 0) {
        int e = errno;
        ei_reset_close(r);
        errno = e;
        return NULL;
    }
    return r;
}

void ei_reset_close(ei_resetter *r)
{
    if (r == NULL)
        return;
    if (r->fd4 >= 0)
        close(r->fd4);
    if (r->fd6 >= 0)
        close(r->fd6);
    free(r);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* Stores a checksum ei_csum_field computed (it is in memory order already). */
static void put_csum(uint8_t *p, uint64_t sum)
{
    uint16_t field = ei_csum_field(sum);
    memcpy(p, &field, 2);
}

size_t ei_reset_packet(const ei_flow_event *ev, uint32_t seq, uint8_t out[EI_RESET_PACKET_MAX])
{
    bool v6 = ev->src.family == 6;
    size_t ip = v6 ? 40 : 20, n = ip + 20;
    memset(out, 0, n);
    uint8_t *t = out + ip;
    put16(t, ev->sport);
    put16(t + 2, ev->dport);
    put32(t + 4, seq);
    put32(t + 8, ev->server_snd_nxt);
    t[12] = 5 << 4;
    t[13] = 0x14; /* RST, ACK */
    /* the pseudo-header's protocol and length (RFC 9293 3.1, RFC 8200 8.1) */
    const uint8_t proto_len[4] = { 0, IPPROTO_TCP, 0, 20 };
    size_t alen = v6 ? 16 : 4;
    uint64_t pseudo = ei_csum_add(0, (ei_view){ proto_len, sizeof proto_len });
    pseudo = ei_csum_add(pseudo, (ei_view){ ev->src.bytes, alen });
    pseudo = ei_csum_add(pseudo, (ei_view){ ev->dst.bytes, alen });
    if (v6) {
        out[0] = 0x60;
        put16(out + 4, 20);
        out[6] = IPPROTO_TCP;
        out[7] = 64;
        memcpy(out + 8, ev->src.bytes, 16);
        memcpy(out + 24, ev->dst.bytes, 16);
    } else {
        out[0] = 0x45;
        put16(out + 2, (uint16_t)n);
        out[8] = 64;
        out[9] = IPPROTO_TCP;
        memcpy(out + 12, ev->src.bytes, 4);
        memcpy(out + 16, ev->dst.bytes, 4);
        put_csum(out + 10, ei_csum_add(0, (ei_view){ out, 20 }));
    }
    put_csum(t + 16, ei_csum_add(pseudo, (ei_view){ t, 20 }));
    return n;
}

static void send_one(ei_resetter *r, const ei_flow_event *ev, uint32_t seq)
{
    uint8_t pkt[EI_RESET_PACKET_MAX];
    size_t n = ei_reset_packet(ev, seq, pkt);
    struct sockaddr_storage to;
    memset(&to, 0, sizeof to);
    socklen_t tolen;
    if (ev->dst.family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, ev->dst.bytes, 16);
        tolen = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&to;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, ev->dst.bytes, 4);
        tolen = sizeof *s4;
    }
    ssize_t sent = sendto(ev->dst.family == 6 ? r->fd6 : r->fd4, pkt, n, 0, (struct sockaddr *)&to, tolen);
    if (sent == (ssize_t)n)
        atomic_fetch_add(&r->sent, 1);
    else
        atomic_fetch_add(&r->errors, 1);
}

void ei_reset_server(ei_resetter *r, const ei_flow_event *ev)
{
    if (r == NULL || !ev->server_known)
        return;
    send_one(r, ev, ev->server_rcv_nxt[0]);
    if (ev->server_rcv_nxt[1] != ev->server_rcv_nxt[0])
        send_one(r, ev, ev->server_rcv_nxt[1]);
}

ei_reset_stats ei_reset_stats_of(ei_resetter *r)
{
    ei_reset_stats s = { 0, 0 };
    if (r != NULL) {
        s.sent = atomic_load(&r->sent);
        s.errors = atomic_load(&r->errors);
    }
    return s;
}
