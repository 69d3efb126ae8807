/* The flow table: one entry per TCP connection (and, with --coverage all, per UDP, ICMP
 * or other exchange, decided at its first packet), found from either direction's tuple.
 *
 * Entries live in one array and link to each other by 32-bit index (hash chains and two
 * LRU lists: undecided flows and decided ones, each with its own idle timeout, so the
 * oldest entry of a list is always the first to expire). The table never grows past
 * max_flows: inserting into a full table evicts the least recently used entry, undecided
 * ones last, and says so to the caller, which must decide its held packets. */
#ifndef EI_FLOW_TABLE_H
#define EI_FLOW_TABLE_H

#include "egress_inspector/common.h"
#include "flow/reasm.h"
#include "ilist.h"

#define EI_FLOW_NONE UINT32_MAX

enum {
    EI_FLOW_F_CLIENT_IS_A = 0x01, /* endpoint a (the lower one) is the client */
    EI_FLOW_F_SYN = 0x04,         /* the client's SYN was seen: base_seq is exact */
    EI_FLOW_F_WAITED_WORKLOAD = 0x08, /* waited once for the pod view to know its sender */
    EI_FLOW_F_DECIDED = 0x10,
    EI_FLOW_F_ON_DECIDED_LIST = 0x20, /* the table's own: which LRU list holds the entry */
    EI_FLOW_F_WAIT_DNS = 0x40,    /* undecided: its packets are held until a wait ends (a
                                     lookup, or the pod view learning its sender) */
    EI_FLOW_F_SYNACK = 0x80,      /* the server's SYN-ACK was seen: server_isn is exact,
                                     and it acknowledged base_seq */
    EI_FLOW_F_TS = 0x100,         /* the client's SYN carried a timestamp: ts_recent */
    EI_FLOW_F_CONFIRMING = 0x200, /* allowed by its message, which the server has not
                                     acknowledged yet: reasm keeps the judged bytes and
                                     every client byte is compared with them */
    EI_FLOW_F_BAD_CSUM = 0x400,   /* a packet with a wrong checksum was read (report mode) */
    EI_FLOW_F_SYNACK2 = 0x800,    /* two SYN-ACKs with different ISNs: server_isn2 */
    EI_FLOW_F_HTTP = 0x1000,      /* plain HTTP, allowed so far: the next request head
                                     starts at next_req, and is judged too */
    EI_FLOW_F_SERVER_GONE = 0x2000, /* live: the server's packets left the queue (an HTTP
                                     connection's, after its first request) */
    EI_FLOW_F_REVOKED = 0x4000,   /* allowed, then denied: its judged bytes were not what
                                     the server was about to read */
};

/* The two endpoints in canonical order (a <= b), so both directions find the entry. */
typedef struct {
    uint8_t a[16];
    uint8_t b[16];
    uint16_t pa;
    uint16_t pb;
    uint8_t family;
    uint8_t proto;  /* IPPROTO_TCP, IPPROTO_UDP, ... (ICMP: pa or pb is the identifier) */
} ei_flow_key;

typedef struct {
    ei_flow_key key;
    uint16_t flags;
    uint8_t verdict;        /* ei_action once decided */
    uint8_t reason;         /* ei_reason once decided */
    uint8_t packets;        /* client packets while undecided (saturates) */
    uint8_t syn_ttl;        /* TTL or hop limit of the client's SYN */
    uint32_t base_seq;      /* client sequence number of stream byte 0 */
    uint32_t ts_recent;     /* the client's newest timestamp value (EI_FLOW_F_TS) */
    uint32_t server_isn;    /* (EI_FLOW_F_SYNACK) */
    uint32_t server_isn2;   /* another SYN-ACK's, before the client chose (EI_FLOW_F_SYNACK2) */
    uint32_t server_next;   /* one past the highest server sequence number seen */
    uint32_t judged_len;    /* bytes the verdict read, from msg_base (EI_FLOW_F_CONFIRMING,
                                     EI_FLOW_F_HTTP): reasm keeps them */
    uint32_t msg_base;      /* stream offset of the message being read (reasm's byte 0) */
    uint32_t next_req;      /* stream offset of the next HTTP request (EI_FLOW_F_HTTP) */
    uint32_t passed;        /* stream bytes passed to the server (preambles, bodies) */
    uint32_t hnext;         /* hash chain */
    ei_ilink lru;           /* on lists[0] (undecided) or lists[1] (decided) */
    uint64_t last_ns;
    ei_reasm *reasm;        /* client bytes and held packets; NULL when there are none */
} ei_flow;

typedef struct {
    ei_flow *flows;
    uint32_t *buckets;
    uint32_t nbuckets;      /* power of two */
    uint32_t capacity;      /* entries allocated */
    uint32_t max_flows;
    uint32_t count;
    uint32_t free_head;     /* free entries chained through hnext */
    ei_ilist lists[2];      /* LRU lists: [0] undecided, [1] decided; head = newest */
    uint64_t seed;
} ei_flow_table;

/* Builds a flow key from one packet's protocol and endpoints; *sender_is_a tells the
 * direction. */
void ei_flow_key_make(uint8_t proto, const ei_addr *src, uint16_t sport, const ei_addr *dst,
                      uint16_t dport, ei_flow_key *key, bool *sender_is_a);

/* max_flows >= 1. seed keys the hash so that remote peers cannot aim at one chain.
 * Returns false when memory for the first entries cannot be had. */
EI_MUST_USE bool ei_flow_table_init(ei_flow_table *t, uint32_t max_flows, uint64_t seed);
void ei_flow_table_destroy(ei_flow_table *t);

EI_MUST_USE ei_flow *ei_flow_find(ei_flow_table *t, const ei_flow_key *key);

/* Adds a new entry (the key must not be present). When the table is full, the least
 * recently used entry is unlinked first and copied to *evicted (with its reasm, which the
 * caller now owns), and *did_evict is set. Returns NULL only when memory runs out. */
EI_MUST_USE ei_flow *ei_flow_insert(ei_flow_table *t, const ei_flow_key *key, uint64_t now_ns,
                                    ei_flow *evicted, bool *did_evict);

/* Marks the entry as just used (and moves it to the list its DECIDED flag names). */
void ei_flow_touch(ei_flow_table *t, ei_flow *f, uint64_t now_ns);

/* Removes an entry. Its reasm must already be freed or taken by the caller. */
void ei_flow_remove(ei_flow_table *t, ei_flow *f);

/* The oldest entry of a list (0 undecided, 1 decided), or NULL. */
EI_MUST_USE ei_flow *ei_flow_oldest(ei_flow_table *t, int decided);

#endif
