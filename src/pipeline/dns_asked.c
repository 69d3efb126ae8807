/* The questions workloads asked, so that only answers to them teach bindings.
 *
 * An answer that nobody asked for (sent to a pod by any host, from port 53) or that claims
 * a resolver's address but answers another question must teach nothing: otherwise a pod,
 * or a confederate on the internet, could bind any name to any address. A question is
 * kept, by the hash of its workload, ports, resolver and id, in a table of ASKED slots;
 * a newer question that lands in a taken slot pushes the older one out (counted): the
 * older one's answer then teaches nothing, which costs a lookup of the inspector's own,
 * never a wrong binding. Questions older than ASKED_FOR_NS are forgotten. */
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/dns.h"
#include "pipeline/internal.h"

enum { ASKED = 4096 }; /* a power of two */
#define ASKED_FOR_NS (10ull * 1000000000ull)

struct pl_asked {
    bool open;
    uint16_t workload_port, resolver_port, id, qtype;
    ei_addr workload, resolver;
    uint64_t asked_ns;
    char name[EI_NAME_MAX + 1];
};

bool pl_asked_init(ei_pipeline *p)
{
    p->asked = calloc(ASKED, sizeof *p->asked);
    return p->asked != NULL;
}

void pl_asked_free(ei_pipeline *p)
{
    free(p->asked);
    p->asked = NULL;
}

static struct pl_asked *slot(ei_pipeline *p, const ei_addr *workload, uint16_t wport,
                             const ei_addr *resolver, uint16_t id)
{
    uint64_t h = ei_hash_bytes(p->cfg.hash_seed ^ ((uint64_t)wport << 16 | id), workload->bytes, 16);
    h = ei_hash_bytes(h, resolver->bytes, 16);
    return &p->asked[h & (ASKED - 1)];
}

/* The question in a query from a workload (to port 53), or false. */
static bool query_of(const ei_packet *pkt, ei_dns_query *q)
{
    ei_view msg = pkt->payload;
    if (pkt->l4 == 6 && ei_dns_tcp_message(pkt->payload, &msg) != EI_PARSE_OK)
        return false;
    return ei_dns_parse_query(msg.ptr, msg.len, q) == EI_PARSE_OK;
}

void pl_note_query(ei_pipeline *p, const ei_packet *pkt, uint64_t now_ns)
{
    ei_dns_query q;
    if (p->asked == NULL || !query_of(pkt, &q))
        return;
    p->count.dns_queries++;
    struct pl_asked *s = slot(p, &pkt->src, pkt->sport, &pkt->dst, q.id);
    if (s->open && now_ns - s->asked_ns < ASKED_FOR_NS)
        p->count.dns_queries_forgotten++;
    *s = (struct pl_asked){ .open = true, .workload_port = pkt->sport, .resolver_port = pkt->dport,
                            .id = q.id, .qtype = q.qtype, .workload = pkt->src,
                            .resolver = pkt->dst, .asked_ns = now_ns };
    memcpy(s->name, q.name, sizeof s->name);
}

bool pl_was_asked(ei_pipeline *p, const ei_packet *pkt, const ei_dns_answer *a, uint64_t now_ns)
{
    if (p->asked == NULL)
        return true;
    struct pl_asked *s = slot(p, &pkt->dst, pkt->dport, &pkt->src, a->id);
    bool match = s->open && now_ns - s->asked_ns < ASKED_FOR_NS && s->id == a->id &&
                 s->workload_port == pkt->dport && s->resolver_port == pkt->sport &&
                 s->qtype == a->qtype && ei_addr_equal(&s->workload, &pkt->dst) &&
                 ei_addr_equal(&s->resolver, &pkt->src) && strcmp(s->name, a->chain[0]) == 0;
    if (match)
        s->open = false; /* one question teaches once */
    return match;
}

bool pl_named_resolver(const ei_pipeline *p, const ei_addr *from)
{
    /* Live, the node rules queue only the questions and answers of conntrack entries
     * whose original destination is a named resolver: a packet's own address cannot say,
     * since a DNAT in front of the resolver (the cluster DNS service) shows the resolver
     * pod's address at FORWARD. An answer must still match a question so queued. */
    if (p->cfg.live || p->cfg.ndns_from == 0)
        return true;
    for (uint8_t i = 0; i < p->cfg.ndns_from; i++) {
        ei_addr a = *from;
        if (a.family != p->cfg.dns_from[i].family)
            continue;
        ei_addr_clear_host_bits(&a, p->cfg.dns_from_bits[i]);
        if (ei_addr_equal(&a, &p->cfg.dns_from[i]))
            return true;
    }
    return false;
}
