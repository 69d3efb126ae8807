/* One NFQUEUE queue over libmnl, with libnetfilter_queue's nfq_nlmsg_* message helpers.
 *
 * Reads never block (MSG_DONTWAIT): the owner polls ei_nfq_fd() and calls
 * ei_nfq_receive(), which hands each queued packet to a callback. Verdicts are collected
 * and sent together by ei_nfq_flush() (several netlink messages in one datagram, and one NFQNL_MSG_VERDICT_BATCH
 * for a run of consecutive ids with the same verdict when no packet is being held). */
#ifndef EI_IO_NFQ_H
#define EI_IO_NFQ_H

#include <sys/types.h>

#include "egress_inspector/common.h"

typedef struct ei_nfq ei_nfq;

typedef struct {
    uint16_t queue;
    bool fail_open;       /* NFQA_CFG_F_FAIL_OPEN: accept when the queue is full */
    uint32_t max_len;     /* packets the kernel keeps waiting for verdicts */
    int rcvbuf;           /* socket receive buffer, bytes */
} ei_nfq_config;

typedef struct {
    uint64_t queued;        /* packets received */
    uint64_t verdicts;      /* verdicts sent (a batch counts each packet it covers) */
    uint64_t batches;       /* NFQNL_MSG_VERDICT_BATCH messages */
    uint64_t netlink_errors;/* failed receives or sends (ENOBUFS and others) */
    uint64_t bad_messages;  /* queued messages without id or payload */
    uint64_t send_retries;  /* flushes that stopped at a failed send, keeping the rest */
    uint64_t pending;       /* gauge: verdicts decided, not yet taken by the kernel */
    uint64_t verdicts_lost; /* verdicts that found the pending list full (sends failing
                               for PENDING_MAX verdicts): their packets stay queued */
} ei_nfq_stats;

/* What the kernel says of a queued packet (NFQA_SKB_INFO, sent because the queue asks
 * for GSO packets whole). */
enum {
    EI_NFQ_CSUM_NOT_READY = 0x01, /* NFQA_SKB_CSUMNOTREADY: checksum left to the card */
};

/* Called for each queued packet with its id, current mark (0 when it has none) and
 * EI_NFQ_* info bits. The packet bytes are valid during the call only. */
typedef void (*ei_nfq_packet_fn)(void *ctx, uint32_t id, uint32_t mark, unsigned info,
                                 const uint8_t *data, size_t len);

/* Opens the netlink socket, binds the queue and configures it, each step acknowledged.
 * Returns NULL and writes why into err (size errlen) on failure. */
EI_MUST_USE ei_nfq *ei_nfq_open(const ei_nfq_config *cfg, char *err, size_t errlen);
void ei_nfq_close(ei_nfq *q);

/* A queue without a socket, whose verdict datagrams go to send (which returns < 0 with
 * errno set to refuse one): the seam the verdict tests use. ei_nfq_receive and ei_nfq_fd
 * must not be called on it. */
typedef ssize_t (*ei_nfq_send_fn)(void *ctx, const void *buf, size_t len);
EI_MUST_USE ei_nfq *ei_nfq_open_detached(uint16_t queue, ei_nfq_send_fn send, void *ctx);

int ei_nfq_fd(const ei_nfq *q);

/* Reads what is waiting, up to `budget` datagrams, calling on_packet for each packet.
 * Returns the number of packets read, or -1 on a socket error (counted, not fatal). */
int ei_nfq_receive(ei_nfq *q, int budget, ei_nfq_packet_fn on_packet, void *ctx);

/* Records a verdict (NF_ACCEPT, NF_DROP or NF_REPEAT) with a packet mark (0: none). */
void ei_nfq_verdict(ei_nfq *q, uint32_t id, int verdict, uint32_t mark);

/* Sends the recorded verdicts. may_batch: no packet of this queue is held, so a batch
 * verdict cannot touch one. A send the kernel refuses is retried at once a few times;
 * then the verdicts not sent stay recorded, in order, for the next flush (the daemon
 * flushes at least every loop tick), and stats say so. Verdicts are never dropped while
 * there is room to keep them. */
void ei_nfq_flush(ei_nfq *q, bool may_batch);

const ei_nfq_stats *ei_nfq_stats_of(const ei_nfq *q);

#endif
