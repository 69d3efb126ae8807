/* Inside a policy set. Private to src/policy. */
#ifndef EI_POLICY_IMPL_H
#define EI_POLICY_IMPL_H

#include "egress_inspector/policy.h"

/* An entry written without a port: for a name, ports 443 and 80; for a CIDR, any port. */
#define EI_PORT_UNSET 0

typedef struct {
    uint16_t port;  /* EI_PORT_UNSET or one port */
    uint32_t rule;  /* index into the set's rules */
} ei_port_rule;

/* The ports an allowlist key (a name, a wildcard suffix, a prefix) is allowed on. */
typedef struct {
    ei_port_rule *items;
    uint32_t count;
    uint32_t cap;
} ei_port_list;

/* Open-addressing hash map: normalized name -> port list. */
typedef struct {
    char *key;
    ei_port_list ports;
} ei_name_slot;

typedef struct {
    ei_name_slot *slots;
    uint32_t mask;   /* slots - 1; a power of two minus one */
    uint32_t count;
} ei_name_map;

/* Binary trie over address bits; a node's value indexes a port list (allow entries) or a
 * policy (sources), or is -1. Node 0 is the root. */
typedef struct {
    uint32_t child[2];
    int32_t value;
} ei_trie_node;

typedef struct {
    ei_trie_node *nodes;
    uint32_t count;
    uint32_t cap;
} ei_trie;

struct ei_policy {
    char *name;
    const ei_policy_set *set; /* whose rule table the port lists index */
    ei_name_map exact;
    ei_name_map wildcard;    /* keyed by the suffix after "*." */
    ei_trie cidr[2];         /* [0] IPv4, [1] IPv6 */
    ei_port_list *cidr_ports;
    uint32_t ncidr_ports;
    size_t entries;
};

typedef struct {
    char *text;
    unsigned line;
} ei_rule;

struct ei_policy_set {
    ei_policy *policies;
    size_t npolicies;
    ei_trie sources[2];
    ei_rule *rules;
    size_t nrules;
};

/* Whether the list allows port; *rule gets the first entry that does. unset_is_any says
 * what an entry without a port means: any port (CIDR) or 443 and 80 (names). */
bool ei_port_list_matches(const ei_port_list *list, uint16_t port, bool unset_is_any,
                          uint32_t *rule);

const ei_port_list *ei_name_map_get(const ei_name_map *map, const char *key, size_t len);

/* Longest-prefix walk: calls visit for each node with a value on the path of addr, from
 * the shortest prefix to the longest; the last value visit accepted is returned. */
int32_t ei_trie_longest(const ei_trie *t, const uint8_t *addr, unsigned bits,
                        bool (*accept)(const void *ctx, int32_t value), const void *ctx);

#endif
