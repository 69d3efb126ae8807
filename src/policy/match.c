/* The lookup structures and every lookup. None of them scans the allowlist: one hash
 * probe for an exact name, one per label for wildcards, one per prefix length in use for
 * addresses, and a binary search among the explicit ports of the key that matched. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_impl.h"

enum {
    PREFIX_KEY_MAX = 1 + 16, /* length byte, then the masked address */
};

/* ---- port lists ---- */

static bool ports_add(ei_ports *ps, uint16_t port, uint32_t rule)
{
    if (port == EI_PORT_UNSET) {
        if (ps->default_rule == EI_NO_RULE) /* of identical entries, the first one stands */
            ps->default_rule = rule;
        return true;
    }
    ei_port_rule *items = ei_grow32(ps->items, sizeof *items, ps->count, &ps->cap, 2);
    if (items == NULL)
        return false;
    ps->items = items;
    ps->items[ps->count].port = port;
    ps->items[ps->count].rule = rule;
    ps->count++;
    return true;
}

static int compare_port_rule(const void *a, const void *b)
{
    const ei_port_rule *x = a, *y = b;
    if (x->port != y->port)
        return x->port < y->port ? -1 : 1;
    return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Sorting once here keeps inserts O(1) while the file is read; a key with thousands of
 * ports would otherwise cost a quadratic number of moves. */
static void ports_seal(ei_ports *ps)
{
    if (ps->count < 2)
        return;
    qsort(ps->items, ps->count, sizeof ps->items[0], compare_port_rule);
    uint32_t kept = 1;
    for (uint32_t i = 1; i < ps->count; i++)
        if (ps->items[i].port != ps->items[kept - 1].port)
            ps->items[kept++] = ps->items[i];
    ps->count = kept;
}

/* The entry that allows port, or EI_NO_RULE. An entry naming the port is reported before
 * one written without a port: it is the more specific of the two. */
static uint32_t ports_find(const ei_ports *ps, uint16_t port, bool unset_is_any)
{
    uint32_t lo = 0, hi = ps->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ps->items[mid].port == port)
            return ps->items[mid].rule;
        if (ps->items[mid].port < port)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (ps->default_rule != EI_NO_RULE && (unset_is_any || port == 443 || port == 80))
        return ps->default_rule;
    return EI_NO_RULE;
}

/* The policy's port list for slot, appended when the slot is new. */
static ei_ports *policy_ports(ei_policy *p, ei_slot *slot)
{
    if (slot->value != EI_NO_VALUE)
        return &p->ports[slot->value];
    ei_ports *ports = ei_grow32(p->ports, sizeof *ports, p->nports, &p->capports, 16);
    if (ports == NULL)
        return NULL;
    p->ports = ports;
    ei_ports *ps = &p->ports[p->nports];
    memset(ps, 0, sizeof *ps);
    ps->default_rule = EI_NO_RULE;
    slot->value = p->nports++;
    return ps;
}

/* ---- prefixes ---- */

static unsigned family_bits(const ei_addr *a)
{
    return a->family == 6 ? 128 : 32;
}

/* The same key for every address inside addr/bits. */
static size_t prefix_key(const ei_addr *a, unsigned bits, uint8_t key[PREFIX_KEY_MAX])
{
    unsigned nbytes = family_bits(a) / 8;
    key[0] = (uint8_t)bits;
    for (unsigned i = 0; i < nbytes; i++) {
        unsigned keep = bits > i * 8 ? bits - i * 8 : 0;
        uint8_t mask = (uint8_t)(keep >= 8 ? 0xffu : 0xff00u >> keep);
        key[1 + i] = a->bytes[i] & mask;
    }
    return 1 + nbytes;
}

static ei_slot *prefixes_put(ei_prefixes *px, const ei_addr *a, unsigned bits)
{
    uint8_t key[PREFIX_KEY_MAX];
    size_t len = prefix_key(a, bits, key);
    ei_slot *s = ei_map_put(&px->map, key, len);
    if (s != NULL)
        px->lengths[bits / 64] |= UINT64_C(1) << (bits % 64);
    return s;
}

/* The longest prefix length in use that is at most `from`, or -1: longest-prefix
 * lookups probe only the lengths some entry has, not all 33 or 129. */
static int length_at_most(const ei_prefixes *px, int from)
{
    if (from < 0)
        return -1;
    for (int word = from / 64; word >= 0; word--) {
        uint64_t set = px->lengths[word];
        if (word == from / 64 && from % 64 != 63)
            set &= (UINT64_C(1) << (from % 64 + 1)) - 1;
        if (set != 0)
            return word * 64 + 63 - __builtin_clzll(set);
    }
    return -1;
}

static const ei_slot *prefixes_at(const ei_prefixes *px, const ei_addr *a, unsigned bits)
{
    uint8_t key[PREFIX_KEY_MAX];
    size_t len = prefix_key(a, bits, key);
    return ei_map_find(&px->map, key, len, ei_map_hash(key, len));
}

/* ---- building ---- */

bool ei_policy_add_name(ei_policy *policy, bool wildcard, const char *name, size_t len,
                        uint16_t port, uint32_t rule)
{
    ei_slot *s = ei_map_put(wildcard ? &policy->wildcard : &policy->exact, (const uint8_t *)name, len);
    ei_ports *ps = s != NULL ? policy_ports(policy, s) : NULL;
    return ps != NULL && ports_add(ps, port, rule);
}

bool ei_policy_add_tcp_name(ei_policy *policy, bool wildcard, const char *name, size_t len,
                            uint16_t port, uint32_t rule)
{
    ei_slot *s = ei_map_put(wildcard ? &policy->tcp_wildcard : &policy->tcp_exact,
                         (const uint8_t *)name, len);
    ei_ports *ps = s != NULL ? policy_ports(policy, s) : NULL;
    if (ps == NULL || !ports_add(ps, port, rule))
        return false;
    if (wildcard)
        return true;
    ei_tcp_name *names = ei_grow32(policy->tcp_names, sizeof *names, policy->ntcp_names,
                                   &policy->captcp_names, 8);
    if (names == NULL)
        return false;
    policy->tcp_names = names;
    char *copy = strndup(name, len);
    if (copy == NULL)
        return false;
    policy->tcp_names[policy->ntcp_names].name = copy;
    policy->tcp_names[policy->ntcp_names++].port = port;
    return true;
}

bool ei_policy_add_prefix(ei_policy *policy, const ei_addr *addr, unsigned bits, uint16_t port,
                          uint32_t rule)
{
    ei_slot *s = prefixes_put(&policy->cidr[addr->family == 6], addr, bits);
    ei_ports *ps = s != NULL ? policy_ports(policy, s) : NULL;
    return ps != NULL && ports_add(ps, port, rule);
}

bool ei_policy_set_add_source(ei_policy_set *set, const ei_addr *addr, unsigned bits,
                              uint32_t policy, uint32_t *owner)
{
    ei_slot *s = prefixes_put(&set->sources[addr->family == 6], addr, bits);
    if (s == NULL)
        return false;
    if (s->value == EI_NO_VALUE)
        s->value = policy;
    *owner = s->value;
    return true;
}

void ei_policy_set_seal(ei_policy_set *set)
{
    for (size_t i = 0; i < set->npolicies; i++)
        for (uint32_t j = 0; j < set->policies[i].nports; j++)
            ports_seal(&set->policies[i].ports[j]);
}

void ei_policy_set_free(ei_policy_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->npolicies; i++) {
        ei_policy *p = &set->policies[i];
        free(p->name);
        ei_map_free(&p->exact);
        ei_map_free(&p->wildcard);
        ei_map_free(&p->cidr[0].map);
        ei_map_free(&p->cidr[1].map);
        ei_map_free(&p->tcp_exact);
        ei_map_free(&p->tcp_wildcard);
        for (uint32_t j = 0; j < p->ntcp_names; j++)
            free(p->tcp_names[j].name);
        free(p->tcp_names);
        for (uint32_t j = 0; j < p->nports; j++)
            free(p->ports[j].items);
        free(p->ports);
        ei_selector_free(p->namespaces);
        ei_selector_free(p->pods);
    }
    free(set->policies);
    free(set->selecting);
    ei_map_free(&set->sources[0].map);
    ei_map_free(&set->sources[1].map);
    for (size_t i = 0; i < set->nrules; i++) {
        free(set->rules[i].text);
        free(set->rules[i].key);
    }
    free(set->rules);
    free(set);
}

/* ---- lookups ---- */

size_t ei_policy_set_policies(const ei_policy_set *set)
{
    return set->npolicies;
}

size_t ei_policy_set_entries(const ei_policy_set *set)
{
    return set->entries;
}

const char *ei_policy_name(const ei_policy *policy)
{
    return policy->name;
}

const ei_policy *ei_policy_for_source(const ei_policy_set *set, const ei_addr *src)
{
    const ei_prefixes *px = &set->sources[src->family == 6];
    for (int bits = length_at_most(px, (int)family_bits(src)); bits >= 0;
         bits = length_at_most(px, bits - 1)) {
        const ei_slot *s = prefixes_at(px, src, (unsigned)bits);
        if (s != NULL)
            return &set->policies[s->value];
    }
    return &set->policies[0];
}

bool ei_policy_set_any_address(const ei_policy_set *set, const ei_addr *dst, uint16_t port)
{
    for (size_t i = 0; i < set->npolicies; i++)
        if (ei_policy_match_address(&set->policies[i], dst, port).rule != NULL)
            return true;
    return false;
}

ei_mode ei_policy_mode(const ei_policy *policy)
{
    return policy->mode;
}

bool ei_policy_set_has_monitor(const ei_policy_set *set)
{
    return set->any_monitor;
}

bool ei_policy_set_covers_source(const ei_policy_set *set, const ei_addr *src)
{
    return ei_policy_for_source(set, src) != &set->policies[0];
}

bool ei_policy_set_selects(const ei_policy_set *set)
{
    return set->nselecting > 0;
}

const char *ei_policy_set_first_selecting(const ei_policy_set *set)
{
    return set->nselecting > 0 ? set->policies[set->selecting[0]].name : NULL;
}

static bool selects(const ei_policy *p, const ei_workload *wl)
{
    return (p->namespaces == NULL || ei_selector_matches(p->namespaces, wl->ns_labels, wl->nns_labels)) &&
           (p->pods == NULL || ei_selector_matches(p->pods, wl->labels, wl->nlabels));
}

void ei_policy_iter_init(ei_policy_iter *it, const ei_policy_set *set, const ei_addr *src,
                         const ei_workload *wl)
{
    const ei_policy *owner = ei_policy_for_source(set, src);
    *it = (ei_policy_iter){ .set = set, .wl = wl, .owner = owner != &set->policies[0] ? owner : NULL };
}

void ei_policy_iter_rewind(ei_policy_iter *it)
{
    it->next = 0;
    it->started = it->any = false;
}

const ei_policy *ei_policy_iter_next(ei_policy_iter *it)
{
    if (!it->started) {
        it->started = true;
        if (it->owner != NULL) {
            it->any = true;
            return it->owner;
        }
    }
    while (it->wl != NULL && it->next < it->set->nselecting) {
        const ei_policy *p = &it->set->policies[it->set->selecting[it->next++]];
        if (p != it->owner && selects(p, it->wl)) {
            it->any = true;
            return p;
        }
    }
    if (!it->any) { /* governed by nothing: the default policy, once */
        it->any = true;
        return &it->set->policies[0];
    }
    return NULL;
}

bool ei_policy_set_label_rules(ei_policy_set *set, ei_rule_label_fn fn, void *ctx)
{
    for (size_t i = 0; i < set->nrules; i++) {
        unsigned line = set->rules[i].line;
        const char *text = fn(ctx, set->rules[i].line, &line);
        set->rules[i].line = line;
        if (text == NULL)
            continue;
        char *copy = strdup(text);
        if (copy == NULL)
            return false;
        free(set->rules[i].text);
        set->rules[i].text = copy;
    }
    return true;
}

static ei_match match_of(const ei_policy *policy, uint32_t rule)
{
    ei_match m = { NULL, 0 };
    if (rule != EI_NO_RULE) {
        m.rule = policy->set->rules[rule].text;
        m.line = policy->set->rules[rule].line;
    }
    return m;
}

/* Entries add up: an exact entry on other ports hides no wildcard, and a closer wildcard
 * on other ports hides no farther one. Precedence only chooses which entry is reported. */
static ei_match match_name_in(const ei_policy *policy, const ei_map *exact,
                              const ei_map *wildcard, const char *name, size_t len,
                              uint16_t port)
{
    const uint8_t *n = (const uint8_t *)name;
    const ei_slot *s = ei_map_find(exact, n, len, ei_map_hash(n, len));
    uint32_t rule = s != NULL ? ports_find(&policy->ports[s->value], port, false) : EI_NO_RULE;
    if (rule != EI_NO_RULE || wildcard->count == 0)
        return match_of(policy, rule);
    /* From the right, label by label: at each dot, h is the hash of the suffix after it.
     * The name itself is never looked up, since a wildcard excludes its apex; a later
     * (longer, closer) suffix replaces an earlier one. */
    uint64_t h = EI_HASH_BASIS;
    for (size_t i = len; i-- > 0;) {
        if (n[i] == '.') {
            s = ei_map_find(wildcard, n + i + 1, len - i - 1, ei_hash_fold(h));
            uint32_t r = s != NULL ? ports_find(&policy->ports[s->value], port, false) : EI_NO_RULE;
            if (r != EI_NO_RULE)
                rule = r;
        }
        h = ei_hash_byte(h, n[i]);
    }
    return match_of(policy, rule);
}

ei_match ei_policy_match_name(const ei_policy *policy, const char *name, size_t len,
                              uint16_t port)
{
    return match_name_in(policy, &policy->exact, &policy->wildcard, name, len, port);
}

ei_match ei_policy_match_tcp_name(const ei_policy *policy, const char *name, size_t len,
                                  uint16_t port)
{
    return match_name_in(policy, &policy->tcp_exact, &policy->tcp_wildcard, name, len, port);
}

bool ei_policy_has_tcp_entries(const ei_policy *policy)
{
    return policy->tcp_exact.count + policy->tcp_wildcard.count > 0;
}

size_t ei_policy_tcp_names(const ei_policy *policy, uint16_t port, const char **out, size_t max)
{
    size_t n = 0;
    for (uint32_t i = 0; i < policy->ntcp_names && n < max; i++)
        if (policy->tcp_names[i].port == port)
            out[n++] = policy->tcp_names[i].name;
    return n;
}

void ei_policy_set_each_tcp_name(const ei_policy_set *set, ei_tcp_name_fn fn, void *ctx)
{
    for (size_t p = 0; p < set->npolicies; p++)
        for (uint32_t i = 0; i < set->policies[p].ntcp_names; i++)
            fn(ctx, set->policies[p].tcp_names[i].name);
}

ei_match ei_policy_match_address(const ei_policy *policy, const ei_addr *dst, uint16_t port)
{
    const ei_prefixes *px = &policy->cidr[dst->family == 6];
    for (int bits = length_at_most(px, (int)family_bits(dst)); bits >= 0;
         bits = length_at_most(px, bits - 1)) {
        const ei_slot *s = prefixes_at(px, dst, (unsigned)bits);
        uint32_t rule = s != NULL ? ports_find(&policy->ports[s->value], port, true) : EI_NO_RULE;
        if (rule != EI_NO_RULE)
            return match_of(policy, rule);
    }
    return match_of(policy, EI_NO_RULE);
}
