/* `explain` and `diff`: what the pipeline decides for one flow, asked by its facts
 * (source, name, port, destination) instead of a capture. The flow is made into packets
 * (a TCP handshake and a ClientHello, an HTTP request, or a proxy's CONNECT or SOCKS 5
 * request naming it; or a QUIC Initial in a UDP datagram) and run through the very
 * pipeline replay uses, so the answer is the pipeline's, not a second implementation's. */
#ifndef EI_IO_EXPLAIN_H
#define EI_IO_EXPLAIN_H

#include "egress_inspector/pipeline.h"
#include "io/jsonw.h"

typedef struct {
    ei_addr src;
    ei_addr dst;
    bool dst_given;       /* false: an address no address entry of the set covers */
    uint16_t port;
    ei_l7 l7;             /* EI_L7_TLS, EI_L7_HTTP or EI_L7_SOCKS over TCP; EI_L7_QUIC: a UDP
                             datagram, a QUIC v1 Initial (needs name); EI_L7_NONE: a SYN and
                             no data */
    const char *name;     /* NULL: the flow names nothing */
    uint16_t target_port; /* EI_L7_HTTP: a CONNECT to name:target_port (a proxy on port);
                             EI_L7_SOCKS: a SOCKS 5 CONNECT to it; 0: neither (TLS, or an
                             HTTP GET) */
} ei_explain_flow;

typedef struct {
    bool decided;
    char line[EI_JSONW_MAX]; /* the decision line, as replay prints it */
    ei_verdict verdict;
    ei_reason reason;
    char policy[256];
    char rule[512];          /* "" when no entry matched */
    unsigned rule_line;
    ei_mode mode;
    ei_addr dst;             /* the destination used */
} ei_explain_result;

/* Runs the flow through a fresh pipeline of cfg (capture mode: not live), policy set,
 * pod view (may be NULL) and DNS cache (may be NULL), in mode. false when memory runs
 * out or the name cannot be put in a packet. */
EI_MUST_USE bool ei_explain(const ei_pipeline_config *cfg, const ei_policy_set *set,
                            const ei_workloads *view, ei_dns_cache *dns, ei_mode mode,
                            const ei_explain_flow *flow, ei_explain_result *out);

#endif
