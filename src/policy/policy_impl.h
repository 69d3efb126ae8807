/* Inside a policy set. Private to src/policy: rules.c reads the file and feeds the
 * builders below; match.c owns the containers and answers every lookup. */
#ifndef EI_POLICY_IMPL_H
#define EI_POLICY_IMPL_H

#include "egress_inspector/policy.h"
#include "egress_inspector/selector.h"
#include "map.h" /* name and address tables; EI_NO_VALUE: a slot not yet tied to a port list or a policy */

/* An entry written without a port: for a name, ports 443 and 80; for an address, any. */
#define EI_PORT_UNSET 0
#define EI_NO_RULE UINT32_MAX

typedef struct {
    uint16_t port;
    uint32_t rule; /* index into the set's rules */
} ei_port_rule;

/* The ports one key (a name, a wildcard suffix, a prefix) is allowed on. Entries written
 * without a port collapse into default_rule, the common case, so most keys never touch
 * items. items is sorted by port (and holds each port once) after ei_policy_set_seal. */
typedef struct {
    uint32_t default_rule; /* EI_NO_RULE when every entry for the key names a port */
    uint32_t count;
    uint32_t cap;
    ei_port_rule *items;
} ei_ports;


/* Prefixes of one family, as one hash keyed by (length, address with the host bits
 * cleared). A longest-prefix lookup probes each length in use, longest first: at most 33
 * or 129 probes, and memory stays linear in the entries (a bit trie of a million IPv6
 * host routes would need over a hundred million nodes). */
typedef struct {
    ei_map map;
    uint64_t lengths[3]; /* bit n set: some prefix of length n (0 to 128) is present */
} ei_prefixes;

typedef struct {
    char *name;
    uint16_t port;
} ei_tcp_name;

struct ei_policy {
    char *name;
    const ei_policy_set *set; /* whose rules the ports index */
    /* Workloads selected by labels (`namespaces`, `pods`): selects is set when either
     * line is given; a selector left NULL matches everything. */
    bool selects;
    ei_selector *namespaces;
    ei_selector *pods;
    ei_mode mode;             /* `mode monitor`: its denies are logged, not enforced */
    ei_map exact;             /* normalized name -> index into ports */
    ei_map wildcard;          /* the suffix after "*." -> index into ports */
    ei_prefixes cidr[2];      /* [0] IPv4, [1] IPv6 -> index into ports */
    ei_map tcp_exact;         /* tcp:// entries: the same, for names bound by DNS */
    ei_map tcp_wildcard;
    ei_tcp_name *tcp_names;   /* the exact tcp:// entries, for lookups ahead of need */
    uint32_t ntcp_names;
    uint32_t captcp_names;
    ei_ports *ports;
    uint32_t nports;
    uint32_t capports;
};

typedef enum { EI_RULE_NAME, EI_RULE_WILDCARD, EI_RULE_ADDRESS, EI_RULE_TCP, EI_RULE_TCP_WILDCARD } ei_rule_kind;

typedef struct {
    char *text; /* the entry as written */
    unsigned line;
    /* What it allows, for explanations (nearest.c): */
    uint32_t policy;    /* index into the set's policies */
    uint8_t kind;       /* ei_rule_kind */
    uint8_t bits;       /* EI_RULE_ADDRESS: the prefix length of addr */
    uint16_t port;      /* EI_PORT_UNSET: a name's 443 and 80, an address's every port */
    char *key;          /* the normalized name, or a wildcard's suffix (NULL: an address) */
    ei_addr addr;
} ei_rule;

struct ei_policy_set {
    ei_policy *policies; /* [0] is "default" */
    size_t npolicies;
    size_t cappolicies;
    ei_prefixes sources[2]; /* -> index into policies */
    uint32_t *selecting;    /* the policies that select by labels, in file order */
    size_t nselecting;
    size_t capselecting;
    ei_rule *rules;
    size_t nrules;
    size_t caprules;
    size_t entries; /* allow lines accepted, duplicates included */
    bool any_monitor; /* some policy is in `mode monitor` */
};

/* Builders, used only while the set is being parsed. Each returns false when memory runs
 * out, leaving the set consistent enough for ei_policy_set_free. */

/* Allows name (normalized, non-empty), or every name below it when wildcard, on port. */
EI_MUST_USE bool ei_policy_add_name(ei_policy *policy, bool wildcard, const char *name,
                                    size_t len, uint16_t port, uint32_t rule);

/* Allows any protocol on port to the addresses DNS gives name (normalized), or any name
 * below it when wildcard (learned names only). port is never EI_PORT_UNSET. */
EI_MUST_USE bool ei_policy_add_tcp_name(ei_policy *policy, bool wildcard, const char *name,
                                        size_t len, uint16_t port, uint32_t rule);

/* Allows addr/bits (host bits clear) on port. */
EI_MUST_USE bool ei_policy_add_prefix(ei_policy *policy, const ei_addr *addr, unsigned bits,
                                      uint16_t port, uint32_t rule);

/* Gives the workloads in addr/bits (host bits clear) to policy, unless another policy has
 * them already: *owner receives the policy that holds the prefix after the call. */
EI_MUST_USE bool ei_policy_set_add_source(ei_policy_set *set, const ei_addr *addr,
                                          unsigned bits, uint32_t policy, uint32_t *owner);

/* Gives each rule a new text and line: documents translated into rules lines
 * (portarium.c, cnp.c) name their rules their own way. fn receives the generated line a
 * rule came from and returns the text to show (copied; NULL keeps it), and may set
 * *line. false when memory runs out. */
typedef const char *(*ei_rule_label_fn)(void *ctx, unsigned generated_line, unsigned *line);
EI_MUST_USE bool ei_policy_set_label_rules(ei_policy_set *set, ei_rule_label_fn fn, void *ctx);

/* Sorts every port list for binary search; the set is read-only afterwards. */
void ei_policy_set_seal(ei_policy_set *set);

#endif
