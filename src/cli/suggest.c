/* egress-inspector suggest (GitHub issue 17): decision lines in, an allowlist out.
 *
 * An operator rolls out in monitor mode, then turns what the log says was allowed and
 * would have been denied into rules. Per policy (the line's `policy`), what is kept:
 *
 *   allowed_name, name_not_allowed     the host; host:PORT off ports 443 and 80
 *   allowed_address, allowed_tcp_name  the entry that matched (`rule`)
 *   a deny by address: port_, udp_, quic_, icmp_, proto_not_inspected, and the flows
 *   that named nothing (no_hostname, not_tls_or_http)
 *                                      ADDR/32:PORT, [ADDR/128]:PORT; no port for ICMP
 *                                      and other protocols
 *   every other deny (fail-closed)     never an entry: a comment with its count
 *
 * Names stay exact unless --min-siblings of them sit directly below one parent P that
 * the Public Suffix List (libpsl, Debian's publicsuffix data) puts inside a single
 * registrable domain: then *.P. Aggregated deny lines carry no policy: they are credited
 * to the policy of the full line their kind began with (the audit writes the first of
 * each kind in full), else to the policy their workload was last seen with.
 *
 * With --rules, the file (checked by the real loader first) is carried over line for
 * line, and each policy's new entries follow its own lines. What is printed is parsed
 * again, by the parser the daemon uses, before it is written out. */
#include "cli/suggest.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "egress_inspector/cnp.h"
#include "egress_inspector/name.h"
#include "egress_inspector/policy.h"
#include "egress_inspector/portarium.h"
#include "io/rules_load.h"
#include "map.h"

enum {
    LINE_MAX_BYTES = 1 << 20, /* a decision line longer than this is skipped, counted */
    RULES_LINE = 4096,        /* the rules parser's longest line */
    LIST_BYTES = 2048,        /* of a list repeated in one comment line */
    SHOWN_MAX = 96,           /* of a name or an address from the log repeated in a comment */
    RULE_MAX = 1024,          /* the longest `rule` taken from a line as an entry */
    POLICY_NAME_MAX = 253,
    MAX_KEYS = 2000000,       /* distinct things remembered; past it, lines are only counted */
    KEY_MAX = RULE_MAX + 128,
    BASE_KEY_MAX = RULES_LINE + 32,
};

#define NO_INDEX UINT32_MAX
#define SEP "\x1f" /* between the parts of a key */
#define POLICY_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
#define PSL_DAFSA "/usr/share/publicsuffix/public_suffix_list.dafsa"
#define PROBE_LABEL "x--ei-probe." /* a child no exception rule names */

static const char suggest_usage[] =
    "usage: egress-inspector suggest [--from FILE|-] [--rules FILE] [--format rules|portarium]\n"
    "                                [--min-count N] [--min-siblings N]\n"
    "Reads decision lines (replay's output, or the daemon's log in either --log-format;\n"
    "default: standard input) and prints, per policy, an allowlist that allows what was\n"
    "allowed and what was denied by name (name_not_allowed: the host, host:PORT off 443\n"
    "and 80) or by address (the *_not_inspected coverage denies, no_hostname,\n"
    "not_tls_or_http: ADDR/32:PORT). What was denied fail-closed (malformed, conflicting,\n"
    "mismatched, ...) is never suggested: it is listed in comments with its counts.\n"
    "Other lines are skipped and counted on standard error.\n"
    "  --from FILE        the decision lines (- : standard input, the default)\n"
    "  --rules FILE       the rules in force (rules file or Portarium JSON): carried over\n"
    "                     line for line, each policy's new entries after its own lines\n"
    "  --format rules     a rules file (the default), each entry with `# seen N`\n"
    "  --format portarium a JSON list of MachineExecutionPolicy documents (https:// names\n"
    "                     only; what cannot be said so is reported on standard error)\n"
    "  --min-count N      only entries seen N times or more (1)\n"
    "  --min-siblings N   N or more names (3) directly below one parent P become *.P, when\n"
    "                     P has two labels or more and the Public Suffix List (libpsl) puts\n"
    "                     P inside one registrable domain: P is no public suffix, and no\n"
    "                     wildcard rule makes P's children public suffixes (never *.com,\n"
    "                     *.co.uk, *.github.io); 0: names stay exact\n";

/* ---- string keys, in the project's byte-string map (map.h) ---- */

static bool str_get(const ei_map *m, const char *key, uint32_t *val)
{
    size_t n = strlen(key);
    const ei_slot *slot = ei_map_find(m, (const uint8_t *)key, n, ei_map_hash((const uint8_t *)key, n));
    if (slot == NULL)
        return false;
    *val = slot->value;
    return true;
}

/* Sets key (copied when new) to val; false when memory runs out. */
static bool str_set(ei_map *m, const char *key, uint32_t val)
{
    ei_slot *slot = ei_map_put(m, (const uint8_t *)key, strlen(key));
    if (slot == NULL)
        return false;
    slot->value = val;
    return true;
}

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static bool strlist_add(strlist *l, const char *s)
{
    char **v = ei_grow(l->v, sizeof *v, l->n, &l->cap, 8);
    if (v == NULL)
        return false;
    l->v = v;
    char *copy = strdup(s);
    if (copy == NULL)
        return false;
    l->v[l->n++] = copy;
    return true;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* ---- what was seen ---- */

typedef enum { R_NAME, R_ADDR, R_RULE, R_FAIL, R_BADNAME, R_SRC } rkind;

typedef struct {
    uint32_t policy;
    uint32_t next;  /* the policy's record before this one (NO_INDEX: none) */
    uint8_t kind;   /* rkind */
    bool nameless;  /* R_ADDR: the flows named nothing (no_hostname, not_tls_or_http) */
    bool socks;     /* R_NAME with via: the name came in a SOCKS request */
    uint16_t port;  /* R_NAME: the port the flows were judged by (their own, or the
                       target's of a CONNECT or SOCKS request when an allow told it) */
    char *via;      /* R_NAME denied by name in HTTP or SOCKS off ports 443 and 80: the
                       address the flows went to, maybe a proxy judging by its target's
                       port, which no decision line gives; NULL otherwise */
    char *text;     /* R_NAME: the host; R_ADDR, R_RULE: the entry; R_SRC: the workload's
                       address; R_FAIL, R_BADNAME: "reason what", sanitized */
    uint64_t count;
} record;

typedef struct {
    char *name;
    bool in_base, selects;
    /* Its lines in the base text: [body_start, body_end) its own (the policy line to its
     * last keyword line), then [body_end, tail_end) the comments and blanks after. */
    size_t body_start, body_end, tail_end;
    strlist sources, allows; /* as --rules has them */
    uint32_t last;           /* its latest record */
    uint64_t covered;        /* flows allowed by a line carried over */
} policy;

typedef struct {
    uint32_t policy;
    char *host; /* the full name (an aggregate line's is cut at 63 bytes), or NULL */
} deny_kind;

typedef struct {
    const char *from, *rules;
    bool portarium;
    uint64_t min_count;
    uint64_t min_siblings;

    ei_map map;         /* every key below, told apart by its first letter */
    ei_map winners;     /* --format portarium: each workload's policy */
    policy *pol;
    size_t npol, cappol;
    record *rec;
    size_t nrec, caprec;
    deny_kind *kinds;
    size_t nkinds, capkinds;
    char *base;       /* the --rules text (Portarium JSON: translated into rules lines) */
    size_t base_len;
    char *default_doc; /* the name of the Portarium default document of --rules */
    json_tokener *tok;
    const psl_ctx_t *psl;
    psl_ctx_t *psl_owned;

    uint64_t decisions, skipped, too_long, unattributed, bad_policy, bad_rule, many_kinds,
        no_port, over_keys;
    bool oom;
} state;

static void add_count(uint64_t *total, uint64_t n)
{
    *total = *total > UINT64_MAX - n ? UINT64_MAX : *total + n;
}

static uint32_t out_of_memory(state *s)
{
    s->oom = true;
    return NO_INDEX;
}

/* text as one word of a comment: printable ASCII, at most SHOWN_MAX bytes of it. */
static void shown(const char *text, char out[SHOWN_MAX + 4])
{
    size_t n = 0;
    for (; n < SHOWN_MAX && text[n] != '\0'; n++)
        out[n] = (char)(text[n] > ' ' && text[n] < 0x7f ? text[n] : '?');
    if (text[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* new keys only while fewer than MAX_KEYS are kept (false, and not an error, past it) */
static bool keep(state *s, const char *key, uint32_t val)
{
    uint32_t old;
    if (s->map.count >= MAX_KEYS && !str_get(&s->map, key, &old))
        return false;
    if (!str_set(&s->map, key, val)) {
        s->oom = true;
        return false;
    }
    return true;
}

static bool policy_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= POLICY_NAME_MAX && strspn(name, POLICY_CHARS) == n;
}

/* The policy's index, added when new (from_base: a policy of --rules); NO_INDEX when
 * memory runs out. */
static uint32_t policy_index(state *s, const char *name, bool from_base)
{
    char key[BASE_KEY_MAX];
    snprintf(key, sizeof key, "P" SEP "%s", name);
    uint32_t i;
    if (str_get(&s->map, key, &i))
        return i;
    policy *grown = ei_grow(s->pol, sizeof *grown, s->npol, &s->cappol, 8);
    if (grown == NULL)
        return out_of_memory(s);
    s->pol = grown;
    policy *p = &s->pol[s->npol];
    memset(p, 0, sizeof *p);
    p->last = NO_INDEX;
    p->in_base = from_base;
    p->name = strdup(name);
    if (p->name == NULL || !str_set(&s->map, key, (uint32_t)s->npol)) {
        free(p->name);
        return out_of_memory(s);
    }
    return (uint32_t)s->npol++;
}

/* Counts n more of something the policy saw. Returns its record, or NO_INDEX when it
 * cannot be kept (past MAX_KEYS: counted in over_keys; out of memory). */
static uint32_t count_record(state *s, uint32_t pol, rkind kind, uint16_t port, const char *text,
                             const char *via, uint64_t n)
{
    char key[KEY_MAX];
    int w = snprintf(key, sizeof key, "R" SEP "%u" SEP "%d" SEP "%u" SEP "%s" SEP "%s", pol,
                     (int)kind, port, text, via != NULL ? via : "");
    uint32_t i;
    if (w < 0 || (size_t)w >= sizeof key)
        return NO_INDEX;
    if (str_get(&s->map, key, &i)) {
        add_count(&s->rec[i].count, n);
        return i;
    }
    if (s->map.count >= MAX_KEYS) {
        add_count(&s->over_keys, n);
        return NO_INDEX;
    }
    record *grown = ei_grow(s->rec, sizeof *grown, s->nrec, &s->caprec, 256);
    if (grown == NULL)
        return out_of_memory(s);
    s->rec = grown;
    record *r = &s->rec[s->nrec];
    memset(r, 0, sizeof *r);
    r->text = strdup(text);
    r->via = via != NULL ? strdup(via) : NULL;
    if (r->text == NULL || (via != NULL && r->via == NULL) ||
        !str_set(&s->map, key, (uint32_t)s->nrec)) {
        free(r->text);
        free(r->via);
        return out_of_memory(s);
    }
    r->policy = pol;
    r->kind = (uint8_t)kind;
    r->port = port;
    r->count = n;
    r->next = s->pol[pol].last;
    s->pol[pol].last = (uint32_t)s->nrec;
    return (uint32_t)s->nrec++;
}

/* A name the rules file takes as written: lower case, no trailing dot, not an address. */
static bool valid_host(const char *host)
{
    char norm[EI_NAME_MAX + 1];
    size_t len = strlen(host), n = 0;
    ei_addr a;
    return ei_name_normalize((const uint8_t *)host, len, norm, &n) == EI_REASON_NONE && n == len &&
           memcmp(norm, host, len) == 0 && !ei_addr_parse(host, &a);
}

static bool parses_as_entry(const char *text)
{
    char line[RULE_MAX + 16];
    int n = snprintf(line, sizeof line, "allow %s\n", text);
    unsigned errors = 0;
    ei_policy_set *set = ei_rules_parse(line, (size_t)n, NULL, NULL, &errors);
    bool ok = set != NULL && ei_policy_set_entries(set) == 1;
    if (set != NULL)
        ei_policy_set_free(set);
    return ok;
}

/* Whether a `rule` from a line is one allow entry the rules parser takes (cached). */
static bool entry_ok(state *s, const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n > RULE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (text[i] <= ' ' || text[i] == 0x7f || text[i] == '#')
            return false;
    char key[KEY_MAX];
    snprintf(key, sizeof key, "V" SEP "%s", text);
    uint32_t ok;
    if (str_get(&s->map, key, &ok))
        return ok != 0;
    ok = parses_as_entry(text) ? 1 : 0;
    (void)keep(s, key, ok);
    return ok != 0;
}

/* ---- decision lines ---- */

typedef struct {
    bool deny, aggregated;
    const char *reason, *policy, *rule, *host, *src, *dst, *proto, *l7; /* NULL: absent */
    int port;                                                      /* -1: absent */
    int target_port; /* a CONNECT or SOCKS request's, which was judged; 0: none */
    uint64_t count;
} decision;

/* A string field without a NUL inside, or NULL. */
static const char *get_str(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *text = json_object_get_string(v);
    return strlen(text) == (size_t)json_object_get_string_len(v) ? text : NULL;
}

static bool get_uint(json_object *o, const char *key, int64_t max, uint64_t *out)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    int64_t n = json_object_get_int64(v);
    if (n < 0 || n > max)
        return false;
    *out = (uint64_t)n;
    return true;
}

/* The port of CloudEvents' destination, "host:port" or "addr:port"; -1 when none. */
static int port_of(const char *dest)
{
    const char *colon = dest != NULL ? strrchr(dest, ':') : NULL;
    if (colon == NULL)
        return -1;
    size_t n = strlen(colon + 1);
    if (n == 0 || n > 5 || strspn(colon + 1, "0123456789") != n)
        return -1;
    long v = strtol(colon + 1, NULL, 10);
    return v <= 65535 ? (int)v : -1;
}

/* --log-format json (and replay): "event":"decision" or "decisions_aggregated". */
static bool read_log_line(json_object *o, const char *event, decision *d)
{
    d->aggregated = strcmp(event, "decisions_aggregated") == 0;
    if (!d->aggregated && strcmp(event, "decision") != 0)
        return false;
    const char *verdict = get_str(o, "verdict");
    d->reason = get_str(o, "reason");
    if (verdict == NULL || d->reason == NULL ||
        (strcmp(verdict, "allow") != 0 && strcmp(verdict, "deny") != 0))
        return false;
    d->deny = strcmp(verdict, "deny") == 0;
    d->policy = get_str(o, "policy");
    d->rule = get_str(o, "rule");
    d->host = get_str(o, "host");
    d->src = get_str(o, "src");
    d->dst = get_str(o, "dst");
    d->proto = get_str(o, "proto");
    d->l7 = get_str(o, "l7");
    uint64_t v;
    if (get_uint(o, "dport", 65535, &v))
        d->port = (int)v;
    if (get_uint(o, "target_port", 65535, &v))
        d->target_port = (int)v;
    if (get_uint(o, "count", INT64_MAX, &v) && v > 0)
        d->count = v;
    return true;
}

/* --log-format cloudevents: io.portarium.egress.attempt. A deny has a denyReason (in
 * monitor mode its outcome is "allowed"); an allow says no reason. */
static bool read_cloudevent(json_object *o, decision *d)
{
    json_object *data = NULL, *agg = NULL;
    if (!json_object_object_get_ex(o, "data", &data) || !json_object_is_type(data, json_type_object) ||
        get_str(data, "outcome") == NULL)
        return false;
    d->reason = get_str(data, "denyReason");
    d->deny = d->reason != NULL;
    d->policy = get_str(data, "policy");
    d->rule = get_str(data, "rule");
    d->host = get_str(data, "host");
    d->src = get_str(data, "workloadAddress");
    d->dst = get_str(data, "destinationAddress");
    d->port = port_of(get_str(data, "destination")); /* the port judged */
    d->l7 = get_str(data, "protocol");
    uint64_t v;
    if (get_uint(data, "proxyPort", 65535, &v) && v > 0) { /* through a proxy: connected to */
        d->target_port = d->port;
        d->port = (int)v;
    }
    if (get_uint(data, "count", INT64_MAX, &v) && v > 0) {
        d->count = v;
        d->aggregated = true;
    }
    if (json_object_object_get_ex(data, "aggregated", &agg) && json_object_get_boolean(agg))
        d->aggregated = true;
    return true;
}

static bool read_decision(json_object *o, decision *d)
{
    memset(d, 0, sizeof *d);
    d->port = -1;
    d->count = 1;
    const char *event = get_str(o, "event");
    if (event != NULL)
        return read_log_line(o, event, d);
    const char *type = get_str(o, "type");
    return type != NULL && strcmp(type, "io.portarium.egress.attempt") == 0 && read_cloudevent(o, d);
}

/* How the audit tells deny kinds apart: the workload, the port, the reason, and the
 * first 63 bytes of the name, else the address. */
static void kind_key(const decision *d, char *key, size_t size)
{
    const char *what = d->host != NULL ? d->host : d->dst != NULL ? d->dst : "";
    snprintf(key, size, "K" SEP "%.64s" SEP "%d" SEP "%.64s" SEP "%.63s",
             d->src != NULL ? d->src : "", d->port, d->reason != NULL ? d->reason : "", what);
}

static void remember_kind(state *s, const decision *d, uint32_t pol)
{
    char key[KEY_MAX];
    uint32_t i;
    kind_key(d, key, sizeof key);
    if (!str_get(&s->map, key, &i)) {
        deny_kind *grown = ei_grow(s->kinds, sizeof *grown, s->nkinds, &s->capkinds, 64);
        if (grown == NULL) {
            s->oom = true;
            return;
        }
        s->kinds = grown;
        i = (uint32_t)s->nkinds;
        s->kinds[i].host = NULL;
        if (!keep(s, key, i))
            return;
        s->nkinds++;
    }
    deny_kind *k = &s->kinds[i];
    k->policy = pol;
    if (d->host != NULL && (k->host == NULL || strcmp(k->host, d->host) != 0)) {
        free(k->host);
        k->host = strdup(d->host);
        if (k->host == NULL)
            s->oom = true;
    }
}

/* The workload's address as we write it, into key after "W" SEP; false when src is none. */
static bool src_key(const char *src, char *text, char *key, size_t size)
{
    ei_addr a;
    if (src == NULL || !ei_addr_parse(src, &a))
        return false;
    ei_addr_format(&a, text);
    snprintf(key, size, "W" SEP "%s", text);
    return true;
}

static void remember_src(state *s, const decision *d, uint32_t pol)
{
    char text[EI_ADDR_STRLEN], key[EI_ADDR_STRLEN + 8];
    if (!src_key(d->src, text, key, sizeof key))
        return;
    (void)keep(s, key, pol);
    if (pol != 0)
        (void)count_record(s, pol, R_SRC, 0, text, NULL, d->count);
}

/* An aggregate line names no policy: its kind's full line did, else its workload's. */
static bool attribute_aggregate(state *s, decision *d, uint32_t *pol)
{
    char key[KEY_MAX], text[EI_ADDR_STRLEN];
    uint32_t i;
    kind_key(d, key, sizeof key);
    if (str_get(&s->map, key, &i)) {
        *pol = s->kinds[i].policy;
        if (s->kinds[i].host != NULL && d->host != NULL)
            d->host = s->kinds[i].host;
        return true;
    }
    if (src_key(d->src, text, key, sizeof key) && str_get(&s->map, key, &i)) {
        *pol = i;
        return true;
    }
    add_count(&s->unattributed, d->count);
    return false;
}

static bool attribute(state *s, decision *d, uint32_t *pol)
{
    if (d->aggregated && d->policy == NULL)
        return attribute_aggregate(s, d, pol);
    const char *name = d->policy != NULL ? d->policy : "default";
    if (!policy_name_ok(name)) {
        add_count(&s->bad_policy, d->count);
        return false;
    }
    *pol = policy_index(s, name, false);
    if (*pol == NO_INDEX)
        return false;
    if (d->deny && !d->aggregated)
        remember_kind(s, d, *pol);
    return true;
}

static void allow_key(char *key, size_t size, uint32_t pol, const char *entry)
{
    int n = snprintf(key, size, "A" SEP "%u" SEP "%s", pol, entry);
    for (size_t i = 0; n > 0 && i < (size_t)n && i < size; i++)
        key[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] - 'A' + 'a' : key[i]);
}

/* Whether --rules has this allow line in this policy (names compare case-insensitively). */
static bool base_has(const state *s, uint32_t pol, const char *entry)
{
    char key[BASE_KEY_MAX];
    uint32_t v;
    allow_key(key, sizeof key, pol, entry);
    return str_get(&s->map, key, &v);
}

static uint16_t port_class(int port)
{
    return port == 443 || port == 80 ? 0 : (uint16_t)port;
}

/* The port a flow allowed by name was judged by, as its rule says: the rule's own port,
 * else the scheme's, else (a bare name: 443 and 80) the flow's when it is one of those,
 * else 443. -1 when the rule is no name entry. A CONNECT or SOCKS request is judged by
 * its target's port, not the flow's: this is how a suggestion learns it. */
static int rule_port(const char *rule, int dport)
{
    const char *rest = rule, *scheme = strstr(rule, "://");
    int port = dport == 443 || dport == 80 ? dport : 443;
    if (scheme != NULL && scheme - rule == 5 && strncasecmp(rule, "https", 5) == 0)
        port = 443;
    else if (scheme != NULL && scheme - rule == 4 && strncasecmp(rule, "http", 4) == 0)
        port = 80;
    else if (scheme != NULL || rule[0] == '[')
        return -1;
    rest = scheme != NULL ? scheme + 3 : rule;
    size_t n = strcspn(rest, "/?#");
    const char *colon = memchr(rest, ':', n);
    if (scheme == NULL && rest[n] != '\0')
        return -1; /* a CIDR */
    if (colon == NULL)
        return port;
    size_t digits = n - (size_t)(colon + 1 - rest);
    if (digits == 0 || digits > 5 || strspn(colon + 1, "0123456789") < digits)
        return -1;
    long v = strtol(colon + 1, NULL, 10);
    return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* An allow by name through a proxy (its rule's port is not the flow's): where that
 * proxy is ("Y" dst port), and the port its targets were judged by. */
static void remember_proxy(state *s, const decision *d)
{
    char key[KEY_MAX];
    int judged = d->rule != NULL && d->port > 0 ? rule_port(d->rule, d->port) : -1;
    if (judged <= 0 || port_class(judged) == port_class(d->port) || d->dst == NULL)
        return;
    snprintf(key, sizeof key, "Y" SEP "%.64s" SEP "%d", d->dst, d->port);
    (void)keep(s, key, (uint32_t)judged);
}

static void add_name(state *s, uint32_t pol, const decision *d, const char *why)
{
    if (d->host == NULL || !valid_host(d->host)) {
        char what[SHOWN_MAX + 4], text[2 * SHOWN_MAX];
        shown(d->host != NULL ? d->host : "(none)", what);
        snprintf(text, sizeof text, "%s %s", why, what);
        (void)count_record(s, pol, R_BADNAME, 0, text, NULL, d->count);
        return;
    }
    if (d->port <= 0) {
        add_count(&s->no_port, d->count);
        return;
    }
    if (d->target_port > 0) { /* the line names the port its proxy request was judged by */
        (void)count_record(s, pol, R_NAME, (uint16_t)d->target_port, d->host, NULL, d->count);
        return;
    }
    /* A log from before target_port: inferred, as via_port tells. */
    int port = d->port;
    bool allowed = strcmp(why, "allowed_name") == 0, socks = d->l7 != NULL && strcmp(d->l7, "socks") == 0;
    bool proxied = d->l7 != NULL && (socks || strcmp(d->l7, "http") == 0) && port_class(port) != 0;
    if (allowed && d->rule != NULL && rule_port(d->rule, port) > 0)
        port = rule_port(d->rule, port);
    char via[EI_ADDR_STRLEN];
    ei_addr a;
    bool with_via = !allowed && proxied && d->dst != NULL && ei_addr_parse(d->dst, &a);
    if (with_via)
        ei_addr_format(&a, via);
    uint32_t r = count_record(s, pol, R_NAME, (uint16_t)port, d->host, with_via ? via : NULL, d->count);
    if (r != NO_INDEX && socks)
        s->rec[r].socks = true;
}

static void add_allow(state *s, uint32_t pol, const decision *d)
{
    remember_proxy(s, d);
    if (d->rule != NULL && base_has(s, pol, d->rule)) {
        add_count(&s->pol[pol].covered, d->count);
        return;
    }
    bool by_rule = d->reason != NULL ? strcmp(d->reason, "allowed_address") == 0 ||
                                           strcmp(d->reason, "allowed_tcp_name") == 0 ||
                                           d->host == NULL
                                     : d->host == NULL; /* CloudEvents: a name was read */
    if (!by_rule) {
        add_name(s, pol, d, "allowed_name");
        return;
    }
    if (d->rule == NULL || !entry_ok(s, d->rule)) {
        add_count(&s->bad_rule, d->count);
        return;
    }
    (void)count_record(s, pol, R_RULE, 0, d->rule, NULL, d->count);
}

/* The address entry for a deny by address: ADDR/32:PORT, [ADDR/128]:PORT; no port for
 * ICMP and other protocols. false when the line has no usable destination. */
static bool address_entry(const decision *d, char *out, size_t size)
{
    ei_addr a;
    char text[EI_ADDR_STRLEN];
    if (d->dst == NULL || !ei_addr_parse(d->dst, &a))
        return false;
    ei_addr_format(&a, text);
    unsigned bits = a.family == 6 ? 128 : 32;
    bool portless = strcmp(d->reason, "icmp_not_inspected") == 0 ||
                    strcmp(d->reason, "proto_not_inspected") == 0 ||
                    (d->proto != NULL && strcmp(d->proto, "tcp") != 0 && strcmp(d->proto, "udp") != 0);
    if (portless)
        snprintf(out, size, "%s/%u", text, bits);
    else if (d->port <= 0)
        return false;
    else if (a.family == 6)
        snprintf(out, size, "[%s/%u]:%d", text, bits, d->port);
    else
        snprintf(out, size, "%s/%u:%d", text, bits, d->port);
    return true;
}

static void add_fail(state *s, uint32_t pol, const decision *d)
{
    char reason[SHOWN_MAX + 4], what[SHOWN_MAX + 32], dst[SHOWN_MAX + 4], text[3 * SHOWN_MAX];
    shown(d->reason, reason);
    if (d->host != NULL) {
        shown(d->host, what);
    } else if (d->dst != NULL) {
        shown(d->dst, dst);
        bool v6 = strchr(dst, ':') != NULL;
        if (d->port > 0)
            snprintf(what, sizeof what, "%s%s%s:%d", v6 ? "[" : "", dst, v6 ? "]" : "", d->port);
        else
            snprintf(what, sizeof what, "%s", dst);
    } else {
        snprintf(what, sizeof what, "-");
    }
    snprintf(text, sizeof text, "%s %s", reason, what);
    (void)count_record(s, pol, R_FAIL, 0, text, NULL, d->count);
}

static void add_deny(state *s, uint32_t pol, const decision *d)
{
    static const char *const by_address[] = {
        "port_not_inspected", "udp_not_inspected", "quic_not_inspected", "icmp_not_inspected",
        "proto_not_inspected", "no_hostname", "not_tls_or_http",
    };
    if (strcmp(d->reason, "name_not_allowed") == 0) {
        add_name(s, pol, d, "name_not_allowed");
        return;
    }
    for (size_t i = 0; i < sizeof by_address / sizeof by_address[0]; i++) {
        char entry[EI_ADDR_STRLEN + 32];
        if (strcmp(d->reason, by_address[i]) != 0 || !address_entry(d, entry, sizeof entry))
            continue;
        uint32_t r = count_record(s, pol, R_ADDR, 0, entry, NULL, d->count);
        if (r != NO_INDEX && i >= 5)
            s->rec[r].nameless = true;
        return;
    }
    add_fail(s, pol, d); /* fail-closed, or a deny by address with no destination */
}

static void add_decision(state *s, decision *d)
{
    uint32_t pol;
    if (d->aggregated && d->reason != NULL && strcmp(d->reason, "many_kinds") == 0) {
        add_count(&s->many_kinds, d->count); /* the audit's kinds past its table: no detail */
        return;
    }
    if (!attribute(s, d, &pol))
        return;
    remember_src(s, d, pol);
    if (d->deny)
        add_deny(s, pol, d);
    else
        add_allow(s, pol, d);
}

/* One JSON object on the whole line, or NULL. */
static json_object *parse_object(state *s, const char *line, size_t len)
{
    size_t start = strspn(line, " \t\r");
    if (line[start] != '{')
        return NULL;
    json_tokener_reset(s->tok);
    json_object *o = json_tokener_parse_ex(s->tok, line, (int)len);
    if (o == NULL || json_tokener_get_error(s->tok) != json_tokener_success)
        return NULL;
    size_t end = json_tokener_get_parse_end(s->tok);
    if (!json_object_is_type(o, json_type_object) || end > len ||
        strspn(line + end, " \t\r") != len - end) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static void take_line(state *s, const char *line, size_t len)
{
    json_object *o = parse_object(s, line, len);
    decision d;
    if (o != NULL && read_decision(o, &d)) {
        s->decisions++;
        add_decision(s, &d);
    } else {
        s->skipped++;
    }
    json_object_put(o);
}

/* The next line of in into buf (LINE_MAX_BYTES + 1 bytes; NUL-terminated, *len bytes):
 * 1, or 0 at the end, or -1 for a line over LINE_MAX_BYTES (read to its end, dropped). */
static int next_line(FILE *in, char *buf, size_t *len)
{
    size_t n = 0;
    bool over = false;
    int c;
    while ((c = getc_unlocked(in)) != EOF && c != '\n') {
        if (n < LINE_MAX_BYTES)
            buf[n++] = (char)c;
        else
            over = true;
    }
    buf[n] = '\0';
    *len = n;
    if (c == EOF && n == 0 && !over)
        return 0;
    return over ? -1 : 1;
}

static int read_decisions(state *s, FILE *in, const char *name)
{
    char *buf = malloc((size_t)LINE_MAX_BYTES + 1);
    if (buf == NULL) {
        s->oom = true;
        return 1;
    }
    size_t len;
    int r;
    while (!s->oom && (r = next_line(in, buf, &len)) != 0) {
        if (r < 0) {
            s->skipped++;
            s->too_long++;
            continue;
        }
        take_line(s, buf, len);
    }
    free(buf);
    if (ferror(in)) {
        fprintf(stderr, "egress-inspector suggest: %s: read error: %s\n", name, strerror(errno));
        return 2;
    }
    return 0;
}

/* ---- --rules: checked by the loader, then read line by line ---- */

static const char *doc_name(json_object *doc)
{
    json_object *meta = NULL, *name = NULL;
    if (json_object_object_get_ex(doc, "metadata", &meta))
        json_object_object_get_ex(meta, "name", &name);
    if (name == NULL)
        json_object_object_get_ex(doc, "name", &name);
    return name != NULL && json_object_is_type(name, json_type_string) ? json_object_get_string(name)
                                                                        : NULL;
}

static void write_words(FILE *out, const char *keyword, json_object *list)
{
    if (list == NULL || !json_object_is_type(list, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *v = json_object_array_get_idx(list, i);
        if (json_object_is_type(v, json_type_string))
            fprintf(out, "%s %s\n", keyword, json_object_get_string(v));
    }
}

/* One Portarium document as rules lines: the default one (no sources) in pass 0. */
static void translate_document(state *s, json_object *doc, bool default_pass, FILE *out)
{
    if (!json_object_is_type(doc, json_type_object))
        return;
    json_object *sources = ei_policy_json_field(doc, "sources");
    bool is_default = sources == NULL || (json_object_is_type(sources, json_type_array) &&
                                          json_object_array_length(sources) == 0);
    if (is_default != default_pass)
        return;
    const char *name = doc_name(doc);
    if (is_default && name != NULL && s->default_doc == NULL) {
        s->default_doc = strdup(name);
        if (s->default_doc == NULL)
            s->oom = true;
    }
    if (!is_default) {
        fprintf(out, "policy %s\n", name != NULL ? name : "-");
        write_words(out, "source", sources);
    }
    write_words(out, "allow", ei_policy_json_field(doc, "egressAllowlist"));
}

/* Portarium JSON --rules: the rules lines the daemon reads it as (portarium.c). */
static bool translate_portarium(state *s, const char *text)
{
    json_object *root = json_tokener_parse(text);
    if (root == NULL) {
        fprintf(stderr, "egress-inspector suggest: %s: changed while read\n", s->rules);
        return false;
    }
    json_object *items = NULL, *list = root;
    if (json_object_is_type(root, json_type_object) && json_object_object_get_ex(root, "items", &items) &&
        json_object_is_type(items, json_type_array))
        list = items;
    FILE *out = open_memstream(&s->base, &s->base_len);
    if (out == NULL) {
        json_object_put(root);
        s->oom = true;
        return false;
    }
    char path[SHOWN_MAX + 4];
    shown(s->rules, path);
    fprintf(out, "# translated from the Portarium documents of %s\n", path);
    bool many = json_object_is_type(list, json_type_array);
    for (int pass = 0; pass < 2; pass++) {
        size_t n = many ? json_object_array_length(list) : 1;
        for (size_t i = 0; i < n; i++)
            translate_document(s, many ? json_object_array_get_idx(list, i) : list, pass == 0, out);
    }
    bool ok = fclose(out) == 0 && s->base != NULL;
    json_object_put(root);
    if (!ok)
        s->oom = true;
    return ok;
}

/* Splits line (NUL-terminated in place) into at most two blank-separated words. */
static unsigned words(char *line, char *w[2])
{
    unsigned n = 0;
    for (char *c = line; n < 2;) {
        c += strspn(c, " \t\r");
        if (*c == '\0')
            break;
        w[n++] = c;
        c += strcspn(c, " \t\r");
        if (*c != '\0')
            *c++ = '\0';
    }
    return n;
}

/* A source, selector or allow line of policy pol in --rules. */
static void base_keyword(state *s, uint32_t pol, const char *keyword, const char *arg)
{
    policy *p = &s->pol[pol];
    char key[BASE_KEY_MAX];
    if (strcmp(keyword, "namespaces") == 0 || strcmp(keyword, "pods") == 0) {
        p->selects = true;
    } else if (strcmp(keyword, "source") == 0) {
        ei_addr net;
        unsigned bits;
        char text[EI_ADDR_STRLEN];
        if (ei_prefix_parse(arg, strlen(arg), &net, &bits) == EI_PREFIX_OK) {
            snprintf(key, sizeof key, "B" SEP "%s/%u", ei_addr_format(&net, text), bits);
            if (!str_set(&s->map, key, pol))
                s->oom = true;
        }
        if (!strlist_add(&p->sources, arg))
            s->oom = true;
    } else if (strcmp(keyword, "allow") == 0) {
        allow_key(key, sizeof key, pol, arg);
        if (!strlist_add(&p->allows, arg) || !str_set(&s->map, key, 1))
            s->oom = true;
    }
}

/* One line of --rules, [pos, next) in the text: the policy it belongs to afterwards. */
static uint32_t base_line(state *s, size_t pos, size_t n, size_t next, uint32_t cur, bool *named)
{
    char buf[RULES_LINE + 1], *w[2];
    if (n > RULES_LINE) /* the loader refuses such lines */
        return cur;
    memcpy(buf, s->base + pos, n);
    buf[n] = '\0';
    buf[strcspn(buf, "#")] = '\0';
    unsigned nw = words(buf, w);
    if (nw == 0)
        return cur;
    if (strcmp(w[0], "policy") == 0 && nw == 2 && (*named || strcmp(w[1], "default") != 0)) {
        uint32_t p = policy_index(s, w[1], true);
        if (p == NO_INDEX)
            return cur;
        *named = true;
        s->pol[cur].tail_end = pos;
        s->pol[p].body_start = pos;
        cur = p;
    } else if (nw == 2) {
        base_keyword(s, cur, w[0], w[1]);
    }
    s->pol[cur].body_end = next;
    return cur;
}

static bool split_base(state *s)
{
    uint32_t cur = 0;
    bool named = false; /* a policy line other than "policy default" first has been read */
    for (size_t pos = 0; pos < s->base_len && !s->oom;) {
        const char *nl = memchr(s->base + pos, '\n', s->base_len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (s->base + pos)) : s->base_len - pos;
        size_t next = pos + n + (nl != NULL ? 1 : 0);
        cur = base_line(s, pos, n, next, cur, &named);
        pos = next;
    }
    s->pol[cur].tail_end = s->base_len;
    return !s->oom;
}

static int load_base(state *s)
{
    unsigned errors = 0;
    ei_policy_set *set = ei_rules_load(s->rules, stderr, &errors);
    if (set == NULL) {
        fprintf(stderr, "egress-inspector suggest: --rules %s: %u error%s\n", s->rules, errors,
                errors == 1 ? "" : "s");
        return 2;
    }
    ei_policy_set_free(set);
    size_t len = 0;
    char *text = ei_rules_read(s->rules, &len); /* the text itself: the loader keeps none */
    if (text == NULL) {
        fprintf(stderr, "egress-inspector suggest: --rules %s: %s\n", s->rules, strerror(errno));
        return 2;
    }
    if (ei_cnp_sniff(text, len)) {
        fprintf(stderr, "egress-inspector suggest: --rules %s: ClusterNetworkPolicy documents are "
                "not carried over (their subjects have no rules-file form here); give the rules "
                "file or Portarium JSON, or run without --rules and add the names as domainNames\n",
                s->rules);
        free(text);
        return 2;
    }
    if (ei_policy_json_sniff(text, len)) {
        bool ok = translate_portarium(s, text);
        free(text);
        if (!ok)
            return s->oom ? 1 : 2;
    } else {
        s->base = text;
        s->base_len = len;
    }
    return split_base(s) ? 0 : 1;
}

/* ---- the suggestion of one policy ---- */

typedef enum { KEEP, BELOW, FOLDED, PRESENT, NO_PORT } fate;

typedef struct {
    uint8_t kind;         /* R_NAME (with wildcard: *.name), R_ADDR, R_RULE */
    uint8_t fate;
    bool wildcard, nameless, on80, on443;
    uint16_t port;        /* R_NAME: 0 for ports 443 and 80 */
    const char *name;     /* R_NAME: the host, or the wildcard's parent; else the entry */
    const char *into;     /* FOLDED: the name of the wildcard that replaces it */
    const char *via;      /* went through this address (a proxy?) on via_port */
    uint16_t via_port;
    char *entry;          /* the allow line's entry */
    uint64_t count;
} sugg;

typedef struct {
    sugg *v;
    size_t n, cap;
} sugg_list;

static sugg *sugg_add(sugg_list *l, rkind kind, const char *name, uint16_t port)
{
    sugg *v = ei_grow(l->v, sizeof *v, l->n, &l->cap, 16);
    if (v == NULL)
        return NULL;
    l->v = v;
    sugg *g = &l->v[l->n++];
    memset(g, 0, sizeof *g);
    g->kind = (uint8_t)kind;
    g->name = name;
    g->port = port;
    return g;
}

static void sugg_free(sugg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].entry);
    free(l->v);
}

/* The port a name denied in HTTP or SOCKS off ports 443 and 80 was judged by: the
 * flows' own, unless allows through the same address were judged by their CONNECT or
 * SOCKS target's port: then that one. -1: a SOCKS request that no allow told about. */
static int via_port(const state *s, const record *r)
{
    char key[KEY_MAX];
    uint32_t v;
    snprintf(key, sizeof key, "Y" SEP "%.64s" SEP "%u", r->via, r->port);
    if (str_get(&s->map, key, &v))
        return (int)v;
    return r->socks ? -1 : r->port;
}

/* Names merge by port: 443 and 80 into one entry (a bare name allows both). */
static bool gather_name(const state *s, sugg_list *l, ei_map *seen, const record *r)
{
    int judged = r->via != NULL ? via_port(s, r) : r->port;
    uint16_t port = judged < 0 ? r->port : port_class(judged);
    char key[EI_NAME_MAX + EI_ADDR_STRLEN + 16];
    snprintf(key, sizeof key, "%s%u" SEP "%s", judged < 0 ? "?" : "", port, r->text);
    uint32_t i;
    if (!str_get(seen, key, &i)) {
        i = (uint32_t)l->n;
        sugg *g = sugg_add(l, R_NAME, r->text, port);
        if (g == NULL || !str_set(seen, key, i))
            return false;
        g->fate = judged < 0 ? NO_PORT : KEEP;
    }
    sugg *g = &l->v[i];
    add_count(&g->count, r->count);
    g->on80 = g->on80 || judged == 80;
    g->on443 = g->on443 || judged == 443;
    if (r->via != NULL && g->via == NULL && (judged < 0 || judged != r->port)) {
        g->via = r->via;
        g->via_port = r->port;
    }
    return true;
}

static bool gather(const state *s, uint32_t pol, sugg_list *l)
{
    ei_map seen = { 0 };
    bool ok = true;
    for (uint32_t i = s->pol[pol].last; ok && i != NO_INDEX; i = s->rec[i].next) {
        const record *r = &s->rec[i];
        if (r->kind == R_NAME) {
            ok = gather_name(s, l, &seen, r);
        } else if (r->kind == R_ADDR || r->kind == R_RULE) {
            sugg *g = sugg_add(l, (rkind)r->kind, r->text, 0);
            ok = g != NULL;
            if (ok) {
                g->count = r->count;
                g->nameless = r->nameless;
            }
        }
    }
    ei_map_free(&seen);
    return ok;
}

static bool psl_parent_ok(const psl_ctx_t *psl, const char *parent)
{
    char probe[EI_NAME_MAX + 16];
    snprintf(probe, sizeof probe, PROBE_LABEL "%s", parent);
    return strchr(parent, '.') != NULL && !psl_is_public_suffix(psl, parent) &&
           !psl_is_public_suffix(psl, probe);
}

/* Counts each parent's direct children ("N" port parent) and marks the ancestors of a
 * name that is itself a public suffix ("X" parent): no wildcard may cover it. */
static bool count_parents(const state *s, const sugg_list *l, ei_map *m)
{
    char key[EI_NAME_MAX + 16];
    for (size_t i = 0; i < l->n; i++) {
        const sugg *g = &l->v[i];
        if (g->kind != R_NAME || g->fate != KEEP)
            continue;
        const char *dot = strchr(g->name, '.');
        uint32_t n = 0;
        snprintf(key, sizeof key, "N" SEP "%u" SEP "%s", g->port, dot != NULL ? dot + 1 : "");
        if (dot != NULL) {
            (void)str_get(m, key, &n);
            if (!str_set(m, key, n + 1))
                return false;
        }
        bool suffix = psl_is_public_suffix(s->psl, g->name) != 0;
        for (const char *a = dot; suffix && a != NULL; a = strchr(a + 1, '.')) {
            snprintf(key, sizeof key, "X" SEP "%s", a + 1);
            if (!str_set(m, key, 1))
                return false;
        }
    }
    return true;
}

/* The highest ancestor of name that becomes a wildcard, or NULL. */
static const char *wildcard_parent(const state *s, const ei_map *m, const char *name, uint16_t port)
{
    const char *best = NULL;
    char key[EI_NAME_MAX + 16];
    for (const char *a = strchr(name, '.'); a != NULL; a = strchr(a + 1, '.')) {
        uint32_t n = 0, bad;
        snprintf(key, sizeof key, "N" SEP "%u" SEP "%s", port, a + 1);
        if (!str_get(m, key, &n) || n < s->min_siblings)
            continue;
        snprintf(key, sizeof key, "X" SEP "%s", a + 1);
        if (!str_get(m, key, &bad) && psl_parent_ok(s->psl, a + 1))
            best = a + 1;
    }
    return best;
}

/* Folds name i into its wildcard ("W" port parent), made at the first. */
static bool fold(const state *s, sugg_list *l, ei_map *m, size_t i)
{
    const char *parent = wildcard_parent(s, m, l->v[i].name, l->v[i].port);
    if (parent == NULL)
        return true;
    char key[EI_NAME_MAX + 16];
    uint32_t w;
    snprintf(key, sizeof key, "W" SEP "%u" SEP "%s", l->v[i].port, parent);
    if (!str_get(m, key, &w)) {
        w = (uint32_t)l->n;
        sugg *g = sugg_add(l, R_NAME, parent, l->v[i].port);
        if (g == NULL || !str_set(m, key, w))
            return false;
        g->wildcard = true;
    }
    sugg *g = &l->v[w], *member = &l->v[i];
    add_count(&g->count, member->count);
    g->on80 = g->on80 || member->on80;
    g->on443 = g->on443 || member->on443;
    member->fate = FOLDED;
    member->into = g->name;
    return true;
}

static bool collapse(const state *s, sugg_list *l)
{
    if (s->psl == NULL || s->min_siblings == 0)
        return true;
    ei_map m = { 0 };
    bool ok = count_parents(s, l, &m);
    for (size_t i = 0, n = l->n; ok && i < n; i++)
        if (l->v[i].kind == R_NAME && l->v[i].fate == KEEP && !l->v[i].wildcard)
            ok = fold(s, l, &m, i);
    ei_map_free(&m);
    return ok;
}

static bool make_entry(sugg *g)
{
    char buf[EI_NAME_MAX + 16];
    const char *text = g->name;
    if (g->kind == R_NAME && g->port != 0)
        snprintf(buf, sizeof buf, "%s%s:%u", g->wildcard ? "*." : "", g->name, g->port);
    else if (g->kind == R_NAME)
        snprintf(buf, sizeof buf, "%s%s", g->wildcard ? "*." : "", g->name);
    if (g->kind == R_NAME)
        text = buf;
    g->entry = strdup(text);
    return g->entry != NULL;
}

static int by_entry(const void *a, const void *b)
{
    const sugg *x = a, *y = b;
    return strcmp(x->entry, y->entry);
}

/* Everything policy pol's suggestion says, sorted by entry. false: out of memory. */
static bool suggest_policy(state *s, uint32_t pol, sugg_list *l)
{
    if (!gather(s, pol, l))
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].count < s->min_count && l->v[i].fate == KEEP)
            l->v[i].fate = BELOW;
    if (!collapse(s, l))
        return false;
    for (size_t i = 0; i < l->n; i++) {
        if (!make_entry(&l->v[i]))
            return false;
        if (l->v[i].fate == KEEP && base_has(s, pol, l->v[i].entry)) {
            l->v[i].fate = PRESENT;
            add_count(&s->pol[pol].covered, l->v[i].count);
        }
    }
    if (l->n > 0)
        qsort(l->v, l->n, sizeof l->v[0], by_entry);
    return true;
}

typedef struct {
    const char *text;
    uint64_t count;
} item;

static int by_text(const void *a, const void *b)
{
    const item *x = a, *y = b;
    return strcmp(x->text, y->text);
}

/* The records of one kind of policy pol, sorted by text (the caller frees the array). */
static item *records_of(const state *s, uint32_t pol, rkind kind, size_t *n)
{
    size_t count = 0;
    for (uint32_t i = s->pol[pol].last; i != NO_INDEX; i = s->rec[i].next)
        if (s->rec[i].kind == kind)
            count++;
    *n = 0;
    item *v = calloc(count + 1, sizeof *v);
    if (v == NULL)
        return NULL;
    for (uint32_t i = s->pol[pol].last; i != NO_INDEX; i = s->rec[i].next)
        if (s->rec[i].kind == kind)
            v[(*n)++] = (item){ s->rec[i].text, s->rec[i].count };
    if (*n > 0)
        qsort(v, *n, sizeof v[0], by_text);
    return v;
}

/* ---- --format rules ---- */

static void write_span(const state *s, FILE *out, size_t from, size_t to)
{
    if (to <= from)
        return;
    fwrite(s->base + from, 1, to - from, out);
    if (s->base[to - 1] != '\n')
        fputc('\n', out);
}

/* "# LABEL: a b c" on one line, cut short of LIST_BYTES with "(and N more)". */
static void write_list_comment(FILE *out, const char *label, const char *const *items, size_t n)
{
    size_t used = 0, i = 0;
    fprintf(out, "# %s:", label);
    for (; i < n && used + strlen(items[i]) < LIST_BYTES; i++) {
        fprintf(out, " %s", items[i]);
        used += strlen(items[i]) + 1;
    }
    if (i < n)
        fprintf(out, " (and %zu more)", n - i);
    fputc('\n', out);
}

static bool write_replaces(FILE *out, const sugg_list *l, const sugg *w)
{
    const char **names = calloc(l->n + 1, sizeof *names);
    if (names == NULL)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].fate == FOLDED && l->v[i].into == w->name && l->v[i].port == w->port)
            names[n++] = l->v[i].entry;
    char label[EI_NAME_MAX + 32];
    snprintf(label, sizeof label, "%s replaces", w->entry);
    write_list_comment(out, label, names, n);
    free((void *)names);
    return true;
}

static bool write_entries(FILE *out, const sugg_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const sugg *g = &l->v[i];
        if (g->fate != KEEP)
            continue;
        if (g->wildcard && !write_replaces(out, l, g))
            return false;
        fprintf(out, "allow %s  # seen %llu%s", g->entry, (unsigned long long)g->count,
                g->nameless ? "; the flows named nothing: any name, or none, may go here" : "");
        if (g->via != NULL)
            fprintf(out, "; through %s%s%s:%u, judged (as allows through it were) by its "
                    "CONNECT or SOCKS target's port: check it", strchr(g->via, ':') ? "[" : "",
                    g->via, strchr(g->via, ':') ? "]" : "", g->via_port);
        fputc('\n', out);
    }
    return true;
}

static bool write_records_comment(const state *s, FILE *out, uint32_t pol, rkind kind,
                                  const char *label)
{
    size_t n;
    item *v = records_of(s, pol, kind, &n);
    if (v == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        fprintf(out, "# not suggested (%s): %llu %s\n", label, (unsigned long long)v[i].count,
                v[i].text);
    free(v);
    return true;
}

static bool write_comments(const state *s, FILE *out, uint32_t pol, const sugg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].fate == BELOW)
            fprintf(out, "# not suggested (seen fewer than --min-count %llu times): %llu %s\n",
                    (unsigned long long)s->min_count, (unsigned long long)l->v[i].count,
                    l->v[i].entry);
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].fate == NO_PORT)
            fprintf(out, "# not suggested (SOCKS through %s port %u: its target's port is in no "
                    "decision line): %llu %s\n", l->v[i].via, l->v[i].via_port,
                    (unsigned long long)l->v[i].count, l->v[i].name);
    if (s->pol[pol].covered > 0)
        fprintf(out, "# %llu flows were allowed by the lines carried over\n",
                (unsigned long long)s->pol[pol].covered);
    return write_records_comment(s, out, pol, R_BADNAME, "not a valid hostname") &&
           write_records_comment(s, out, pol, R_FAIL, "denied fail-closed");
}

/* A policy of the decision lines that --rules does not have: its lines, to be completed. */
static bool write_new_head(const state *s, FILE *out, uint32_t pol)
{
    const char *name = s->pol[pol].name;
    char path[SHOWN_MAX + 4];
    shown(s->rules != NULL ? s->rules : "", path);
    fprintf(out, "\npolicy %s\n", name);
    if (s->rules != NULL)
        fprintf(out, "# %s is in the decision lines but not in %s: it needs source, namespaces or "
                "pods lines\n", name, path);
    else
        fprintf(out, "# %s needs its source, namespaces or pods lines (no --rules was given)\n", name);
    size_t n;
    item *v = records_of(s, pol, R_SRC, &n);
    if (v == NULL)
        return false;
    const char **texts = calloc(n + 1, sizeof *texts);
    if (texts == NULL) {
        free(v);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        texts[i] = v[i].text;
    if (n > 0)
        write_list_comment(out, "workloads seen", texts, n);
    free((void *)texts);
    free(v);
    return true;
}

static bool write_policy(state *s, FILE *out, uint32_t pol)
{
    const policy *p = &s->pol[pol];
    sugg_list l = { 0 };
    bool ok = suggest_policy(s, pol, &l);
    /* The default policy with no lines of its own: the file's leading comments first. */
    bool tail_first = pol == 0 && p->in_base && p->body_end <= p->body_start;
    if (ok && p->in_base)
        write_span(s, out, p->body_start, tail_first ? p->tail_end : p->body_end);
    else if (ok && pol != 0)
        ok = write_new_head(s, out, pol);
    ok = ok && write_entries(out, &l) && write_comments(s, out, pol, &l);
    if (ok && p->in_base && !tail_first)
        write_span(s, out, p->body_end, p->tail_end);
    sugg_free(&l);
    return ok;
}

/* Policies in the order they are written: default, those of --rules in its order, then
 * the others by name. NULL when memory runs out. */
static uint32_t *policy_order(const state *s)
{
    item *v = calloc(s->npol + 1, sizeof *v);
    uint32_t *order = calloc(s->npol + 1, sizeof *order);
    if (v == NULL || order == NULL) {
        free(v);
        free(order);
        return NULL;
    }
    size_t first_new = 1;
    while (first_new < s->npol && s->pol[first_new].in_base)
        first_new++;
    for (size_t i = 0; i < s->npol; i++)
        v[i] = (item){ s->pol[i].name, i }; /* count: the index */
    if (s->npol > first_new)
        qsort(v + first_new, s->npol - first_new, sizeof v[0], by_text);
    for (size_t i = 0; i < s->npol; i++)
        order[i] = (uint32_t)v[i].count;
    free(v);
    return order;
}

static void write_header(const state *s, FILE *out)
{
    char from[SHOWN_MAX + 4], rules[SHOWN_MAX + 4];
    shown(s->from != NULL ? s->from : "-", from);
    fprintf(out, "# egress-inspector suggest: %llu decision lines from %s\n",
            (unsigned long long)s->decisions, from);
    fprintf(out, "# allowed, and denied by name or address: allow lines (# seen N); denied "
            "fail-closed: comments only\n");
    if (s->rules != NULL) {
        shown(s->rules, rules);
        fprintf(out, "# the lines of %s are carried over as they are; each policy's new entries "
                "follow its own lines\n", rules);
    }
}

static void print_check_error(void *ctx, unsigned line, const char *message)
{
    (void)ctx;
    fprintf(stderr, "egress-inspector suggest: the suggestion's line %u: %s\n", line, message);
}

static bool print_checked_rules(const char *text, size_t len)
{
    unsigned errors = 0;
    ei_policy_set *set = ei_rules_parse(text, len, print_check_error, NULL, &errors);
    if (set == NULL) {
        fprintf(stderr, "egress-inspector suggest: the suggestion does not parse (%u errors): a bug, "
                "nothing printed\n", errors);
        return false;
    }
    ei_policy_set_free(set);
    fwrite(text, 1, len, stdout);
    return fflush(stdout) == 0;
}

static int write_rules(state *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    uint32_t *order = policy_order(s);
    bool ok = out != NULL && order != NULL;
    if (ok)
        write_header(s, out);
    for (size_t i = 0; ok && i < s->npol; i++)
        ok = write_policy(s, out, order[i]);
    free(order);
    if (out != NULL && fclose(out) != 0)
        ok = false;
    if (!ok || text == NULL) {
        free(text);
        fprintf(stderr, "egress-inspector suggest: out of memory\n");
        return 1;
    }
    int status = print_checked_rules(text, len) ? 0 : 1;
    free(text);
    return status;
}

/* ---- --format portarium ---- */

static void not_expressible(const state *s, uint32_t pol, const char *entry, const char *why)
{
    char text[SHOWN_MAX + 4];
    shown(entry, text);
    fprintf(stderr, "# portarium: policy %s: %s is not expressible (%s)\n", s->pol[pol].name, text,
            why);
}

/* The https:// URL for an allow entry of a rules file, or false with why. A bare name
 * allows ports 443 and 80: as a URL, 443 only (*narrowed). */
static bool entry_url(const char *entry, char *url, size_t size, const char **why, bool *narrowed)
{
    if (strncasecmp(entry, "https://", 8) == 0) {
        snprintf(url, size, "%s", entry);
        return true;
    }
    *why = "Portarium allows https:// URLs only";
    if (strstr(entry, "://") != NULL)
        return false;
    const char *colon = strchr(entry, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - entry) : strlen(entry);
    char host[EI_NAME_MAX + 4];
    ei_addr a;
    *why = "an address entry: Portarium allows https:// names only";
    if (entry[0] == '[' || hlen >= sizeof host || (colon != NULL && strchr(colon + 1, ':') != NULL) ||
        memchr(entry, '/', hlen) != NULL)
        return false;
    memcpy(host, entry, hlen);
    host[hlen] = '\0';
    if (ei_addr_parse(host, &a))
        return false;
    *why = "port 80: Portarium allows https:// only";
    if (colon != NULL && strcmp(colon + 1, "80") == 0)
        return false;
    *narrowed = *narrowed || colon == NULL;
    if (colon == NULL || strcmp(colon + 1, "443") == 0)
        snprintf(url, size, "https://%s", host);
    else
        snprintf(url, size, "https://%s:%s", host, colon + 1);
    return true;
}

/* Appends text to the JSON list (once: seen remembers). false: out of memory. */
static bool add_string(json_object *list, ei_map *seen, const char *text)
{
    uint32_t v;
    if (str_get(seen, text, &v))
        return true;
    json_object *str = json_object_new_string(text);
    if (str == NULL || json_object_array_add(list, str) != 0) {
        json_object_put(str);
        return false;
    }
    return str_set(seen, text, 1);
}

static bool add_entry_url(const state *s, uint32_t pol, json_object *list, ei_map *seen,
                          const char *entry, strlist *narrowed)
{
    char url[BASE_KEY_MAX];
    const char *why = "";
    bool narrow = false;
    if (!entry_url(entry, url, sizeof url, &why, &narrow)) {
        not_expressible(s, pol, entry, why);
        return true;
    }
    return add_string(list, seen, url) && (!narrow || strlist_add(narrowed, entry));
}

static bool add_sugg_url(const state *s, uint32_t pol, json_object *list, ei_map *seen, const sugg *g)
{
    char url[EI_NAME_MAX + 32];
    strlist none = { 0 };
    if (g->kind != R_NAME) {
        bool ok = add_entry_url(s, pol, list, seen, g->entry, &none);
        strlist_free(&none);
        return ok;
    }
    if (g->port == 0 && g->on80)
        not_expressible(s, pol, g->entry, g->on443 ? "its port 80 flows: Portarium allows https:// only"
                                                   : "seen on port 80 only: Portarium allows https:// only");
    if (g->port == 0 && !g->on443 && g->on80)
        return true;
    if (g->port != 0)
        snprintf(url, sizeof url, "https://%s%s:%u", g->wildcard ? "*." : "", g->name, g->port);
    else
        snprintf(url, sizeof url, "https://%s%s", g->wildcard ? "*." : "", g->name);
    return add_string(list, seen, url);
}

static json_object *allowlist(const state *s, uint32_t pol, const sugg_list *l)
{
    json_object *list = json_object_new_array();
    ei_map seen = { 0 };
    strlist narrowed = { 0 };
    bool ok = list != NULL;
    const strlist *allows = &s->pol[pol].allows;
    for (size_t i = 0; ok && i < allows->n; i++)
        ok = add_entry_url(s, pol, list, &seen, allows->v[i], &narrowed);
    for (size_t i = 0; ok && i < l->n; i++)
        if (l->v[i].fate == KEEP)
            ok = add_sugg_url(s, pol, list, &seen, &l->v[i]);
    ei_map_free(&seen);
    if (narrowed.n > 0) {
        char label[POLICY_NAME_MAX + 160];
        snprintf(label, sizeof label, "portarium: policy %s: as https:// URLs these names allow "
                 "port 443 only, not 80 (a bare name in a rules file allows both)", s->pol[pol].name);
        write_list_comment(stderr, label, (const char *const *)narrowed.v, narrowed.n);
    }
    strlist_free(&narrowed);
    if (!ok) {
        json_object_put(list);
        return NULL;
    }
    return list;
}

/* Each workload address seen goes to the policy that saw it most (a CIDR is one
 * policy's). */
static bool assign_workloads(state *s)
{
    char key[EI_ADDR_STRLEN + 8];
    for (size_t i = 0; i < s->nrec; i++) {
        const record *r = &s->rec[i];
        uint32_t best;
        if (r->kind != R_SRC)
            continue;
        snprintf(key, sizeof key, "S" SEP "%s", r->text);
        if (str_get(&s->winners, key, &best) && s->rec[best].count >= r->count)
            continue;
        if (!str_set(&s->winners, key, (uint32_t)i))
            return false;
    }
    return true;
}

/* Host routes for the workloads seen under pol that are no other policy's. */
static bool seen_sources(const state *s, uint32_t pol, json_object *list, ei_map *seen)
{
    char key[EI_ADDR_STRLEN + 16], route[EI_ADDR_STRLEN + 8];
    for (uint32_t i = s->pol[pol].last; i != NO_INDEX; i = s->rec[i].next) {
        const record *r = &s->rec[i];
        uint32_t v;
        if (r->kind != R_SRC)
            continue;
        snprintf(key, sizeof key, "S" SEP "%s", r->text);
        snprintf(route, sizeof route, "%s/%u", r->text, strchr(r->text, ':') != NULL ? 128u : 32u);
        v = i;
        bool mine = !str_get(&s->winners, key, &v) || v == i;
        const char *other = mine ? NULL : s->pol[s->rec[v].policy].name;
        snprintf(key, sizeof key, "B" SEP "%s", route);
        if (mine && str_get(&s->map, key, &v))
            other = s->pol[v].name;
        if (other != NULL) {
            fprintf(stderr, "# portarium: policy %s: workload %s is a source of policy %s (a "
                    "source has one policy): its flows under %s are judged by %s\n",
                    s->pol[pol].name, r->text, other, s->pol[pol].name, other);
            continue;
        }
        if (!add_string(list, seen, route))
            return false;
    }
    return true;
}

static json_object *sources_of(const state *s, uint32_t pol)
{
    const policy *p = &s->pol[pol];
    json_object *list = json_object_new_array();
    ei_map seen = { 0 };
    bool ok = list != NULL;
    for (size_t i = 0; ok && i < p->sources.n; i++)
        ok = add_string(list, &seen, p->sources.v[i]);
    if (p->selects && p->sources.n > 0)
        fprintf(stderr, "# portarium: policy %s: its namespaces and pods lines have no Portarium "
                "form: only its sources are kept\n", p->name);
    if (ok && p->sources.n == 0) {
        fprintf(stderr, "# portarium: policy %s: %s; its sources are the workload addresses seen "
                "(host routes)\n", p->name,
                p->selects ? "it selects pods by labels, which Portarium cannot say"
                           : p->in_base ? "it has no source lines" : "no --rules names its sources");
        ok = seen_sources(s, pol, list, &seen);
    }
    ei_map_free(&seen);
    if (!ok) {
        json_object_put(list);
        return NULL;
    }
    return list;
}

/* Adds value under key; the value is taken either way (freed when not added, or when
 * ok is already false). */
static bool add_field(json_object *obj, const char *key, json_object *value, bool ok)
{
    if (!ok || value == NULL || json_object_object_add(obj, key, value) != 0) {
        json_object_put(value);
        return false;
    }
    return true;
}

static json_object *document(const char *name, json_object *sources, json_object *allow)
{
    json_object *doc = json_object_new_object(), *meta = json_object_new_object(),
                *spec = json_object_new_object();
    bool ok = doc != NULL;
    ok = add_field(doc, "kind", json_object_new_string("MachineExecutionPolicy"), ok);
    ok = add_field(meta, "name", json_object_new_string(name), ok && meta != NULL);
    if (sources != NULL)
        ok = add_field(spec, "sources", sources, ok && spec != NULL);
    ok = add_field(spec, "egressAllowlist", allow, ok && spec != NULL);
    ok = add_field(doc, "metadata", meta, ok);
    ok = add_field(doc, "spec", spec, ok);
    if (!ok) {
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

/* Adds pol's document to docs, unless it would be empty (reported). false: out of memory. */
static bool add_document(state *s, uint32_t pol, json_object *docs)
{
    sugg_list l = { 0 };
    if (!suggest_policy(s, pol, &l)) {
        sugg_free(&l);
        return false;
    }
    json_object *allow = allowlist(s, pol, &l);
    sugg_free(&l);
    json_object *sources = pol != 0 && allow != NULL ? sources_of(s, pol) : NULL;
    if (allow == NULL || (pol != 0 && sources == NULL)) {
        json_object_put(allow);
        return false;
    }
    const char *why = json_object_array_length(allow) == 0 ? "nothing to allow that Portarium can say"
                      : pol != 0 && json_object_array_length(sources) == 0 ? "no sources"
                                                                            : NULL;
    if (why != NULL) {
        fprintf(stderr, "# portarium: policy %s: no document (%s)%s\n", s->pol[pol].name, why,
                pol != 0 ? ": its workloads fall to the default policy" : "");
        json_object_put(allow);
        json_object_put(sources);
        return true;
    }
    const char *name = pol == 0 && s->default_doc != NULL ? s->default_doc : s->pol[pol].name;
    json_object *doc = document(name, sources, allow);
    return doc != NULL && json_object_array_add(docs, doc) == 0;
}

static int write_portarium(state *s)
{
    json_object *docs = json_object_new_array();
    uint32_t *order = policy_order(s);
    bool ok = docs != NULL && order != NULL && assign_workloads(s);
    for (size_t i = 0; ok && i < s->npol; i++)
        ok = add_document(s, order[i], docs);
    free(order);
    const char *text = ok ? json_object_to_json_string_ext(docs, JSON_C_TO_STRING_PRETTY |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;
    if (text == NULL) {
        json_object_put(docs);
        fprintf(stderr, "egress-inspector suggest: out of memory\n");
        return 1;
    }
    unsigned errors = 0;
    ei_policy_set *set = ei_policy_json_parse("suggestion", text, strlen(text), stderr, &errors);
    int status = 0;
    if (set == NULL) {
        fprintf(stderr, "egress-inspector suggest: the suggestion does not parse (%u errors): a bug, "
                "nothing printed\n", errors);
        status = 1;
    } else {
        ei_policy_set_free(set);
        printf("%s\n", text);
    }
    json_object_put(docs);
    return status;
}

/* ---- the command ---- */

static bool psl_sane(const psl_ctx_t *p)
{
    return p != NULL && psl_is_public_suffix(p, "github.io") && psl_is_public_suffix(p, "co.uk") &&
           !psl_is_public_suffix(p, "example.co.uk");
}

/* The newest list Debian has (publicsuffix's file, else libpsl's own); a list that does
 * not know github.io and co.uk is no list: then names stay exact. */
static void load_psl(state *s)
{
    s->psl_owned = psl_latest(NULL);
    if (!psl_sane(s->psl_owned)) {
        psl_free(s->psl_owned);
        s->psl_owned = psl_load_file(PSL_DAFSA);
    }
    if (psl_sane(s->psl_owned)) {
        s->psl = s->psl_owned;
        return;
    }
    psl_free(s->psl_owned);
    s->psl_owned = NULL;
    if (psl_sane(psl_builtin())) {
        s->psl = psl_builtin();
        return;
    }
    fprintf(stderr, "# note: no usable Public Suffix List (Debian's publicsuffix): names stay exact\n");
}

static bool parse_count(const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || v < min || v > max) {
        fprintf(stderr, "egress-inspector suggest: %s: '%s' is not a number from %llu to %llu\n", opt,
                arg, (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

/* -1 to go on, else the exit status. */
static int parse_options(state *s, int argc, char **argv)
{
    enum { OPT_FROM = 600, OPT_RULES, OPT_FORMAT, OPT_MIN_COUNT, OPT_MIN_SIBLINGS };
    static const struct option opts[] = {
        { "from", required_argument, NULL, OPT_FROM },
        { "rules", required_argument, NULL, OPT_RULES },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "min-count", required_argument, NULL, OPT_MIN_COUNT },
        { "min-siblings", required_argument, NULL, OPT_MIN_SIBLINGS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FROM: s->from = optarg; break;
        case OPT_RULES: s->rules = optarg; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "rules") != 0 && strcmp(optarg, "portarium") != 0) {
                fprintf(stderr, "egress-inspector suggest: --format: '%s' is neither rules nor "
                        "portarium\n", optarg);
                return 2;
            }
            s->portarium = strcmp(optarg, "portarium") == 0;
            break;
        case OPT_MIN_COUNT:
            if (!parse_count("--min-count", optarg, 1, INT64_MAX, &s->min_count))
                return 2;
            break;
        case OPT_MIN_SIBLINGS:
            if (!parse_count("--min-siblings", optarg, 0, 1000000, &s->min_siblings))
                return 2;
            if (s->min_siblings == 1) {
                fprintf(stderr, "egress-inspector suggest: --min-siblings: 0 (never) or 2 or more\n");
                return 2;
            }
            break;
        case 'h': fputs(suggest_usage, stdout); return 0;
        default: fputs(suggest_usage, stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "egress-inspector suggest: unexpected argument '%s'\n\n%s", argv[optind],
                suggest_usage);
        return 2;
    }
    return -1;
}

static void print_summary(const state *s)
{
    fprintf(stderr, "# read %llu decision lines, skipped %llu other lines", (unsigned long long)s->decisions,
            (unsigned long long)s->skipped);
    if (s->too_long > 0)
        fprintf(stderr, " (%llu longer than 1 MiB)", (unsigned long long)s->too_long);
    fputc('\n', stderr);
    const struct {
        uint64_t n;
        const char *what;
    } notes[] = {
        { s->unattributed, "aggregated denies with no earlier line of their kind or workload "
                           "to name their policy" },
        { s->many_kinds, "denies of kinds past the audit's table (many_kinds), which name nothing" },
        { s->bad_policy, "decisions whose policy is no policy name" },
        { s->bad_rule, "allowed flows whose rule is no allow entry (e.g. ClusterNetworkPolicy labels)" },
        { s->no_port, "flows by name with no port" },
        { s->over_keys, "decisions past the limit of distinct entries" },
    };
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++)
        if (notes[i].n > 0)
            fprintf(stderr, "# note: %llu %s: not suggested\n", (unsigned long long)notes[i].n,
                    notes[i].what);
}

static void state_free(state *s)
{
    for (size_t i = 0; i < s->npol; i++) {
        free(s->pol[i].name);
        strlist_free(&s->pol[i].sources);
        strlist_free(&s->pol[i].allows);
    }
    free(s->pol);
    for (size_t i = 0; i < s->nrec; i++) {
        free(s->rec[i].text);
        free(s->rec[i].via);
    }
    free(s->rec);
    for (size_t i = 0; i < s->nkinds; i++)
        free(s->kinds[i].host);
    free(s->kinds);
    ei_map_free(&s->map);
    ei_map_free(&s->winners);
    free(s->base);
    free(s->default_doc);
    if (s->tok != NULL)
        json_tokener_free(s->tok);
    psl_free(s->psl_owned);
}

static int run(state *s)
{
    if (policy_index(s, "default", s->rules != NULL) != 0)
        return 1;
    if (s->rules != NULL) {
        int status = load_base(s);
        if (status != 0)
            return status;
    }
    bool from_stdin = s->from == NULL || strcmp(s->from, "-") == 0;
    FILE *in = from_stdin ? stdin : fopen(s->from, "r");
    if (in == NULL) {
        fprintf(stderr, "egress-inspector suggest: --from %s: %s\n", s->from, strerror(errno));
        return 2;
    }
    s->tok = json_tokener_new();
    int status = s->tok != NULL ? read_decisions(s, in, from_stdin ? "standard input" : s->from) : 1;
    if (!from_stdin)
        fclose(in);
    if (status != 0 || s->oom)
        return status != 0 ? status : 1;
    load_psl(s);
    status = s->portarium ? write_portarium(s) : write_rules(s);
    print_summary(s);
    return s->oom ? 1 : status;
}

int ei_cmd_suggest(int argc, char **argv)
{
    state s;
    memset(&s, 0, sizeof s);
    s.min_count = 1;
    s.min_siblings = 3;
    int status = parse_options(&s, argc, argv);
    if (status < 0) {
        status = run(&s);
        if (s.oom)
            fprintf(stderr, "egress-inspector suggest: out of memory\n");
    }
    state_free(&s);
    return status;
}
