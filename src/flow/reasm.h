/* The first bytes of a client's stream, put back in order.
 *
 * Only what is needed to read the first message is kept: at most `cap` bytes from the
 * start of the stream. In-order data is appended; data that arrives ahead of a gap is
 * placed by its offset and remembered in a bitmap until the gap fills. Bytes that arrive
 * twice must be equal: a retransmission that differs is the classic way to show an
 * inspector one name and the server another, so it is reported, never overwritten.
 * The same object holds the ids of the packets held while the flow is undecided. For
 * QUIC the stream is the client's CRYPTO data, placed by its frames' offsets. */
#ifndef EI_FLOW_REASM_H
#define EI_FLOW_REASM_H

#include "egress_inspector/common.h"
#include "egress_inspector/quic.h"

typedef struct {
    uint8_t *buf;       /* stream bytes [0, alloc) */
    uint8_t *have;      /* one bit per byte of [0, cap), only once data arrived out of order */
    uint32_t alloc;
    uint32_t contig;    /* bytes [0, contig) are all present */
    uint16_t nheld;
    uint16_t held_cap;
    uint64_t held_since_ns; /* when the first packet was held: the latency the flow paid */
    ei_quic_conn quic;  /* a QUIC flow's first Initial: its keys (version 0: none yet) */
    uint64_t held[];    /* ids of packets waiting for the flow's verdict */
} ei_reasm;

typedef enum {
    EI_REASM_OK = 0,
    EI_REASM_CONFLICT,  /* overlapping bytes differ from those already seen */
    EI_REASM_NOMEM,
} ei_reasm_status;

/* A new, empty buffer able to hold held_cap packet ids. NULL when memory runs out. */
EI_MUST_USE ei_reasm *ei_reasm_new(uint16_t held_cap);
void ei_reasm_free(ei_reasm *r);

/* Bytes of memory the buffer uses, for the global budget. */
size_t ei_reasm_footprint(const ei_reasm *r);

/* Places len bytes at stream offset off. Bytes at or past cap are dropped (the pipeline
 * decides a flow whose message reaches cap: reassembly_limit). Nothing is written when
 * the result is not EI_REASM_OK. */
EI_MUST_USE ei_reasm_status ei_reasm_add(ei_reasm *r, uint32_t off, const uint8_t *data,
                                         size_t len, uint32_t cap);

#endif
