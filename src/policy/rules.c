/* The rules file: parsing, validation, and building the lookup structures.
 *
 *   policy NAME | source CIDR | allow ENTRY      one per line, '#' starts a comment
 *
 * Every line is checked and every error reported before anything is returned, so an
 * operator sees the whole list at once, and a file with an error yields no set at all. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_impl.h"

enum {
    LINE_MAX_BYTES = 4096,
    MAX_POLICIES = 4096,
    MAX_ENTRIES = 1000000,
};

typedef struct {
    ei_policy_set *set;
    ei_rules_error_fn on_error;
    void *ctx;
    unsigned errors;
    unsigned line;
    size_t current;       /* policy the lines belong to */
    size_t entries;
    bool oom;
} builder;

static void error(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void error(builder *b, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    b->errors++;
    if (b->on_error)
        b->on_error(b->ctx, b->line, msg);
}

static bool out_of_memory(builder *b, void *p)
{
    if (p == NULL && !b->oom) {
        b->oom = true;
        error(b, "out of memory");
    }
    return p == NULL;
}

/* ---- containers ---- */

static bool port_list_add(ei_port_list *l, uint16_t port, uint32_t rule)
{
    for (uint32_t i = 0; i < l->count; i++)
        if (l->items[i].port == port)
            return true; /* the same key and port twice: the first entry stands */
    if (l->count == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 2;
        ei_port_rule *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL)
            return false;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count].port = port;
    l->items[l->count].rule = rule;
    l->count++;
    return true;
}

static uint32_t hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static bool name_map_grow(ei_name_map *m)
{
    uint32_t nslots = m->slots ? (m->mask + 1) * 2 : 16;
    ei_name_slot *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return false;
    for (uint32_t i = 0; m->slots && i <= m->mask; i++) {
        if (m->slots[i].key == NULL)
            continue;
        uint32_t j = hash_name(m->slots[i].key, strlen(m->slots[i].key)) & (nslots - 1);
        while (slots[j].key != NULL)
            j = (j + 1) & (nslots - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->mask = nslots - 1;
    return true;
}

/* The port list for key, created empty when absent. Load stays under 1/2. */
static ei_port_list *name_map_put(ei_name_map *m, const char *key)
{
    size_t len = strlen(key);
    if ((m->slots == NULL || (m->count + 1) * 2 > m->mask + 1) && !name_map_grow(m))
        return NULL;
    uint32_t i = hash_name(key, len) & m->mask;
    for (; m->slots[i].key != NULL; i = (i + 1) & m->mask)
        if (strcmp(m->slots[i].key, key) == 0)
            return &m->slots[i].ports;
    m->slots[i].key = strdup(key);
    if (m->slots[i].key == NULL)
        return NULL;
    m->count++;
    return &m->slots[i].ports;
}

static void name_map_free(ei_name_map *m)
{
    for (uint32_t i = 0; m->slots && i <= m->mask; i++) {
        free(m->slots[i].key);
        free(m->slots[i].ports.items);
    }
    free(m->slots);
}

static bool trie_node(ei_trie *t, uint32_t *index)
{
    if (t->count == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        ei_trie_node *nodes = realloc(t->nodes, cap * sizeof *nodes);
        if (nodes == NULL)
            return false;
        t->nodes = nodes;
        t->cap = cap;
    }
    ei_trie_node *n = &t->nodes[t->count];
    n->child[0] = n->child[1] = 0; /* 0 is the root, never a child: it means "none" */
    n->value = -1;
    *index = t->count++;
    return true;
}

/* The node for prefix addr/bits, created with its path (and the root). */
static bool trie_find_or_add(ei_trie *t, const uint8_t *addr, unsigned bits, uint32_t *node)
{
    uint32_t n = 0;
    if (t->count == 0 && !trie_node(t, &n))
        return false;
    for (unsigned depth = 0; depth < bits; depth++) {
        unsigned bit = addr[depth / 8] >> (7 - depth % 8) & 1;
        if (t->nodes[n].child[bit] == 0) {
            uint32_t c;
            if (!trie_node(t, &c))
                return false;
            t->nodes[n].child[bit] = c;
        }
        n = t->nodes[n].child[bit];
    }
    *node = n;
    return true;
}

/* ---- tokens ---- */

static bool parse_port(const char *s, uint16_t *port)
{
    if (*s == '\0' || strlen(s) > 5)
        return false;
    unsigned v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* "ADDR" or "ADDR/LEN"; host bits must be zero. */
static bool parse_cidr(builder *b, const char *text, ei_addr *addr, unsigned *bits)
{
    char buf[64];
    size_t tlen = strlen(text);
    if (tlen >= sizeof buf) {
        error(b, "bad address '%.40s...'", text);
        return false;
    }
    memcpy(buf, text, tlen + 1);
    char *slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    if (!ei_addr_parse(buf, addr)) {
        error(b, "bad address '%s'", buf);
        return false;
    }
    unsigned max = addr->family == 6 ? 128 : 32;
    *bits = max;
    if (slash != NULL) {
        uint16_t v;
        if (strcmp(slash + 1, "0") == 0)
            v = 0;
        else if (!parse_port(slash + 1, &v) || v > max) {
            error(b, "bad prefix length '/%s' (0-%u)", slash + 1, max);
            return false;
        }
        *bits = v;
    }
    for (unsigned i = *bits; i < max; i++)
        if (addr->bytes[i / 8] >> (7 - i % 8) & 1) {
            error(b, "'%s' has host bits set past /%u", text, *bits);
            return false;
        }
    return true;
}

/* ---- lines ---- */

static uint32_t add_rule(builder *b, const char *text)
{
    ei_policy_set *s = b->set;
    if (s->nrules % 64 == 0) {
        ei_rule *rules = realloc(s->rules, (s->nrules + 64) * sizeof *rules);
        if (out_of_memory(b, rules))
            return UINT32_MAX;
        s->rules = rules;
    }
    char *copy = strdup(text);
    if (out_of_memory(b, copy))
        return UINT32_MAX;
    s->rules[s->nrules].text = copy;
    s->rules[s->nrules].line = b->line;
    return (uint32_t)s->nrules++;
}

static void add_cidr_entry(builder *b, const char *entry, const char *cidr, uint16_t port)
{
    ei_addr addr;
    unsigned bits;
    if (!parse_cidr(b, cidr, &addr, &bits))
        return;
    ei_policy *p = &b->set->policies[b->current];
    ei_trie *t = &p->cidr[addr.family == 6 ? 1 : 0];
    uint32_t node;
    if (out_of_memory(b, trie_find_or_add(t, addr.bytes, bits, &node) ? t : NULL))
        return;
    if (t->nodes[node].value < 0) {
        ei_port_list *lists = realloc(p->cidr_ports, (p->ncidr_ports + 1) * sizeof *lists);
        if (out_of_memory(b, lists))
            return;
        p->cidr_ports = lists;
        memset(&lists[p->ncidr_ports], 0, sizeof lists[0]);
        t->nodes[node].value = (int32_t)p->ncidr_ports++;
    }
    uint32_t rule = add_rule(b, entry);
    if (rule != UINT32_MAX &&
        !out_of_memory(b, port_list_add(&p->cidr_ports[t->nodes[node].value], port, rule) ? p : NULL))
        p->entries++;
}

static void add_name_entry(builder *b, const char *entry, const char *host, uint16_t port)
{
    bool wildcard = strncmp(host, "*.", 2) == 0;
    const char *name = wildcard ? host + 2 : host;
    if (strchr(name, '*') != NULL) {
        error(b, "'*' may only start a name, as in *.example.com: '%s'", host);
        return;
    }
    char norm[EI_NAME_MAX + 1];
    size_t len;
    ei_reason bad = ei_name_normalize((const uint8_t *)name, strlen(name), norm, &len);
    if (bad != EI_REASON_NONE) {
        error(b, "bad name '%s' (%s)", host, bad == EI_REASON_EMPTY_NAME ? "empty" :
              "letters, digits, '-', '_', labels of 1-63, at most 253 in all");
        return;
    }
    ei_policy *p = &b->set->policies[b->current];
    ei_port_list *ports = name_map_put(wildcard ? &p->wildcard : &p->exact, norm);
    if (out_of_memory(b, ports))
        return;
    uint32_t rule = add_rule(b, entry);
    if (rule != UINT32_MAX && !out_of_memory(b, port_list_add(ports, port, rule) ? ports : NULL))
        p->entries++;
}

/* https://host[:port][/path], http://... : Portarium's egressAllowlist form. */
static void add_url_entry(builder *b, const char *entry, const char *rest, uint16_t default_port)
{
    char host[300];
    size_t n = strcspn(rest, "/?#");
    if (n == 0 || n >= sizeof host) {
        error(b, "URL without a host: '%s'", entry);
        return;
    }
    memcpy(host, rest, n);
    host[n] = '\0';
    if (strchr(host, '@') != NULL) {
        error(b, "URL with user info: '%s'", entry);
        return;
    }
    if (host[0] == '[') {
        error(b, "URL with an address; write it as an address entry: '%s'", entry);
        return;
    }
    uint16_t port = default_port;
    char *colon = strchr(host, ':');
    if (colon != NULL) {
        *colon = '\0';
        if (!parse_port(colon + 1, &port)) {
            error(b, "bad port '%s' (1-65535)", colon + 1);
            return;
        }
    }
    add_name_entry(b, entry, host, port);
}

static void add_entry(builder *b, const char *entry)
{
    if (b->entries >= MAX_ENTRIES) {
        error(b, "more than %d allow entries", MAX_ENTRIES);
        return;
    }
    b->entries++;
    if (strncasecmp(entry, "https://", 8) == 0) {
        add_url_entry(b, entry, entry + 8, 443);
        return;
    }
    if (strncasecmp(entry, "http://", 7) == 0) {
        add_url_entry(b, entry, entry + 7, 80);
        return;
    }
    if (strstr(entry, "://") != NULL) {
        error(b, "unsupported scheme in '%s' (https:// or http://)", entry);
        return;
    }
    char buf[300];
    size_t elen = strlen(entry);
    if (elen >= sizeof buf) {
        error(b, "entry too long: '%.40s...'", entry);
        return;
    }
    memcpy(buf, entry, elen + 1);
    uint16_t port = EI_PORT_UNSET;
    if (buf[0] == '[') { /* [IPv6-CIDR]:port */
        char *close = strchr(buf, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            error(b, "bad entry '%s' (expected [IPv6-CIDR]:port)", entry);
            return;
        }
        if (close[1] == ':' && !parse_port(close + 2, &port)) {
            error(b, "bad port '%s' (1-65535)", close + 2);
            return;
        }
        *close = '\0';
        add_cidr_entry(b, entry, buf + 1, port);
        return;
    }
    size_t colons = 0;
    for (const char *c = buf; *c; c++)
        colons += *c == ':';
    if (colons > 1) { /* a bare IPv6 address or prefix: no port possible */
        add_cidr_entry(b, entry, buf, EI_PORT_UNSET);
        return;
    }
    char *colon = strchr(buf, ':');
    if (colon != NULL) {
        *colon = '\0';
        if (!parse_port(colon + 1, &port)) {
            error(b, "bad port '%s' (1-65535)", colon + 1);
            return;
        }
    }
    ei_addr probe;
    char addr_part[64];
    size_t alen = strcspn(buf, "/");
    if (strchr(buf, '/') != NULL || (alen < sizeof addr_part &&
        (memcpy(addr_part, buf, alen), addr_part[alen] = '\0', ei_addr_parse(addr_part, &probe)))) {
        add_cidr_entry(b, entry, buf, port);
        return;
    }
    add_name_entry(b, entry, buf, port);
}

static void start_policy(builder *b, const char *name)
{
    ei_policy_set *s = b->set;
    for (size_t i = 0; i < s->npolicies; i++)
        if (strcmp(s->policies[i].name, name) == 0) {
            if (i == 0 && b->current == 0) { /* "policy default" first: just a label */
                b->current = 0;
                return;
            }
            error(b, "policy '%s' is defined twice", name);
            return;
        }
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.')) {
            error(b, "bad policy name '%s' (letters, digits, '-', '_', '.')", name);
            return;
        }
    if (s->npolicies >= MAX_POLICIES) {
        error(b, "more than %d policies", MAX_POLICIES);
        return;
    }
    ei_policy *p = realloc(s->policies, (s->npolicies + 1) * sizeof *p);
    if (out_of_memory(b, p))
        return;
    s->policies = p;
    memset(&p[s->npolicies], 0, sizeof p[0]);
    p[s->npolicies].name = strdup(name);
    if (out_of_memory(b, p[s->npolicies].name))
        return;
    b->current = s->npolicies++;
}

static void add_source(builder *b, const char *cidr)
{
    if (b->current == 0) {
        error(b, "'source' needs a 'policy' line first: policy \"default\" covers every other source");
        return;
    }
    ei_addr addr;
    unsigned bits;
    if (!parse_cidr(b, cidr, &addr, &bits))
        return;
    ei_trie *t = &b->set->sources[addr.family == 6 ? 1 : 0];
    uint32_t node;
    if (out_of_memory(b, trie_find_or_add(t, addr.bytes, bits, &node) ? t : NULL))
        return;
    int32_t *v = &t->nodes[node].value;
    if (*v >= 0 && (size_t)*v != b->current) {
        error(b, "source %s already belongs to policy '%s'", cidr, b->set->policies[*v].name);
        return;
    }
    *v = (int32_t)b->current;
}

/* Splits a line in place into words separated by blanks. Returns how many there are,
 * storing the first three (a third means too many arguments). */
static int split(char *line, char *words[3])
{
    int n = 0;
    char *c = line;
    for (;;) {
        while (*c == ' ' || *c == '\t' || *c == '\r')
            c++;
        if (*c == '\0')
            return n;
        if (n < 3)
            words[n] = c;
        n++;
        while (*c != '\0' && *c != ' ' && *c != '\t' && *c != '\r')
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
    char *w[3];
    int n = split(line, w);
    if (n == 0)
        return;
    const char *kw = w[0];
    bool known = strcmp(kw, "policy") == 0 || strcmp(kw, "source") == 0 || strcmp(kw, "allow") == 0;
    if (!known) {
        error(b, "unknown keyword '%s' (policy, source, allow)", kw);
        return;
    }
    if (n != 2) {
        error(b, "'%s' takes exactly one argument", kw);
        return;
    }
    if (strcmp(kw, "policy") == 0)
        start_policy(b, w[1]);
    else if (strcmp(kw, "source") == 0)
        add_source(b, w[1]);
    else
        add_entry(b, w[1]);
}

ei_policy_set *ei_rules_parse(const char *text, size_t len, ei_rules_error_fn on_error,
                              void *ctx, unsigned *errors)
{
    builder b = { .on_error = on_error, .ctx = ctx };
    b.set = calloc(1, sizeof *b.set);
    if (b.set == NULL) {
        if (errors)
            *errors = 1;
        return NULL;
    }
    start_policy(&b, "default");
    char line[LINE_MAX_BYTES + 1];
    size_t pos = 0;
    while (pos < len && !b.oom) {
        b.line++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
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
    for (size_t i = 0; i < b.set->npolicies; i++)
        b.set->policies[i].set = b.set;
    if (errors)
        *errors = b.errors;
    if (b.errors > 0) {
        ei_policy_set_free(b.set);
        return NULL;
    }
    return b.set;
}

void ei_policy_set_free(ei_policy_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->npolicies; i++) {
        ei_policy *p = &set->policies[i];
        free(p->name);
        name_map_free(&p->exact);
        name_map_free(&p->wildcard);
        free(p->cidr[0].nodes);
        free(p->cidr[1].nodes);
        for (uint32_t j = 0; j < p->ncidr_ports; j++)
            free(p->cidr_ports[j].items);
        free(p->cidr_ports);
    }
    free(set->policies);
    free(set->sources[0].nodes);
    free(set->sources[1].nodes);
    for (size_t i = 0; i < set->nrules; i++)
        free(set->rules[i].text);
    free(set->rules);
    free(set);
}
