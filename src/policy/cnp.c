/* ClusterNetworkPolicy documents as policy input: network-policy-api's
 * policy.networking.k8s.io/v1alpha2, with the experimental domainNames peer of NPEP-133.
 *
 * Accepted: YAML or JSON (libyaml reads both), one or more documents separated by `---`,
 * each a ClusterNetworkPolicy, a ClusterNetworkPolicyList, or a `kind: List` of them. As
 * in portarium.c, each policy is translated into the rules file's lines, which
 * ei_rules_parse then reads, so validation and reload behave exactly as for a rules file;
 * every error names the YAML line it came from, and a decision names the entry that
 * allowed it as POLICY/RULE (the rule's name, else egress[i]) with the line of its domain
 * name or network.
 *
 *   metadata.name                  policy NAME
 *   subject.namespaces SEL         namespaces SEL ('*' when empty: every namespace)
 *   subject.pods                   namespaces SEL, when namespaceSelector is not empty;
 *                                  pods SEL ('*' when empty, so that the policy selects)
 *   Accept, domainNames: N         allow N:PORT for each TCP and UDP destination port,
 *                                  once each (N on UDP 443 is QUIC, judged like TLS);
 *                                  without protocols, allow N: ports 443 and 80
 *   Accept, networks: CIDR         allow CIDR:PORT ([CIDR]:PORT for IPv6); without
 *                                  protocols, allow CIDR: every port
 * A LabelSelector becomes the form kubectl -l takes, requirements joined by commas:
 * matchLabels k=v; In k in (a,b); NotIn k notin (a,b); Exists k; DoesNotExist !k. A
 * value that YAML reads as a number or a boolean is taken as written.
 *
 * The daemon adds up the Accept rules of every policy that selects a workload and
 * denies the rest: it has no precedence. What it cannot enforce is never dropped in
 * silence.
 *
 * Refused (an error: the file yields no set, so a reload keeps the old rules):
 *   - an apiVersion other than policy.networking.k8s.io/v1alpha2 (v1 for a List), a kind
 *     other than those above; metadata.name missing, not a rules policy name, or
 *     "default" (the rules' name for the policy of workloads nothing else selects)
 *   - a subject missing, or with neither or both of namespaces and pods; pods without
 *     podSelector
 *   - Deny and Pass rules: the daemon cannot give them precedence over other Accept
 *     rules, so accepting them would allow what the author denied. The one exception is
 *     NPEP-133's "Accept domainNames, then a lower-precedence deny-all": a Deny whose
 *     peers are only networks covering everything (0.0.0.0/0, ::/0), without protocols,
 *     after every Accept rule of its policy. The daemon does that anyway; a note says so.
 *   - a peer or a protocol with none or several fields; a domain name outside the API's
 *     pattern; a bad CIDR, port or range; a label key or value outside the selector
 *     grammar's characters; more than 25 rules, peers, names, networks or protocols (the
 *     API's bounds); a rule name over 100 characters; a tier other than Admin or
 *     Baseline, a priority outside 0-1000
 *   - a field the API does not have (a misspelt matchLabels would otherwise select every
 *     pod), a key given twice, a value of the wrong shape (the API server's strict
 *     decoding refuses them too).
 * Warned about (FILE:LINE: warning: ..., not counted; the set still loads):
 *   - spec.tier and spec.priority are not used: Accept rules add up (said once a file)
 *   - a deny-all that takes precedence over another policy's Accept rules (a lower or
 *     equal tier and priority): where their subjects overlap a cluster would deny what
 *     the daemon allows, since the daemon adds Accept rules up
 *   - namespaces, pods and nodes peers of an Accept rule are not enforced: traffic to
 *     them is denied unless another entry allows it (fail closed)
 *   - sctp, destinationNamedPort and port ranges are not enforced: the rule allows
 *     nothing on them; an Accept rule left with nothing the daemon can enforce
 *   - a port given for TCP or for UDP alone in a rule with networks: address entries
 *     know no protocol, so that port is open to both
 *   - ingress rules are ignored: the daemon judges egress.
 * Also by design: a workload that no policy selects gets the empty default policy, as in
 * a rules file (denied everything, where a cluster without other policies would allow
 * it); a domain name without protocols is allowed on 443 and 80 only, the ports whose
 * names the daemon reads. */
#include "egress_inspector/cnp.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "policy/policy_impl.h"

enum {
    MAX_ITEMS = 25,           /* rules, peers, names, networks, protocols: the API's bounds */
    MAX_POLICIES = 4096,      /* the rules file's bound */
    MAX_ENTRIES = 1000000,    /* the rules file's bound, kept while generating */
    MAX_FIELDS = 512,         /* keys of one mapping, so that duplicates are found in bounded time */
    MAX_RULE_NAME = 100,
    MAX_POLICY_NAME = 253,
    MAX_CIDR = 43,            /* the API's MaxLength */
    SELECTOR_MAX = 2048,      /* well inside the rules file's 4096-byte line */
    QUOTE_MAX = 80,           /* how much of an offending value a message repeats */
};

#define NO_LABEL UINT32_MAX

static const char API_VERSION[] = "policy.networking.k8s.io/v1alpha2";

typedef struct {
    unsigned yaml_line;
    uint32_t label; /* index into labels, or NO_LABEL */
} line_info;

/* What the precedence check needs of each policy. */
typedef struct {
    char name[MAX_POLICY_NAME + 1];
    unsigned rank;          /* tier * 1001 + priority: lower takes precedence */
    unsigned accept_line;   /* its first Accept rule; 0: none */
    unsigned deny_all_line; /* its deny-all; 0: none */
} policy_info;

typedef struct {
    const char *file;
    FILE *err;
    yaml_document_t *doc; /* the document being read */
    FILE *out;            /* the generated rules text */
    char *text;
    size_t len;
    line_info *lines;     /* [n]: generated line n (1-based; [0] unused) */
    size_t nlines, caplines;
    char **labels;        /* "POLICY/RULE", one per rule */
    size_t nlabels, caplabels;
    policy_info *policies;
    size_t npolicies, cappolicies;
    size_t entries;
    unsigned errors;
    bool emitting;        /* false while a document whose name was refused is checked */
    bool said_tier;
    bool stop;            /* out of memory or past a bound: nothing more is generated */
} builder;

/* ---- messages ---- */

static void say(builder *b, unsigned line, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* kind: "" for an error (counted), "warning: " or "note: ". One line each. */
static void say(builder *b, unsigned line, const char *kind, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized): va_start is right above
    va_end(ap);
    for (char *c = msg; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?'; /* a value quoted from the file stays on its line */
    fprintf(b->err, "%s:%u: %s%s\n", b->file, line, kind, msg);
    if (kind[0] == '\0')
        b->errors++;
}

static void out_of_memory(builder *b, unsigned line)
{
    if (!b->stop)
        say(b, line, "", "out of memory");
    b->stop = true;
    b->emitting = false;
}

static unsigned line_of(const yaml_node_t *n)
{
    return n != NULL ? (unsigned)n->start_mark.line + 1 : 0;
}

/* The length to print of a value of n bytes, for "%.*s". */
static int quote(size_t n)
{
    return n < QUOTE_MAX ? (int)n : QUOTE_MAX;
}

/* ---- nodes ---- */

static yaml_node_t *node_at(const builder *b, int index)
{
    return yaml_document_get_node(b->doc, index);
}

/* A scalar's text, or NULL when n is no scalar (or one holding a NUL byte). */
static const char *text_of(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE ||
        memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL)
        return NULL;
    return (const char *)n->data.scalar.value;
}

/* YAML's null: an empty or ~ or null plain scalar. Kubernetes reads it as a field not set. */
static bool is_null(const yaml_node_t *n)
{
    if (n == NULL)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *t = text_of(n);
    return t != NULL && (t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
                         strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0);
}

static bool is_text(const yaml_node_t *n, const char *s)
{
    const char *t = text_of(n);
    return t != NULL && strcmp(t, s) == 0;
}

static size_t pair_count(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* Whether n is a mapping whose keys are strings among allowed (NULL-terminated; NULL:
 * any), each given once. Every problem is reported, against what. */
static bool check_fields(builder *b, const yaml_node_t *n, const char *what,
                         const char *const *allowed)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE) {
        say(b, line_of(n), "", "%s must be a mapping", what);
        return false;
    }
    size_t count = pair_count(n);
    if (count > MAX_FIELDS) {
        say(b, line_of(n), "", "%s has more than %d fields", what, MAX_FIELDS);
        return false;
    }
    bool ok = true;
    const yaml_node_pair_t *pairs = n->data.mapping.pairs.start;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *key = node_at(b, pairs[i].key);
        const char *k = text_of(key);
        if (k == NULL) {
            say(b, line_of(key), "", "%s: a key that is not a string", what);
            ok = false;
            continue;
        }
        bool known = allowed == NULL;
        for (size_t j = 0; !known && allowed[j] != NULL; j++)
            known = strcmp(k, allowed[j]) == 0;
        if (!known) {
            say(b, line_of(key), "", "unknown field '%.*s' in %s", quote(strlen(k)), k, what);
            ok = false;
        }
        for (size_t j = 0; j < i; j++)
            if (is_text(node_at(b, pairs[j].key), k)) {
                say(b, line_of(key), "", "'%.*s' given twice in %s", quote(strlen(k)), k, what);
                ok = false;
                break;
            }
    }
    return ok;
}

/* The value of key in mapping n, NULL when absent or null (or n is no mapping). */
static yaml_node_t *field(const builder *b, const yaml_node_t *n, const char *key)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return NULL;
    size_t count = pair_count(n);
    const yaml_node_pair_t *pairs = n->data.mapping.pairs.start;
    for (size_t i = 0; i < count; i++)
        if (is_text(node_at(b, pairs[i].key), key)) {
            yaml_node_t *v = node_at(b, pairs[i].value);
            return is_null(v) ? NULL : v;
        }
    return NULL;
}

/* The line of key in mapping n (a block collection starts at its first item, a line
 * below). */
static unsigned key_line(const builder *b, const yaml_node_t *n, const char *key)
{
    size_t count = pair_count(n);
    const yaml_node_pair_t *pairs = n->data.mapping.pairs.start;
    for (size_t i = 0; i < count; i++)
        if (is_text(node_at(b, pairs[i].key), key))
            return line_of(node_at(b, pairs[i].key));
    return line_of(n);
}

/* Whether n is a sequence of min to max items; *count receives its length (0 when it is
 * none). where: the line for a missing n. */
static bool sequence(builder *b, const yaml_node_t *n, unsigned where, const char *what,
                     size_t min, size_t max, size_t *count)
{
    *count = 0;
    if (n == NULL || n->type != YAML_SEQUENCE_NODE) {
        say(b, n != NULL ? line_of(n) : where, "", "%s must be a list", what);
        return false;
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (len < min || len > max) {
        if (len < min)
            say(b, line_of(n), "", "%s needs at least %zu item%s", what, min, min == 1 ? "" : "s");
        else
            say(b, line_of(n), "", "%s has more than %zu items%s", what, max,
                max == MAX_ITEMS ? " (the API's bound)" : "");
        return false;
    }
    *count = len;
    return true;
}

static yaml_node_t *item(const builder *b, const yaml_node_t *seq, size_t i)
{
    return node_at(b, seq->data.sequence.items.start[i]);
}

/* A string field: NULL, with an error, when it is not one. */
static const char *string_field(builder *b, const yaml_node_t *n, const char *what)
{
    const char *t = text_of(n);
    if (t == NULL)
        say(b, line_of(n), "", "%s must be a string", what);
    return t;
}

/* ---- generated lines ---- */

static uint32_t add_label(builder *b, unsigned line, const char *policy, const char *rule)
{
    size_t cap = b->caplabels;
    char **labels = ei_grow(b->labels, sizeof *labels, b->nlabels, &cap, 16);
    if (labels == NULL) {
        out_of_memory(b, line);
        return NO_LABEL;
    }
    b->labels = labels;
    b->caplabels = cap;
    size_t n = strlen(policy) + 1 + strlen(rule) + 1;
    char *label = malloc(n);
    if (label == NULL) {
        out_of_memory(b, line);
        return NO_LABEL;
    }
    snprintf(label, n, "%s/%s", policy, rule);
    b->labels[b->nlabels] = label;
    return (uint32_t)b->nlabels++;
}

static void emit(builder *b, unsigned yaml_line, uint32_t label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One rules line, remembered with the YAML line (and the rule) it came from. */
static void emit(builder *b, unsigned yaml_line, uint32_t label, const char *fmt, ...)
{
    if (!b->emitting)
        return;
    size_t cap = b->caplines;
    line_info *lines = ei_grow(b->lines, sizeof *lines, b->nlines + 1, &cap, 64);
    if (lines == NULL) {
        out_of_memory(b, yaml_line);
        return;
    }
    b->lines = lines;
    b->caplines = cap;
    b->nlines++;
    b->lines[b->nlines] = (line_info){ yaml_line, label };
    va_list ap;
    va_start(ap, fmt);
    vfprintf(b->out, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized): va_start is right above
    va_end(ap);
    fputc('\n', b->out);
}

/* An allow line: counted against the rules file's bound, which stops the generation. */
static void emit_allow(builder *b, unsigned yaml_line, uint32_t label, const char *entry, uint16_t port,
                       bool brackets)
{
    if (!b->emitting)
        return;
    if (b->entries >= MAX_ENTRIES) {
        say(b, yaml_line, "", "more than %d allow entries", MAX_ENTRIES);
        b->emitting = false;
        b->stop = true;
        return;
    }
    b->entries++;
    if (port == 0)
        emit(b, yaml_line, label, "allow %s", entry);
    else if (brackets)
        emit(b, yaml_line, label, "allow [%s]:%u", entry, port);
    else
        emit(b, yaml_line, label, "allow %s:%u", entry, port);
}

/* ---- label selectors ---- */

typedef struct {
    char s[SELECTOR_MAX];
    size_t n;
    bool overflow;
} text_buf;

static void put(text_buf *t, const char *s)
{
    size_t n = strlen(s);
    if (t->overflow || n >= sizeof t->s - t->n) {
        t->overflow = true;
        return;
    }
    memcpy(t->s + t->n, s, n + 1);
    t->n += n;
}

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The characters a label key ([prefix/]name) or value may hold; the selector parser
 * checks the rest (lengths, ends). Nothing else reaches the rules line: a ',', a space or
 * a '#' in a value would change the selector. */
static bool label_chars(const char *s, bool key)
{
    if (key && s[0] == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!alnum(*s) && *s != '-' && *s != '_' && *s != '.' && !(key && *s == '/'))
            return false;
    return true;
}

static bool label_or_error(builder *b, const yaml_node_t *n, bool key)
{
    const char *t = string_field(b, n, key ? "a label key" : "a label value");
    if (t == NULL)
        return false;
    if (!label_chars(t, key)) {
        say(b, line_of(n), "", "bad label %s '%.*s' (letters, digits, '-', '_', '.'%s)",
            key ? "key" : "value", quote(strlen(t)), t, key ? ", one '/' after a prefix" : "");
        return false;
    }
    return true;
}

static void add_requirement(builder *b, const yaml_node_t *e, text_buf *t)
{
    static const char *const fields[] = { "key", "operator", "values", NULL };
    if (!check_fields(b, e, "a matchExpressions item", fields))
        return;
    const yaml_node_t *key = field(b, e, "key"), *op = field(b, e, "operator");
    const yaml_node_t *values = field(b, e, "values");
    if (key == NULL || op == NULL) {
        say(b, line_of(e), "", "a matchExpressions item needs key and operator");
        return;
    }
    if (!label_or_error(b, key, true))
        return;
    const char *o = string_field(b, op, "operator");
    bool in = is_text(op, "In"), notin = is_text(op, "NotIn");
    bool set = in || notin;
    if (o == NULL)
        return;
    if (!set && !is_text(op, "Exists") && !is_text(op, "DoesNotExist")) {
        say(b, line_of(op), "", "unknown operator '%.*s' (In, NotIn, Exists, DoesNotExist)",
            quote(strlen(o)), o);
        return;
    }
    size_t n = 0;
    if (set && !sequence(b, values, line_of(e), "values of In and NotIn", 1, SELECTOR_MAX, &n))
        return;
    if (!set && values != NULL && (values->type != YAML_SEQUENCE_NODE ||
                                   values->data.sequence.items.top != values->data.sequence.items.start)) {
        say(b, line_of(values), "", "%s takes no values", o);
        return;
    }
    if (t->n > 0)
        put(t, ",");
    if (is_text(op, "DoesNotExist"))
        put(t, "!");
    put(t, text_of(key));
    if (!set)
        return;
    put(t, in ? " in (" : " notin (");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *v = item(b, values, i);
        if (!label_or_error(b, v, false))
            return;
        if (i > 0)
            put(t, ",");
        put(t, text_of(v));
    }
    put(t, ")");
}

/* A LabelSelector (NULL or null: the empty one) in kubectl -l form, "" when it is empty.
 * false after an error. */
static bool selector(builder *b, const yaml_node_t *n, const char *what, text_buf *t)
{
    static const char *const fields[] = { "matchLabels", "matchExpressions", NULL };
    t->n = 0;
    t->s[0] = '\0';
    t->overflow = false;
    if (n == NULL)
        return true;
    unsigned before = b->errors;
    if (!check_fields(b, n, what, fields))
        return false;
    const yaml_node_t *labels = field(b, n, "matchLabels");
    if (labels != NULL && check_fields(b, labels, "matchLabels", NULL)) {
        const yaml_node_pair_t *pairs = labels->data.mapping.pairs.start;
        for (size_t i = 0; i < pair_count(labels); i++) {
            const yaml_node_t *k = node_at(b, pairs[i].key), *v = node_at(b, pairs[i].value);
            if (!label_or_error(b, k, true) || !label_or_error(b, v, false))
                continue;
            if (t->n > 0)
                put(t, ",");
            put(t, text_of(k));
            put(t, "=");
            put(t, text_of(v));
        }
    }
    const yaml_node_t *exprs = field(b, n, "matchExpressions");
    size_t count = 0;
    if (exprs != NULL && sequence(b, exprs, line_of(n), "matchExpressions", 0, SELECTOR_MAX, &count))
        for (size_t i = 0; i < count; i++)
            add_requirement(b, item(b, exprs, i), t);
    if (t->overflow)
        say(b, line_of(n), "", "%s is longer than %d bytes as a selector", what, SELECTOR_MAX - 1);
    return b->errors == before;
}

static void emit_selector(builder *b, const yaml_node_t *n, const char *keyword, const text_buf *t)
{
    emit(b, line_of(n), NO_LABEL, "%s %s", keyword, t->n > 0 ? t->s : "*");
}

/* subject: exactly one of namespaces and pods. */
static void add_subject(builder *b, const yaml_node_t *spec)
{
    static const char *const fields[] = { "namespaces", "pods", NULL };
    static const char *const pod_fields[] = { "namespaceSelector", "podSelector", NULL };
    const yaml_node_t *subject = field(b, spec, "subject");
    if (subject == NULL) {
        say(b, line_of(spec), "", "spec.subject is missing");
        return;
    }
    if (!check_fields(b, subject, "spec.subject", fields))
        return;
    const yaml_node_t *ns = field(b, subject, "namespaces"), *pods = field(b, subject, "pods");
    if ((ns == NULL) == (pods == NULL)) {
        say(b, line_of(subject), "", "spec.subject needs exactly one of namespaces and pods");
        return;
    }
    text_buf t;
    if (ns != NULL) {
        if (selector(b, ns, "subject.namespaces", &t))
            emit_selector(b, ns, "namespaces", &t);
        return;
    }
    if (!check_fields(b, pods, "subject.pods", pod_fields))
        return;
    const yaml_node_t *nsel = field(b, pods, "namespaceSelector");
    const yaml_node_t *psel = field(b, pods, "podSelector");
    if (psel == NULL) { /* {} is a selector, of every pod; missing or null is none */
        say(b, line_of(pods), "", "subject.pods needs podSelector ({} for every pod)");
        return;
    }
    if (selector(b, nsel, "subject.pods.namespaceSelector", &t) && t.n > 0)
        emit_selector(b, nsel, "namespaces", &t);
    if (selector(b, psel, "subject.pods.podSelector", &t))
        emit_selector(b, psel, "pods", &t);
}

/* ---- ports ---- */

/* The destination ports of a rule's protocols: the tcp and udp numbers, each port once. */
typedef struct {
    bool given; /* the rule has protocols (without: names on 443 and 80, networks on any port) */
    size_t n;
    struct {
        uint16_t port;
        bool tcp, udp;
    } items[MAX_ITEMS];
} port_set;

/* 1-65535 in decimal digits, as YAML and JSON numbers are written. */
static bool port_value(const yaml_node_t *n, uint16_t *port)
{
    const char *t = text_of(n);
    size_t len = t != NULL ? strlen(t) : 0;
    uint32_t v = 0;
    bool ok = len >= 1 && len <= 5;
    for (size_t i = 0; ok && i < len; i++) {
        ok = t[i] >= '0' && t[i] <= '9';
        v = v * 10 + (uint32_t)(t[i] & 0x0f);
    }
    if (!ok || v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static bool port_or_error(builder *b, const yaml_node_t *n, unsigned where, const char *what,
                          uint16_t *port)
{
    if (n == NULL) {
        say(b, where, "", "%s is missing", what);
        return false;
    }
    if (port_value(n, port))
        return true;
    const char *t = text_of(n);
    say(b, line_of(n), "", "bad %s '%.*s' (1-65535)", what, quote(t != NULL ? strlen(t) : 0),
        t != NULL ? t : "");
    return false;
}

static void add_port(port_set *ps, uint16_t port, bool udp)
{
    size_t i = 0;
    while (i < ps->n && ps->items[i].port != port)
        i++;
    if (i == ps->n) {
        if (ps->n == MAX_ITEMS) /* never: one port per protocols item at most */
            return;
        ps->items[ps->n++].port = port;
        ps->items[i].tcp = ps->items[i].udp = false;
    }
    if (udp)
        ps->items[i].udp = true;
    else
        ps->items[i].tcp = true;
}

/* tcp, udp or sctp: {destinationPort: {number: N} or {range: {start: A, end: B}}}. A tcp
 * or udp number goes into ps; what is not enforced is warned about. */
static void add_protocol(builder *b, const yaml_node_t *proto, const char *name, port_set *ps)
{
    static const char *const fields[] = { "destinationPort", NULL };
    static const char *const port_fields[] = { "number", "range", NULL };
    static const char *const range_fields[] = { "start", "end", NULL };
    if (!check_fields(b, proto, name, fields))
        return;
    const yaml_node_t *dp = field(b, proto, "destinationPort");
    if (dp == NULL) {
        say(b, line_of(proto), "", "%s needs destinationPort", name);
        return;
    }
    if (!check_fields(b, dp, "destinationPort", port_fields))
        return;
    const yaml_node_t *number = field(b, dp, "number"), *range = field(b, dp, "range");
    if ((number == NULL) == (range == NULL)) {
        say(b, line_of(dp), "", "destinationPort needs exactly one of number and range");
        return;
    }
    uint16_t port = 0, start = 0, end = 0;
    if (number != NULL && !port_or_error(b, number, line_of(dp), "port", &port))
        return;
    if (range != NULL) {
        if (!check_fields(b, range, "range", range_fields) ||
            !port_or_error(b, field(b, range, "start"), line_of(range), "range start", &start) ||
            !port_or_error(b, field(b, range, "end"), line_of(range), "range end", &end))
            return;
        if (start >= end) {
            say(b, line_of(range), "", "range start %u must be less than its end %u", start, end);
            return;
        }
    }
    if (strcmp(name, "sctp") == 0) {
        say(b, line_of(proto), "warning: ", "sctp is not enforced: the rule allows nothing on SCTP");
        return;
    }
    if (range != NULL) {
        say(b, line_of(range), "warning: ",
            "port ranges are not enforced: the rule allows nothing on %s %u-%u", name, start, end);
        return;
    }
    add_port(ps, port, strcmp(name, "udp") == 0);
}

static void read_protocols(builder *b, const yaml_node_t *list, port_set *ps)
{
    static const char *const fields[] = { "tcp", "udp", "sctp", "destinationNamedPort", NULL };
    ps->given = true;
    size_t n;
    if (!sequence(b, list, 0, "protocols", 1, MAX_ITEMS, &n))
        return;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *p = item(b, list, i);
        if (!check_fields(b, p, "a protocols item", fields))
            continue;
        const yaml_node_t *set = NULL;
        size_t which = 0, count = 0;
        for (size_t f = 0; fields[f] != NULL; f++) {
            const yaml_node_t *v = field(b, p, fields[f]);
            if (v != NULL) {
                set = v;
                which = f;
                count++;
            }
        }
        if (count != 1) {
            say(b, line_of(p), "", "a protocols item needs exactly one of tcp, udp, sctp, destinationNamedPort");
            continue;
        }
        if (which < 3) {
            add_protocol(b, set, fields[which], ps);
            continue;
        }
        const char *named = string_field(b, set, "destinationNamedPort");
        if (named != NULL)
            say(b, line_of(set), "warning: ",
                "destinationNamedPort '%.*s' is not enforced: the rule allows nothing on it",
                quote(strlen(named)), named);
    }
}

/* ---- peers ---- */

static const char *const PEER_FIELDS[] = { "domainNames", "networks", "namespaces", "pods", "nodes", NULL };
enum { PEER_NAMES, PEER_NETWORKS };

/* The one field a peer sets (an index into PEER_FIELDS) and its value; -1, after an
 * error, when it sets none or several. */
static int peer_kind(builder *b, const yaml_node_t *peer, yaml_node_t **value)
{
    *value = NULL;
    if (!check_fields(b, peer, "a peer", PEER_FIELDS))
        return -1;
    int kind = -1, count = 0;
    for (int i = 0; PEER_FIELDS[i] != NULL; i++) {
        yaml_node_t *v = field(b, peer, PEER_FIELDS[i]);
        if (v != NULL) {
            kind = i;
            *value = v;
            count++;
        }
    }
    if (count != 1) {
        say(b, line_of(peer), "", "a peer needs exactly one of domainNames, networks, namespaces, pods, nodes");
        return -1;
    }
    return kind;
}

/* One label of the API's pattern: [a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])? */
static bool pattern_label(const char *s, size_t n)
{
    if (n == 0 || !alnum(s[0]) || !alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

/* The API's DomainName: ^(\*\.)?(LABEL\.)+LABEL\.?$. *len receives the length without
 * the trailing dot. */
static bool domain_ok(const char *s, size_t *len)
{
    size_t n = strlen(s);
    size_t i = n >= 2 && s[0] == '*' && s[1] == '.' ? 2 : 0;
    if (n > i && s[n - 1] == '.')
        n--;
    size_t labels = 0;
    for (;;) {
        const char *dot = memchr(s + i, '.', n - i);
        size_t l = dot != NULL ? (size_t)(dot - (s + i)) : n - i;
        if (!pattern_label(s + i, l))
            return false;
        labels++;
        if (dot == NULL)
            break;
        i += l + 1;
    }
    *len = n;
    return labels >= 2;
}

/* allow NAME[:PORT] for each name. Returns how many entries were generated. */
static size_t add_names(builder *b, const yaml_node_t *list, uint32_t label, const port_set *ps)
{
    size_t n, made = 0;
    if (!sequence(b, list, 0, "domainNames", 1, MAX_ITEMS, &n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *v = item(b, list, i);
        const char *t = string_field(b, v, "a domain name");
        size_t len = 0;
        char name[EI_NAME_MAX + 3]; /* "*." and the name */
        if (t == NULL)
            continue;
        if (!domain_ok(t, &len)) {
            say(b, line_of(v), "", "bad domain name '%.*s' (an optional '*.', then two or more labels "
                "of letters, digits, '-', '_', as the API's pattern has it)", quote(strlen(t)), t);
            continue;
        }
        if (len >= sizeof name) {
            say(b, line_of(v), "", "domain name '%.*s...' is longer than %d bytes", quote(len), t, EI_NAME_MAX);
            continue;
        }
        memcpy(name, t, len);
        name[len] = '\0';
        if (!ps->given)
            emit_allow(b, line_of(v), label, name, 0, false);
        for (size_t p = 0; p < ps->n; p++)
            emit_allow(b, line_of(v), label, name, ps->items[p].port, false);
        made += ps->given ? ps->n : 1;
    }
    return made;
}

/* An address and a prefix length, in the characters they are written with; the rules
 * parser checks the rest. */
static bool cidr_chars(const char *s)
{
    bool slash = false;
    for (; *s != '\0'; s++) {
        bool hex = (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F');
        if (*s == '/')
            slash = true;
        else if (!hex && *s != '.' && *s != ':')
            return false;
    }
    return slash;
}

/* allow CIDR[:PORT] ([CIDR]:PORT for IPv6) for each network. Returns how many entries
 * were generated. */
static size_t add_networks(builder *b, const yaml_node_t *list, uint32_t label, const port_set *ps)
{
    size_t n, made = 0;
    if (!sequence(b, list, 0, "networks", 1, MAX_ITEMS, &n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *v = item(b, list, i);
        const char *t = string_field(b, v, "a network");
        if (t == NULL)
            continue;
        if (strlen(t) > MAX_CIDR || !cidr_chars(t)) {
            say(b, line_of(v), "", "bad CIDR '%.*s' (an address and a prefix length: 10.0.0.0/8, fd00::/8)",
                quote(strlen(t)), t);
            continue;
        }
        bool v6 = strchr(t, ':') != NULL;
        if (!ps->given)
            emit_allow(b, line_of(v), label, t, 0, false);
        for (size_t p = 0; p < ps->n; p++)
            emit_allow(b, line_of(v), label, t, ps->items[p].port, v6);
        made += ps->given ? ps->n : 1;
    }
    return made;
}

/* Whether a networks list covers a whole family with each CIDR (0.0.0.0/0, ::/0). */
static bool covers_everything(const builder *b, const yaml_node_t *list)
{
    if (list->type != YAML_SEQUENCE_NODE)
        return false;
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    for (size_t i = 0; i < n; i++) {
        const char *t = text_of(item(b, list, i));
        ei_addr addr;
        unsigned bits = 1;
        if (t == NULL || ei_prefix_parse(t, strlen(t), &addr, &bits) != EI_PREFIX_OK || bits != 0)
            return false;
    }
    return n > 0;
}

/* ---- rules ---- */

typedef struct {
    const char *name;          /* the policy's */
    policy_info *info;         /* NULL: nothing to record in */
    size_t last_accept;        /* the index of its last Accept rule; SIZE_MAX: none */
    unsigned last_accept_line;
} policy_ctx;

typedef struct {
    size_t n;
    int kinds[MAX_ITEMS]; /* -1: a peer in error */
    yaml_node_t *values[MAX_ITEMS];
    bool ok;
} peer_list;

/* A Deny or a Pass: refused, but for a deny-all after every Accept rule (see the head). */
static void check_deny(builder *b, const policy_ctx *pc, const yaml_node_t *rule, const yaml_node_t *action,
                       const peer_list *peers, bool protocols, size_t index)
{
    if (is_text(action, "Pass")) {
        say(b, line_of(action), "", "Pass rules are refused: the daemon has no tiers to pass to; "
            "it adds up the Accept rules of every policy");
        return;
    }
    if (!peers->ok)
        return;
    bool all = !protocols;
    for (size_t i = 0; all && i < peers->n; i++)
        all = peers->kinds[i] == PEER_NETWORKS && covers_everything(b, peers->values[i]);
    if (!all) {
        say(b, line_of(action), "", "Deny rules are refused: the daemon adds up Accept rules and cannot "
            "give a Deny precedence over them, so it would allow what this one denies (only a deny-all, "
            "networks 0.0.0.0/0 and ::/0 without protocols, after every Accept rule, is accepted)");
        return;
    }
    if (pc->last_accept != SIZE_MAX && index < pc->last_accept) {
        say(b, line_of(action), "", "a deny-all before an Accept rule of its policy (line %u) takes "
            "precedence over it, which the daemon cannot honour: put it last", pc->last_accept_line);
        return;
    }
    say(b, line_of(rule), "note: ", "the deny-all is what the daemon does anyway: it allows only what "
        "Accept rules name");
    if (pc->info != NULL && pc->info->deny_all_line == 0)
        pc->info->deny_all_line = line_of(rule);
}

/* Warns when a port is given for TCP or UDP alone in a rule with networks. */
static void check_port_protocols(builder *b, const yaml_node_t *rule, const port_set *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->items[i].tcp != ps->items[i].udp) {
            say(b, line_of(rule), "warning: ", "port %u is given for %s only, but address entries know no "
                "protocol: the networks of this rule are open to TCP and UDP on it",
                ps->items[i].port, ps->items[i].tcp ? "TCP" : "UDP");
            return;
        }
}

static void add_accept(builder *b, const policy_ctx *pc, const yaml_node_t *rule, const char *rule_name,
                       const peer_list *peers, const yaml_node_t *protocols)
{
    port_set ps = { 0 };
    if (protocols != NULL)
        read_protocols(b, protocols, &ps);
    uint32_t label = add_label(b, line_of(rule), pc->name, rule_name);
    size_t made = 0;
    bool networks = false;
    for (size_t i = 0; i < peers->n; i++) {
        if (peers->kinds[i] == PEER_NAMES) {
            made += add_names(b, peers->values[i], label, &ps);
        } else if (peers->kinds[i] == PEER_NETWORKS) {
            networks = true;
            made += add_networks(b, peers->values[i], label, &ps);
        } else if (peers->kinds[i] >= 0) {
            say(b, line_of(peers->values[i]), "warning: ", "%s peers are not enforced: traffic to them is "
                "denied unless another entry allows it", PEER_FIELDS[peers->kinds[i]]);
        }
    }
    if (networks)
        check_port_protocols(b, rule, &ps);
    if (made == 0 && peers->ok)
        say(b, line_of(rule), "warning: ", "the Accept rule '%s/%s' allows nothing the daemon can enforce",
            pc->name, rule_name);
    if (pc->info != NULL && pc->info->accept_line == 0)
        pc->info->accept_line = line_of(rule);
}

static void add_rule(builder *b, const policy_ctx *pc, const yaml_node_t *rule, size_t index)
{
    static const char *const fields[] = { "name", "action", "to", "protocols", NULL };
    if (!check_fields(b, rule, "an egress rule", fields))
        return;
    char fallback[32];
    snprintf(fallback, sizeof fallback, "egress[%zu]", index);
    const char *rule_name = fallback;
    const yaml_node_t *name = field(b, rule, "name");
    if (name != NULL) {
        const char *t = string_field(b, name, "a rule's name");
        if (t == NULL)
            return;
        if (strlen(t) > MAX_RULE_NAME) {
            say(b, line_of(name), "", "a rule's name is longer than %d characters", MAX_RULE_NAME);
            return;
        }
        if (t[0] != '\0')
            rule_name = t;
    }
    const yaml_node_t *action = field(b, rule, "action");
    const char *a = action != NULL ? string_field(b, action, "action") : NULL;
    if (action == NULL)
        say(b, line_of(rule), "", "an egress rule needs action (Accept, Deny, Pass)");
    if (a == NULL)
        return;
    if (!is_text(action, "Accept") && !is_text(action, "Deny") && !is_text(action, "Pass")) {
        say(b, line_of(action), "", "unknown action '%.*s' (Accept, Deny, Pass)", quote(strlen(a)), a);
        return;
    }
    const yaml_node_t *to = field(b, rule, "to");
    peer_list peers = { .ok = true };
    if (!sequence(b, to, line_of(rule), "to", 1, MAX_ITEMS, &peers.n))
        return;
    for (size_t i = 0; i < peers.n; i++) {
        peers.kinds[i] = peer_kind(b, item(b, to, i), &peers.values[i]);
        peers.ok = peers.ok && peers.kinds[i] >= 0;
    }
    const yaml_node_t *protocols = field(b, rule, "protocols");
    if (is_text(action, "Accept"))
        add_accept(b, pc, rule, rule_name, &peers, protocols);
    else
        check_deny(b, pc, rule, action, &peers, protocols != NULL, index);
}

/* ---- policies ---- */

/* tier and priority, checked and ranked (lower takes precedence), and said once a file
 * to be unused. */
static unsigned read_rank(builder *b, const yaml_node_t *spec)
{
    const yaml_node_t *tier = field(b, spec, "tier"), *prio = field(b, spec, "priority");
    unsigned rank = 0;
    if (tier != NULL && is_text(tier, "Baseline")) {
        rank = 1001;
    } else if (tier != NULL && !is_text(tier, "Admin")) {
        const char *t = text_of(tier);
        say(b, line_of(tier), "", "unknown tier '%.*s' (Admin, Baseline)", quote(t != NULL ? strlen(t) : 0),
            t != NULL ? t : "");
    }
    if (prio != NULL) {
        const char *t = text_of(prio);
        size_t len = t != NULL ? strlen(t) : 0;
        unsigned v = 0;
        bool ok = len >= 1 && len <= 4;
        for (size_t i = 0; ok && i < len; i++) {
            ok = t[i] >= '0' && t[i] <= '9';
            v = v * 10 + (unsigned)(t[i] & 0x0f);
        }
        if (!ok || v > 1000)
            say(b, line_of(prio), "", "bad priority '%.*s' (0-1000)", quote(len), t != NULL ? t : "");
        else
            rank += v;
    }
    if ((tier != NULL || prio != NULL) && !b->said_tier) {
        b->said_tier = true;
        say(b, line_of(tier != NULL ? tier : prio), "warning: ", "spec.tier and spec.priority are not used: "
            "the daemon adds up the Accept rules of every policy that selects a workload (said once a file)");
    }
    return rank;
}

/* metadata.name as a policy name: NULL, after an error, when it cannot be one. */
static const char *policy_name(builder *b, const yaml_node_t *doc)
{
    const yaml_node_t *meta = field(b, doc, "metadata");
    if (meta != NULL && !check_fields(b, meta, "metadata", NULL))
        return NULL;
    const yaml_node_t *name = field(b, meta, "name");
    if (name == NULL) {
        say(b, line_of(meta != NULL ? meta : doc), "", "metadata.name is missing");
        return NULL;
    }
    const char *t = string_field(b, name, "metadata.name");
    if (t == NULL)
        return NULL;
    bool ok = t[0] != '\0' && strlen(t) <= MAX_POLICY_NAME;
    for (const char *c = t; ok && *c != '\0'; c++)
        ok = alnum(*c) || *c == '-' || *c == '_' || *c == '.';
    if (!ok) {
        say(b, line_of(name), "", "bad metadata.name '%.*s' (letters, digits, '-', '_', '.'; at most %d)",
            quote(strlen(t)), t, MAX_POLICY_NAME);
        return NULL;
    }
    if (strcmp(t, "default") == 0) {
        say(b, line_of(name), "", "metadata.name 'default' is the rules' name for the policy of workloads "
            "no other one selects: choose another");
        return NULL;
    }
    return t;
}

static policy_info *record_policy(builder *b, unsigned line, const char *name)
{
    size_t cap = b->cappolicies;
    policy_info *list = ei_grow(b->policies, sizeof *list, b->npolicies, &cap, 16);
    if (list == NULL) {
        out_of_memory(b, line);
        return NULL;
    }
    b->policies = list;
    b->cappolicies = cap;
    policy_info *p = &b->policies[b->npolicies++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    return p;
}

static void add_egress(builder *b, const yaml_node_t *spec, const char *name, policy_info *info)
{
    const yaml_node_t *egress = field(b, spec, "egress");
    size_t n;
    if (egress == NULL || !sequence(b, egress, 0, "spec.egress", 0, MAX_ITEMS, &n))
        return;
    policy_ctx pc = { name, info, SIZE_MAX, 0 };
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *r = item(b, egress, i);
        if (is_text(field(b, r, "action"), "Accept")) {
            pc.last_accept = i;
            pc.last_accept_line = line_of(r);
        }
    }
    for (size_t i = 0; i < n; i++)
        add_rule(b, &pc, item(b, egress, i), i);
}

/* One ClusterNetworkPolicy; in a ClusterNetworkPolicyList (typed_item) apiVersion and
 * kind may be left out, as the API server lists them. */
static void add_policy(builder *b, const yaml_node_t *doc, bool typed_item)
{
    static const char *const fields[] = { "apiVersion", "kind", "metadata", "spec", "status", NULL };
    static const char *const spec_fields[] = { "tier", "priority", "subject", "ingress", "egress", NULL };
    if (!check_fields(b, doc, "a ClusterNetworkPolicy", fields))
        return;
    const yaml_node_t *api = field(b, doc, "apiVersion"), *kind = field(b, doc, "kind");
    if (api == NULL ? !typed_item : !is_text(api, API_VERSION)) {
        const char *t = text_of(api);
        say(b, line_of(api != NULL ? api : doc), "", "unknown apiVersion '%.*s' (%s)",
            quote(t != NULL ? strlen(t) : 0), t != NULL ? t : "", API_VERSION);
        return;
    }
    if (kind == NULL ? !typed_item : !is_text(kind, "ClusterNetworkPolicy")) {
        say(b, line_of(kind != NULL ? kind : doc), "", "a ClusterNetworkPolicyList item of another kind");
        return;
    }
    if (b->npolicies >= MAX_POLICIES) {
        say(b, line_of(doc), "", "more than %d policies", MAX_POLICIES);
        b->stop = true;
        b->emitting = false;
        return;
    }
    const char *name = policy_name(b, doc);
    bool was_emitting = b->emitting;
    policy_info *info = NULL;
    if (name != NULL) {
        const yaml_node_t *n = field(b, field(b, doc, "metadata"), "name");
        info = record_policy(b, line_of(n), name);
        emit(b, line_of(n), NO_LABEL, "policy %s", name);
    } else {
        b->emitting = false; /* checked all the same, for the errors it holds */
        name = "?";
    }
    const yaml_node_t *spec = field(b, doc, "spec");
    if (spec == NULL)
        say(b, line_of(doc), "", "spec is missing");
    else if (check_fields(b, spec, "spec", spec_fields)) {
        unsigned rank = read_rank(b, spec);
        if (info != NULL)
            info->rank = rank;
        add_subject(b, spec);
        const yaml_node_t *ingress = field(b, spec, "ingress");
        if (ingress != NULL)
            say(b, key_line(b, spec, "ingress"), "warning: ", "spec.ingress is ignored: the daemon judges egress");
        add_egress(b, spec, name, info);
    }
    b->emitting = was_emitting && !b->stop;
}

/* ---- documents ---- */

/* A ClusterNetworkPolicyList (typed) or a v1 List of ClusterNetworkPolicies. */
static void add_list(builder *b, const yaml_node_t *root, bool typed)
{
    static const char *const fields[] = { "apiVersion", "kind", "metadata", "items", NULL };
    const char *what = typed ? "a ClusterNetworkPolicyList" : "a List";
    if (!check_fields(b, root, what, fields))
        return;
    const yaml_node_t *api = field(b, root, "apiVersion");
    const char *want = typed ? API_VERSION : "v1";
    if (!is_text(api, want)) {
        const char *t = text_of(api);
        say(b, line_of(api != NULL ? api : root), "", "unknown apiVersion '%.*s' of %s (%s)",
            quote(t != NULL ? strlen(t) : 0), t != NULL ? t : "", what, want);
        return;
    }
    const yaml_node_t *items = field(b, root, "items");
    size_t n;
    if (items == NULL || !sequence(b, items, 0, "items", 0, MAX_POLICIES, &n))
        return;
    for (size_t i = 0; i < n && !b->stop; i++) {
        const yaml_node_t *it = item(b, items, i);
        const yaml_node_t *kind = field(b, it, "kind");
        if (!typed && !is_text(kind, "ClusterNetworkPolicy")) {
            const char *t = text_of(kind);
            say(b, line_of(kind != NULL ? kind : it), "", "a List item of kind '%.*s': only "
                "ClusterNetworkPolicy items are read", quote(t != NULL ? strlen(t) : 0), t != NULL ? t : "");
            continue;
        }
        add_policy(b, it, typed);
    }
}

static void add_document(builder *b, const yaml_node_t *root)
{
    if (is_null(root))
        return; /* an empty document, as between two `---` */
    if (root->type != YAML_MAPPING_NODE) {
        say(b, line_of(root), "", "a document must be a mapping: a ClusterNetworkPolicy or a list of them");
        return;
    }
    const yaml_node_t *kind = field(b, root, "kind");
    const char *t = text_of(kind);
    if (is_text(kind, "ClusterNetworkPolicy"))
        add_policy(b, root, false);
    else if (is_text(kind, "ClusterNetworkPolicyList"))
        add_list(b, root, true);
    else if (is_text(kind, "List"))
        add_list(b, root, false);
    else if (kind == NULL)
        say(b, line_of(root), "", "kind is missing (ClusterNetworkPolicy, ClusterNetworkPolicyList, List)");
    else
        say(b, line_of(kind), "", "unknown kind '%.*s' (ClusterNetworkPolicy, ClusterNetworkPolicyList, List)",
            quote(t != NULL ? strlen(t) : 0), t != NULL ? t : "");
}

static void read_stream(builder *b, yaml_parser_t *parser)
{
    for (size_t docs = 0; !b->stop; docs++) {
        yaml_document_t doc;
        if (!yaml_parser_load(parser, &doc)) {
            if (parser->error == YAML_MEMORY_ERROR) {
                out_of_memory(b, 0);
                return;
            }
            say(b, (unsigned)parser->problem_mark.line + 1, "", "not valid YAML: %s%s%s",
                parser->problem != NULL ? parser->problem : "a syntax error",
                parser->context != NULL ? ", " : "", parser->context != NULL ? parser->context : "");
            return;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root != NULL) {
            b->doc = &doc;
            add_document(b, root);
            b->doc = NULL;
        } else if (docs == 0) {
            say(b, 1, "", "no document in the file");
        }
        yaml_document_delete(&doc);
        if (root == NULL)
            return;
    }
}

/* A deny-all only does what the daemon does when nothing of lower precedence accepts:
 * said for each deny-all that precedes another policy's Accept rules. */
static void check_precedence(builder *b)
{
    for (size_t d = 0; d < b->npolicies; d++) {
        const policy_info *deny = &b->policies[d];
        if (deny->deny_all_line == 0)
            continue;
        size_t first = SIZE_MAX, more = 0;
        for (size_t a = 0; a < b->npolicies; a++) {
            const policy_info *acc = &b->policies[a];
            if (a == d || acc->accept_line == 0 || deny->rank > acc->rank)
                continue;
            if (first == SIZE_MAX)
                first = a;
            else
                more++;
        }
        if (first == SIZE_MAX)
            continue;
        char others[48] = "";
        if (more > 0)
            snprintf(others, sizeof others, " and %zu other polic%s", more, more == 1 ? "y" : "ies");
        say(b, deny->deny_all_line, "warning: ", "the deny-all of '%s' takes precedence over the Accept rules "
            "of '%s'%s (their tier and priority are not higher): for workloads both select, a cluster denies "
            "what those accept, and the daemon, adding Accept rules up, allows it", deny->name,
            b->policies[first].name, others);
    }
}

/* ---- the translated rules ---- */

static void map_error(void *ctx, unsigned line, const char *message)
{
    const builder *b = ctx;
    unsigned at = line >= 1 && line <= b->nlines ? b->lines[line].yaml_line : 0;
    fprintf(b->err, "%s:%u: %s\n", b->file, at, message);
}

static const char *label_of(void *ctx, unsigned generated, unsigned *line)
{
    const builder *b = ctx;
    if (generated < 1 || generated > b->nlines)
        return NULL;
    *line = b->lines[generated].yaml_line;
    uint32_t label = b->lines[generated].label;
    return label != NO_LABEL ? b->labels[label] : NULL;
}

/* After "kind" at t[i]: a closing quote, ':', an opening one, then ClusterNetworkPolicy
 * or ClusterNetworkPolicyList, ended. */
static bool names_cnp(const char *t, size_t len, size_t i)
{
    static const char cnp[] = "ClusterNetworkPolicy";
    i += 4;
    if (i < len && (t[i] == '"' || t[i] == '\''))
        i++;
    while (i < len && (t[i] == ' ' || t[i] == '\t'))
        i++;
    if (i >= len || t[i] != ':')
        return false;
    i++;
    while (i < len && (t[i] == ' ' || t[i] == '\t'))
        i++;
    if (i < len && (t[i] == '"' || t[i] == '\''))
        i++;
    if (len - i < sizeof cnp - 1 || memcmp(t + i, cnp, sizeof cnp - 1) != 0)
        return false;
    i += sizeof cnp - 1;
    if (len - i >= 4 && memcmp(t + i, "List", 4) == 0)
        i += 4;
    return i == len || (t[i] != '\0' && strchr("\"' \t\r\n,}#", t[i]) != NULL);
}

bool ei_cnp_sniff(const char *text, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t i = pos;
        while (i < end && (text[i] == ' ' || text[i] == '\t'))
            i++;
        for (bool comment = i < end && text[i] == '#'; !comment && i + 4 <= end; i++) {
            char before = i > pos ? text[i - 1] : ' ';
            if (memcmp(text + i, "kind", 4) == 0 && strchr(" \t\"'{,-", before) != NULL &&
                names_cnp(text, end, i))
                return true;
        }
        pos = end + 1;
    }
    return false;
}

ei_policy_set *ei_cnp_parse(const char *file, const char *text, size_t len, FILE *err, unsigned *errors)
{
    builder b = { .file = file, .err = err, .emitting = true };
    b.out = open_memstream(&b.text, &b.len);
    if (b.out == NULL) {
        fprintf(err, "%s: out of memory\n", file);
        *errors = 1;
        return NULL;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        out_of_memory(&b, 0);
    } else {
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        read_stream(&b, &parser);
        yaml_parser_delete(&parser);
    }
    check_precedence(&b);
    if (fclose(b.out) != 0)
        out_of_memory(&b, 0);
    /* The lines that translated are parsed even when others did not, so that every error
     * is reported in one go. */
    ei_policy_set *set = NULL;
    if (b.text != NULL && !b.stop) {
        unsigned n = 0;
        set = ei_rules_parse(b.text, b.len, map_error, &b, &n);
        b.errors += n;
    }
    if (set != NULL && b.errors == 0 && !ei_policy_set_label_rules(set, label_of, &b))
        out_of_memory(&b, 0);
    if (b.errors > 0) {
        ei_policy_set_free(set);
        set = NULL;
    }
    for (size_t i = 0; i < b.nlabels; i++)
        free(b.labels[i]);
    free(b.labels);
    free(b.lines);
    free(b.policies);
    free(b.text);
    *errors = b.errors;
    return set;
}
