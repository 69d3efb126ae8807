/* Lookups. None of them scans the allowlist: a hash probe per name or suffix, and a walk
 * of at most 32 or 128 trie nodes per address. */
#include <string.h>

#include "policy/policy_impl.h"

static uint32_t hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a: keys are operator-written names, not attacker-chosen */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

const ei_port_list *ei_name_map_get(const ei_name_map *map, const char *key, size_t len)
{
    if (map->count == 0)
        return NULL;
    for (uint32_t i = hash_name(key, len) & map->mask;; i = (i + 1) & map->mask) {
        const ei_name_slot *s = &map->slots[i];
        if (s->key == NULL)
            return NULL;
        if (strlen(s->key) == len && memcmp(s->key, key, len) == 0)
            return &s->ports;
    }
}

bool ei_port_list_matches(const ei_port_list *list, uint16_t port, bool unset_is_any,
                          uint32_t *rule)
{
    for (uint32_t i = 0; i < list->count; i++) {
        uint16_t p = list->items[i].port;
        if (p == port || (p == EI_PORT_UNSET && (unset_is_any || port == 443 || port == 80))) {
            *rule = list->items[i].rule;
            return true;
        }
    }
    return false;
}

int32_t ei_trie_longest(const ei_trie *t, const uint8_t *addr, unsigned bits,
                        bool (*accept)(const void *ctx, int32_t value), const void *ctx)
{
    int32_t best = -1;
    if (t->count == 0)
        return best;
    uint32_t n = 0;
    for (unsigned depth = 0;; depth++) {
        int32_t v = t->nodes[n].value;
        if (v >= 0 && (accept == NULL || accept(ctx, v)))
            best = v;
        if (depth == bits)
            break;
        unsigned bit = addr[depth / 8] >> (7 - depth % 8) & 1;
        n = t->nodes[n].child[bit];
        if (n == 0)
            break;
    }
    return best;
}

const ei_policy *ei_policy_for_source(const ei_policy_set *set, const ei_addr *src)
{
    int fam = src->family == 6 ? 1 : 0;
    int32_t i = ei_trie_longest(&set->sources[fam], src->bytes, fam ? 128 : 32, NULL, NULL);
    return &set->policies[i >= 0 ? (size_t)i : 0];
}

const char *ei_policy_name(const ei_policy *policy)
{
    return policy->name;
}

size_t ei_policy_set_policies(const ei_policy_set *set)
{
    return set->npolicies;
}

size_t ei_policy_set_entries(const ei_policy_set *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->npolicies; i++)
        n += set->policies[i].entries;
    return n;
}

static ei_match match_of(const ei_policy *policy, uint32_t rule)
{
    const ei_rule *r = &policy->set->rules[rule];
    ei_match m = { r->text, r->line };
    return m;
}

ei_match ei_policy_match_name(const ei_policy *policy, const char *name, size_t len,
                              uint16_t port)
{
    ei_match none = { NULL, 0 };
    uint32_t rule;
    const ei_port_list *ports = ei_name_map_get(&policy->exact, name, len);
    if (ports != NULL && ei_port_list_matches(ports, port, false, &rule))
        return match_of(policy, rule);
    if (policy->wildcard.count == 0)
        return none;
    /* Every proper suffix that starts after a dot, longest (closest) first: "a.b.c"
     * tries "b.c" then "c". The name itself is never tried: a wildcard excludes its apex. */
    for (size_t i = 0; i < len; i++) {
        if (name[i] != '.')
            continue;
        ports = ei_name_map_get(&policy->wildcard, name + i + 1, len - i - 1);
        if (ports != NULL && ei_port_list_matches(ports, port, false, &rule))
            return match_of(policy, rule);
    }
    return none;
}

typedef struct {
    const ei_policy *policy;
    uint16_t port;
} cidr_query;

static bool cidr_accepts(const void *ctx, int32_t value)
{
    const cidr_query *q = ctx;
    uint32_t rule;
    return ei_port_list_matches(&q->policy->cidr_ports[value], q->port, true, &rule);
}

ei_match ei_policy_match_address(const ei_policy *policy, const ei_addr *dst, uint16_t port)
{
    ei_match none = { NULL, 0 };
    int fam = dst->family == 6 ? 1 : 0;
    cidr_query q = { policy, port };
    int32_t v = ei_trie_longest(&policy->cidr[fam], dst->bytes, fam ? 128 : 32, cidr_accepts, &q);
    if (v < 0)
        return none;
    uint32_t rule = 0;
    (void)ei_port_list_matches(&policy->cidr_ports[v], port, true, &rule);
    return match_of(policy, rule);
}
