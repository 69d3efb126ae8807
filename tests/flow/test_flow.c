/* Flow table and stream reassembly: both directions find one entry, the table stays
 * within its bounds, and the first bytes come back in order or not at all. */
#include <netinet/in.h>
#include <string.h>

#include "flow/reasm.h"
#include "flow/table.h"
#include "unit.h"

static const char hello[] = "the first bytes of a client's stream, in order";

static void test_in_order_and_out_of_order(void)
{
    size_t n = sizeof hello - 1;
    /* every split into three segments, delivered in every order */
    static const int orders[6][3] = { { 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
                                      { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 } };
    for (size_t a = 1; a < n - 1; a++)
        for (size_t b = a + 1; b < n; b++)
            for (int o = 0; o < 6; o++) {
                ei_reasm *r = ei_reasm_new(4);
                CU_ASSERT_PTR_NOT_NULL_FATAL(r);
                size_t start[3] = { 0, a, b }, end[3] = { a, b, n };
                for (int k = 0; k < 3; k++) {
                    int s = orders[o][k];
                    CU_ASSERT_EQUAL(ei_reasm_add(r, (uint32_t)start[s], (const uint8_t *)hello + start[s],
                                                 end[s] - start[s], 1024), EI_REASM_OK);
                }
                CU_ASSERT_EQUAL(r->contig, n);
                CU_ASSERT(memcmp(r->buf, hello, n) == 0);
                ei_reasm_free(r);
            }
}

static void test_overlap_must_agree(void)
{
    ei_reasm *r = ei_reasm_new(4);
    CU_ASSERT_EQUAL(ei_reasm_add(r, 0, (const uint8_t *)"abcdef", 6, 1024), EI_REASM_OK);
    /* an identical retransmission, partly overlapping, partly new */
    CU_ASSERT_EQUAL(ei_reasm_add(r, 3, (const uint8_t *)"defghi", 6, 1024), EI_REASM_OK);
    CU_ASSERT_EQUAL(r->contig, 9);
    /* a retransmission that differs in one byte */
    CU_ASSERT_EQUAL(ei_reasm_add(r, 2, (const uint8_t *)"cdX", 3, 1024), EI_REASM_CONFLICT);
    CU_ASSERT(memcmp(r->buf, "abcdefghi", 9) == 0);
    /* the same, ahead of a gap */
    CU_ASSERT_EQUAL(ei_reasm_add(r, 20, (const uint8_t *)"xyz", 3, 1024), EI_REASM_OK);
    CU_ASSERT_EQUAL(ei_reasm_add(r, 19, (const uint8_t *)"qxY", 3, 1024), EI_REASM_CONFLICT);
    CU_ASSERT_EQUAL(r->contig, 9);
    ei_reasm_free(r);
}

static void test_cap_bounds_the_buffer(void)
{
    uint8_t big[3000];
    memset(big, 'a', sizeof big);
    ei_reasm *r = ei_reasm_new(1);
    CU_ASSERT_EQUAL(ei_reasm_add(r, 0, big, sizeof big, 1000), EI_REASM_OK);
    CU_ASSERT_EQUAL(r->contig, 1000);
    CU_ASSERT(r->alloc <= 1000);
    CU_ASSERT_EQUAL(ei_reasm_add(r, 5000, big, 10, 1000), EI_REASM_OK);
    CU_ASSERT(ei_reasm_footprint(r) < 1000 + 1000 / 8 + 128);
    ei_reasm_free(r);
}

static ei_addr addr4(uint8_t last)
{
    ei_addr a;
    memset(&a, 0, sizeof a);
    a.family = 4;
    a.bytes[0] = 10;
    a.bytes[3] = last;
    return a;
}

static void test_table_finds_both_directions(void)
{
    ei_flow_table t;
    CU_ASSERT_FATAL(ei_flow_table_init(&t, 16, 42));
    ei_addr c = addr4(1), s = addr4(2);
    ei_flow_key k1, k2;
    bool a1, a2;
    ei_flow_key_make(IPPROTO_TCP, &c, 40000, &s, 443, &k1, &a1);
    ei_flow_key_make(IPPROTO_TCP, &s, 443, &c, 40000, &k2, &a2);
    CU_ASSERT(memcmp(&k1, &k2, sizeof k1) == 0);
    CU_ASSERT(a1 != a2);
    ei_flow evicted;
    bool did;
    ei_flow *f = ei_flow_insert(&t, &k1, 1, &evicted, &did);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_FALSE(did);
    CU_ASSERT_PTR_EQUAL(ei_flow_find(&t, &k2), f);
    ei_flow_key udp; /* the same tuple in UDP is another exchange */
    ei_flow_key_make(IPPROTO_UDP, &c, 40000, &s, 443, &udp, &a1);
    CU_ASSERT_PTR_NULL(ei_flow_find(&t, &udp));
    ei_flow_remove(&t, f);
    CU_ASSERT_PTR_NULL(ei_flow_find(&t, &k1));
    ei_flow_table_destroy(&t);
}

/* A table of 3000 entries filled with 10000 flows keeps exactly 3000, drops the oldest,
 * and prefers to drop decided flows over undecided ones. */
static void test_table_bound_and_lru(void)
{
    ei_flow_table t;
    CU_ASSERT_FATAL(ei_flow_table_init(&t, 3000, 7));
    ei_addr c = addr4(1), s = addr4(2);
    unsigned evictions = 0;
    for (uint32_t i = 0; i < 10000; i++) {
        ei_flow_key k;
        bool a;
        ei_flow_key_make(IPPROTO_TCP, &c, (uint16_t)(1024 + i), &s, 443, &k, &a);
        ei_flow evicted;
        bool did;
        ei_flow *f = ei_flow_insert(&t, &k, i, &evicted, &did);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        if (did) {
            evictions++;
            CU_ASSERT_EQUAL(evicted.last_ns, evictions - 1);
        }
    }
    CU_ASSERT_EQUAL(t.count, 3000);
    CU_ASSERT_EQUAL(evictions, 7000);
    /* the newest are all there */
    for (uint32_t i = 7000; i < 10000; i++) {
        ei_flow_key k;
        bool a;
        ei_flow_key_make(IPPROTO_TCP, &c, (uint16_t)(1024 + i), &s, 443, &k, &a);
        CU_ASSERT_PTR_NOT_NULL(ei_flow_find(&t, &k));
    }
    /* decide the newest one: it becomes the first victim */
    ei_flow_key k;
    bool a;
    ei_flow_key_make(IPPROTO_TCP, &c, (uint16_t)(1024 + 9999), &s, 443, &k, &a);
    ei_flow *f = ei_flow_find(&t, &k);
    f->flags |= EI_FLOW_F_DECIDED;
    ei_flow_touch(&t, f, 20000);
    ei_flow_key_make(IPPROTO_TCP, &c, 9, &s, 443, &k, &a);
    ei_flow evicted;
    bool did;
    CU_ASSERT_PTR_NOT_NULL(ei_flow_insert(&t, &k, 20001, &evicted, &did));
    CU_ASSERT(did);
    CU_ASSERT_EQUAL(evicted.last_ns, 20000);
    ei_flow_table_destroy(&t);
}

int main(void)
{
    static const ei_unit_case reasm[] = {
        EI_CASE(test_in_order_and_out_of_order),
        EI_CASE(test_overlap_must_agree),
        EI_CASE(test_cap_bounds_the_buffer),
    };
    static const ei_unit_case table[] = {
        EI_CASE(test_table_finds_both_directions),
        EI_CASE(test_table_bound_and_lru),
    };
    EI_SUITE("reassembly", reasm);
    EI_SUITE("flow table", table);
    return ei_unit_run();
}
