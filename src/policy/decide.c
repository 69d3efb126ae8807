/* The one decision every mode shares. */
#include "egress_inspector/policy.h"

const char *ei_l7_name(ei_l7 l7)
{
    switch (l7) {
    case EI_L7_TLS: return "tls";
    case EI_L7_HTTP: return "http";
    case EI_L7_SOCKS: return "socks";
    case EI_L7_NONE: break;
    }
    return "none";
}

ei_decision ei_decide(const ei_flow_facts *facts, const ei_policy_set *set)
{
    ei_decision d = { EI_VERDICT_DENY, EI_REASON_NONE, ei_policy_for_source(set, &facts->src),
                      { NULL, 0 } };
    d.match = ei_policy_match_address(d.policy, &facts->dst, facts->dport);
    if (d.match.rule != NULL) {
        d.verdict = EI_VERDICT_ALLOW;
        d.reason = EI_REASON_ALLOWED_ADDRESS;
    } else if (!facts->have_message) {
        d.verdict = EI_VERDICT_PENDING;
    } else if (facts->problem != EI_REASON_NONE) {
        d.reason = facts->problem;
    } else if (facts->host == NULL) {
        d.reason = facts->l7 == EI_L7_NONE ? EI_REASON_NOT_TLS_OR_HTTP : EI_REASON_NO_HOSTNAME;
    } else {
        d.match = ei_policy_match_name(d.policy, facts->host, facts->host_len, facts->dport);
        if (d.match.rule != NULL) {
            d.verdict = EI_VERDICT_ALLOW;
            d.reason = EI_REASON_ALLOWED_NAME;
        } else {
            d.reason = EI_REASON_NAME_NOT_ALLOWED;
        }
    }
    return d;
}
