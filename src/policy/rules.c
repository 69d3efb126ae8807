/* The rules file: reading it, checking every line, feeding the builders of match.c.
 *
 *   policy NAME     starts a policy; lines before the first one belong to "default"
 *   source CIDR     workloads (by source address) the current policy applies to
 *   namespaces SEL  workloads in the namespaces whose labels match SEL (a label selector
 *                   as kubectl -l takes it, to the end of the line; '*': every one)
 *   pods SEL        workloads whose pod labels match SEL; with `namespaces`, both must
 *   mode MODE       enforce (the default) or monitor: the policy's denies are logged and
 *                   not enforced (with the daemon's own monitor mode, nothing is)
 *   allow ENTRY     one allowlist entry of the current policy
 *
 * '#' starts a comment anywhere on a line. Every line is checked and every error reported
 * before anything is returned, so an operator sees the whole list at once, and a file with
 * any error yields no set at all. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy_impl.h"

enum {
    LINE_MAX_BYTES = 4096,
    MAX_POLICIES = 4096,
    MAX_ENTRIES = 1000000,
    QUOTE_MAX = 80, /* how much of an offending token a message repeats */
};

/* Lines after a refused policy line are still checked, but belong to no policy: adding
 * them to the one before would only produce errors that are not really there. */
#define NO_POLICY UINT32_MAX

typedef struct {
    ei_policy_set *set;
    ei_rules_error_fn on_error;
    void *ctx;
    unsigned errors;
    unsigned line;
    uint32_t current; /* the policy lines belong to, or NO_POLICY */
    size_t entries;   /* allow lines seen, valid or not, for the bound */
    bool default_named;
    bool oom;
    uint32_t mode_seen; /* 1 + the policy whose mode line was read last (0: none) */
} builder;

static void error(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void error(builder *b, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized): va_start is right above; the analyzer loses it for calls without variadic arguments
    va_end(ap);
    b->errors++;
    if (b->on_error != NULL)
        b->on_error(b->ctx, b->line, msg);
}

/* Reported once, against the line being read; the parse stops there, since the set is
 * thrown away whatever the rest of the file holds. */
static void out_of_memory(builder *b)
{
    if (!b->oom)
        error(b, "out of memory");
    b->oom = true;
}

/* The length to print of a token of n bytes, for "%.*s". */
static int quote(size_t n)
{
    return n < QUOTE_MAX ? (int)n : QUOTE_MAX;
}

/* ---- tokens ---- */

/* 1 to 65535 in decimal digits: "+80", "0x50" and "" are refused. */
static bool port_or_error(builder *b, const char *s, size_t n, uint16_t *port)
{
    uint32_t v = 0;
    bool ok = n >= 1 && n <= 5;
    for (size_t i = 0; ok && i < n; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        v = v * 10 + (uint32_t)(s[i] & 0x0f);
    }
    if (!ok || v == 0 || v > 65535) {
        error(b, "bad port '%.*s' (1-65535)", quote(n), s);
        return false;
    }
    *port = (uint16_t)v;
    return true;
}

static bool is_ipv4_literal(const char *s, size_t n)
{
    char text[EI_ADDR_STRLEN];
    ei_addr a;
    if (n >= sizeof text)
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    return ei_addr_parse(text, &a) && a.family == 4;
}

/* ei_prefix_parse, with the rules file's error for each way a prefix can be wrong. */
static bool parse_prefix(builder *b, const char *s, size_t n, ei_addr *addr, unsigned *bits)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash != NULL ? (size_t)(slash - s) : n;
    switch (ei_prefix_parse(s, n, addr, bits)) {
    case EI_PREFIX_OK:
        return true;
    case EI_PREFIX_BAD_ADDRESS:
        error(b, "bad address '%.*s'", quote(alen), s);
        return false;
    case EI_PREFIX_BAD_LENGTH:
        error(b, "bad prefix length '/%.*s' (0-%u)", quote(n - alen - 1), slash + 1,
              addr->family == 6 ? 128u : 32u);
        return false;
    case EI_PREFIX_HOST_BITS:
    default: {
        ei_addr net = *addr;
        ei_addr_clear_host_bits(&net, *bits);
        char shown[EI_ADDR_STRLEN];
        error(b, "host bits set in '%.*s' (the network is %s/%u)", quote(n), s,
              ei_addr_format(&net, shown), *bits);
        return false;
    }
    }
}

/* ---- entries ---- */

/* Keeps the entry as written, for the log. EI_NO_RULE when memory runs out. */
static uint32_t add_rule(builder *b, const char *entry)
{
    ei_policy_set *s = b->set;
    ei_rule *rules = ei_grow(s->rules, sizeof *rules, s->nrules, &s->caprules, 64);
    if (rules == NULL) {
        out_of_memory(b);
        return EI_NO_RULE;
    }
    s->rules = rules;
    char *copy = strdup(entry);
    if (copy == NULL) {
        out_of_memory(b);
        return EI_NO_RULE;
    }
    memset(&s->rules[s->nrules], 0, sizeof s->rules[0]);
    s->rules[s->nrules].text = copy;
    s->rules[s->nrules].line = b->line;
    s->rules[s->nrules].policy = b->current;
    return (uint32_t)s->nrules++;
}

/* What a rule allows, kept beside it for explanations. false when memory runs out. */
static bool describe_rule(builder *b, uint32_t rule, ei_rule_kind kind, const char *key, size_t len,
                          uint16_t port)
{
    ei_rule *r = &b->set->rules[rule];
    r->kind = (uint8_t)kind;
    r->port = port;
    if (key == NULL)
        return true;
    r->key = strndup(key, len);
    if (r->key == NULL)
        out_of_memory(b);
    return r->key != NULL;
}

/* NAME or *.NAME, checked and normalized; the wildcard stands for one or more whole
 * labels, never for the apex. Reports the error and returns false when it is neither. */
static bool name_or_error(builder *b, const char *entry, const char *host, size_t n,
                          char norm[EI_NAME_MAX + 1], size_t *nlen, bool *wildcard)
{
    *wildcard = n >= 2 && host[0] == '*' && host[1] == '.';
    const char *name = *wildcard ? host + 2 : host;
    size_t len = *wildcard ? n - 2 : n;
    if (memchr(name, '*', len) != NULL) {
        error(b, "'*' only as the whole first label, as in *.example.com: '%.*s'", quote(n), host);
        return false;
    }
    ei_reason bad = ei_name_normalize((const uint8_t *)name, len, norm, nlen);
    if (bad == EI_REASON_EMPTY_NAME && *wildcard) {
        error(b, "nothing after '*.' in '%.*s'", quote(strlen(entry)), entry);
        return false;
    }
    if (bad == EI_REASON_EMPTY_NAME) {
        error(b, "empty name in '%.*s'", quote(strlen(entry)), entry);
        return false;
    }
    if (bad != EI_REASON_NONE) {
        error(b, "bad name '%.*s' (letters, digits, '-', '_'; labels of 1-63 bytes, 253 in all)",
              quote(n), host);
        return false;
    }
    return true;
}

static void add_name(builder *b, const char *entry, const char *host, size_t n, uint16_t port)
{
    char norm[EI_NAME_MAX + 1];
    size_t nlen;
    bool wildcard;
    if (!name_or_error(b, entry, host, n, norm, &nlen, &wildcard) || b->current == NO_POLICY)
        return;
    uint32_t rule = add_rule(b, entry);
    if (rule == EI_NO_RULE ||
        !describe_rule(b, rule, wildcard ? EI_RULE_WILDCARD : EI_RULE_NAME, norm, nlen, port))
        return;
    if (!ei_policy_add_name(&b->set->policies[b->current], wildcard, norm, nlen, port, rule)) {
        out_of_memory(b);
        return;
    }
    b->set->entries++;
}

static void add_address(builder *b, const char *entry, const char *s, size_t n, uint16_t port,
                        bool bracketed)
{
    ei_addr addr;
    unsigned bits;
    if (!parse_prefix(b, s, n, &addr, &bits))
        return;
    if (bracketed && addr.family != 6) {
        error(b, "brackets are for IPv6 only: write '%.*s:port'", quote(n), s);
        return;
    }
    if (b->current == NO_POLICY)
        return;
    uint32_t rule = add_rule(b, entry);
    if (rule == EI_NO_RULE || !describe_rule(b, rule, EI_RULE_ADDRESS, NULL, 0, port))
        return;
    b->set->rules[rule].addr = addr;
    b->set->rules[rule].bits = (uint8_t)bits;
    if (!ei_policy_add_prefix(&b->set->policies[b->current], &addr, bits, port, rule)) {
        out_of_memory(b);
        return;
    }
    b->set->entries++;
}

/* https://host[:port][/path], http://...: Portarium's egressAllowlist form. Only the
 * authority can be checked on the wire (the path travels encrypted), so the rest of the
 * URL is ignored. */
static void add_url(builder *b, const char *entry, const char *rest, uint16_t port)
{
    size_t n = strcspn(rest, "/?#");
    if (memchr(rest, '@', n) != NULL) {
        error(b, "user info in URL '%.*s' (only host and port can be checked)",
              quote(strlen(entry)), entry);
        return;
    }
    const char *colon = memchr(rest, ':', n);
    size_t hlen = colon != NULL ? (size_t)(colon - rest) : n;
    if (n > 0 && rest[0] == '[') {
        error(b, "address in URL '%.*s': write an address entry ([2001:db8::1]:443)",
              quote(strlen(entry)), entry);
        return;
    }
    if (hlen == 0) {
        error(b, "URL without a host: '%.*s'", quote(strlen(entry)), entry);
        return;
    }
    if (colon != NULL && !port_or_error(b, colon + 1, n - hlen - 1, &port))
        return;
    /* TLS clients send no server name for an address, so as a name this entry would
     * never match; an address entry says what is meant. */
    if (is_ipv4_literal(rest, hlen)) {
        error(b, "address in URL '%.*s': write an address entry (%.*s:%u)",
              quote(strlen(entry)), entry, quote(hlen), rest, port);
        return;
    }
    add_name(b, entry, rest, hlen, port);
}

/* "tcp://NAME:PORT", or with a wildcard name ("*.NAME"): any protocol on PORT to the
 * addresses the name resolves to. The port is required: without one the entry would
 * open every port. */
static void add_tcp(builder *b, const char *entry, const char *rest)
{
    size_t n = strlen(rest);
    const char *colon = memchr(rest, ':', n);
    if (colon == NULL || strchr(colon + 1, ':') != NULL || memchr(rest, '/', n) != NULL ||
        rest[0] == '[') {
        error(b, "bad entry '%.*s' (expected tcp://name:port or tcp://*.name:port)",
              quote(strlen(entry)), entry);
        return;
    }
    size_t hlen = (size_t)(colon - rest);
    uint16_t port;
    if (!port_or_error(b, colon + 1, n - hlen - 1, &port))
        return;
    if (is_ipv4_literal(rest, hlen)) {
        error(b, "address in '%.*s': write an address entry (%.*s:%u)", quote(strlen(entry)),
              entry, quote(hlen), rest, port);
        return;
    }
    char norm[EI_NAME_MAX + 1];
    size_t nlen;
    bool wildcard;
    if (!name_or_error(b, entry, rest, hlen, norm, &nlen, &wildcard) || b->current == NO_POLICY)
        return;
    uint32_t rule = add_rule(b, entry);
    if (rule == EI_NO_RULE ||
        !describe_rule(b, rule, wildcard ? EI_RULE_TCP_WILDCARD : EI_RULE_TCP, norm, nlen, port))
        return;
    if (!ei_policy_add_tcp_name(&b->set->policies[b->current], wildcard, norm, nlen, port, rule)) {
        out_of_memory(b);
        return;
    }
    b->set->entries++;
}

static void add_entry(builder *b, const char *entry)
{
    if (b->entries >= MAX_ENTRIES) {
        error(b, "more than %d allow entries", MAX_ENTRIES);
        return;
    }
    b->entries++;
    size_t n = strlen(entry);
    const char *scheme_end = strstr(entry, "://");
    if (scheme_end != NULL) {
        size_t slen = (size_t)(scheme_end - entry);
        if (slen == 5 && strncasecmp(entry, "https", 5) == 0)
            add_url(b, entry, scheme_end + 3, 443);
        else if (slen == 4 && strncasecmp(entry, "http", 4) == 0)
            add_url(b, entry, scheme_end + 3, 80);
        else if (slen == 3 && strncasecmp(entry, "tcp", 3) == 0)
            add_tcp(b, entry, scheme_end + 3);
        else
            error(b, "unsupported scheme '%.*s://' (https, http or tcp)", quote(slen), entry);
        return;
    }
    uint16_t port = EI_PORT_UNSET;
    if (entry[0] == '[') {
        const char *close = strchr(entry, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            error(b, "bad entry '%.*s' (expected [IPv6-CIDR]:port)", quote(n), entry);
            return;
        }
        if (close[1] == ':' && !port_or_error(b, close + 2, strlen(close + 2), &port))
            return;
        add_address(b, entry, entry + 1, (size_t)(close - entry - 1), port, true);
        return;
    }
    const char *colon = strchr(entry, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        /* A bare IPv6 address or prefix: it takes no port (that needs brackets). */
        add_address(b, entry, entry, n, EI_PORT_UNSET, false);
        return;
    }
    size_t hlen = colon != NULL ? (size_t)(colon - entry) : n;
    if (colon != NULL && !port_or_error(b, colon + 1, n - hlen - 1, &port))
        return;
    if (memchr(entry, '/', hlen) != NULL || is_ipv4_literal(entry, hlen))
        add_address(b, entry, entry, hlen, port, false);
    else
        add_name(b, entry, entry, hlen, port);
}

/* ---- lines ---- */

static void append_policy(builder *b, const char *name)
{
    ei_policy_set *s = b->set;
    ei_policy *policies = ei_grow(s->policies, sizeof *policies, s->npolicies, &s->cappolicies, 8);
    if (policies == NULL) {
        out_of_memory(b);
        return;
    }
    s->policies = policies;
    ei_policy *p = &s->policies[s->npolicies];
    memset(p, 0, sizeof *p);
    p->set = s;
    p->name = strdup(name);
    if (p->name == NULL) {
        out_of_memory(b);
        return;
    }
    b->current = (uint32_t)s->npolicies++;
}

static void start_policy(builder *b, const char *name)
{
    ei_policy_set *s = b->set;
    b->current = NO_POLICY;
    for (size_t i = 0; i < s->npolicies; i++) {
        if (strcmp(s->policies[i].name, name) != 0)
            continue;
        /* "policy default" once, ahead of every other policy, names what the file does
         * anyway. */
        if (i == 0 && s->npolicies == 1 && !b->default_named) {
            b->default_named = true;
            b->current = 0;
        } else {
            error(b, "policy '%.*s' is defined twice", quote(strlen(name)), name);
        }
        return;
    }
    for (const char *c = name; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.')) {
            error(b, "bad policy name '%.*s' (letters, digits, '-', '_', '.')",
                  quote(strlen(name)), name);
            return;
        }
    if (s->npolicies >= MAX_POLICIES) {
        error(b, "more than %d policies", MAX_POLICIES);
        return;
    }
    append_policy(b, name);
}

static void add_source(builder *b, const char *cidr)
{
    if (b->current == 0) {
        error(b, "'source' outside a named policy (policy \"default\" has no sources)");
        return;
    }
    ei_addr addr;
    unsigned bits;
    if (!parse_prefix(b, cidr, strlen(cidr), &addr, &bits) || b->current == NO_POLICY)
        return;
    uint32_t owner;
    if (!ei_policy_set_add_source(b->set, &addr, bits, b->current, &owner)) {
        out_of_memory(b);
        return;
    }
    if (owner != b->current)
        error(b, "source %.*s already belongs to policy '%.*s'", quote(strlen(cidr)), cidr,
              quote(strlen(b->set->policies[owner].name)), b->set->policies[owner].name);
}

/* `namespaces SEL` and `pods SEL`: the selector is the rest of the line. */
static void add_selector(builder *b, const char *keyword, const char *text)
{
    if (b->current == 0) {
        error(b, "'%s' outside a named policy (policy \"default\" selects no workloads)", keyword);
        return;
    }
    bool ns = strcmp(keyword, "namespaces") == 0;
    if (*text == '\0') {
        error(b, "'%s' takes a label selector (or '*' for every %s)", keyword, ns ? "namespace" : "pod");
        return;
    }
    char err[160];
    ei_selector *sel = strcmp(text, "*") == 0 ? ei_selector_parse("", 0, err, sizeof err)
                                               : ei_selector_parse(text, strlen(text), err, sizeof err);
    if (sel == NULL) {
        error(b, "bad %s selector: %s", keyword, err);
        return;
    }
    if (b->current == NO_POLICY) {
        ei_selector_free(sel);
        return;
    }
    ei_policy_set *s = b->set;
    ei_policy *p = &s->policies[b->current];
    ei_selector **slot = ns ? &p->namespaces : &p->pods;
    if (*slot != NULL) {
        ei_selector_free(sel);
        error(b, "a second '%s' line in policy '%.*s' (join the requirements with commas)",
              keyword, quote(strlen(p->name)), p->name);
        return;
    }
    if (!p->selects) {
        uint32_t *list = ei_grow(s->selecting, sizeof *list, s->nselecting, &s->capselecting, 8);
        if (list == NULL) {
            ei_selector_free(sel);
            out_of_memory(b);
            return;
        }
        s->selecting = list;
        s->selecting[s->nselecting++] = b->current;
        p->selects = true;
    }
    *slot = sel;
}

static void set_mode(builder *b, const char *mode)
{
    if (strcmp(mode, "enforce") != 0 && strcmp(mode, "monitor") != 0) {
        error(b, "bad mode '%.*s' (enforce or monitor)", quote(strlen(mode)), mode);
        return;
    }
    if (b->current == NO_POLICY)
        return;
    ei_policy *p = &b->set->policies[b->current];
    if (b->mode_seen == b->current + 1) {
        error(b, "a second 'mode' line in policy '%.*s'", quote(strlen(p->name)), p->name);
        return;
    }
    b->mode_seen = b->current + 1;
    p->mode = strcmp(mode, "monitor") == 0 ? EI_MODE_MONITOR : EI_MODE_ENFORCE;
    b->set->any_monitor |= p->mode == EI_MODE_MONITOR;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Splits a line in place into words. Returns how many there are and stores the first
 * three: a third one is always an error, so the rest need not be kept. */
static unsigned split(char *line, char *words[3])
{
    unsigned n = 0;
    char *c = line;
    for (;;) {
        while (is_blank(*c))
            c++;
        if (*c == '\0')
            return n;
        if (n < 3)
            words[n] = c;
        n++;
        while (*c != '\0' && !is_blank(*c))
            c++;
        if (*c != '\0')
            *c++ = '\0';
    }
}

static void parse_line(builder *b, char *line)
{
    char *hash = strchr(line, '#');
    if (hash != NULL)
        *hash = '\0';
    char *start = line;
    while (is_blank(*start))
        start++;
    static const char *const selector_keywords[] = { "namespaces", "pods" };
    for (size_t i = 0; i < sizeof selector_keywords / sizeof selector_keywords[0]; i++) {
        const char *kw = selector_keywords[i];
        size_t kl = strlen(kw);
        if (strncmp(start, kw, kl) == 0 && (start[kl] == '\0' || is_blank(start[kl]))) {
            char *text = start + kl;
            while (is_blank(*text))
                text++;
            size_t tl = strlen(text);
            while (tl > 0 && is_blank(text[tl - 1]))
                text[--tl] = '\0';
            add_selector(b, kw, text);
            return;
        }
    }
    char *w[3];
    unsigned n = split(line, w);
    if (n == 0)
        return;
    void (*handle)(builder *, const char *);
    if (strcmp(w[0], "policy") == 0) {
        handle = start_policy;
    } else if (strcmp(w[0], "source") == 0) {
        handle = add_source;
    } else if (strcmp(w[0], "allow") == 0) {
        handle = add_entry;
    } else if (strcmp(w[0], "mode") == 0) {
        handle = set_mode;
    } else {
        error(b, "unknown keyword '%.*s' (policy, source, namespaces, pods, mode, allow)", quote(strlen(w[0])), w[0]);
        return;
    }
    if (n != 2) {
        error(b, "'%s' takes exactly one argument, got %u", w[0], n - 1);
        return;
    }
    handle(b, w[1]);
}

ei_policy_set *ei_rules_parse(const char *text, size_t len, ei_rules_error_fn on_error,
                              void *ctx, unsigned *errors)
{
    builder b = { .on_error = on_error, .ctx = ctx };
    b.set = calloc(1, sizeof *b.set);
    if (b.set == NULL)
        out_of_memory(&b);
    else
        append_policy(&b, "default");
    char line[LINE_MAX_BYTES + 1];
    for (size_t pos = 0; pos < len && !b.oom;) {
        b.line++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        if (n > LINE_MAX_BYTES) {
            error(&b, "line longer than %d bytes", LINE_MAX_BYTES);
        } else if (memchr(text + pos, '\0', n) != NULL) {
            error(&b, "NUL byte in line");
        } else {
            memcpy(line, text + pos, n);
            line[n] = '\0';
            parse_line(&b, line);
        }
        pos += n + 1;
    }
    if (errors != NULL)
        *errors = b.errors;
    if (b.errors > 0) {
        ei_policy_set_free(b.set);
        return NULL;
    }
    ei_policy_set_seal(b.set);
    return b.set;
}
