#include "io/nfq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum {
    RECV_BUF = 0xffff + 8192, /* one whole packet plus its attributes */
    CONFIG_BUF = 1024,
    FLUSH_AT = 256,         /* verdicts collected before a flush is forced */
    PENDING_MAX = 4 * FLUSH_AT, /* room to keep verdicts a failed send could not deliver */
    SEND_BUF = FLUSH_AT * 64,
    SEND_TRIES = 3,         /* immediate retries of a send the kernel refused for memory */
};

typedef struct {
    uint32_t id;
    int verdict;
    uint32_t mark;
} pending;

struct ei_nfq {
    struct mnl_socket *nl;
    unsigned portid;
    uint16_t queue;
    ei_nfq_stats stats;
    pending pend[PENDING_MAX];
    size_t npend;
    uint8_t *recv_buf;
    uint8_t *send_buf;
    ei_nfq_packet_fn on_packet;
    void *ctx;
    ei_nfq_send_fn send;    /* the netlink socket's sendto, or a test's */
    void *send_ctx;
};

static ssize_t socket_send(void *ctx, const void *buf, size_t len)
{
    ei_nfq *q = ctx;
    return mnl_socket_sendto(q->nl, buf, len);
}

/* Sends one configuration message and waits for its acknowledgement. */
static bool config_send(ei_nfq *q, struct nlmsghdr *nlh, const char *what, char *err, size_t errlen)
{
    nlh->nlmsg_flags |= NLM_F_ACK;
    if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0) {
        snprintf(err, errlen, "queue %u: %s: send: %s", q->queue, what, strerror(errno));
        return false;
    }
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(q->nl, q->recv_buf, RECV_BUF);
        if (n < 0) {
            snprintf(err, errlen, "queue %u: %s: %s", q->queue, what, strerror(errno));
            return false;
        }
        int rv = mnl_cb_run(q->recv_buf, (size_t)n, nlh->nlmsg_seq, q->portid, NULL, NULL);
        if (rv == MNL_CB_ERROR) {
            snprintf(err, errlen, "queue %u: %s: %s", q->queue, what, strerror(errno));
            return false;
        }
        if (rv == MNL_CB_STOP)
            return true;
    }
}

ei_nfq *ei_nfq_open(const ei_nfq_config *cfg, char *err, size_t errlen)
{
    ei_nfq *q = calloc(1, sizeof *q);
    if (q == NULL || (q->recv_buf = malloc(RECV_BUF)) == NULL ||
        (q->send_buf = malloc(SEND_BUF)) == NULL) {
        snprintf(err, errlen, "out of memory");
        ei_nfq_close(q);
        return NULL;
    }
    q->queue = cfg->queue;
    q->send = socket_send;
    q->send_ctx = q;
    q->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (q->nl == NULL || mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        snprintf(err, errlen, "netlink socket: %s", strerror(errno));
        ei_nfq_close(q);
        return NULL;
    }
    q->portid = mnl_socket_get_portid(q->nl);
    int fd = mnl_socket_get_fd(q->nl);
    /* A queue burst must not overflow the socket: force the size past rmem_max (needs
     * CAP_NET_ADMIN, which binding a queue needs anyway), and never fail on ENOBUFS:
     * the kernel then drops (fail closed) or accepts (fail open), and counts it. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &cfg->rcvbuf, sizeof cfg->rcvbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->rcvbuf, sizeof cfg->rcvbuf);
    int one = 1;
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

    /* Configuration waits for each ack, but never forever; packets are read later with
     * MSG_DONTWAIT from the event loop. */
    struct timeval tv = { 2, 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    char buf[CONFIG_BUF];
    struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
    nlh->nlmsg_seq = 1;
    if (!config_send(q, nlh, "bind", err, errlen))
        goto fail;

    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->queue);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
    uint32_t flags = NFQA_CFG_F_GSO | (cfg->fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
    nlh->nlmsg_seq = 2;
    if (!config_send(q, nlh, "copy mode and flags", err, errlen))
        goto fail;

    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->queue);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, cfg->max_len);
    nlh->nlmsg_seq = 3;
    if (!config_send(q, nlh, "queue length", err, errlen))
        goto fail;
    return q;
fail:
    ei_nfq_close(q);
    return NULL;
}

ei_nfq *ei_nfq_open_detached(uint16_t queue, ei_nfq_send_fn send, void *ctx)
{
    ei_nfq *q = calloc(1, sizeof *q);
    if (q == NULL || (q->send_buf = malloc(SEND_BUF)) == NULL) {
        free(q);
        return NULL;
    }
    q->queue = queue;
    q->send = send;
    q->send_ctx = ctx;
    return q;
}

void ei_nfq_close(ei_nfq *q)
{
    if (q == NULL)
        return;
    if (q->nl != NULL)
        mnl_socket_close(q->nl);
    free(q->recv_buf);
    free(q->send_buf);
    free(q);
}

int ei_nfq_fd(const ei_nfq *q)
{
    return mnl_socket_get_fd(q->nl);
}

const ei_nfq_stats *ei_nfq_stats_of(const ei_nfq *q)
{
    return &q->stats;
}

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
    ei_nfq *q = data;
    struct nlattr *attr[NFQA_MAX + 1];
    memset(attr, 0, sizeof attr);
    if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL) {
        q->stats.bad_messages++;
        return MNL_CB_OK;
    }
    const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
    uint32_t id = ntohl(ph->packet_id);
    q->stats.queued++;
    if (attr[NFQA_PAYLOAD] == NULL) {
        /* Nothing to judge: refuse it rather than guess. */
        q->stats.bad_messages++;
        ei_nfq_verdict(q, id, NF_DROP, 0);
        return MNL_CB_OK;
    }
    uint32_t mark = attr[NFQA_MARK] ? ntohl(mnl_attr_get_u32(attr[NFQA_MARK])) : 0;
    uint32_t skb = attr[NFQA_SKB_INFO] ? ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO])) : 0;
    unsigned info = (skb & NFQA_SKB_CSUMNOTREADY) ? EI_NFQ_CSUM_NOT_READY : 0;
    q->on_packet(q->ctx, id, mark, info, mnl_attr_get_payload(attr[NFQA_PAYLOAD]),
                 mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]));
    return MNL_CB_OK;
}

int ei_nfq_receive(ei_nfq *q, int budget, ei_nfq_packet_fn on_packet, void *ctx)
{
    q->on_packet = on_packet;
    q->ctx = ctx;
    uint64_t before = q->stats.queued;
    for (int i = 0; i < budget; i++) {
        ssize_t n = recv(ei_nfq_fd(q), q->recv_buf, RECV_BUF, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            q->stats.netlink_errors++;
            return -1;
        }
        if (mnl_cb_run(q->recv_buf, (size_t)n, 0, q->portid, packet_cb, q) == MNL_CB_ERROR)
            q->stats.netlink_errors++;
        if (q->npend > FLUSH_AT / 2)
            ei_nfq_flush(q, false);
    }
    return (int)(q->stats.queued - before);
}

void ei_nfq_verdict(ei_nfq *q, uint32_t id, int verdict, uint32_t mark)
{
    if (q->npend >= FLUSH_AT)
        ei_nfq_flush(q, false);
    if (q->npend == PENDING_MAX) {
        /* Sends have failed PENDING_MAX verdicts in a row: this one cannot be kept. The
         * packet stays in the kernel's queue, unanswered (nothing passes), counted. */
        q->stats.verdicts_lost++;
        return;
    }
    q->pend[q->npend++] = (pending){ id, verdict, mark };
    q->stats.pending = q->npend;
}

static void put_verdict(ei_nfq *q, size_t *off, int type, uint32_t id, int verdict, uint32_t mark)
{
    struct nlmsghdr *nlh = nfq_nlmsg_put((char *)q->send_buf + *off, type, q->queue);
    nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
    if (mark != 0)
        nfq_nlmsg_verdict_put_mark(nlh, mark);
    *off += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* One datagram's worth of verdicts from pend[from] on: returns the position after the
 * last one encoded, *len the bytes, and what they count for in *verdicts and *batches. */
static size_t encode(ei_nfq *q, size_t from, bool may_batch, const uint32_t *later_min,
                     size_t *len, uint64_t *verdicts, uint64_t *batches)
{
    size_t off = 0, i = from;
    *verdicts = *batches = 0;
    while (i < q->npend && off <= SEND_BUF - 128) {
        size_t j = i + 1;
        if (may_batch)
            while (j < q->npend && q->pend[j].id == q->pend[j - 1].id + 1 &&
                   q->pend[j].verdict == q->pend[i].verdict && q->pend[j].mark == q->pend[i].mark &&
                   later_min[j + 1] > q->pend[j].id)
                j++;
        const pending *last = &q->pend[j - 1];
        put_verdict(q, &off, j - i > 1 ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT, last->id,
                    last->verdict, last->mark);
        *verdicts += j - i;
        *batches += j - i > 1;
        i = j;
    }
    *len = off;
    return i;
}

/* The kernel refuses a datagram whole (skb allocation) or takes it whole. */
static bool send_datagram(ei_nfq *q, size_t len)
{
    for (int tries = 0; tries < SEND_TRIES; tries++) {
        if (q->send(q->send_ctx, q->send_buf, len) >= 0)
            return true;
        if (errno != EINTR && errno != ENOBUFS && errno != ENOMEM && errno != EAGAIN)
            break;
    }
    q->stats.netlink_errors++;
    return false;
}

void ei_nfq_flush(ei_nfq *q, bool may_batch)
{
    /* A batch verdict covers every waiting packet up to its id. It is safe only when no
     * packet is held and no verdict later in the list is for a lower id (a held packet
     * released after newer ones). later_min[i]: the lowest id from position i on. */
    uint32_t later_min[PENDING_MAX + 1];
    later_min[q->npend] = UINT32_MAX;
    for (size_t i = q->npend; i > 0; i--)
        later_min[i - 1] = q->pend[i - 1].id < later_min[i] ? q->pend[i - 1].id : later_min[i];
    size_t sent = 0;
    while (sent < q->npend) {
        size_t len;
        uint64_t verdicts, batches;
        size_t next = encode(q, sent, may_batch, later_min, &len, &verdicts, &batches);
        if (!send_datagram(q, len)) {
            /* Keep what was not sent, in order, for the next flush. */
            q->stats.send_retries++;
            break;
        }
        q->stats.verdicts += verdicts;
        q->stats.batches += batches;
        sent = next;
    }
    memmove(q->pend, q->pend + sent, (q->npend - sent) * sizeof q->pend[0]);
    q->npend -= sent;
    q->stats.pending = q->npend;
}
