/* Verdicts are never lost: a send the kernel refuses is retried, what was not sent is
 * kept in order for the next flush, and every packet id gets exactly one verdict. The
 * queue's real flush code runs here; only the socket's sendto is replaced, by a recorder
 * that can refuse. */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <string.h>

#include "io/nfq.h"
#include "unit.h"

typedef struct {
    int refuse;              /* sends to refuse before accepting again */
    int refuse_errno;
    unsigned datagrams;
    uint32_t ids[4096];      /* ids with a verdict, in the order sent (a batch: its last) */
    int verdicts[4096];
    bool batch[4096];
    size_t n;
} recorder;

typedef struct {
    recorder *r;
    bool batch;
} one_msg;

static int on_attr(const struct nlattr *attr, void *data)
{
    one_msg *m = data;
    if (mnl_attr_get_type(attr) == NFQA_VERDICT_HDR) {
        const struct nfqnl_msg_verdict_hdr *vh = mnl_attr_get_payload(attr);
        recorder *r = m->r;
        r->ids[r->n] = ntohl(vh->id);
        r->verdicts[r->n] = (int)ntohl(vh->verdict);
        r->batch[r->n] = m->batch;
        r->n++;
    }
    return MNL_CB_OK;
}

static ssize_t record(void *ctx, const void *buf, size_t len)
{
    recorder *r = ctx;
    if (r->refuse > 0) {
        r->refuse--;
        errno = r->refuse_errno;
        return -1;
    }
    r->datagrams++;
    const struct nlmsghdr *nlh = buf;
    int left = (int)len;
    while (mnl_nlmsg_ok(nlh, left)) {
        one_msg m = { r, (nlh->nlmsg_type & 0xff) == NFQNL_MSG_VERDICT_BATCH };
        CU_ASSERT_EQUAL(mnl_attr_parse(nlh, sizeof(struct nfgenmsg), on_attr, &m), MNL_CB_OK);
        nlh = mnl_nlmsg_next(nlh, &left);
    }
    return (ssize_t)len;
}

static void test_failed_send_keeps_the_verdicts(void)
{
    recorder rec = { .refuse = 100, .refuse_errno = ENOBUFS };
    ei_nfq *q = ei_nfq_open_detached(0, record, &rec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (uint32_t id = 1; id <= 10; id++)
        ei_nfq_verdict(q, id, id % 2 ? NF_ACCEPT : NF_DROP, 0);
    ei_nfq_flush(q, false);
    const ei_nfq_stats *st = ei_nfq_stats_of(q);
    CU_ASSERT_EQUAL(rec.n, 0);
    CU_ASSERT_EQUAL(st->pending, 10);   /* kept, not cleared */
    CU_ASSERT_EQUAL(st->verdicts, 0);   /* nothing counted as sent */
    CU_ASSERT_EQUAL(st->send_retries, 1);
    CU_ASSERT(st->netlink_errors >= 1);
    rec.refuse = 0;
    ei_nfq_verdict(q, 11, NF_ACCEPT, 0);
    ei_nfq_flush(q, false);
    CU_ASSERT_EQUAL(st->pending, 0);
    CU_ASSERT_EQUAL(st->verdicts, 11);
    CU_ASSERT_EQUAL_FATAL(rec.n, 11);
    for (uint32_t i = 0; i < 11; i++) { /* each id once, in order, with its verdict */
        CU_ASSERT_EQUAL(rec.ids[i], i + 1);
        CU_ASSERT_EQUAL(rec.verdicts[i], (i + 1) % 2 ? NF_ACCEPT : NF_DROP);
    }
    ei_nfq_close(q);
}

static void test_transient_refusal_is_retried_at_once(void)
{
    recorder rec = { .refuse = 2, .refuse_errno = EINTR };
    ei_nfq *q = ei_nfq_open_detached(0, record, &rec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    ei_nfq_verdict(q, 7, NF_ACCEPT, 0);
    ei_nfq_flush(q, true);
    CU_ASSERT_EQUAL(rec.n, 1);
    CU_ASSERT_EQUAL(ei_nfq_stats_of(q)->pending, 0);
    CU_ASSERT_EQUAL(ei_nfq_stats_of(q)->send_retries, 0);
    ei_nfq_close(q);
}

/* More verdicts than one datagram holds, the second datagram refused: the first stays
 * sent, the rest are kept, and nothing is sent twice. */
static void test_partial_flush_sends_nothing_twice(void)
{
    recorder rec = { 0 };
    ei_nfq *q = ei_nfq_open_detached(0, record, &rec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    /* alternate verdicts, so no batching: one message per verdict */
    for (uint32_t id = 1; id <= 600; id++) {
        if (id == 200)
            rec.refuse = 1000, rec.refuse_errno = ENOMEM; /* every later send fails */
        ei_nfq_verdict(q, id, id % 2 ? NF_ACCEPT : NF_DROP, 0);
    }
    size_t sent_before = rec.n;
    CU_ASSERT(sent_before > 0 && sent_before < 600);
    CU_ASSERT_EQUAL(ei_nfq_stats_of(q)->pending + sent_before, 600);
    rec.refuse = 0;
    ei_nfq_flush(q, false);
    CU_ASSERT_EQUAL_FATAL(rec.n, 600);
    for (uint32_t i = 0; i < 600; i++)
        CU_ASSERT_EQUAL(rec.ids[i], i + 1);
    CU_ASSERT_EQUAL(ei_nfq_stats_of(q)->verdicts_lost, 0);
    ei_nfq_close(q);
}

/* When sends fail for longer than the list can hold, the verdicts that find no room are
 * counted as lost (their packets stay queued in the kernel: nothing passes). */
static void test_full_list_counts_what_it_cannot_keep(void)
{
    recorder rec = { .refuse = 1 << 30, .refuse_errno = ENOBUFS };
    ei_nfq *q = ei_nfq_open_detached(0, record, &rec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (uint32_t id = 1; id <= 1100; id++)
        ei_nfq_verdict(q, id, NF_ACCEPT, 0);
    const ei_nfq_stats *st = ei_nfq_stats_of(q);
    CU_ASSERT_EQUAL(st->pending + st->verdicts_lost, 1100);
    CU_ASSERT(st->verdicts_lost > 0);
    rec.refuse = 0;
    ei_nfq_flush(q, true);
    CU_ASSERT_EQUAL(st->pending, 0);
    ei_nfq_close(q);
}

/* Consecutive ids with one verdict go as one batch when nothing is held. */
static void test_batches_when_allowed(void)
{
    recorder rec = { 0 };
    ei_nfq *q = ei_nfq_open_detached(0, record, &rec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    for (uint32_t id = 1; id <= 5; id++)
        ei_nfq_verdict(q, id, NF_ACCEPT, 0);
    ei_nfq_flush(q, true);
    CU_ASSERT_EQUAL_FATAL(rec.n, 1);
    CU_ASSERT(rec.batch[0]);
    CU_ASSERT_EQUAL(rec.ids[0], 5);
    CU_ASSERT_EQUAL(ei_nfq_stats_of(q)->verdicts, 5);
    CU_ASSERT_EQUAL(ei_nfq_stats_of(q)->batches, 1);
    ei_nfq_close(q);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_failed_send_keeps_the_verdicts),
        EI_CASE(test_transient_refusal_is_retried_at_once),
        EI_CASE(test_partial_flush_sends_nothing_twice),
        EI_CASE(test_full_list_counts_what_it_cannot_keep),
        EI_CASE(test_batches_when_allowed),
    };
    EI_SUITE("nfq", cases);
    return ei_unit_run();
}
