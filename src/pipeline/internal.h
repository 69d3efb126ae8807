/* What the pipeline's files share (src/pipeline/): the pipeline's state, and the steps
 * each file gives the others. Not a public interface.
 *
 *   pipeline.c   the flow life cycle and the packet entry: flows opened, fed, held, aged
 *   message.c    reading the client's first message
 *   settle.c     settling a flow: facts, ei_decide, the binding step, the event, release
 *   wait.c       flows waiting for a lookup or for their pod, and the DNS answers
 *                snooped on the way */
#ifndef EI_PIPELINE_INTERNAL_H
#define EI_PIPELINE_INTERNAL_H

#include <string.h>

#include "egress_inspector/pipeline.h"
#include "egress_inspector/quic.h"
#include "egress_inspector/tls.h"
#include "flow/reasm.h"
#include "flow/table.h"

enum { EXPIRE_BATCH = 256, MAX_TCP_NAMES_PER_PORT = 16, DNS_PORT = 53 };

/* The pipeline's own bits beside the door's EI_PKT_* ones: a packet's checksum was taken
 * already (and passed, or was wrong and reported), so that no packet is summed or
 * counted twice. */
enum { PL_CSUM_TAKEN = 0x100, PL_CSUM_WAS_BAD = 0x200 };

/* A flow waiting for a lookup: what its decision needs once the answer is in. */
typedef struct {
    ei_flow_key key;
    uint32_t base_seq;     /* tells the flow apart from a later one on the same tuple */
    uint64_t deadline_ns;
    bool done;
    bool have_message;     /* false: a SYN waiting for a tcp:// entry's name */
    ei_l7 l7;
    uint16_t port;
    bool ech;
    uint16_t tls_version;
    uint32_t quic_version;
    bool probe;
    uint8_t alpn_len;
    uint8_t alpn[32];
    char host[EI_NAME_MAX + 1]; /* the flow's name (have_message) */
    char name[EI_NAME_MAX + 1]; /* the name looked up */
} pl_wait;

typedef struct {
    pl_wait *items;  /* a ring, oldest first: every wait in it has the same timeout */
    uint32_t head, n, cap;
    uint64_t timeout_ns;
} pl_wait_ring;

struct ei_pipeline {
    ei_pipeline_config cfg;
    const ei_policy_set *policy;
    ei_mode mode;
    ei_event_fn on_event;
    ei_release_fn on_release;
    void *ctx;
    ei_flow_table table;
    ei_counters count;
    uint8_t *scratch; /* TLS records joined into one handshake pl_message */
    ei_dns_cache *dns;
    ei_lookup_fn on_lookup;
    pl_wait_ring lookups;   /* flows waiting for a lookup */
    pl_wait_ring pod_waits; /* flows waiting for the pod view to know their sender */
    const ei_workloads *workloads; /* the pod view (NULL: none) */
    struct pl_asked *asked; /* the workloads' questions, by hash (dns_asked.c) */
    uint64_t expired_ns; /* when flows were last aged */
    uint8_t *quic_plain; /* a datagram's decrypted Initials (cfg.quic inspect) */
    ei_quic_ctx *quic_crypto; /* libcrypto's algorithms, fetched once */
};

/* What the client's first bytes say, before the policy is asked. */
typedef struct {
    ei_parse_status status;
    ei_l7 l7;
    ei_reason problem;
    ei_view host;      /* raw; ptr NULL when the message names nothing */
    uint16_t port;     /* a CONNECT target's port, else 0 */
    bool ech;
    uint16_t tls_version;
    ei_view alpn;
    bool in_preamble;  /* the bytes so far end inside (or right after) a preamble */
    uint64_t http_next;/* an HTTP request other than CONNECT: where the next one starts
                          (head and body), else 0 */
    uint32_t quic_version; /* QUIC: the version the Initials spoke */
    bool probe;        /* judged, but settles nothing: an allow is ACCEPT (no mark), so
                          that the flow's next message is judged too */
} pl_message;

static inline bool pl_client_is_a(const ei_flow *f)
{
    return (f->flags & EI_FLOW_F_CLIENT_IS_A) != 0;
}

static inline void pl_flow_client(const ei_flow *f, ei_addr *a)
{
    memset(a, 0, sizeof *a);
    a->family = f->key.family;
    memcpy(a->bytes, pl_client_is_a(f) ? f->key.a : f->key.b, 16);
}

static inline uint16_t pl_server_port(const ei_flow *f)
{
    return pl_client_is_a(f) ? f->key.pb : f->key.pa;
}

/* message.c: what a ClientHello says, as the message of a flow of kind l7 (TLS, QUIC). */
void pl_message_from_hello(const ei_tls_hello *hello, ei_parse_status st, ei_l7 l7, pl_message *m);

/* message.c: reads data as a first message to server port `port` into *m (status
 * NEED_MORE: not whole yet). scratch (cfg->reassembly_bytes) joins TLS records. */
void pl_read_message(const ei_pipeline_config *cfg, uint16_t port, uint8_t *scratch,
                     const uint8_t *data, size_t len, pl_message *m);

/* settle.c */
void pl_flow_endpoints(const ei_flow *f, ei_flow_event *ev);
void pl_drop_reasm(ei_pipeline *p, ei_flow *f);
void pl_release_held(ei_pipeline *p, ei_reasm *r, ei_action action);
EI_MUST_USE ei_action pl_settle(ei_pipeline *p, ei_flow *f, uint64_t now_ns, bool have_message,
                                const pl_message *m, ei_reason forced, ei_reason unknown);
/* Settles an undecided flow for a reason outside its message; returns the action for a
 * packet at hand, which callers retiring a flow (no packet at hand) do not have. */
ei_action pl_settle_unread(ei_pipeline *p, ei_flow *f, uint64_t now_ns, ei_reason why);
/* An allowed flow whose judged bytes the server acknowledged: settled for good. */
void pl_confirm(ei_pipeline *p, ei_flow *f);
/* An allowed flow, not confirmed yet, turns out to show the server other bytes than
 * those judged (or another connection): denied after all, with a second event. Returns
 * the action for the packet at hand. */
EI_MUST_USE ei_action pl_revoke(ei_pipeline *p, ei_flow *f, uint64_t now_ns, ei_reason why);

/* pipeline.c: after an HTTP request was allowed, the bytes already seen past its end
 * (src, `seen` bytes from msg_base) are the next request's, read and judged in turn.
 * Returns INSPECT when each is allowed (its held packets released), HOLD when the last
 * is not whole yet (the packets stay held with it), else the denying action. */
EI_MUST_USE ei_action pl_http_pipelined(ei_pipeline *p, ei_flow *f, uint64_t now_ns,
                                        const uint8_t *src, uint32_t seen);

/* coverage.c: the egress the inspector does not read (see ei_pipeline_config.coverage). */
#define PL_UNJUDGED ((ei_reason)EI_REASON_COUNT) /* pl_coverage: not judged at all */
EI_MUST_USE bool pl_port_inspected(const ei_pipeline_config *cfg, uint16_t port);
/* For a workload's flow of protocol proto to dst:dport: EI_REASON_NONE when its message is
 * read (TCP to an inspected port), PL_UNJUDGED when it is not judged, else the reason
 * to deny it unless an address entry allows it. */
EI_MUST_USE ei_reason pl_coverage(const ei_pipeline *p, uint8_t proto, const ei_addr *dst,
                                  uint16_t dport);
/* A packet that is not TCP (UDP, ICMP, another protocol): its exchange is decided at its
 * first packet, and its later packets get the same action. */
EI_MUST_USE ei_action pl_judge_uncovered(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns,
                                         uint64_t packet_id);

/* quic.c: a datagram of an allowed QUIC flow the server has not answered yet: the
 * server's answer settles it; the client's Initials must agree with the bytes judged. */
EI_MUST_USE ei_action pl_quic_confirming(ei_pipeline *p, ei_flow *f, const ei_packet *pkt,
                                         bool from_client, uint64_t now_ns);
/* quic.c: a datagram of a QUIC flow not decided yet (f: its entry, new or not). */
EI_MUST_USE ei_action pl_quic_datagram(ei_pipeline *p, ei_flow *f, const ei_packet *pkt,
                                       bool from_client, uint64_t now_ns, uint64_t packet_id);

/* pipeline.c: the flow's buffer, made on first need (NULL, counted, when memory runs
 * out); keeping a packet until the flow's verdict (or deciding the flow when it may hold
 * no more): the packet's action. */
EI_MUST_USE ei_reasm *pl_flow_reasm(ei_pipeline *p, ei_flow *f);
/* pipeline.c: puts a client's stream bytes (TCP data, QUIC CRYPTO data) at off in its
 * buffer, counting the growth against the budget of all buffers. EI_REASON_NONE, else
 * `conflict` when they differ from bytes already there, or reassembly_limit when memory or
 * the budget runs out (counted). */
EI_MUST_USE ei_reason pl_stream_add(ei_pipeline *p, ei_reasm *r, uint32_t off, const uint8_t *data,
                                    size_t len, ei_reason conflict);
EI_MUST_USE ei_action pl_hold(ei_pipeline *p, ei_flow *f, uint64_t packet_id, uint64_t now_ns);

/* pipeline.c: a new flow table entry (flags clear), making room as the table's bound
 * says (an evicted undecided flow is decided flow_evicted); NULL when memory runs out
 * (counted). */
EI_MUST_USE ei_flow *pl_insert_flow(ei_pipeline *p, const ei_flow_key *key, uint64_t now_ns);

/* wait.c */
EI_MUST_USE bool pl_wait_room(const pl_wait_ring *r);
void pl_start_wait(ei_pipeline *p, pl_wait_ring *r, ei_flow *f, uint64_t now_ns, bool have_message,
                   const pl_message *m, const char *host, const char *name);
void pl_expire_waits(ei_pipeline *p, pl_wait_ring *r, uint64_t now_ns, ei_reason why);
void pl_workloads_changed(ei_pipeline *p, uint64_t now_ns);
void pl_snoop_dns(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns);

/* dns_asked.c: the questions workloads asked, which an answer must match to teach. */
EI_MUST_USE bool pl_asked_init(ei_pipeline *p);
void pl_asked_free(ei_pipeline *p);
void pl_note_query(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns);
/* Whether the answer (from pkt's source to its destination) answers a question still
 * open; the question is closed by it. */
EI_MUST_USE bool pl_was_asked(ei_pipeline *p, const ei_packet *pkt, const ei_dns_answer *a,
                              uint64_t now_ns);
/* Whether the answer comes from a resolver the operator named (any, when none is). */
EI_MUST_USE bool pl_named_resolver(const ei_pipeline *p, const ei_addr *from);

#endif
