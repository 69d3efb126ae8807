/* Allowlist policies: the rules file, the matchers and the decision.
 *
 * A policy set is the immutable result of parsing one rules file. It is built once,
 * shared read-only by every thread, and replaced as a whole on reload; nothing in it
 * changes after ei_rules_parse returns. */
#ifndef EGRESS_INSPECTOR_POLICY_H
#define EGRESS_INSPECTOR_POLICY_H

#include "egress_inspector/common.h"
#include "egress_inspector/name.h"
#include "egress_inspector/workload.h"

typedef struct ei_policy_set ei_policy_set;
typedef struct ei_policy ei_policy;

/* Called once per error found in a rules file, in line order. line is 1-based. */
typedef void (*ei_rules_error_fn)(void *ctx, unsigned line, const char *message);

/* Parses a rules file held in memory (text need not be NUL-terminated).
 * Returns a new policy set, or NULL when the file has any error: every error is reported
 * through on_error (which may be NULL) and nothing is half-applied. *errors, when not
 * NULL, receives the number of errors. The caller frees the set with ei_policy_set_free. */
EI_MUST_USE ei_policy_set *ei_rules_parse(const char *text, size_t len,
                                          ei_rules_error_fn on_error, void *ctx,
                                          unsigned *errors);

void ei_policy_set_free(ei_policy_set *set);

/* Number of policies in the set and the number of allow entries in all of them. */
size_t ei_policy_set_policies(const ei_policy_set *set);
size_t ei_policy_set_entries(const ei_policy_set *set);

/* The policies that govern a workload, one at a time. First the policy whose `source`
 * CIDR is the longest prefix match for src, if any; then, in file order, every policy
 * whose selectors match wl (`namespaces` and `pods`, both when both are given; wl NULL:
 * no selector matches). When none governs it, the policy named "default" (which always
 * exists: an empty one denies all). What they allow adds up, as NetworkPolicies do. */
typedef struct {
    const ei_policy_set *set;
    const ei_workload *wl;
    const ei_policy *owner; /* by source CIDR, or NULL */
    size_t next;            /* into the set's selecting policies */
    bool started, any;
} ei_policy_iter;

void ei_policy_iter_init(ei_policy_iter *it, const ei_policy_set *set, const ei_addr *src,
                         const ei_workload *wl);
/* The next policy that governs the workload, NULL after the last. */
EI_MUST_USE const ei_policy *ei_policy_iter_next(ei_policy_iter *it);
/* Back to the first, without looking the source up again. */
void ei_policy_iter_rewind(ei_policy_iter *it);

/* The policy by source address alone: the longest `source` prefix match, else
 * "default". Never returns NULL. */
EI_MUST_USE const ei_policy *ei_policy_for_source(const ei_policy_set *set, const ei_addr *src);

/* Whether some `source` CIDR covers src (a workload the view does not know may still
 * be governed by one). */
EI_MUST_USE bool ei_policy_set_covers_source(const ei_policy_set *set, const ei_addr *src);
/* Whether any policy selects workloads by labels: the set then needs a workload view. */
EI_MUST_USE bool ei_policy_set_selects(const ei_policy_set *set);
/* The first policy that selects by labels, for messages (NULL: none). */
const char *ei_policy_set_first_selecting(const ei_policy_set *set);

const char *ei_policy_name(const ei_policy *policy);
/* The policy's own mode (`mode enforce|monitor`; enforce when the file says nothing). */
ei_mode ei_policy_mode(const ei_policy *policy);
/* Whether an address entry of any policy allows dst:port (explain picks a destination
 * no entry covers when none is given). */
EI_MUST_USE bool ei_policy_set_any_address(const ei_policy_set *set, const ei_addr *dst, uint16_t port);
/* Whether any policy of the set is in monitor mode. */
EI_MUST_USE bool ei_policy_set_has_monitor(const ei_policy_set *set);

/* What an allow entry matched, for the log: the entry as written in the file and its
 * line. rule is NULL when nothing matched. */
typedef struct {
    const char *rule;
    unsigned line;
} ei_match;

/* Looks up an already normalized name (ei_name_normalize) for a TCP destination port:
 * an exact entry first, then the closest wildcard. Constant work in the number of
 * entries (hash for exact names, suffix tree for wildcards). */
EI_MUST_USE ei_match ei_policy_match_name(const ei_policy *policy, const char *name, size_t len,
                                          uint16_t port);

/* Looks up a destination address and port among the CIDR entries (longest prefix). */
EI_MUST_USE ei_match ei_policy_match_address(const ei_policy *policy, const ei_addr *dst,
                                             uint16_t port);

/* tcp:// entries ("tcp://NAME:PORT") allow any protocol on PORT to the addresses NAME has
 * (learned from the workload's DNS answers, or looked up); with a wildcard ("*.NAME"),
 * to the addresses of any learned name below NAME. They are decided at SYN time, by the
 * pipeline, which knows the addresses. */
EI_MUST_USE bool ei_policy_has_tcp_entries(const ei_policy *policy);
EI_MUST_USE ei_match ei_policy_match_tcp_name(const ei_policy *policy, const char *name, size_t len,
                                              uint16_t port);
/* The names of the policy's exact tcp:// entries on port: at most max written to out.
 * Returns how many were written. The strings live as long as the set. */
EI_MUST_USE size_t ei_policy_tcp_names(const ei_policy *policy, uint16_t port, const char **out,
                                       size_t max);
/* Calls fn once per exact tcp:// entry of every policy in the set (a name may come twice). */
typedef void (*ei_tcp_name_fn)(void *ctx, const char *name);
void ei_policy_set_each_tcp_name(const ei_policy_set *set, ei_tcp_name_fn fn, void *ctx);

/* What the pipeline knows about a flow when it asks for a decision. */
typedef enum {
    EI_L7_NONE = 0,
    EI_L7_TLS,
    EI_L7_HTTP,
    EI_L7_SOCKS,  /* a SOCKS 4a / 5 CONNECT that names its target */
    EI_L7_QUIC,   /* a ClientHello in QUIC Initials */
} ei_l7;

const char *ei_l7_name(ei_l7 l7);

typedef struct {
    ei_addr src;
    ei_addr dst;
    uint16_t sport;
    uint16_t dport;
    bool have_message; /* false at SYN time: only address entries can decide */
    ei_l7 l7;
    /* The normalized name (NUL-terminated), or NULL when the message carried none. */
    const char *host;
    size_t host_len;
    /* EI_REASON_NONE when the message parsed cleanly, else why it cannot be trusted
     * (ambiguity, malformation, a transport problem). Always denies. */
    ei_reason problem;
    /* At first sight (!have_message): EI_REASON_NONE when the flow's message will be
     * read, else the reason to deny it when no address entry allows it (the coverage
     * reasons: a port, a protocol or a resolver the inspector does not read). */
    ei_reason uncovered;
    /* The pod that sent the flow, as the workload view knows it (NULL: no view, or the
     * address is not a pod's). workload_unknown: a view is in use, it does not know the
     * address, and no `source` CIDR covers it; the flow is denied (workload_unknown). */
    const ei_workload *workload;
    bool workload_unknown;
} ei_flow_facts;

typedef struct {
    ei_verdict verdict; /* PENDING only when !have_message, the flow's message will be
                           read, and no address entry matched */
    ei_reason reason;
    const ei_policy *policy;
    ei_match match;
    /* Every policy that governs the workload is in `mode monitor`: a deny is logged, not
     * enforced (one policy in enforce mode is enough to enforce it). */
    bool monitored;
} ei_decision;

/* Does the flow's destination address belong to a name? The DNS cache's answer for a
 * (workload, name, address), as the workload's own lookups and the inspector's taught it. */
typedef enum {
    EI_BIND_UNKNOWN = 0, /* nothing known about the name: a lookup would tell */
    EI_BIND_NO,          /* the name is known, and the address is not one of its own */
    EI_BIND_YES,
} ei_bind;

/* The one decision function every mode shares. Pure: same facts and set, same answer.
 * Order: a workload the view does not know is denied; then an address entry for
 * (dst, dport) of any policy that governs the workload allows whatever the message; then, at first
 * sight, a flow whose message is never read is denied (`uncovered`); then a problem
 * denies with its own reason; then a missing name denies (no_hostname); then the name
 * is looked up. */
EI_MUST_USE ei_decision ei_decide(const ei_flow_facts *facts, const ei_policy_set *set);

/* For a flow the policy denied (explain): the entries nearest to allowing it, and why
 * each did not. */
typedef enum {
    EI_NEAR_OTHER_PORT,    /* the name (or address) is allowed, on other ports */
    EI_NEAR_APEX,          /* *.NAME covers the names below NAME, never NAME itself */
    EI_NEAR_OTHER_POLICY,  /* it would allow the flow, in a policy that does not govern the
                              workload (its source or selectors do not take it) */
    EI_NEAR_SIBLING,       /* another name under the same parent domain */
    EI_NEAR_TCP_ONLY,      /* a tcp:// entry for the name: by address, at the SYN */
} ei_near_why;

const char *ei_near_why_name(ei_near_why why);

typedef struct {
    const char *rule;      /* the entry as written (as long as the set) */
    unsigned line;
    const ei_policy *policy;
    ei_near_why why;
    uint16_t port;         /* the entry's port; 0: a name's 443 and 80, an address's any */
    unsigned closeness;    /* labels the names share from the right (EI_NEAR_SIBLING) */
} ei_near;

/* At most max entries, the most telling first (other port, apex, other policy, tcp://,
 * then siblings by closeness). facts->host and facts->dst say what was asked; dst is
 * looked at only when dst_known. Returns how many were written. */
EI_MUST_USE size_t ei_policy_nearest(const ei_policy_set *set, const ei_flow_facts *facts,
                                     bool dst_known, ei_near *out, size_t max);

/* What the destination check knows of a flow that ei_decide has judged. */
typedef struct {
    bool dest_check;     /* --dest-check strict: an allowed name must go to its addresses */
    ei_bind dest;        /* the cache: does dst belong to facts->host? (UNKNOWN: no cache) */
    ei_bind tcp;         /* at SYN time: does dst belong to a tcp:// entry's name for dport?
                            (EI_BIND_NO when no such entry, or not at SYN time) */
    ei_match tcp_match;  /* the tcp:// entry, when tcp is EI_BIND_YES */
    bool lookups;        /* a lookup can be asked (the daemon: yes; replay: no) */
    bool wait_room;      /* a flow may still wait for one (under max_dns_waits) */
    ei_reason unknown;   /* why to deny a name bound to nothing; EI_REASON_NONE: it may
                            wait for a lookup instead */
} ei_bind_facts;

typedef enum {
    EI_WAIT_NONE = 0,
    EI_WAIT_NAME,        /* hold the flow until a lookup of facts->host ends */
    EI_WAIT_TCP_NAME,    /* hold the SYN until a lookup of a tcp:// entry's name ends */
} ei_wait;

/* The destination binding step, beside ei_decide and as pure: from a decision and what
 * the cache knows, the final decision, or a wait for a lookup (*wait; the decision is then
 * not final). *wait_refused is set when a wait was wanted and there was no room (counted
 * by the caller). Table-tested in tests/policy/test_policy.c:
 *   tcp YES, not allowed                    -> allow, allowed_tcp_name
 *   tcp UNKNOWN, no message, may wait, room -> wait for the tcp:// name
 *   allowed_name, dest_check, dest YES      -> allow
 *   dest NO                                 -> deny, sni_ip_mismatch / host_ip_mismatch
 *   dest UNKNOWN, may wait, room            -> wait for the name
 *   dest UNKNOWN, may wait, no room         -> deny, held_limit
 *   dest UNKNOWN, may not wait              -> deny, `unknown` or dns_unresolved */
EI_MUST_USE ei_decision ei_bind_destination(ei_decision d, const ei_flow_facts *facts,
                                            const ei_bind_facts *b, ei_wait *wait,
                                            bool *wait_refused);

#endif
