/* Policies as an operator and a workload meet them: the hostname grammar, the rules file
 * (every error with its line, nothing half-applied), exact / wildcard / address matching,
 * source selection, lookups at scale, and the order of decide(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/policy.h"
#include "unit.h"

/* ---- names ---- */

static ei_reason norm(const char *in, char out[EI_NAME_MAX + 1])
{
    size_t len;
    return ei_name_normalize((const uint8_t *)in, strlen(in), out, &len);
}

static void test_name_table(void)
{
    static const struct {
        const char *in;
        ei_reason want;
        const char *out;
    } cases[] = {
        { "API.Example.COM", EI_REASON_NONE, "api.example.com" },
        { "api.example.com.", EI_REASON_NONE, "api.example.com" },
        { "_srv.my-host1.example", EI_REASON_NONE, "_srv.my-host1.example" },
        { "192.0.2.1", EI_REASON_NONE, "192.0.2.1" }, /* an HTTP Host may be an address */
        { "localhost", EI_REASON_NONE, "localhost" },
        { "", EI_REASON_EMPTY_NAME, "" },
        { ".", EI_REASON_EMPTY_NAME, "" },
        { "..", EI_REASON_INVALID_NAME, "" },
        { "a..b", EI_REASON_INVALID_NAME, "" },
        { ".a", EI_REASON_INVALID_NAME, "" },
        { "a.b..", EI_REASON_INVALID_NAME, "" },
        { "a b", EI_REASON_INVALID_NAME, "" },
        { "a*b", EI_REASON_INVALID_NAME, "" },
        { "*.example", EI_REASON_INVALID_NAME, "" },
        { "a:443", EI_REASON_INVALID_NAME, "" },
        { "a/b", EI_REASON_INVALID_NAME, "" },
        { "caf\xc3\xa9.example", EI_REASON_INVALID_NAME, "" },
        { "tab\t.example", EI_REASON_INVALID_NAME, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[EI_NAME_MAX + 1];
        memset(out, 'x', sizeof out);
        size_t len = 99;
        ei_reason got = ei_name_normalize((const uint8_t *)cases[i].in, strlen(cases[i].in), out, &len);
        CU_ASSERT_EQUAL(got, cases[i].want);
        CU_ASSERT_STRING_EQUAL(out, cases[i].out); /* a refused name leaves "" behind */
        CU_ASSERT_EQUAL(len, strlen(cases[i].out));
        if (got != cases[i].want || strcmp(out, cases[i].out) != 0)
            printf("\n  '%s': reason %s, out '%s'\n", cases[i].in, ei_reason_name(got), out);
    }
}

static void test_name_bounds(void)
{
    char out[EI_NAME_MAX + 1];
    size_t len;
    CU_ASSERT_EQUAL(ei_name_normalize((const uint8_t *)"a\0b", 3, out, &len), EI_REASON_INVALID_NAME);
    CU_ASSERT_EQUAL(ei_name_normalize((const uint8_t *)"abc", 2, out, &len), EI_REASON_NONE);
    CU_ASSERT_STRING_EQUAL(out, "ab"); /* len is honoured: no NUL needed in the input */
    char label[80];
    memset(label, 'a', 63);
    strcpy(label + 63, ".x");
    CU_ASSERT_EQUAL(norm(label, out), EI_REASON_NONE);
    memset(label, 'a', 64);
    strcpy(label + 64, ".x");
    CU_ASSERT_EQUAL(norm(label, out), EI_REASON_INVALID_NAME);
    /* 253 bytes is the longest name; a trailing dot on it is free; 254 is one too many */
    char name[300];
    for (int i = 0; i < 4; i++) {
        memset(name + i * 64, 'a', 63);
        name[i * 64 + 63] = '.';
    }
    name[252] = 'b';
    name[253] = '\0';
    CU_ASSERT_EQUAL(strlen(name), 253);
    CU_ASSERT_EQUAL(ei_name_normalize((const uint8_t *)name, 253, out, &len), EI_REASON_NONE);
    CU_ASSERT_EQUAL(len, 253);
    name[253] = '.';
    name[254] = '\0';
    CU_ASSERT_EQUAL(norm(name, out), EI_REASON_NONE);
    name[253] = 'c';
    CU_ASSERT_EQUAL(norm(name, out), EI_REASON_INVALID_NAME);
}

/* ---- rules file ---- */

enum { KEEP_ERRORS = 64 };

typedef struct {
    unsigned lines[KEEP_ERRORS];
    char messages[KEEP_ERRORS][256];
    unsigned n;
} errors;

static void on_error(void *ctx, unsigned line, const char *message)
{
    errors *e = ctx;
    if (e->n < KEEP_ERRORS) {
        e->lines[e->n] = line;
        snprintf(e->messages[e->n], sizeof e->messages[0], "%s", message);
    }
    e->n++;
}

static ei_policy_set *parse(const char *text, size_t len, errors *e)
{
    memset(e, 0, sizeof *e);
    unsigned count = 12345;
    ei_policy_set *set = ei_rules_parse(text, len, on_error, e, &count);
    CU_ASSERT_EQUAL(count, e->n);
    CU_ASSERT((set == NULL) == (e->n > 0)); /* any error, and nothing is returned */
    return set;
}

static ei_policy_set *load(const char *text, errors *e)
{
    return parse(text, strlen(text), e);
}

static void print_errors(const errors *e)
{
    for (unsigned i = 0; i < e->n && i < KEEP_ERRORS; i++)
        printf("\n    line %u: %s", e->lines[i], e->messages[i]);
}

/* Each case is parsed after the same valid context (4 lines), alone, and must give exactly
 * one error, on its line, saying what is wrong. */
static void test_each_error(void)
{
    static const char context[] =
        "allow ok.example\n"
        "policy p1\n"
        "source 10.1.0.0/16\n"
        "source fd00:1::/64\n";
    static const struct {
        const char *text;
        unsigned line; /* within text */
        const char *message;
    } cases[] = {
        { "frobnicate x", 1, "unknown keyword 'frobnicate'" },
        { "Allow x.example", 1, "unknown keyword 'Allow'" },
        { "allow", 1, "'allow' takes exactly one argument, got 0" },
        { "allow a.example b.example", 1, "'allow' takes exactly one argument, got 2" },
        { "allow a.example # comment\nallow a.example b c", 2, "got 3" },
        { "policy", 1, "'policy' takes exactly one argument" },
        { "source", 1, "'source' takes exactly one argument" },
        { "policy p1", 1, "policy 'p1' is defined twice" },
        { "policy default", 1, "policy 'default' is defined twice" },
        { "policy bad/name", 1, "bad policy name 'bad/name'" },
        /* a refused policy line: its lines are checked but cause no second error */
        { "policy bad!\nsource 10.1.0.0/16\nallow x.example", 1, "bad policy name" },
        { "policy p2\nsource 10.1.0.0/16", 2, "source 10.1.0.0/16 already belongs to policy 'p1'" },
        { "policy p2\nsource fd00:1:0::/64", 2, "already belongs to policy 'p1'" },
        { "source 10.2.0.1/16", 1, "host bits set in '10.2.0.1/16' (the network is 10.2.0.0/16)" },
        { "source fd00::1/64", 1, "host bits set in 'fd00::1/64' (the network is fd00::/64)" },
        { "source 10.2.0.0/33", 1, "bad prefix length '/33' (0-32)" },
        { "source 2001:db8::/129", 1, "bad prefix length '/129' (0-128)" },
        { "source 10.2.0.0/", 1, "bad prefix length '/'" },
        { "source 10.2.0.0/x", 1, "bad prefix length '/x'" },
        { "source 10.2.0.0/0016", 1, "bad prefix length '/0016'" },
        { "source example.com", 1, "bad address 'example.com'" },
        { "source 10.2.0", 1, "bad address '10.2.0'" },
        { "allow api.example:0", 1, "bad port '0' (1-65535)" },
        { "allow api.example:99999", 1, "bad port '99999' (1-65535)" },
        { "allow api.example:65536", 1, "bad port '65536' (1-65535)" },
        { "allow api.example:443443", 1, "bad port '443443' (1-65535)" },
        { "allow api.example:http", 1, "bad port 'http'" },
        { "allow api.example:+443", 1, "bad port '+443'" },
        { "allow api.example:", 1, "bad port ''" },
        { "allow a.*.example", 1, "'*' only as the whole first label" },
        { "allow *example.com", 1, "'*' only as the whole first label" },
        { "allow **.example.com", 1, "'*' only as the whole first label" },
        { "allow *.*.example.com", 1, "'*' only as the whole first label" },
        { "allow example.*", 1, "'*' only as the whole first label" },
        { "allow *", 1, "'*' only as the whole first label" },
        { "allow *.", 1, "nothing after '*.' in '*.'" },
        { "allow *.:443", 1, "nothing after '*.'" },
        { "allow bad..example", 1, "bad name 'bad..example'" },
        { "allow .lead.example", 1, "bad name '.lead.example'" },
        { "allow caf\xc3\xa9.example", 1, "bad name" },
        { "allow :443", 1, "empty name in ':443'" },
        { "allow ftp://x.example", 1, "unsupported scheme 'ftp://'" },
        { "allow wss://x.example/", 1, "unsupported scheme 'wss://'" },
        { "allow https://user@x.example/", 1, "user info in URL" },
        { "allow https://user:pw@x.example:443/", 1, "user info in URL" },
        { "allow https:///path", 1, "URL without a host" },
        { "allow https://", 1, "URL without a host" },
        { "allow https://:8443/", 1, "URL without a host" },
        { "allow https://x.example:0/", 1, "bad port '0' (1-65535)" },
        { "allow https://x.example:99999/v1", 1, "bad port '99999' (1-65535)" },
        { "allow https://x.example:/", 1, "bad port ''" },
        { "allow https://a.*.example/", 1, "'*' only as the whole first label" },
        { "allow https://bad..example/", 1, "bad name 'bad..example'" },
        { "allow https://192.0.2.1/", 1, "write an address entry (192.0.2.1:443)" },
        { "allow http://192.0.2.1:8080/", 1, "write an address entry (192.0.2.1:8080)" },
        { "allow https://[2001:db8::1]:443/", 1, "address in URL" },
        { "allow 10.0.0.0/33", 1, "bad prefix length '/33' (0-32)" },
        { "allow 10.0.0.1/8", 1, "host bits set in '10.0.0.1/8' (the network is 10.0.0.0/8)" },
        { "allow 10.0.0.0/8:0", 1, "bad port '0'" },
        { "allow 10.0.0.0/8:65536", 1, "bad port '65536'" },
        { "allow 2001:db8::1/129", 1, "bad prefix length '/129' (0-128)" },
        { "allow 2001:db8::1/64", 1, "host bits set" },
        { "allow 2001:db8::/32:443", 1, "bad prefix length '/32:443'" },
        { "allow 2001:zz8::/32", 1, "bad address '2001:zz8::'" },
        { "allow [2001:db8::/32]:99999", 1, "bad port '99999' (1-65535)" },
        { "allow [2001:db8::/32]:", 1, "bad port ''" },
        { "allow [2001:db8::/32]x", 1, "expected [IPv6-CIDR]:port" },
        { "allow [2001:db8::/32", 1, "expected [IPv6-CIDR]:port" },
        { "allow [10.0.0.0/8]:443", 1, "brackets are for IPv6 only" },
        { "allow [2001:db8::1/64]:443", 1, "host bits set" },
        { "allow example.com/path", 1, "bad address 'example.com'" },
    };
    size_t base = sizeof context - 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        int n = snprintf(text, sizeof text, "%s%s\n", context, cases[i].text);
        CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof text && (size_t)n > base);
        errors e;
        ei_policy_set *set = load(text, &e);
        bool ok = set == NULL && e.n == 1 && e.lines[0] == 4 + cases[i].line &&
                  strstr(e.messages[0], cases[i].message) != NULL;
        CU_ASSERT(ok);
        if (!ok) {
            printf("\n  case '%s': want line %u '%s', got %u error(s):", cases[i].text,
                   4 + cases[i].line, cases[i].message, e.n);
            print_errors(&e);
        }
        ei_policy_set_free(set);
    }
}

static void test_all_errors_in_line_order(void)
{
    errors e;
    const char *text =
        "allow fine.example\n"              /* 1 */
        "allow bad..example\n"              /* 2 */
        "source 10.0.0.0/8\n"               /* 3: before any policy */
        "policy p1\n"                       /* 4 */
        "source 10.1.0.0/16\n"              /* 5 */
        "source 10.1.0.1/16\n"              /* 6: host bits */
        "allow api.example:0\n"             /* 7 */
        "allow api.example:65536\n"         /* 8 */
        "allow a.*.example\n"               /* 9 */
        "allow *.\n"                        /* 10 */
        "allow ftp://x.example\n"           /* 11 */
        "allow https://user@x.example/\n"   /* 12 */
        "allow 10.0.0.0/33\n"               /* 13 */
        "policy p1\n"                       /* 14: twice */
        "policy p2\n"                       /* 15 */
        "source 10.1.0.0/16\n"              /* 16: already p1's */
        "bogus x\n"                         /* 17 */
        "allow\n"                           /* 18 */
        "allow a.example b.example\n"       /* 19 */
        "# allow commented.example\n"       /* 20: fine */
        "\n"                                /* 21: fine */
        "allow ok.example # trailing\n"     /* 22: fine */
        "allow last:bad";                   /* 23: no newline at the end */
    ei_policy_set *set = load(text, &e);
    CU_ASSERT_PTR_NULL(set);
    static const unsigned want[] = { 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 23 };
    CU_ASSERT_EQUAL(e.n, sizeof want / sizeof want[0]);
    for (unsigned i = 0; i < e.n && i < sizeof want / sizeof want[0]; i++) {
        CU_ASSERT_EQUAL(e.lines[i], want[i]);
        if (e.lines[i] != want[i])
            printf("\n  error %u: line %u (%s), expected line %u\n", i, e.lines[i], e.messages[i], want[i]);
    }
}

static void test_source_in_default(void)
{
    errors e;
    CU_ASSERT_PTR_NULL(load("source 10.0.0.0/8\n", &e));
    CU_ASSERT(e.n == 1 && e.lines[0] == 1 && strstr(e.messages[0], "outside a named policy"));
    /* naming the default policy does not give it sources either */
    CU_ASSERT_PTR_NULL(load("# header\npolicy default\nsource 10.0.0.0/8\n", &e));
    CU_ASSERT(e.n == 1 && e.lines[0] == 3 && strstr(e.messages[0], "has no sources"));
    CU_ASSERT_PTR_NULL(load("policy default\nallow a.example\npolicy default\n", &e));
    CU_ASSERT(e.n == 1 && e.lines[0] == 3 && strstr(e.messages[0], "defined twice"));
}

static void test_long_line_and_nul(void)
{
    errors e;
    static char text[8000];
    /* a line of exactly 4096 bytes is read (and its name refused); one byte more is not */
    size_t off = 0;
    off += (size_t)snprintf(text, sizeof text, "allow a.example\n");
    memcpy(text + off, "allow ", 6);
    memset(text + off + 6, 'a', 4090);
    off += 4096;
    text[off++] = '\n';
    CU_ASSERT_PTR_NULL(parse(text, off, &e));
    CU_ASSERT(e.n == 1 && e.lines[0] == 2 && strstr(e.messages[0], "bad name"));

    off = 0;
    off += (size_t)snprintf(text, sizeof text, "allow a.example\n");
    memcpy(text + off, "allow ", 6);
    memset(text + off + 6, 'a', 4091);
    off += 4097;
    off += (size_t)snprintf(text + off, sizeof text - off, "\nallow b.example\nallow bad..x\n");
    CU_ASSERT_PTR_NULL(parse(text, off, &e));
    CU_ASSERT_EQUAL(e.n, 2);
    CU_ASSERT(e.lines[0] == 2 && strstr(e.messages[0], "line longer than 4096 bytes"));
    CU_ASSERT_EQUAL(e.lines[1], 4); /* lines after a long one keep their numbers */

    static const char nul[] = "allow a.example\nallow b\0.example\nallow c.example\n";
    CU_ASSERT_PTR_NULL(parse(nul, sizeof nul - 1, &e));
    CU_ASSERT(e.n == 1 && e.lines[0] == 2 && strstr(e.messages[0], "NUL byte"));
}

static void test_policy_and_entry_caps(void)
{
    enum { POLICIES = 4096 }; /* "default" counts */
    static char text[POLICIES * 16];
    size_t off = 0;
    for (int i = 1; i < POLICIES; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "policy p%d\n", i);
    errors e;
    ei_policy_set *set = parse(text, off, &e);
    CU_ASSERT_PTR_NOT_NULL(set);
    if (set != NULL)
        CU_ASSERT_EQUAL(ei_policy_set_policies(set), POLICIES);
    ei_policy_set_free(set);
    off += (size_t)snprintf(text + off, sizeof text - off, "policy one-too-many\n");
    CU_ASSERT_PTR_NULL(parse(text, off, &e));
    CU_ASSERT(e.n == 1 && e.lines[0] == POLICIES && strstr(e.messages[0], "more than 4096 policies"));

    /* a million allow lines are fine, one more is refused (by line, not by memory) */
    enum { ENTRIES = 1000000 };
    size_t cap = (size_t)(ENTRIES + 2) * 16;
    char *big = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    off = 0;
    for (unsigned i = 0; i < ENTRIES; i++)
        off += (size_t)snprintf(big + off, cap - off, "allow h%u.ex\n", i % 1000);
    set = parse(big, off, &e);
    CU_ASSERT_PTR_NOT_NULL(set);
    if (set != NULL)
        CU_ASSERT_EQUAL(ei_policy_set_entries(set), ENTRIES);
    ei_policy_set_free(set);
    off += (size_t)snprintf(big + off, cap - off, "allow one-more.ex\n");
    CU_ASSERT_PTR_NULL(parse(big, off, &e));
    CU_ASSERT(e.n == 1 && e.lines[0] == ENTRIES + 1 && strstr(e.messages[0], "more than 1000000"));
    free(big);
}

static void test_accepted_forms(void)
{
    errors e;
    ei_policy_set *set = load("", &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT_EQUAL(ei_policy_set_policies(set), 1);
    CU_ASSERT_EQUAL(ei_policy_set_entries(set), 0);
    ei_addr any;
    CU_ASSERT_FATAL(ei_addr_parse("10.0.0.1", &any));
    CU_ASSERT_STRING_EQUAL(ei_policy_name(ei_policy_for_source(set, &any)), "default");
    ei_policy_set_free(set);

    /* CRLF, tabs, comments, "policy default" first, duplicates, no final newline */
    const char *text =
        "# a comment\r\n"
        "policy default\t# the default, named\r\n"
        "\tallow\tdup.example  \r\n"
        "allow dup.example\n"
        "allow DUP.example.\n"
        "allow dup.example:8443\n"
        "allow dup.example:8443\n"
        "allow 10.0.0.0/8\n"
        "allow 10.0.0.0/8\n"
        "policy p\n"
        "source 10.1.0.0/16\n"
        "source 10.1.0.0/16\n"
        "source 0.0.0.0/0\n"
        "source ::/0\n"
        "allow ::/0\n"
        "allow 0.0.0.0/0:53";
    set = load(text, &e);
    if (set == NULL)
        print_errors(&e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT_EQUAL(ei_policy_set_policies(set), 2);
    CU_ASSERT_EQUAL(ei_policy_set_entries(set), 9);
    ei_addr dst;
    CU_ASSERT_FATAL(ei_addr_parse("10.244.0.1", &dst));
    const ei_policy *p = ei_policy_for_source(set, &dst);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(p), "p"); /* 0.0.0.0/0 is a source like any other */
    ei_match m = ei_policy_match_address(p, &dst, 53);
    CU_ASSERT_STRING_EQUAL(m.rule, "0.0.0.0/0:53");
    CU_ASSERT_EQUAL(m.line, 16);
    CU_ASSERT_PTR_NULL(ei_policy_match_address(p, &dst, 443).rule);
    ei_policy_set_free(set);
}

/* ei_rules_parse as check-rules and the daemon call it on the bundled example. */
static void test_example_rules(void)
{
    char path[1024];
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash != NULL ? (int)(slash - __FILE__) : 1;
    snprintf(path, sizeof path, "%.*s/../../rules/example.rules", dir, slash != NULL ? __FILE__ : ".");
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    CU_ASSERT_FATAL(len > 0 && len < sizeof text);
    errors e;
    ei_policy_set *set = parse(text, len, &e);
    if (set == NULL)
        print_errors(&e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT_EQUAL(ei_policy_set_policies(set), 3);
    static const struct {
        const char *src, *policy, *host;
        uint16_t port;
        bool allowed;
    } cases[] = {
        { "10.244.0.10", "default", "api.github.com", 443, true },
        { "10.244.0.10", "default", "github.com", 443, false },
        { "10.244.1.7", "ci-runners", "github.com", 443, true },
        { "10.244.1.7", "ci-runners", "objects.githubusercontent.com", 443, true },
        { "10.244.1.7", "ci-runners", "githubusercontent.com", 443, false },
        { "10.244.1.7", "ci-runners", "registry.npmjs.org", 443, true },
        { "10.244.1.7", "ci-runners", "registry.npmjs.org", 80, false },
        { "fd00:10:244:1::7", "ci-runners", "github.com", 443, true },
        { "10.244.7.3", "payments", "api.stripe.com", 443, true },
        { "10.244.7.3", "payments", "github.com", 443, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ei_addr src;
        CU_ASSERT_FATAL(ei_addr_parse(cases[i].src, &src));
        const ei_policy *p = ei_policy_for_source(set, &src);
        CU_ASSERT_STRING_EQUAL(ei_policy_name(p), cases[i].policy);
        ei_match m = ei_policy_match_name(p, cases[i].host, strlen(cases[i].host), cases[i].port);
        CU_ASSERT_EQUAL(m.rule != NULL, cases[i].allowed);
    }
    ei_policy_set_free(set);
}

/* ---- matching ---- */

static ei_addr addr(const char *text)
{
    ei_addr a;
    CU_ASSERT_FATAL(ei_addr_parse(text, &a));
    return a;
}

static ei_match name_match(const ei_policy *p, const char *name, uint16_t port)
{
    return ei_policy_match_name(p, name, strlen(name), port);
}

static bool name_ok(const ei_policy *p, const char *name, uint16_t port)
{
    return name_match(p, name, port).rule != NULL;
}

/* The policy every workload outside a source gets, from a set that must parse. */
static ei_policy_set *load_ok(const char *text)
{
    errors e;
    ei_policy_set *set = load(text, &e);
    if (set == NULL)
        print_errors(&e);
    return set;
}

static const ei_policy *default_policy(const ei_policy_set *set)
{
    ei_addr nobody = addr("203.0.113.99");
    return ei_policy_for_source(set, &nobody);
}

static void test_exact_names(void)
{
    ei_policy_set *set = load_ok(
        "allow api.example.com\n"                           /* 1 */
        "allow API.Mixed.Example.\n"                        /* 2 */
        "allow db.example:5432\n"                           /* 3 */
        "allow db.example:5433\n"                           /* 4 */
        "allow https://api.portarium.example/v1/ignored\n"  /* 5 */
        "allow http://plain.example\n"                      /* 6 */
        "allow https://alt.example:8443/x?y=1\n"            /* 7 */
        "allow HTTPS://upper.example\n"                     /* 8 */
        "allow https://q.example?x\n");                     /* 9 */
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    const ei_policy *p = default_policy(set);
    static const struct {
        const char *name;
        uint16_t port;
        unsigned line; /* 0: not allowed */
    } cases[] = {
        { "api.example.com", 443, 1 },   /* a bare name: 443 and 80 */
        { "api.example.com", 80, 1 },
        { "api.example.com", 8443, 0 },
        { "api.example.com", 0, 0 },
        { "example.com", 443, 0 },
        { "x.api.example.com", 443, 0 }, /* an exact entry covers nothing below it */
        { "api.example.co", 443, 0 },
        { "api.mixed.example", 443, 2 },     /* case and the trailing dot of the rule */
        { "db.example", 5432, 3 },       /* host:port: that port only */
        { "db.example", 5433, 4 },
        { "db.example", 443, 0 },
        { "db.example", 80, 0 },
        { "api.portarium.example", 443, 5 }, /* https:// -> 443 only */
        { "api.portarium.example", 80, 0 },
        { "plain.example", 80, 6 },          /* http:// -> 80 only */
        { "plain.example", 443, 0 },
        { "alt.example", 8443, 7 },          /* the URL's port, path and query ignored */
        { "alt.example", 443, 0 },
        { "upper.example", 443, 8 },
        { "q.example", 443, 9 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ei_match m = name_match(p, cases[i].name, cases[i].port);
        CU_ASSERT_EQUAL(m.line, cases[i].line);
        CU_ASSERT_EQUAL(m.rule != NULL, cases[i].line != 0);
        if (m.line != cases[i].line)
            printf("\n  %s:%u matched line %u, want %u\n", cases[i].name, cases[i].port, m.line, cases[i].line);
    }
    /* the entry comes back exactly as written, owned by the set */
    CU_ASSERT_STRING_EQUAL(name_match(p, "api.portarium.example", 443).rule,
                           "https://api.portarium.example/v1/ignored");
    CU_ASSERT_STRING_EQUAL(name_match(p, "api.mixed.example", 80).rule, "API.Mixed.Example.");
    /* len is honoured: the name need not end where the buffer does */
    CU_ASSERT_PTR_NOT_NULL(ei_policy_match_name(p, "api.example.comXYZ", 15, 443).rule);
    ei_policy_set_free(set);
}

static void test_wildcards(void)
{
    ei_policy_set *set = load_ok(
        "allow *.example.com\n"              /* 1 */
        "allow *.b.example.com\n"            /* 2 */
        "allow api.b.example.com\n"          /* 3 */
        "allow https://*.svc.example:8443/x\n" /* 4 */
        "allow *.ports.example:9000\n"       /* 5 */
        "allow exact.ports.example:9001\n"   /* 6 */
        "allow *.Upper.Example.\n");         /* 7 */
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    const ei_policy *p = default_policy(set);
    static const struct {
        const char *name;
        uint16_t port;
        unsigned line;
    } cases[] = {
        { "a.example.com", 443, 1 },
        { "a.example.com", 80, 1 },
        { "a.example.com", 8080, 0 },
        { "x.y.z.example.com", 443, 1 },      /* one or more labels */
        { "example.com", 443, 0 },            /* never the apex */
        { "evilexample.com", 443, 0 },        /* nor a sibling that shares the bytes */
        { "a.evilexample.com", 443, 0 },
        { "example.com.evil.test", 443, 0 },
        { "com", 443, 0 },
        { "a.b.example.com", 443, 2 },        /* the closest wildcard is reported */
        { "b.example.com", 443, 1 },          /* *.b's apex is still under *.example.com */
        { "api.b.example.com", 443, 3 },      /* exact beats wildcard */
        { "x.svc.example", 8443, 4 },
        { "x.svc.example", 443, 0 },
        { "svc.example", 8443, 0 },
        { "x.ports.example", 9000, 5 },
        { "x.ports.example", 443, 0 },
        /* entries add up: an exact entry on another port hides no wildcard */
        { "exact.ports.example", 9001, 6 },
        { "exact.ports.example", 9000, 5 },
        { "exact.ports.example", 443, 0 },
        { "a.upper.example", 443, 7 },
        { "upper.example", 443, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ei_match m = name_match(p, cases[i].name, cases[i].port);
        CU_ASSERT_EQUAL(m.line, cases[i].line);
        if (m.line != cases[i].line)
            printf("\n  %s:%u matched line %u, want %u\n", cases[i].name, cases[i].port, m.line, cases[i].line);
    }
    CU_ASSERT_STRING_EQUAL(name_match(p, "a.x.svc.example", 8443).rule, "https://*.svc.example:8443/x");
    ei_policy_set_free(set);

    /* a closer wildcard on other ports hides no farther one */
    set = load_ok("allow *.example.com\nallow *.b.example.com:8443\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    p = default_policy(set);
    CU_ASSERT_EQUAL(name_match(p, "a.b.example.com", 443).line, 1);
    CU_ASSERT_EQUAL(name_match(p, "a.b.example.com", 8443).line, 2);
    ei_policy_set_free(set);

    /* a wildcard over a one-label suffix, and the longest names */
    set = load_ok("allow *.internal\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    p = default_policy(set);
    char name[EI_NAME_MAX + 1];
    memset(name, 'a', sizeof name);
    for (int i = 63; i < 240; i += 64)
        name[i] = '.';
    memcpy(name + 253 - 9, ".internal", 9);
    name[253] = '\0';
    CU_ASSERT(name_ok(p, name, 443));
    CU_ASSERT_FALSE(name_ok(p, "internal", 443));
    memset(name, 'a', 253);
    for (int i = 1; i < 244; i += 2)
        name[i] = '.'; /* 122 labels, one lookup each */
    memcpy(name + 253 - 9, ".internal", 9);
    CU_ASSERT(name_ok(p, name, 443));
    name[244] = 'x';
    CU_ASSERT_FALSE(name_ok(p, name, 443));
    ei_policy_set_free(set);
}

static void test_addresses(void)
{
    ei_policy_set *set = load_ok(
        "allow 192.0.2.0/24\n"             /* 1: any port */
        "allow 198.51.100.7:22\n"          /* 2: a host route, one port */
        "allow 10.0.0.0/8\n"               /* 3 */
        "allow 10.1.0.0/16:22\n"           /* 4 */
        "allow [2001:db8::/32]:443\n"      /* 5 */
        "allow 2001:db8:1::/48\n"          /* 6: bare IPv6, any port */
        "allow [2001:db8:2::1]:8443\n"     /* 7: an IPv6 host route with a port */
        "allow 2001:db8:3::1\n"            /* 8: a bare IPv6 host route */
        "allow 203.0.113.9\n");            /* 9: a bare IPv4 host route */
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    const ei_policy *p = default_policy(set);
    static const struct {
        const char *dst;
        uint16_t port;
        unsigned line;
    } cases[] = {
        { "192.0.2.200", 9999, 1 },
        { "192.0.2.0", 0, 1 },
        { "192.0.3.1", 443, 0 },
        { "198.51.100.7", 22, 2 },
        { "198.51.100.7", 23, 0 },
        { "198.51.100.8", 22, 0 },
        { "10.1.0.5", 22, 4 },       /* the longest prefix that allows the port is reported */
        { "10.1.0.5", 443, 3 },      /* and a shorter one still allows other ports */
        { "10.2.0.5", 22, 3 },
        { "11.0.0.1", 443, 0 },
        { "2001:db8:ffff::1", 443, 5 },
        { "2001:db8:ffff::1", 80, 0 },
        { "2001:db8:1::5", 80, 6 },
        { "2001:db8:1::5", 443, 6 },
        { "2001:db8:2::1", 8443, 7 },
        { "2001:db8:2::1", 443, 5 },
        { "2001:db8:2::1", 80, 0 },
        { "2001:db8:3::1", 1, 8 },
        { "2001:db8:3::2", 1, 0 },
        { "2001:db9::1", 443, 0 },
        { "203.0.113.9", 65535, 9 },
        { "203.0.113.10", 443, 0 },
        { "::ffff:192.0.2.1", 443, 0 }, /* IPv4 entries never match IPv6 destinations */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ei_addr dst = addr(cases[i].dst);
        ei_match m = ei_policy_match_address(p, &dst, cases[i].port);
        CU_ASSERT_EQUAL(m.line, cases[i].line);
        if (m.line != cases[i].line)
            printf("\n  %s:%u matched line %u, want %u\n", cases[i].dst, cases[i].port, m.line, cases[i].line);
    }
    ei_addr v6 = addr("2001:db8:ffff::1");
    CU_ASSERT_STRING_EQUAL(ei_policy_match_address(p, &v6, 443).rule, "[2001:db8::/32]:443");
    /* address entries are not names */
    CU_ASSERT_FALSE(name_ok(p, "192.0.2.1", 443));
    ei_policy_set_free(set);
}

/* ---- source selection ---- */

static void test_sources(void)
{
    ei_policy_set *set = load_ok(
        "allow api.example.com\n"
        "policy ci\n"
        "source 10.244.1.0/24\n"
        "source fd00:1::/64\n"
        "allow github.com\n"
        "policy ci-special\n"
        "source 10.244.1.128/25\n"
        "source 10.244.1.7\n"
        "policy wide\n"
        "source 10.0.0.0/8\n"
        "source fd00::/16\n"
        "allow *.example.com\n"
        "policy empty\n"
        "source 10.244.9.0/24\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT_EQUAL(ei_policy_set_policies(set), 5);
    CU_ASSERT_EQUAL(ei_policy_set_entries(set), 3);
    static const struct {
        const char *src, *policy;
    } cases[] = {
        { "10.244.1.10", "ci" },
        { "10.244.1.0", "ci" },
        { "10.244.1.127", "ci" },
        { "10.244.1.128", "ci-special" },
        { "10.244.1.255", "ci-special" },
        { "10.244.1.7", "ci-special" }, /* a host route beats its /24 */
        { "10.244.9.1", "empty" },
        { "10.245.0.1", "wide" },
        { "11.0.0.1", "default" },
        { "fd00:1::9", "ci" },
        { "fd00:2::9", "wide" },
        { "fe80::1", "default" },
        { "::ffff:10.244.1.10", "default" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ei_addr src = addr(cases[i].src);
        const char *got = ei_policy_name(ei_policy_for_source(set, &src));
        CU_ASSERT_STRING_EQUAL(got, cases[i].policy);
        if (strcmp(got, cases[i].policy) != 0)
            printf("\n  %s: policy %s, want %s\n", cases[i].src, got, cases[i].policy);
    }
    /* a policy is its own allowlist: nothing is inherited from default or a wider source */
    ei_addr special = addr("10.244.1.200"), ci = addr("10.244.1.10"), empty = addr("10.244.9.1");
    CU_ASSERT_FALSE(name_ok(ei_policy_for_source(set, &special), "github.com", 443));
    CU_ASSERT_FALSE(name_ok(ei_policy_for_source(set, &ci), "api.example.com", 443));
    CU_ASSERT(name_ok(ei_policy_for_source(set, &ci), "github.com", 443));
    CU_ASSERT_FALSE(name_ok(ei_policy_for_source(set, &empty), "api.example.com", 443));
    ei_policy_set_free(set);
}

/* ---- scale ---- */

/* Thousands of generated entries of every form, each looked up, with a near miss for
 * each; the reported line proves the right entry answered. */
static void test_many_entries(void)
{
    enum { N = 5000, LINES_PER = 6 };
    size_t cap = (size_t)N * LINES_PER * 48 + 4096;
    char *text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    size_t off = 0;
    for (int i = 0; i < N; i++)
        off += (size_t)snprintf(text + off, cap - off,
                                "allow host%d.example\n"
                                "allow *.zone%d.example\n"
                                "allow svc%d.example:%d\n"
                                "allow 10.%d.%d.0/24:%d\n"
                                "allow [2001:db8:%x::/48]:443\n"
                                "allow 172.16.%d.%d\n",
                                i, i, i, 1000 + i, i / 256, i % 256, 2000 + i, i, i / 256, i % 256);
    off += (size_t)snprintf(text + off, cap - off, "policy tenants\n");
    for (int i = 0; i < N; i++)
        off += (size_t)snprintf(text + off, cap - off, "source fd01:%x::/64\n", i);
    errors e;
    ei_policy_set *set = parse(text, off, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT_EQUAL(ei_policy_set_entries(set), (size_t)N * LINES_PER);
    const ei_policy *p = default_policy(set);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        unsigned first = (unsigned)(i * LINES_PER + 1);
        char name[64], a[64];
        snprintf(name, sizeof name, "host%d.example", i);
        wrong += name_match(p, name, 443).line != first;
        snprintf(name, sizeof name, "x.y.zone%d.example", i);
        wrong += name_match(p, name, 80).line != first + 1;
        snprintf(name, sizeof name, "zone%d.example", i);
        wrong += name_ok(p, name, 443);
        snprintf(name, sizeof name, "svc%d.example", i);
        wrong += name_match(p, name, (uint16_t)(1000 + i)).line != first + 2;
        wrong += name_ok(p, name, (uint16_t)(1001 + i));
        snprintf(name, sizeof name, "host%d.example.evil", i);
        wrong += name_ok(p, name, 443);

        ei_addr x;
        snprintf(a, sizeof a, "10.%d.%d.77", i / 256, i % 256);
        x = addr(a);
        wrong += ei_policy_match_address(p, &x, (uint16_t)(2000 + i)).line != first + 3;
        wrong += ei_policy_match_address(p, &x, (uint16_t)(2001 + i)).rule != NULL;
        snprintf(a, sizeof a, "2001:db8:%x:ffff::1", i);
        x = addr(a);
        wrong += ei_policy_match_address(p, &x, 443).line != first + 4;
        snprintf(a, sizeof a, "172.16.%d.%d", i / 256, i % 256);
        x = addr(a);
        wrong += ei_policy_match_address(p, &x, 1).line != first + 5;
        snprintf(a, sizeof a, "fd01:%x::1", i);
        x = addr(a);
        wrong += strcmp(ei_policy_name(ei_policy_for_source(set, &x)), "tenants") != 0;
    }
    ei_addr miss = addr("10.200.0.1");
    wrong += ei_policy_match_address(p, &miss, 2000).rule != NULL;
    miss = addr("fd02::1");
    wrong += strcmp(ei_policy_name(ei_policy_for_source(set, &miss)), "default") != 0;
    CU_ASSERT_EQUAL(wrong, 0);
    ei_policy_set_free(set);
    free(text);
}

/* ---- decide ---- */

static const char decide_rules[] =
    "allow api.example.com\n"      /* 1 */
    "allow *.cdn.example\n"        /* 2 */
    "allow 192.0.2.0/24\n"         /* 3 */
    "allow 198.51.100.1:22\n"      /* 4 */
    "policy empty\n"
    "source 10.244.9.0/24\n";

static ei_flow_facts facts(const char *src, const char *dst, uint16_t dport)
{
    ei_flow_facts f;
    memset(&f, 0, sizeof f);
    f.src = addr(src);
    f.dst = addr(dst);
    f.sport = 40000;
    f.dport = dport;
    return f;
}

static void with_message(ei_flow_facts *f, ei_l7 l7, const char *host)
{
    f->have_message = true;
    f->l7 = l7;
    f->host = host;
    f->host_len = host != NULL ? strlen(host) : 0;
}

static void test_decide_order(void)
{
    ei_policy_set *set = load_ok(decide_rules);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    ei_flow_facts f = facts("10.244.0.10", "203.0.113.1", 443);
    ei_decision d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_PENDING); /* a SYN: no message yet */
    CU_ASSERT_EQUAL(d.reason, EI_REASON_NONE);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(d.policy), "default");
    CU_ASSERT_PTR_NULL(d.match.rule);

    with_message(&f, EI_L7_TLS, "api.example.com");
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_ALLOWED_NAME);
    CU_ASSERT_STRING_EQUAL(d.match.rule, "api.example.com");
    CU_ASSERT_EQUAL(d.match.line, 1);

    f.problem = EI_REASON_TLS_DUPLICATE_EXTENSION; /* a problem beats the name */
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_DENY);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_TLS_DUPLICATE_EXTENSION);
    CU_ASSERT_PTR_NULL(d.match.rule);

    f.dst = addr("192.0.2.9"); /* an address entry beats everything, the problem too */
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_ALLOWED_ADDRESS);
    CU_ASSERT_STRING_EQUAL(d.match.rule, "192.0.2.0/24");
    CU_ASSERT_EQUAL(d.match.line, 3);
    f.have_message = false; /* ... and decides at SYN time */
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_ALLOWED_ADDRESS);

    f = facts("10.244.0.10", "198.51.100.1", 23); /* an address entry on another port */
    with_message(&f, EI_L7_NONE, NULL);
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_DENY);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_NOT_TLS_OR_HTTP);
    f.dport = 22;
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_ALLOWED_ADDRESS);

    f = facts("10.244.0.10", "203.0.113.1", 443);
    with_message(&f, EI_L7_TLS, NULL);
    f.problem = EI_REASON_INVALID_NAME; /* a problem beats the missing name */
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_INVALID_NAME);
    f.problem = EI_REASON_NONE;
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_DENY);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_NO_HOSTNAME);
    f.l7 = EI_L7_HTTP;
    CU_ASSERT_EQUAL(ei_decide(&f, set).reason, EI_REASON_NO_HOSTNAME);
    f.l7 = EI_L7_SOCKS;
    CU_ASSERT_EQUAL(ei_decide(&f, set).reason, EI_REASON_NO_HOSTNAME);
    f.l7 = EI_L7_NONE;
    CU_ASSERT_EQUAL(ei_decide(&f, set).reason, EI_REASON_NOT_TLS_OR_HTTP);
    f.problem = EI_REASON_NO_NAME_WITHIN_LIMIT;
    CU_ASSERT_EQUAL(ei_decide(&f, set).reason, EI_REASON_NO_NAME_WITHIN_LIMIT);
    ei_policy_set_free(set);
}

static void test_decide_names(void)
{
    ei_policy_set *set = load_ok(decide_rules);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    static const struct {
        const char *src, *host;
        uint16_t dport;
        ei_verdict verdict;
        ei_reason reason;
        const char *policy;
    } cases[] = {
        { "10.244.0.10", "api.example.com", 80, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, "default" },
        { "10.244.0.10", "api.example.com", 8443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "default" },
        { "10.244.0.10", "a.b.cdn.example", 443, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, "default" },
        { "10.244.0.10", "cdn.example", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "default" },
        { "10.244.0.10", "evil.example", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "default" },
        /* policy "empty" denies everything, and says so */
        { "10.244.9.1", "api.example.com", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "empty" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ei_flow_facts f = facts(cases[i].src, "203.0.113.1", cases[i].dport);
        with_message(&f, EI_L7_TLS, cases[i].host);
        ei_decision d = ei_decide(&f, set);
        CU_ASSERT_EQUAL(d.verdict, cases[i].verdict);
        CU_ASSERT_EQUAL(d.reason, cases[i].reason);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d.policy);
        CU_ASSERT_STRING_EQUAL(ei_policy_name(d.policy), cases[i].policy);
        CU_ASSERT_EQUAL(d.match.rule != NULL, cases[i].verdict == EI_VERDICT_ALLOW);
        /* pure: the same facts give the same answer */
        ei_decision again = ei_decide(&f, set);
        CU_ASSERT(again.verdict == d.verdict && again.reason == d.reason &&
                  again.policy == d.policy && again.match.rule == d.match.rule);
    }
    CU_ASSERT_STRING_EQUAL(ei_l7_name(EI_L7_NONE), "none");
    CU_ASSERT_STRING_EQUAL(ei_l7_name(EI_L7_TLS), "tls");
    CU_ASSERT_STRING_EQUAL(ei_l7_name(EI_L7_HTTP), "http");
    CU_ASSERT_STRING_EQUAL(ei_l7_name(EI_L7_SOCKS), "socks");
    ei_policy_set_free(set);
}

/* The destination binding step, row by row: every input that changes its answer. */
static void test_bind_destination_table(void)
{
    const ei_decision by_name = { EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, NULL, { "a.example", 3 }, false };
    const ei_decision by_addr = { EI_VERDICT_ALLOW, EI_REASON_ALLOWED_ADDRESS, NULL, { "10.0.0.0/8", 4 }, false };
    const ei_decision pending = { EI_VERDICT_PENDING, EI_REASON_NONE, NULL, { NULL, 0 }, false };
    const ei_decision denied = { EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, NULL, { NULL, 0 }, false };
    const ei_match tcp_rule = { "tcp://db.example:5432", 9 };
#define N EI_REASON_NONE
#define TLS EI_L7_TLS
#define HTTP EI_L7_HTTP
    static const struct {
        int decision;              /* 0 by_name, 1 by_addr, 2 pending, 3 denied */
        bool have_message;
        ei_l7 l7;
        ei_reason problem;
        bool dest_check;
        ei_bind dest, tcp;
        bool lookups, room;
        ei_reason unknown;
        ei_verdict verdict;
        ei_reason reason;
        ei_wait wait;
        bool refused;
    } rows[] = {
        /* a name allowed by policy, checked against the destination */
        { 0, true, TLS, N, true, EI_BIND_YES, EI_BIND_NO, true, true, N, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, EI_WAIT_NONE, false },
        { 0, true, TLS, N, true, EI_BIND_NO, EI_BIND_NO, true, true, N, EI_VERDICT_DENY, EI_REASON_SNI_IP_MISMATCH, EI_WAIT_NONE, false },
        { 0, true, HTTP, N, true, EI_BIND_NO, EI_BIND_NO, true, true, N, EI_VERDICT_DENY, EI_REASON_HOST_IP_MISMATCH, EI_WAIT_NONE, false },
        { 0, true, TLS, N, true, EI_BIND_UNKNOWN, EI_BIND_NO, true, true, N, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, EI_WAIT_NAME, false },
        { 0, true, TLS, N, true, EI_BIND_UNKNOWN, EI_BIND_NO, true, false, N, EI_VERDICT_DENY, EI_REASON_HELD_LIMIT, EI_WAIT_NONE, true },
        { 0, true, TLS, N, true, EI_BIND_UNKNOWN, EI_BIND_NO, false, true, N, EI_VERDICT_DENY, EI_REASON_DNS_UNRESOLVED, EI_WAIT_NONE, false },
        /* a lookup ended, the name still bound to nothing: denied for the given reason */
        { 0, true, TLS, N, true, EI_BIND_UNKNOWN, EI_BIND_NO, true, true, EI_REASON_DNS_FAILED, EI_VERDICT_DENY, EI_REASON_DNS_FAILED, EI_WAIT_NONE, false },
        { 0, true, TLS, N, true, EI_BIND_UNKNOWN, EI_BIND_NO, false, true, EI_REASON_DNS_TIMEOUT, EI_VERDICT_DENY, EI_REASON_DNS_TIMEOUT, EI_WAIT_NONE, false },
        /* --dest-check off: the name alone decides */
        { 0, true, TLS, N, false, EI_BIND_NO, EI_BIND_NO, true, true, N, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, EI_WAIT_NONE, false },
        /* an address entry is not a name: nothing to bind */
        { 1, true, TLS, N, true, EI_BIND_NO, EI_BIND_NO, true, true, N, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_ADDRESS, EI_WAIT_NONE, false },
        /* at SYN time, a tcp:// entry's name */
        { 2, false, EI_L7_NONE, N, true, EI_BIND_UNKNOWN, EI_BIND_YES, true, true, N, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_TCP_NAME, EI_WAIT_NONE, false },
        { 2, false, EI_L7_NONE, N, true, EI_BIND_UNKNOWN, EI_BIND_UNKNOWN, true, true, N, EI_VERDICT_PENDING, EI_REASON_NONE, EI_WAIT_TCP_NAME, false },
        { 2, false, EI_L7_NONE, N, true, EI_BIND_UNKNOWN, EI_BIND_UNKNOWN, true, false, N, EI_VERDICT_PENDING, EI_REASON_NONE, EI_WAIT_NONE, true },
        { 2, false, EI_L7_NONE, N, true, EI_BIND_UNKNOWN, EI_BIND_UNKNOWN, false, true, N, EI_VERDICT_PENDING, EI_REASON_NONE, EI_WAIT_NONE, false },
        { 2, false, EI_L7_NONE, N, true, EI_BIND_UNKNOWN, EI_BIND_NO, true, true, N, EI_VERDICT_PENDING, EI_REASON_NONE, EI_WAIT_NONE, false },
        /* a first sight with a message (the SYN missed): tcp:// may allow, never waits */
        { 3, true, TLS, N, true, EI_BIND_UNKNOWN, EI_BIND_YES, true, true, N, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_TCP_NAME, EI_WAIT_NONE, false },
        { 3, true, TLS, N, true, EI_BIND_UNKNOWN, EI_BIND_UNKNOWN, true, true, N, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, EI_WAIT_NONE, false },
        /* a message that cannot be trusted is never rescued by a tcp:// name */
        { 3, true, TLS, EI_REASON_MULTIPLE_NAMES, true, EI_BIND_YES, EI_BIND_YES, true, true, N, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, EI_WAIT_NONE, false },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const ei_decision in[] = { by_name, by_addr, pending, denied };
        ei_flow_facts facts;
        memset(&facts, 0, sizeof facts);
        facts.have_message = rows[i].have_message;
        facts.l7 = rows[i].l7;
        facts.problem = rows[i].problem;
        facts.host = "a.example";
        facts.host_len = 9;
        ei_bind_facts b = { rows[i].dest_check, rows[i].dest, rows[i].tcp, tcp_rule, rows[i].lookups,
                            rows[i].room, rows[i].unknown };
        ei_wait wait;
        bool refused;
        ei_decision d = ei_bind_destination(in[rows[i].decision], &facts, &b, &wait, &refused);
        if (d.verdict != rows[i].verdict || d.reason != rows[i].reason || wait != rows[i].wait ||
            refused != rows[i].refused)
            printf("\n  row %zu: verdict %d reason %s wait %d refused %d", i, d.verdict,
                   ei_reason_name(d.reason), wait, refused);
        CU_ASSERT_EQUAL(d.verdict, rows[i].verdict);
        CU_ASSERT_EQUAL(d.reason, rows[i].reason);
        CU_ASSERT_EQUAL(wait, rows[i].wait);
        CU_ASSERT_EQUAL(refused, rows[i].refused);
        if (d.reason == EI_REASON_ALLOWED_TCP_NAME)
            CU_ASSERT_PTR_EQUAL(d.match.rule, tcp_rule.rule);
    }
#undef N
#undef TLS
#undef HTTP
}

/* ---- workloads by labels ---- */

#define LABEL(k, v) { { (const uint8_t *)(k), sizeof(k) - 1 }, { (const uint8_t *)(v), sizeof(v) - 1 } }

static void test_selector_errors(void)
{
    static const struct {
        const char *text;
        unsigned line;
        const char *message;
    } cases[] = {
        { "namespaces env=prod", 1, "'namespaces' outside a named policy" },
        { "policy p\npods", 2, "'pods' takes a label selector (or '*' for every pod)" },
        { "policy p\npods app=", 0, NULL }, /* an empty value is a value */
        { "policy p\npods app==a,,b", 2, "bad pods selector: at" },
        { "policy p\nnamespaces env in (a,b", 2, "bad namespaces selector" },
        { "policy p\npods a=b\npods c=d", 3, "a second 'pods' line in policy 'p'" },
        { "policy p\nnamespaces -bad=x", 2, "bad namespaces selector" },
        { "policy p\npods app=api # the API pods\nallow a.example", 0, NULL },
        { "policy p\n  pods   app in (a, b) ,  !debug  \nnamespaces *", 0, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errors e;
        ei_policy_set *set = load(cases[i].text, &e);
        if (cases[i].message == NULL) {
            if (e.n != 0)
                print_errors(&e);
            CU_ASSERT_EQUAL(e.n, 0);
            CU_ASSERT_PTR_NOT_NULL(set);
            CU_ASSERT(set == NULL || ei_policy_set_selects(set));
        } else {
            CU_ASSERT_EQUAL(e.n, 1);
            CU_ASSERT_EQUAL(e.lines[0], cases[i].line);
            if (e.n < 1 || strstr(e.messages[0], cases[i].message) == NULL)
                printf("\n  case %zu: got '%s'", i, e.n ? e.messages[0] : "");
            CU_ASSERT(e.n >= 1 && strstr(e.messages[0], cases[i].message) != NULL);
        }
        ei_policy_set_free(set);
    }
}

static const char label_rules[] =
    "allow status.example\n"                          /* 1: default */
    "policy payments\n"
    "namespaces kubernetes.io/metadata.name=payments\n"
    "pods app=api,!debug\n"
    "allow api.stripe.example\n"                      /* 5 */
    "policy prod\n"
    "namespaces env=prod\n"
    "allow telemetry.example\n"                       /* 8 */
    "allow 192.0.2.0/24:8443\n"                       /* 9 */
    "policy runners\n"
    "pods app in (runner)\n"
    "source 10.250.0.0/16\n"
    "allow pypi.example\n";                           /* 13 */

static void test_label_selection(void)
{
    ei_policy_set *set = load_ok(label_rules);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT(ei_policy_set_selects(set));
    CU_ASSERT_STRING_EQUAL(ei_policy_set_first_selecting(set), "payments");
    const ei_label api[] = { LABEL("app", "api") }, debug[] = { LABEL("app", "api"), LABEL("debug", "") },
                   runner[] = { LABEL("app", "runner") };
    const ei_label payments[] = { LABEL("kubernetes.io/metadata.name", "payments"), LABEL("env", "prod") },
                   sandbox[] = { LABEL("kubernetes.io/metadata.name", "sandbox"), LABEL("env", "dev") };
    const ei_workload pay_api = { "payments", "api-1", "u1", api, 1, payments, 2 };
    const ei_workload pay_debug = { "payments", "debug-1", "u2", debug, 2, payments, 2 };
    const ei_workload sand_runner = { "sandbox", "r-1", "u3", runner, 1, sandbox, 2 };
    const ei_workload sand_api = { "sandbox", "a-1", "u4", api, 1, sandbox, 2 };
    static const struct {
        int wl; /* index into wls, -1: none */
        const char *src, *host;
        uint16_t port;
        ei_verdict verdict;
        ei_reason reason;
        const char *policy;
        unsigned line;
    } rows[] = {
        { 0, "10.244.1.10", "api.stripe.example", 443, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, "payments", 5 },
        /* the union: prod's entry allows it, and names its policy */
        { 0, "10.244.1.10", "telemetry.example", 443, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, "prod", 8 },
        /* a deny names the first policy that governs it */
        { 0, "10.244.1.10", "pypi.example", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "payments", 0 },
        /* governed by a policy: the default one no longer applies */
        { 0, "10.244.1.10", "status.example", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "payments", 0 },
        { 1, "10.244.1.11", "api.stripe.example", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "prod", 0 },
        { 2, "10.244.3.10", "pypi.example", 443, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, "runners", 13 },
        { 3, "10.244.3.11", "api.stripe.example", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "default", 0 },
        { 3, "10.244.3.11", "status.example", 443, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, "default", 1 },
        /* no pod: only a source CIDR can govern it */
        { -1, "10.250.0.5", "pypi.example", 443, EI_VERDICT_ALLOW, EI_REASON_ALLOWED_NAME, "runners", 13 },
        { -1, "10.244.1.10", "api.stripe.example", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "default", 0 },
        /* a source CIDR and labels together: the policy comes once */
        { 2, "10.250.0.6", "telemetry.example", 443, EI_VERDICT_DENY, EI_REASON_NAME_NOT_ALLOWED, "runners", 0 },
    };
    const ei_workload *wls[] = { &pay_api, &pay_debug, &sand_runner, &sand_api };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ei_flow_facts f = facts(rows[i].src, "203.0.113.1", rows[i].port);
        with_message(&f, EI_L7_TLS, rows[i].host);
        f.workload = rows[i].wl >= 0 ? wls[rows[i].wl] : NULL;
        ei_decision d = ei_decide(&f, set);
        if (d.verdict != rows[i].verdict || d.reason != rows[i].reason ||
            strcmp(ei_policy_name(d.policy), rows[i].policy) != 0)
            printf("\n  row %zu: %s %s", i, ei_reason_name(d.reason), ei_policy_name(d.policy));
        CU_ASSERT_EQUAL(d.verdict, rows[i].verdict);
        CU_ASSERT_EQUAL(d.reason, rows[i].reason);
        CU_ASSERT_STRING_EQUAL(ei_policy_name(d.policy), rows[i].policy);
        CU_ASSERT_EQUAL(d.match.rule != NULL ? d.match.line : 0, rows[i].line);
    }
    /* an address entry of any governing policy, at SYN time */
    ei_flow_facts f = facts("10.244.1.10", "192.0.2.7", 8443);
    f.workload = &pay_api;
    ei_decision d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_ALLOWED_ADDRESS);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(d.policy), "prod");
    /* the view does not know the sender: denied, whatever the entries say */
    f.workload = NULL;
    f.workload_unknown = true;
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_DENY);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_WORKLOAD_UNKNOWN);
    /* the iterator: each governing policy once, in order */
    ei_policy_iter it;
    ei_policy_iter_init(&it, set, &f.src, &pay_api);
    const char *seen[4] = { NULL };
    size_t n = 0;
    for (const ei_policy *p; (p = ei_policy_iter_next(&it)) != NULL && n < 4;)
        seen[n++] = ei_policy_name(p);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(seen[0], "payments");
    CU_ASSERT_STRING_EQUAL(seen[1], "prod");
    ei_policy_set_free(set);
}
/* Per-policy mode: a deny is enforced when any governing policy is in enforce mode. */
static void test_policy_mode(void)
{
    ei_policy_set *set = load_ok("allow d.example\n"
                                 "policy a\nmode monitor\npods app=api\nallow a.example\n"
                                 "policy b\nmode monitor\nnamespaces env=prod\nallow b.example\n"
                                 "policy c\npods tier=db\nallow c.example\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT(ei_policy_set_has_monitor(set));
    const ei_label api[] = { LABEL("app", "api") }, api_db[] = { LABEL("app", "api"), LABEL("tier", "db") };
    const ei_label prod[] = { LABEL("env", "prod") };
    const ei_workload both_monitor = { "n", "p1", "u", api, 1, prod, 1 };
    const ei_workload one_enforced = { "n", "p2", "u", api_db, 2, prod, 1 };
    const ei_workload none = { "n", "p3", "u", NULL, 0, NULL, 0 };
    ei_flow_facts f = facts("10.244.0.10", "203.0.113.1", 443);
    with_message(&f, EI_L7_TLS, "evil.example");
    f.workload = &both_monitor;
    ei_decision d = ei_decide(&f, set);
    CU_ASSERT(d.verdict == EI_VERDICT_DENY && d.monitored);
    f.workload = &one_enforced;
    d = ei_decide(&f, set);
    CU_ASSERT(d.verdict == EI_VERDICT_DENY && !d.monitored);
    f.workload = &none; /* default: enforce */
    d = ei_decide(&f, set);
    CU_ASSERT(d.verdict == EI_VERDICT_DENY && !d.monitored);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(d.policy), "default");
    ei_policy_set_free(set);
    set = load_ok("allow d.example\npolicy a\npods app=api\nallow a.example\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    CU_ASSERT(!ei_policy_set_has_monitor(set));
    f.workload = &both_monitor;
    CU_ASSERT(!ei_decide(&f, set).monitored);
    ei_policy_set_free(set);
}
#undef LABEL

int main(void)
{
    static const ei_unit_case names[] = { EI_CASE(test_name_table), EI_CASE(test_name_bounds) };
    static const ei_unit_case parser[] = {
        EI_CASE(test_each_error), EI_CASE(test_all_errors_in_line_order),
        EI_CASE(test_source_in_default), EI_CASE(test_long_line_and_nul),
        EI_CASE(test_policy_and_entry_caps), EI_CASE(test_accepted_forms),
        EI_CASE(test_example_rules),
    };
    static const ei_unit_case match[] = { EI_CASE(test_exact_names), EI_CASE(test_wildcards),
                                          EI_CASE(test_addresses) };
    static const ei_unit_case sources[] = { EI_CASE(test_sources) };
    static const ei_unit_case scale[] = { EI_CASE(test_many_entries) };
    static const ei_unit_case decide[] = { EI_CASE(test_decide_order), EI_CASE(test_decide_names),
                                           EI_CASE(test_bind_destination_table) };
    static const ei_unit_case labels[] = { EI_CASE(test_selector_errors), EI_CASE(test_label_selection),
                                           EI_CASE(test_policy_mode) };
    EI_SUITE("names", names);
    EI_SUITE("rules file", parser);
    EI_SUITE("matching", match);
    EI_SUITE("source selection", sources);
    EI_SUITE("scale", scale);
    EI_SUITE("decide", decide);
    EI_SUITE("workloads by labels", labels);
    return ei_unit_run();
}
