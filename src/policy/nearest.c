/* The entries nearest to allowing a denied flow, for `explain`: each entry of the set is
 * compared with what the flow asked (its name, port, destination) and the policies that
 * govern its workload. Linear in the entries; explain asks once, never the packet path. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_impl.h"

const char *ei_near_why_name(ei_near_why why)
{
    switch (why) {
    case EI_NEAR_OTHER_PORT: return "other_port";
    case EI_NEAR_APEX: return "wildcard_not_apex";
    case EI_NEAR_OTHER_POLICY: return "other_policy";
    case EI_NEAR_SIBLING: return "other_name";
    case EI_NEAR_TCP_ONLY: return "tcp_entry";
    }
    return "?";
}

static bool on_port(const ei_rule *r, uint16_t port, bool name)
{
    if (r->port == EI_PORT_UNSET)
        return !name || port == 443 || port == 80;
    return r->port == port;
}

/* Labels that a and b share, counted from the right. */
static unsigned shared_labels(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned n = 0;
    while (la > 0 && lb > 0 && a[la - 1] == b[lb - 1]) {
        la--, lb--;
        if ((la == 0 || a[la - 1] == '.') && (lb == 0 || b[lb - 1] == '.'))
            n++;
    }
    return n;
}

static bool below(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n > s + 1 && name[n - s - 1] == '.' && strcmp(name + n - s, suffix) == 0;
}

static bool in_prefix(const ei_rule *r, const ei_addr *a)
{
    if (r->addr.family != a->family)
        return false;
    ei_addr x = *a;
    ei_addr_clear_host_bits(&x, r->bits);
    return memcmp(x.bytes, r->addr.bytes, 16) == 0;
}

/* Why r did not allow the flow, or false when it is not near at all. */
static bool near_why(const ei_rule *r, const ei_flow_facts *f, bool dst_known, bool governs,
                     ei_near_why *why, unsigned *closeness)
{
    const char *host = f->host;
    *closeness = 0;
    switch ((ei_rule_kind)r->kind) {
    case EI_RULE_ADDRESS:
        if (!dst_known || !in_prefix(r, &f->dst))
            return false;
        *why = !governs ? EI_NEAR_OTHER_POLICY : EI_NEAR_OTHER_PORT;
        return !governs || !on_port(r, f->dport, false);
    case EI_RULE_TCP:
    case EI_RULE_TCP_WILDCARD:
        if (host == NULL || (strcmp(r->key, host) != 0 && !(r->kind == EI_RULE_TCP_WILDCARD && below(host, r->key))))
            return false;
        *why = EI_NEAR_TCP_ONLY;
        return true;
    case EI_RULE_NAME:
    case EI_RULE_WILDCARD:
        break;
    }
    if (host == NULL)
        return false;
    bool wildcard = r->kind == EI_RULE_WILDCARD;
    if (wildcard && strcmp(r->key, host) == 0) {
        *why = EI_NEAR_APEX;
        return true;
    }
    if (wildcard ? below(host, r->key) : strcmp(r->key, host) == 0) {
        *why = !governs ? EI_NEAR_OTHER_POLICY : EI_NEAR_OTHER_PORT;
        return !governs || !on_port(r, f->dport, true);
    }
    if (!governs)
        return false;
    *closeness = shared_labels(r->key, host);
    *why = EI_NEAR_SIBLING;
    return *closeness >= 2; /* at least the same registrable-looking parent */
}

static int by_rank(const void *a, const void *b)
{
    const ei_near *x = a, *y = b;
    if (x->why != y->why)
        return (int)x->why - (int)y->why;
    if (x->closeness != y->closeness)
        return x->closeness > y->closeness ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

size_t ei_policy_nearest(const ei_policy_set *set, const ei_flow_facts *facts, bool dst_known,
                         ei_near *out, size_t max)
{
    bool *governs = calloc(set->npolicies + 1, sizeof *governs);
    ei_near *all = calloc(set->nrules + 1, sizeof *all);
    if (governs == NULL || all == NULL) {
        free(governs);
        free(all);
        return 0;
    }
    ei_policy_iter it;
    ei_policy_iter_init(&it, set, &facts->src, facts->workload);
    for (const ei_policy *p; (p = ei_policy_iter_next(&it)) != NULL;)
        governs[p - set->policies] = true;
    size_t n = 0;
    for (size_t i = 0; i < set->nrules; i++) {
        const ei_rule *r = &set->rules[i];
        ei_near_why why;
        unsigned closeness;
        if (r->policy >= set->npolicies ||
            !near_why(r, facts, dst_known, governs[r->policy], &why, &closeness))
            continue;
        all[n++] = (ei_near){ r->text, r->line, &set->policies[r->policy], why, r->port, closeness };
    }
    qsort(all, n, sizeof *all, by_rank);
    size_t kept = n < max ? n : max;
    memcpy(out, all, kept * sizeof *all);
    free(governs);
    free(all);
    return kept;
}
