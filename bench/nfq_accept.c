/* The floor of the NFQUEUE mechanism: an accept-all listener that reads each queued packet
 * and answers it with one verdict, at once, and does nothing else. Set up like the
 * daemon's queue (libmnl with libnetfilter_queue's nfq_nlmsg_* helpers, copy mode packet,
 * NFQA_CFG_F_GSO, an 8 MiB receive buffer, NETLINK_NO_ENOBUFS), so that the difference
 * between this and the daemon is the daemon's own work: parsing, flow table, decision,
 * log line.
 *
 * Usage: nfq_accept [--queue N] [--mark-payload HEX]
 *   --mark-payload HEX   accept a packet that carries TCP payload with this mark (NFQA_MARK)
 *                        and the rest (the SYN) without one. With the node rules of
 *                        `egress-inspector iptables`, which save the allow mark on the
 *                        connection, the connection then leaves the queue after its first
 *                        data packet: the same packets are queued as for the daemon
 *                        allowing a single-segment ClientHello.
 * On SIGTERM or SIGINT it prints {"queued":N,"verdicts":N,"marked":N} and exits 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

typedef struct {
    struct mnl_socket *nl;
    unsigned portid;
    uint16_t queue;
    uint32_t mark_payload;
    uint64_t queued, verdicts, marked, send_errors;
} listener;

/* Whether an IPv4 or IPv6 (no extension headers: enough for this bench) TCP packet
 * carries payload. */
static bool tcp_has_payload(const uint8_t *p, size_t len)
{
    if (len < 1)
        return false;
    size_t ip_hlen, total;
    if (p[0] >> 4 == 4) {
        if (len < 20 || p[9] != IPPROTO_TCP)
            return false;
        ip_hlen = (size_t)(p[0] & 0x0f) * 4;
        total = (size_t)p[2] << 8 | p[3];
    } else if (p[0] >> 4 == 6) {
        if (len < 40 || p[6] != IPPROTO_TCP)
            return false;
        ip_hlen = 40;
        total = 40 + ((size_t)p[4] << 8 | p[5]);
    } else {
        return false;
    }
    if (total > len)
        total = len; /* GSO or a short copy: the kernel knows best, the capture is cut */
    if (ip_hlen + 13 > total)
        return false;
    size_t tcp_hlen = (size_t)(p[ip_hlen + 12] >> 4) * 4;
    return total > ip_hlen + tcp_hlen;
}

static void send_verdict(listener *l, uint32_t id, uint32_t mark)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, l->queue);
    nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
    if (mark != 0)
        nfq_nlmsg_verdict_put_mark(nlh, mark);
    if (mnl_socket_sendto(l->nl, nlh, nlh->nlmsg_len) < 0)
        l->send_errors++;
    else
        l->verdicts++;
}

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
    listener *l = data;
    struct nlattr *attr[NFQA_MAX + 1];
    memset(attr, 0, sizeof attr);
    if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
        return MNL_CB_OK;
    const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
    l->queued++;
    uint32_t mark = 0;
    if (l->mark_payload != 0 && attr[NFQA_PAYLOAD] != NULL &&
        tcp_has_payload(mnl_attr_get_payload(attr[NFQA_PAYLOAD]),
                        mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]))) {
        mark = l->mark_payload;
        l->marked++;
    }
    send_verdict(l, ntohl(ph->packet_id), mark);
    return MNL_CB_OK;
}

/* Sends one configuration message and waits for its acknowledgement. */
static bool config(listener *l, struct nlmsghdr *nlh, unsigned seq, const char *what)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = seq;
    if (mnl_socket_sendto(l->nl, nlh, nlh->nlmsg_len) < 0) {
        fprintf(stderr, "nfq_accept: %s: %s\n", what, strerror(errno));
        return false;
    }
    ssize_t n = mnl_socket_recvfrom(l->nl, buf, sizeof buf);
    if (n < 0 || mnl_cb_run(buf, (size_t)n, seq, l->portid, NULL, NULL) == MNL_CB_ERROR) {
        fprintf(stderr, "nfq_accept: %s: %s\n", what, strerror(errno));
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    listener l = { .queue = 0 };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--queue") == 0 && i + 1 < argc)
            l.queue = (uint16_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--mark-payload") == 0 && i + 1 < argc)
            l.mark_payload = (uint32_t)strtoul(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: nfq_accept [--queue N] [--mark-payload HEX]\n");
            return 2;
        }
    }
    /* No SA_RESTART: a signal must interrupt the blocking receive. */
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    l.nl = mnl_socket_open(NETLINK_NETFILTER);
    if (l.nl == NULL || mnl_socket_bind(l.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        perror("nfq_accept: netlink socket");
        return 1;
    }
    l.portid = mnl_socket_get_portid(l.nl);
    int fd = mnl_socket_get_fd(l.nl);
    int rcvbuf = 8 << 20, one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, l.queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
    if (!config(&l, nlh, 1, "bind"))
        return 1;
    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, l.queue);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO));
    if (!config(&l, nlh, 2, "copy mode"))
        return 1;
    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, l.queue);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, 4096);
    if (!config(&l, nlh, 3, "queue length"))
        return 1;
    fprintf(stderr, "nfq_accept: queue %u bound\n", l.queue);

    /* One whole packet (up to 64 KiB with GSO) and its attributes. */
    static char rbuf[0xffff + 8192];
    while (!stop) {
        ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS)
                continue;
            perror("nfq_accept: recv");
            break;
        }
        (void)mnl_cb_run(rbuf, (size_t)n, 0, l.portid, packet_cb, &l);
    }
    printf("{\"queued\":%llu,\"verdicts\":%llu,\"marked\":%llu,\"send_errors\":%llu}\n",
           (unsigned long long)l.queued, (unsigned long long)l.verdicts,
           (unsigned long long)l.marked, (unsigned long long)l.send_errors);
    mnl_socket_close(l.nl);
    return 0;
}
