/* The node rules that send workload traffic to the queues and act on the marks. */
#ifndef EI_CLI_IPTABLES_H
#define EI_CLI_IPTABLES_H

#include <stdio.h>

#include "egress_inspector/common.h"

#define EI_IPTABLES_MAX_SELECTORS 32

typedef struct {
    uint16_t queue_first;
    uint16_t queue_last;
    bool fail_open;           /* --queue-bypass: traffic passes when no daemon listens */
    uint32_t mark_allow;
    uint32_t mark_deny;
    const char *sources[EI_IPTABLES_MAX_SELECTORS];
    size_t nsources;
    const char *iifaces[EI_IPTABLES_MAX_SELECTORS];
    size_t niifaces;
    bool hook_forward;
    bool hook_output;
    const char *ports;        /* multiport list, e.g. "80,443"; NULL: every TCP port */
    bool coverage_inspected;  /* --coverage inspected: queue only TCP to the ports */
    bool quic_inspect;        /* --quic inspect: UDP 443 queued (as coverage all does too) */
    int32_t dns_queue;        /* DNS answers to workloads go there; < 0: not queued */
    const char *dns_from[EI_IPTABLES_MAX_SELECTORS]; /* named resolvers (CIDRs); none: any */
    size_t ndns_from;
} ei_iptables_options;

/* Writes the rules (IPv4 then IPv6) in iptables-restore format. */
void ei_iptables_print(FILE *f, const ei_iptables_options *o);

/* Installs the rules (idempotent: a second apply replaces the first). 0 on success. */
EI_MUST_USE int ei_iptables_apply(const ei_iptables_options *o);

/* Removes our chains and the jumps to them, and nothing else. */
EI_MUST_USE int ei_iptables_remove(void);

#endif
