/* The pipeline: one packet in, one action out. Every door (NFQUEUE, pcap replay, tests,
 * fuzzers) drives this same code.
 *
 * It does no I/O and reads no clock: the caller passes the time with each packet, and
 * learns of decisions and of released packets through two callbacks, called before
 * ei_pipeline_packet returns. One pipeline belongs to one thread. */
#ifndef EGRESS_INSPECTOR_PIPELINE_H
#define EGRESS_INSPECTOR_PIPELINE_H

#include "egress_inspector/common.h"
#include "egress_inspector/dns.h"
#include "egress_inspector/dns_cache.h"
#include "egress_inspector/packet.h"
#include "egress_inspector/policy.h"
#include "egress_inspector/workload.h"

/* What to do with one packet. */
typedef enum {
    EI_ACTION_PASS = 0, /* let it through; its flow is not decided yet */
    EI_ACTION_ALLOW,    /* let it through; the flow is settled and may skip the queue */
    EI_ACTION_ACCEPT,   /* let it through; the flow is allowed, but the server has not
                           acknowledged the bytes judged yet: keep queueing it (no mark) */
    EI_ACTION_INSPECT,  /* let it through; a plain HTTP connection: its server's packets may
                           skip the queue, its client's keep coming (every request head
                           on it is judged) */
    EI_ACTION_DENY,     /* the flow is denied: drop (and reset) it */
    EI_ACTION_HOLD,     /* keep it: its verdict comes later through on_release */
    EI_ACTION_DROP,     /* drop this packet alone (unreadable headers, IP fragment) */
    EI_ACTION_COUNT
} ei_action;

const char *ei_action_name(ei_action action);

typedef struct {
    uint32_t max_flows;             /* flow table entries */
    uint32_t reassembly_bytes;      /* per flow: the longest first message we read */
    uint64_t max_buffered_bytes;    /* all flows' reassembly buffers together */
    uint16_t max_held_packets;      /* per flow */
    uint16_t max_packets_before_name; /* client packets an undecided flow may send */
    uint64_t undecided_timeout_ns;  /* idle undecided flows are decided `incomplete` */
    uint64_t decided_timeout_ns;    /* idle decided flows are forgotten */
    /* The daemon's queue: the node rules queue the client's packets of undecided flows
     * and the server's until a flow is settled (its SYN-ACK, its acknowledgements). A
     * packet without a flow is the client's; a flow must be seen from its SYN and its
     * SYN-ACK, or its data is never trusted (midstream). When false (captures), direction
     * is learnt from the SYN or the first message, and a capture may start midstream. */
    bool live;
    /* Look through tunnels (IP in IP, GRE, VXLAN, Geneve, GTP-U, ...) to the innermost
     * packet: replay's, for captures taken on a tunnel's path. Live the node judges
     * packets as it forwards them, so that a datagram to one workload cannot carry a DNS
     * answer or a flow that speaks for another. */
    bool tunnels;
    /* Allowed flows stay queued (EI_ACTION_ACCEPT) until the server acknowledges every
     * byte judged, and a retransmission of those bytes that differs revokes the allow:
     * what the server reads is what was judged, even if the judged packet died later on
     * its way. Off: a flow is settled (EI_ACTION_ALLOW) at its verdict. */
    bool confirm;
    /* Ports whose flows may begin with a SOCKS, STARTTLS or PROXY preamble before the
     * first message (its whole commands pass: the server must answer them). On every
     * other port a flow must begin with its message. */
    uint16_t preamble_ports[16];
    uint8_t npreamble_ports;
    bool preambles_any_port;        /* replay's --preamble-ports any: every port */
    /* Checksums of the packets that matter (those of undecided and confirming flows):
     * a packet whose checksum is wrong is one the server discards. VERIFY drops it
     * (counted) before it reaches reassembly; REPORT counts it and flags its flow's
     * decision line, then reads it as if it were right (captures made on the sending host
     * carry checksums left to the network card); OFF sums nothing. */
    enum { EI_CHECKSUM_VERIFY = 0, EI_CHECKSUM_REPORT, EI_CHECKSUM_OFF } checksums;
    /* Destination binding: a flow allowed by its name goes only to an address that name
     * has (ei_pipeline_set_dns). When nothing is known of the name, the flow waits for
     * a lookup, at most dns_timeout_ns; with no way to look up (replay), it is denied. */
    bool dest_check;
    uint64_t dns_timeout_ns;
    uint16_t max_dns_waits;         /* flows waiting for a lookup at once */
    /* QUIC (--quic): INSPECT reads the ClientHello of a client's Initials, on UDP 443 and
     * wherever a datagram decrypts as one, and judges it as TLS (l7 quic); BLOCK leaves
     * UDP 443 to the coverage rules (quic_not_inspected), so clients fall back to TCP. */
    enum { EI_QUIC_INSPECT = 0, EI_QUIC_BLOCK } quic;
    /* Every packet handed in is a DNS answer to a workload (the daemon's answer queue):
     * it is learned from and passed, never judged as a flow. Otherwise DNS answers are
     * learned from only when !live (captures, which hold both directions). */
    bool dns_answers;
    /* The resolvers whose answers may teach bindings (--dns-from): an answer from any
     * other address is passed on and teaches nothing. None named: any address. */
    ei_addr dns_from[16];
    uint8_t dns_from_bits[16];
    uint8_t ndns_from;
    /* An answer teaches only what the workload asked: the query must have been seen on
     * its way out (the same ports, addresses, id, name and type), within the last 10 s,
     * and one query teaches once. Live, the node rules queue the workloads' queries on
     * the answer queue; captures hold them. */
    bool dns_asked_only;
    /* The TCP ports whose flows' first messages are read (--ports, the node rules'
     * list): ranges, first <= last. nports 0: every port. */
    struct {
        uint16_t first, last;
    } ports[15];
    uint8_t nports;
    /* What becomes of the rest of a workload's egress (--coverage). ALL: TCP to other
     * ports, UDP, ICMP queries and other IP protocols are decided at their first packet
     * by the address entries (TCP: tcp:// entries too) and otherwise denied with a
     * reason of their own (port_not_inspected, quic_not_inspected, udp_not_inspected,
     * icmp_not_inspected, proto_not_inspected); DNS is denied (dns_resolver_not_named)
     * unless it goes to a named resolver (dns_from), which is not judged. INSPECTED:
     * none of it is judged (a NetworkPolicy is left to do it). */
    enum { EI_COVERAGE_ALL = 0, EI_COVERAGE_INSPECTED } coverage;
    /* A flow from an address the pod view (ei_pipeline_set_workloads) does not know,
     * and no `source` CIDR covers, waits up to this long for the view to learn it (a pod
     * that connects before its watch event arrives), then is denied workload_unknown.
     * 0: denied at once (replay, whose view does not change). */
    uint64_t workload_wait_ns;
    uint64_t hash_seed;
} ei_pipeline_config;

/* Defaults: 262144 flows, 16 KiB per flow, 64 MiB in all, 32 held packets, 64 client
 * packets before a name, 30 s undecided, 300 s decided, preambles on the ports of the
 * protocols that have them (21, 25, 110, 143, 389, 587, 1080, 5432), confirmation on,
 * checksums verified, destination check on with a 2 s lookup bound and 1024 waiting
 * flows, every TCP port read, coverage all. (The command line's defaults read ports 80
 * and 443, as the node rules do.) */
void ei_pipeline_config_default(ei_pipeline_config *cfg);

/* One decided flow. Pointers are valid only during the callback. */
typedef struct {
    uint64_t ts_ns;       /* the pipeline time of the decision (the daemon: monotonic, made
                             wall time for the log line; replay: the capture's) */
    uint64_t held_ns;     /* how long the flow's first held packet waited (0: none held) */
    ei_addr src;          /* the client */
    ei_addr dst;
    uint16_t sport;       /* ICMP: the query's identifier */
    uint16_t dport;       /* ICMP: 0 */
    uint16_t target_port; /* the port a CONNECT or SOCKS request named, which the policy
                             judged instead of dport (the proxy's); 0: none */
    uint8_t proto;        /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, ... */
    ei_l7 l7;
    /* The name as the client sent it: normalized (lower-case, no trailing dot) when
     * host_valid, else the raw bytes. NULL when the flow carried none. */
    const char *host;
    size_t host_len;
    bool host_valid;
    const ei_workload *workload; /* the pod that sent it (NULL: no view, or none known) */
    ei_decision decision; /* what the policy says, whatever the mode */
    ei_mode mode;         /* the mode in effect: the daemon's, or monitor for a deny whose
                             every governing policy is in monitor mode */
    bool enforced;        /* false in monitor mode, and for allows */
    bool midstream;       /* the capture or queue began after the flow's SYN */
    bool bad_checksum;    /* a packet of the flow had a wrong checksum (EI_CHECKSUM_REPORT) */
    bool revoked;         /* an allowed flow denied later: the bytes the server was
                             about to read differ from those judged */
    /* Where the server's side of the connection stands, for a reset that it accepts
     * (RFC 5961 3.2: the sequence number it expects next, exactly): known once its SYN-ACK
     * was seen. server_rcv_nxt[1] differs when the server may or may not have taken the
     * bytes judged (a revoked flow): a reset for each. */
    bool server_known;
    uint32_t server_rcv_nxt[2];
    uint32_t server_snd_nxt;
    bool ech;
    uint16_t tls_version; /* highest offered (supported_versions, else legacy_version) */
    uint32_t quic_version;/* QUIC: the version of the client's Initials */
    ei_view alpn;         /* first ALPN protocol offered, len 0 if none */
} ei_flow_event;

typedef void (*ei_event_fn)(void *ctx, const ei_flow_event *event);
/* A held packet's final action: EI_ACTION_ALLOW, EI_ACTION_ACCEPT or EI_ACTION_DENY, or EI_ACTION_PASS for
 * a SYN held while a tcp:// entry's name was looked up, which turned out not to match. */
typedef void (*ei_release_fn)(void *ctx, uint64_t packet_id, ei_action action);

/* Upper bounds of the decision latency histogram, in nanoseconds: how long a flow's first
 * held packet waited for the verdict (0 for a flow decided on arrival). */
#define EI_LATENCY_BUCKETS 6
extern const uint64_t ei_latency_bounds_ns[EI_LATENCY_BUCKETS]; /* last: no bound (+Inf) */

/* Counters of everything the pipeline met, for logs and metrics. Monotonic unless
 * marked as a gauge. */
typedef struct {
    uint64_t packets;
    uint64_t packet_errors[EI_PKT_ERROR_COUNT];
    uint64_t packets_truncated;            /* cut short of their IP length (a capture's snap
                                              length): what is missing is never read */
    uint64_t actions[EI_ACTION_COUNT];
    uint64_t decisions[EI_REASON_COUNT];   /* by reason */
    uint64_t flows_created;
    uint64_t flows_midstream;
    uint64_t flows_evicted;
    uint64_t flows_expired;
    uint64_t flows;                        /* gauge */
    uint64_t held;                         /* gauge: packets waiting for a verdict */
    uint64_t released;
    uint64_t reassembling;                 /* gauge: flows with buffered bytes */
    uint64_t buffered_bytes;               /* gauge */
    uint64_t buffer_budget_exhausted;      /* a flow denied because all buffers were full */
    uint64_t out_of_memory;
    uint64_t latency_buckets[EI_LATENCY_BUCKETS]; /* decisions by hold time, not cumulative */
    uint64_t latency_sum_ns;
    /* DNS */
    uint64_t dns_answers;                  /* answers to workloads read */
    uint64_t dns_malformed[EI_DNS_PROBLEM_COUNT]; /* passed on, nothing learned; [0] unused */
    uint64_t dns_tcp_split;                /* a TCP answer not whole in one segment */
    uint64_t dns_names_learned;            /* (workload, name) bindings recorded */
    uint64_t dns_lookups;                  /* lookups asked of the caller */
    uint64_t dns_waiting;                  /* gauge: flows waiting for a lookup */
    uint64_t dns_wait_limit;               /* flows denied because too many waited */
    uint64_t dest_checks[3];               /* by ei_bind: unknown, mismatch, match */
    uint64_t dns_queries;                  /* workloads' questions seen */
    uint64_t dns_unnamed;                  /* answers from a resolver not named: unread */
    uint64_t dns_unasked;                  /* answers to no question seen: unread */
    uint64_t dns_queries_forgotten;        /* questions pushed out before their answer */
    /* the stream the server reads */
    uint64_t bad_checksums;                /* packets that matter with a wrong checksum */
    uint64_t flows_confirmed;              /* allowed flows whose judged bytes the server
                                              acknowledged */
    uint64_t flows_revoked;                /* allowed flows denied after their verdict */
    uint64_t confirming;                   /* gauge: allowed flows awaiting that ack */
    /* the pod view */
    uint64_t workload_waiting;             /* gauge: flows held until the view knows their pod */
    uint64_t workload_waits;               /* flows that waited */
    uint64_t workload_wait_found;          /* ... and whose pod the view then knew */
    uint64_t workload_wait_timeout;        /* ... and whose pod it still did not know */
    uint64_t workload_wait_limit;          /* denied at once: too many waited already */
    uint64_t denies_monitored[2];          /* denies logged, not enforced: [0] the daemon's
                                              monitor mode, [1] their policies' */
} ei_counters;

/* Adds every counter (and gauge) of c to sum: the node's totals from its queues'. */
void ei_counters_add(ei_counters *sum, const ei_counters *c);

typedef struct ei_pipeline ei_pipeline;

/* NULL when memory runs out. policy must outlive its use (see ei_pipeline_set_policy). */
EI_MUST_USE ei_pipeline *ei_pipeline_new(const ei_pipeline_config *cfg,
                                         const ei_policy_set *policy, ei_mode mode,
                                         ei_event_fn on_event, ei_release_fn on_release,
                                         void *ctx);

/* Releases every held packet (as denied, reason shutdown) through the callbacks, then
 * frees the pipeline. */
void ei_pipeline_free(ei_pipeline *p, uint64_t now_ns);

/* Flows decided from now on use this policy (or mode); TCP connections decided earlier
 * keep their verdict, and the exchanges that are not TCP (UDP, ICMP, ...) are judged
 * afresh at their next packet. The caller keeps the old set alive until this returns. */
void ei_pipeline_set_policy(ei_pipeline *p, const ei_policy_set *policy);
void ei_pipeline_set_mode(ei_pipeline *p, ei_mode mode);

/* The pod view flows are judged with from now on (NULL: none; policies that select by
 * labels then select nothing). The caller keeps it alive until the next call returns.
 * Flows that waited for their pod and the view now knows are judged at once. */
void ei_pipeline_set_workloads(ei_pipeline *p, const ei_workloads *view, uint64_t now_ns);

/* Asks the caller to look name up; the answer goes into the cache, then the caller calls
 * ei_pipeline_dns_done. Called at most once per waiting flow, never re-entrantly. */
typedef void (*ei_lookup_fn)(void *ctx, const char *name);

/* The cache that binds names to addresses (shared, outliving the pipeline), and the
 * lookup callback (NULL: no lookups, as in replay). Without a cache, dest_check denies
 * every flow allowed by name (dns_unresolved). */
void ei_pipeline_set_dns(ei_pipeline *p, ei_dns_cache *cache, ei_lookup_fn on_lookup);

/* A lookup asked through on_lookup has ended, answered (the caller has told the cache
 * what the name has, possibly nothing) or not. Decides the flows that waited for it: a
 * name still bound to nothing is denied (dns_failed). */
void ei_pipeline_dns_done(ei_pipeline *p, const char *name, uint64_t now_ns);

/* What the door knows of a packet beyond its bytes. */
enum {
    EI_PKT_CSUM_LATER = 0x01, /* the kernel left its TCP/UDP checksum to the network card
                                 (NFQA_SKB_CSUMNOTREADY): the field is not final, and the
                                 card fills it in right; only the IPv4 header is checked */
};

/* Judges one packet. packet_id names it in a later on_release when the answer is HOLD.
 * info: EI_PKT_* bits. */
EI_MUST_USE ei_action ei_pipeline_packet(ei_pipeline *p, int linktype, const uint8_t *data, size_t len,
                                         uint64_t now_ns, uint64_t packet_id, unsigned info);

/* Ages flows: undecided ones idle past their timeout are decided (incomplete, their held
 * packets released), decided ones are forgotten, and flows that waited for a lookup past
 * dns_timeout_ns are decided (dns_timeout). Cheap to call often. */
void ei_pipeline_expire(ei_pipeline *p, uint64_t now_ns);

/* Decides every undecided flow that sent data, with `reason` (incomplete at the end of
 * a capture, shutdown when the daemon stops), and releases every held packet. */
void ei_pipeline_flush(ei_pipeline *p, uint64_t now_ns, ei_reason reason);

const ei_counters *ei_pipeline_counters(const ei_pipeline *p);

#endif
