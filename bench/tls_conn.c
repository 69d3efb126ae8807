/* Load client for the live benchmark: many short TLS connections, each one connect, one
 * ClientHello with an SNI, the first byte of the server's answer, then a reset (SO_LINGER
 * 0, so that neither side keeps TIME_WAIT state and the run can go on for as long as it
 * is asked to). That is exactly the part of a connection an egress inspector is in the
 * path of; the client does no cryptography of its own, so on a small machine its CPU
 * goes to the network path being measured rather than to key exchanges.
 *
 * Usage: tls_conn --dst ADDR [--port 443] --sni NAME [--hello classic|pq]
 *                 [--concurrency N] [--duration SECONDS] [--timeout-ms MS] [--samples FILE]
 *   classic: x25519 key share, one segment (~0.3 KB, what curl and OpenSSL send)
 *   pq:      X25519MLKEM768 (1216 bytes) and x25519 key shares, ~1.8 KB, two segments
 *            (what current browsers send; the server ignores the group it does not know)
 * Closed loop: N connections are kept in flight for the duration. Prints one JSON line:
 * connections completed, errors, connections/s and latency percentiles (connect() to the
 * first response byte), in microseconds. --samples FILE also writes every connection's
 * latency (microseconds, one a line), so that runs can be pooled. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { HELLO_MAX = 4096, MAX_CONC = 4096 };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A growing byte buffer for writing the ClientHello; length fields are patched in. */
typedef struct {
    uint8_t b[HELLO_MAX];
    size_t n;
} wbuf;

static void put(wbuf *w, const void *p, size_t len)
{
    if (w->n + len > sizeof w->b) {
        fprintf(stderr, "tls_conn: ClientHello too large\n");
        exit(2);
    }
    memcpy(w->b + w->n, p, len);
    w->n += len;
}
static void put8(wbuf *w, unsigned v) { uint8_t b = (uint8_t)v; put(w, &b, 1); }
static void put16(wbuf *w, unsigned v) { put8(w, v >> 8); put8(w, v); }
static void fill(wbuf *w, uint8_t byte, size_t len) { while (len--) put8(w, byte); }
/* Opens a length-prefixed block of `size` bytes; close_block writes its length. */
static size_t open_block(wbuf *w, size_t size) { size_t at = w->n; fill(w, 0, size); return at; }
static void close_block(wbuf *w, size_t at, size_t size)
{
    size_t len = w->n - at - size;
    for (size_t i = 0; i < size; i++)
        w->b[at + i] = (uint8_t)(len >> (8 * (size - 1 - i)));
}

/* A TLS 1.3 ClientHello (RFC 8446 4.1.2) in a TLS record, with the extensions a
 * browser or curl sends. */
static size_t build_hello(uint8_t *out, const char *sni, bool pq)
{
    static const uint16_t suites[] = { 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c,
                                       0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
                                       0x009d, 0x002f, 0x0035 };
    static const uint16_t sigalgs[] = { 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501,
                                        0x0806, 0x0601 };
    wbuf w = { .n = 0 };
    put8(&w, 0x16); put16(&w, 0x0301);
    size_t rec = open_block(&w, 2);
    put8(&w, 0x01);
    size_t hs = open_block(&w, 3);
    put16(&w, 0x0303);
    fill(&w, 0x5a, 32);                         /* random */
    put8(&w, 32); fill(&w, 0x33, 32);           /* legacy session id */
    put16(&w, sizeof suites);
    for (size_t i = 0; i < sizeof suites / 2; i++) put16(&w, suites[i]);
    put8(&w, 1); put8(&w, 0);                   /* null compression */
    size_t exts = open_block(&w, 2);

    size_t sl = strlen(sni);                    /* server_name */
    put16(&w, 0x0000); put16(&w, sl + 5); put16(&w, sl + 3); put8(&w, 0); put16(&w, sl);
    put(&w, sni, sl);
    put16(&w, 0x0017); put16(&w, 0);            /* extended_master_secret */
    put16(&w, 0xff01); put16(&w, 1); put8(&w, 0); /* renegotiation_info */
    put16(&w, 0x000a);                          /* supported_groups */
    if (pq) { put16(&w, 10); put16(&w, 8); put16(&w, 0x11ec); }
    else { put16(&w, 8); put16(&w, 6); }
    put16(&w, 0x001d); put16(&w, 0x0017); put16(&w, 0x0018);
    put16(&w, 0x000b); put16(&w, 2); put8(&w, 1); put8(&w, 0); /* ec_point_formats */
    put16(&w, 0x0010);                          /* ALPN: http/1.1 */
    put16(&w, 11); put16(&w, 9); put8(&w, 8); put(&w, "http/1.1", 8);
    put16(&w, 0x000d);                          /* signature_algorithms */
    put16(&w, sizeof sigalgs + 2); put16(&w, sizeof sigalgs);
    for (size_t i = 0; i < sizeof sigalgs / 2; i++) put16(&w, sigalgs[i]);
    put16(&w, 0x0033);                          /* key_share */
    size_t ks = open_block(&w, 2);
    size_t ksl = open_block(&w, 2);
    if (pq) { put16(&w, 0x11ec); put16(&w, 1216); fill(&w, 0x42, 1216); }
    /* any 32 bytes are an X25519 public key (RFC 7748 5) */
    put16(&w, 0x001d); put16(&w, 32); fill(&w, 0x09, 32);
    close_block(&w, ksl, 2);
    close_block(&w, ks, 2);
    put16(&w, 0x002d); put16(&w, 2); put8(&w, 1); put8(&w, 1); /* psk_key_exchange_modes */
    put16(&w, 0x002b); put16(&w, 5); put8(&w, 4);               /* supported_versions */
    put16(&w, 0x0304); put16(&w, 0x0303);

    close_block(&w, exts, 2);
    close_block(&w, hs, 3);
    close_block(&w, rec, 2);
    memcpy(out, w.b, w.n);
    return w.n;
}

typedef struct {
    int fd;
    uint64_t start;
    bool sent;
} conn;

typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint8_t hello[HELLO_MAX];
    size_t hello_len;
    int ep;
    uint64_t *lat;
    size_t nlat, cap;
    uint64_t errors, timeouts;
} client;

static void record(client *c, uint64_t ns)
{
    if (c->nlat == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->lat = realloc(c->lat, c->cap * sizeof *c->lat);
        if (c->lat == NULL) {
            perror("tls_conn");
            exit(1);
        }
    }
    c->lat[c->nlat++] = ns;
}

static void finish(conn *k)
{
    /* a reset, not a FIN: no TIME_WAIT on either side */
    struct linger lg = { 1, 0 };
    (void)setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(k->fd);
    k->fd = -1;
}

static bool start(client *c, conn *k)
{
    k->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (k->fd < 0) {
        perror("tls_conn: socket");
        return false;
    }
    int one = 1;
    (void)setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k->start = now_ns();
    k->sent = false;
    if (connect(k->fd, (struct sockaddr *)&c->addr, c->addrlen) < 0 && errno != EINPROGRESS) {
        c->errors++;
        close(k->fd);
        k->fd = -1;
        return false;
    }
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = k };
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, k->fd, &ev) < 0) {
        perror("tls_conn: epoll_ctl");
        exit(1);
    }
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1000.0;
}

int main(int argc, char **argv)
{
    const char *dst = NULL, *sni = NULL, *hello = "classic", *samples = NULL;
    unsigned port = 443, conc = 32, timeout_ms = 2000;
    double duration = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            goto usage;
        if (strcmp(a, "--dst") == 0) dst = v;
        else if (strcmp(a, "--port") == 0) port = (unsigned)atoi(v);
        else if (strcmp(a, "--sni") == 0) sni = v;
        else if (strcmp(a, "--hello") == 0) hello = v;
        else if (strcmp(a, "--concurrency") == 0) conc = (unsigned)atoi(v);
        else if (strcmp(a, "--duration") == 0) duration = atof(v);
        else if (strcmp(a, "--timeout-ms") == 0) timeout_ms = (unsigned)atoi(v);
        else if (strcmp(a, "--samples") == 0) samples = v;
        else goto usage;
        i++;
    }
    if (dst == NULL || sni == NULL || conc == 0 || conc > MAX_CONC || duration <= 0 ||
        (strcmp(hello, "classic") != 0 && strcmp(hello, "pq") != 0))
        goto usage;

    static client c;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&c.addr;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c.addr;
    if (inet_pton(AF_INET, dst, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        c.addrlen = sizeof *s4;
    } else if (inet_pton(AF_INET6, dst, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        c.addrlen = sizeof *s6;
    } else {
        goto usage;
    }
    c.hello_len = build_hello(c.hello, sni, strcmp(hello, "pq") == 0);
    c.ep = epoll_create1(0);

    static conn conns[MAX_CONC];
    const uint64_t t0 = now_ns(), end = t0 + (uint64_t)(duration * 1e9);
    const uint64_t timeout = (uint64_t)timeout_ms * 1000000u;
    unsigned live = 0;
    for (unsigned i = 0; i < conc; i++)
        live += start(&c, &conns[i]);
    uint64_t last_done = t0, next_scan = t0 + 100000000u;
    struct epoll_event evs[256];
    while (live > 0) {
        int n = epoll_wait(c.ep, evs, 256, 50);
        uint64_t now = now_ns();
        for (int i = 0; i < n; i++) {
            conn *k = evs[i].data.ptr;
            if (k->fd < 0)
                continue;
            bool done = false, failed = false;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                failed = true;
            } else if (evs[i].events & EPOLLIN) {
                char b[4096];
                ssize_t r = recv(k->fd, b, sizeof b, 0);
                if (r > 0) {
                    record(&c, now - k->start);
                    done = true;
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    failed = true;
                }
            } else if ((evs[i].events & EPOLLOUT) && !k->sent) {
                ssize_t w = send(k->fd, c.hello, c.hello_len, MSG_NOSIGNAL);
                if (w != (ssize_t)c.hello_len) {
                    failed = true;
                } else {
                    k->sent = true;
                    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = k };
                    (void)epoll_ctl(c.ep, EPOLL_CTL_MOD, k->fd, &ev);
                }
            }
            if (done || failed) {
                c.errors += failed;
                finish(k);
                last_done = now;
                live--;
                if (now < end)
                    live += start(&c, k);
            }
        }
        if (now >= next_scan) { /* connections that never answer */
            next_scan = now + 100000000u;
            for (unsigned i = 0; i < conc; i++)
                if (conns[i].fd >= 0 && now > conns[i].start && now - conns[i].start > timeout) {
                    c.timeouts++;
                    finish(&conns[i]);
                    live--;
                    if (now < end)
                        live += start(&c, &conns[i]);
                }
        }
    }
    double secs = (double)(last_done - t0) / 1e9;
    qsort(c.lat, c.nlat, sizeof *c.lat, cmp_u64);
    printf("{\"hello_bytes\":%zu,\"concurrency\":%u,\"connections\":%zu,\"errors\":%llu,"
           "\"timeouts\":%llu,\"seconds\":%.3f,\"conn_per_s\":%.1f,\"p50_us\":%.1f,"
           "\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}\n",
           c.hello_len, conc, c.nlat, (unsigned long long)c.errors,
           (unsigned long long)c.timeouts, secs, secs > 0 ? (double)c.nlat / secs : 0,
           pct_us(c.lat, c.nlat, 50), pct_us(c.lat, c.nlat, 90), pct_us(c.lat, c.nlat, 99),
           pct_us(c.lat, c.nlat, 99.9), pct_us(c.lat, c.nlat, 100));
    if (samples != NULL) {
        FILE *f = fopen(samples, "w");
        if (f == NULL) {
            perror("tls_conn: --samples");
            return 1;
        }
        for (size_t i = 0; i < c.nlat; i++)
            fprintf(f, "%.1f\n", (double)c.lat[i] / 1000.0);
        fclose(f);
    }
    free(c.lat);
    return 0;
usage:
    fprintf(stderr, "usage: tls_conn --dst ADDR [--port N] --sni NAME [--hello classic|pq] "
                    "[--concurrency N] [--duration S] [--timeout-ms MS] [--samples FILE]\n");
    return 2;
}
