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

static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
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

/* One RST|ACK from the client to the server: an IP header (20 or 40 bytes) and 20 of TCP. */
static void send_one(ei_resetter *r, const ei_flow_event *ev, uint32_t seq)
{
    uint8_t pkt[60];
    bool v6 = ev->src.family == 6;
    size_t ip = v6 ? 40 : 20, n = ip + 20;
    memset(pkt, 0, sizeof pkt);
    uint8_t *t = pkt + ip;
    put16(t, ev->sport);
    put16(t + 2, ev->dport);
    put32(t + 4, seq);
    put32(t + 8, ev->server_snd_nxt);
    t[12] = 5 << 4;
    t[13] = 0x14; /* RST, ACK */
    uint32_t pseudo = IPPROTO_TCP + 20;
    struct sockaddr_storage to;
    memset(&to, 0, sizeof to);
    socklen_t tolen;
    if (v6) {
        pkt[0] = 0x60;
        put16(pkt + 4, 20);
        pkt[6] = IPPROTO_TCP;
        pkt[7] = 64;
        memcpy(pkt + 8, ev->src.bytes, 16);
        memcpy(pkt + 24, ev->dst.bytes, 16);
        pseudo = sum16(pseudo, pkt + 8, 32);
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, ev->dst.bytes, 16);
        tolen = sizeof *s6;
    } else {
        pkt[0] = 0x45;
        put16(pkt + 2, (uint16_t)n);
        pkt[8] = 64;
        pkt[9] = IPPROTO_TCP;
        memcpy(pkt + 12, ev->src.bytes, 4);
        memcpy(pkt + 16, ev->dst.bytes, 4);
        put16(pkt + 10, fold(sum16(0, pkt, 20)));
        pseudo = sum16(pseudo, pkt + 12, 8);
        struct sockaddr_in *s4 = (struct sockaddr_in *)&to;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, ev->dst.bytes, 4);
        tolen = sizeof *s4;
    }
    put16(t + 16, fold(sum16(pseudo, t, 20)));
    ssize_t sent = sendto(v6 ? r->fd6 : r->fd4, pkt, n, 0, (struct sockaddr *)&to, tolen);
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
