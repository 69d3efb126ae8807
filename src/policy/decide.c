/* The one decision every mode shares. */
#include "egress_inspector/policy.h"

const char *ei_l7_name(ei_l7 l7)
{
    switch (l7) {
    case EI_L7_TLS: return "tls";
    case EI_L7_HTTP: return "http";
    case EI_L7_SOCKS: return "socks";
    case EI_L7_QUIC: return "quic";
    case EI_L7_NONE: break;
    }
    return "none";
}

ei_decision ei_decide(const ei_flow_facts *facts, const ei_policy_set *set)
{
    ei_policy_iter it;
    ei_policy_iter_init(&it, set, &facts->src, facts->workload);
    const ei_policy *first = ei_policy_iter_next(&it); /* never NULL: default at least */
    ei_decision d = { EI_VERDICT_DENY, EI_REASON_NONE, first, { NULL, 0 }, false };
    if (facts->workload_unknown) {
        d.policy = ei_policy_for_source(set, &facts->src); /* "default": no source covers it */
        d.reason = EI_REASON_WORKLOAD_UNKNOWN;
        d.monitored = ei_policy_mode(d.policy) == EI_MODE_MONITOR;
        return d;
    }
    /* A deny is enforced when any governing policy is in enforce mode: a policy rolled
     * out in monitor mode never lifts what another one enforces. */
    if (ei_policy_set_has_monitor(set)) {
        d.monitored = true;
        for (const ei_policy *p = first; p != NULL; p = ei_policy_iter_next(&it))
            d.monitored &= ei_policy_mode(p) == EI_MODE_MONITOR;
        ei_policy_iter_rewind(&it);
        first = ei_policy_iter_next(&it);
    }
    /* What the governing policies allow adds up: the first entry that allows names its
     * policy; a deny names the first policy. */
    for (const ei_policy *p = first; p != NULL; p = ei_policy_iter_next(&it)) {
        d.match = ei_policy_match_address(p, &facts->dst, facts->dport);
        if (d.match.rule != NULL) {
            d.verdict = EI_VERDICT_ALLOW;
            d.reason = EI_REASON_ALLOWED_ADDRESS;
            d.policy = p;
            return d;
        }
    }
    if (!facts->have_message) {
        d.verdict = facts->uncovered != EI_REASON_NONE ? EI_VERDICT_DENY : EI_VERDICT_PENDING;
        d.reason = facts->uncovered;
    } else if (facts->problem != EI_REASON_NONE) {
        d.reason = facts->problem;
    } else if (facts->host == NULL) {
        d.reason = facts->l7 == EI_L7_NONE ? EI_REASON_NOT_TLS_OR_HTTP : EI_REASON_NO_HOSTNAME;
    } else {
        d.reason = EI_REASON_NAME_NOT_ALLOWED;
        ei_policy_iter_rewind(&it);
        for (const ei_policy *p; (p = ei_policy_iter_next(&it)) != NULL;) {
            d.match = ei_policy_match_name(p, facts->host, facts->host_len, facts->dport);
            if (d.match.rule != NULL) {
                d.verdict = EI_VERDICT_ALLOW;
                d.reason = EI_REASON_ALLOWED_NAME;
                d.policy = p;
                break;
            }
        }
    }
    return d;
}

ei_decision ei_bind_destination(ei_decision d, const ei_flow_facts *facts, const ei_bind_facts *b,
                                ei_wait *wait, bool *wait_refused)
{
    *wait = EI_WAIT_NONE;
    *wait_refused = false;
    bool may_wait = b->unknown == EI_REASON_NONE && b->lookups;
    if (d.verdict != EI_VERDICT_ALLOW && facts->problem == EI_REASON_NONE) {
        if (b->tcp == EI_BIND_YES) {
            d.verdict = EI_VERDICT_ALLOW;
            d.reason = EI_REASON_ALLOWED_TCP_NAME;
            d.match = b->tcp_match;
            return d;
        }
        if (b->tcp == EI_BIND_UNKNOWN && may_wait && !facts->have_message) {
            if (b->wait_room) {
                *wait = EI_WAIT_TCP_NAME;
                return d;
            }
            *wait_refused = true; /* the SYN goes on as address entries judged it */
        }
    }
    if (d.verdict != EI_VERDICT_ALLOW || d.reason != EI_REASON_ALLOWED_NAME || !b->dest_check)
        return d;
    switch (b->dest) {
    case EI_BIND_YES:
        return d;
    case EI_BIND_NO:
        d.verdict = EI_VERDICT_DENY;
        d.reason = facts->l7 == EI_L7_TLS || facts->l7 == EI_L7_QUIC ? EI_REASON_SNI_IP_MISMATCH
                                                                     : EI_REASON_HOST_IP_MISMATCH;
        return d;
    case EI_BIND_UNKNOWN:
    default:
        if (may_wait && b->wait_room) {
            *wait = EI_WAIT_NAME;
            return d;
        }
        d.verdict = EI_VERDICT_DENY;
        if (may_wait) {
            *wait_refused = true;
            d.reason = EI_REASON_HELD_LIMIT;
        } else {
            d.reason = b->unknown != EI_REASON_NONE ? b->unknown : EI_REASON_DNS_UNRESOLVED;
        }
        return d;
    }
}
