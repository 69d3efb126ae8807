/* Policies: the hostname grammar, the rules file (every error, with its line, and nothing
 * half-applied), exact / wildcard / address matching, source selection, and decide(). */
#include <stdio.h>
#include <string.h>

#include "egress_inspector/policy.h"
#include "unit.h"

/* ---- names ---- */

static ei_reason norm(const char *in, char out[EI_NAME_MAX + 1])
{
    size_t len;
    return ei_name_normalize((const uint8_t *)in, strlen(in), out, &len);
}

static void test_name_grammar(void)
{
    char out[EI_NAME_MAX + 1];
    CU_ASSERT_EQUAL(norm("API.Example.COM.", out), EI_REASON_NONE);
    CU_ASSERT_STRING_EQUAL(out, "api.example.com");
    CU_ASSERT_EQUAL(norm("_srv.my-host1.example", out), EI_REASON_NONE);
    CU_ASSERT_EQUAL(norm("192.0.2.1", out), EI_REASON_NONE);
    CU_ASSERT_EQUAL(norm("", out), EI_REASON_EMPTY_NAME);
    CU_ASSERT_EQUAL(norm(".", out), EI_REASON_EMPTY_NAME);
    CU_ASSERT_EQUAL(norm("a..b", out), EI_REASON_INVALID_NAME);
    CU_ASSERT_EQUAL(norm(".a", out), EI_REASON_INVALID_NAME);
    CU_ASSERT_EQUAL(norm("a.b..", out), EI_REASON_INVALID_NAME);
    CU_ASSERT_EQUAL(norm("a b", out), EI_REASON_INVALID_NAME);
    CU_ASSERT_EQUAL(norm("a*b", out), EI_REASON_INVALID_NAME);
    CU_ASSERT_EQUAL(norm("caf\xc3\xa9.example", out), EI_REASON_INVALID_NAME);
    CU_ASSERT_EQUAL(ei_name_normalize((const uint8_t *)"a\0b", 3, out, &(size_t){ 0 }),
                    EI_REASON_INVALID_NAME);
    char label[80];
    memset(label, 'a', 63);
    strcpy(label + 63, ".x");
    CU_ASSERT_EQUAL(norm(label, out), EI_REASON_NONE);
    memset(label, 'a', 64);
    strcpy(label + 64, ".x");
    CU_ASSERT_EQUAL(norm(label, out), EI_REASON_INVALID_NAME);
    /* 253 bytes is the longest name; 254 is one too many (a trailing dot is free) */
    char name[300];
    for (int i = 0; i < 4; i++) {
        memset(name + i * 64, 'a', 63);
        name[i * 64 + 63] = '.';
    }
    name[253] = '\0';
    name[252] = 'b';
    CU_ASSERT_EQUAL(strlen(name), 253);
    CU_ASSERT_EQUAL(norm(name, out), EI_REASON_NONE);
    name[253] = '.';
    name[254] = '\0';
    CU_ASSERT_EQUAL(norm(name, out), EI_REASON_NONE);
    name[253] = 'c';
    CU_ASSERT_EQUAL(norm(name, out), EI_REASON_INVALID_NAME);
}

/* ---- rules file ---- */

typedef struct {
    unsigned lines[32];
    char messages[32][160];
    unsigned n;
} errors;

static void on_error(void *ctx, unsigned line, const char *message)
{
    errors *e = ctx;
    if (e->n < 32) {
        e->lines[e->n] = line;
        snprintf(e->messages[e->n], sizeof e->messages[0], "%s", message);
    }
    e->n++;
}

static ei_policy_set *load(const char *text, errors *e)
{
    memset(e, 0, sizeof *e);
    unsigned count = 0;
    ei_policy_set *set = ei_rules_parse(text, strlen(text), on_error, e, &count);
    CU_ASSERT_EQUAL(count, e->n);
    return set;
}

static void test_every_error_with_its_line(void)
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
        "# allow commented.example\n";      /* 20: fine */
    ei_policy_set *set = load(text, &e);
    CU_ASSERT_PTR_NULL(set);
    static const unsigned want[] = { 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19 };
    CU_ASSERT_EQUAL(e.n, sizeof want / sizeof want[0]);
    for (unsigned i = 0; i < e.n && i < sizeof want / sizeof want[0]; i++) {
        CU_ASSERT_EQUAL(e.lines[i], want[i]);
        if (e.lines[i] != want[i])
            printf("\n  error %u: line %u (%s), expected line %u\n", i, e.lines[i], e.messages[i], want[i]);
    }
}

static void test_long_line_and_nul(void)
{
    errors e;
    char text[6000];
    memset(text, 'a', sizeof text);
    memcpy(text, "allow ", 6);
    text[sizeof text - 1] = '\0';
    CU_ASSERT_PTR_NULL(load(text, &e));
    CU_ASSERT_EQUAL(e.n, 1);
    ei_policy_set *set = ei_rules_parse("allow a.example\n\0allow b\n", 26, on_error, &e, NULL);
    CU_ASSERT_PTR_NULL(set);
}

/* ---- matching ---- */

static const char rules[] =
    "allow api.example.com\n"
    "allow *.cdn.example.com\n"
    "allow https://api.portarium.example/v1/ignored\n"
    "allow http://plain.example\n"
    "allow https://*.svc.example:8443/x\n"
    "allow db.example:5432\n"
    "allow 192.0.2.0/24\n"
    "allow 198.51.100.7:22\n"
    "allow [2001:db8::/32]:443\n"
    "allow 2001:db8:1::/48\n"
    "policy ci\n"
    "source 10.244.1.0/24\n"
    "source fd00:1::/64\n"
    "allow github.com\n"
    "policy ci-special\n"
    "source 10.244.1.128/25\n"
    "policy empty\n"
    "source 10.244.9.0/24\n";

static ei_addr addr(const char *text)
{
    ei_addr a;
    CU_ASSERT_FATAL(ei_addr_parse(text, &a));
    return a;
}

static bool name_ok(const ei_policy *p, const char *name, uint16_t port)
{
    return ei_policy_match_name(p, name, strlen(name), port).rule != NULL;
}

static void test_exact_wildcard_and_ports(void)
{
    errors e;
    ei_policy_set *set = load(rules, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    ei_addr pod = addr("10.244.0.10");
    const ei_policy *p = ei_policy_for_source(set, &pod);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(p), "default");
    CU_ASSERT(name_ok(p, "api.example.com", 443));
    CU_ASSERT(name_ok(p, "api.example.com", 80));
    CU_ASSERT_FALSE(name_ok(p, "api.example.com", 8443));
    CU_ASSERT_FALSE(name_ok(p, "example.com", 443));
    CU_ASSERT(name_ok(p, "a.cdn.example.com", 443));
    CU_ASSERT(name_ok(p, "a.b.cdn.example.com", 443));
    CU_ASSERT_FALSE(name_ok(p, "cdn.example.com", 443));       /* never the apex */
    CU_ASSERT_FALSE(name_ok(p, "evilcdn.example.com", 443));   /* not a label boundary */
    CU_ASSERT_FALSE(name_ok(p, "cdn.example.com.evil.test", 443));
    CU_ASSERT(name_ok(p, "api.portarium.example", 443));       /* https:// -> 443 only */
    CU_ASSERT_FALSE(name_ok(p, "api.portarium.example", 80));
    CU_ASSERT(name_ok(p, "plain.example", 80));                /* http:// -> 80 only */
    CU_ASSERT_FALSE(name_ok(p, "plain.example", 443));
    CU_ASSERT(name_ok(p, "x.svc.example", 8443));
    CU_ASSERT_FALSE(name_ok(p, "x.svc.example", 443));
    CU_ASSERT(name_ok(p, "db.example", 5432));
    CU_ASSERT_FALSE(name_ok(p, "db.example", 443));
    ei_match m = ei_policy_match_name(p, "api.portarium.example", 21, 443);
    CU_ASSERT_STRING_EQUAL(m.rule, "https://api.portarium.example/v1/ignored");
    CU_ASSERT_EQUAL(m.line, 3);
    ei_policy_set_free(set);
}

static bool addr_ok(const ei_policy *p, const char *a, uint16_t port)
{
    ei_addr x = addr(a);
    return ei_policy_match_address(p, &x, port).rule != NULL;
}

static void test_addresses_and_sources(void)
{
    errors e;
    ei_policy_set *set = load(rules, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    ei_addr pod = addr("10.244.0.10");
    const ei_policy *p = ei_policy_for_source(set, &pod);
    CU_ASSERT(addr_ok(p, "192.0.2.200", 9999));
    CU_ASSERT_FALSE(addr_ok(p, "192.0.3.1", 443));
    CU_ASSERT(addr_ok(p, "198.51.100.7", 22));
    CU_ASSERT_FALSE(addr_ok(p, "198.51.100.7", 23));
    CU_ASSERT(addr_ok(p, "2001:db8:ffff::1", 443));
    CU_ASSERT_FALSE(addr_ok(p, "2001:db8:ffff::1", 80));
    CU_ASSERT(addr_ok(p, "2001:db8:1::5", 80));   /* the longer, any-port prefix */
    CU_ASSERT_FALSE(addr_ok(p, "2001:db9::1", 443));

    const char *cases[][2] = { { "10.244.1.10", "ci" }, { "10.244.1.200", "ci-special" },
                               { "10.244.9.1", "empty" }, { "10.245.0.1", "default" },
                               { "fd00:1::9", "ci" }, { "fd00:2::9", "default" } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ei_addr src = addr(cases[i][0]);
        CU_ASSERT_STRING_EQUAL(ei_policy_name(ei_policy_for_source(set, &src)), cases[i][1]);
    }
    ei_addr special = addr("10.244.1.200");
    CU_ASSERT_FALSE(name_ok(ei_policy_for_source(set, &special), "github.com", 443));
    CU_ASSERT_EQUAL(ei_policy_set_policies(set), 4);
    CU_ASSERT_EQUAL(ei_policy_set_entries(set), 11);
    ei_policy_set_free(set);
}

/* 20,000 exact names and 20,000 wildcards: every one found, none of their near misses. */
static void test_many_entries(void)
{
    enum { N = 20000 };
    static char text[N * 2 * 40];
    size_t off = 0;
    for (int i = 0; i < N; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "allow host%d.example\nallow *.zone%d.example\n", i, i);
    errors e;
    ei_policy_set *set = ei_rules_parse(text, off, on_error, &e, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    ei_addr pod = addr("10.0.0.1");
    const ei_policy *p = ei_policy_for_source(set, &pod);
    int found = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        char a[64], b[64], c[64];
        snprintf(a, sizeof a, "host%d.example", i);
        snprintf(b, sizeof b, "x.y.zone%d.example", i);
        snprintf(c, sizeof c, "zone%d.example", i);
        found += name_ok(p, a, 443) + name_ok(p, b, 443);
        wrong += name_ok(p, c, 443);
    }
    CU_ASSERT_EQUAL(found, 2 * N);
    CU_ASSERT_EQUAL(wrong, 0);
    ei_policy_set_free(set);
}

/* ---- decide ---- */

static void test_decide_order(void)
{
    errors e;
    ei_policy_set *set = load(rules, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    ei_flow_facts f;
    memset(&f, 0, sizeof f);
    f.src = addr("10.244.0.10");
    f.dst = addr("203.0.113.1");
    f.dport = 443;
    ei_decision d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_PENDING); /* a SYN: no message yet */

    f.have_message = true;
    f.l7 = EI_L7_TLS;
    f.host = "api.example.com";
    f.host_len = strlen(f.host);
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_ALLOW);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_ALLOWED_NAME);

    f.problem = EI_REASON_TLS_DUPLICATE_EXTENSION; /* a problem beats the name */
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.verdict, EI_VERDICT_DENY);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_TLS_DUPLICATE_EXTENSION);
    CU_ASSERT_PTR_NULL(d.match.rule);

    f.dst = addr("192.0.2.9"); /* an address entry beats everything */
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_ALLOWED_ADDRESS);

    f.dst = addr("203.0.113.1");
    f.problem = EI_REASON_NONE;
    f.host = NULL;
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_NO_HOSTNAME);
    f.l7 = EI_L7_NONE;
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_NOT_TLS_OR_HTTP);

    f.src = addr("10.244.9.1"); /* policy "empty" denies everything */
    f.l7 = EI_L7_TLS;
    f.host = "api.example.com";
    d = ei_decide(&f, set);
    CU_ASSERT_EQUAL(d.reason, EI_REASON_NAME_NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(d.policy), "empty");
    ei_policy_set_free(set);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    static const ei_unit_case names[] = { EI_CASE(test_name_grammar) };
    static const ei_unit_case parser[] = { EI_CASE(test_every_error_with_its_line),
                                           EI_CASE(test_long_line_and_nul) };
    static const ei_unit_case match[] = { EI_CASE(test_exact_wildcard_and_ports),
                                          EI_CASE(test_addresses_and_sources),
                                          EI_CASE(test_many_entries) };
    static const ei_unit_case decide[] = { EI_CASE(test_decide_order) };
    EI_SUITE("names", names);
    EI_SUITE("rules file", parser);
    EI_SUITE("matching", match);
    EI_SUITE("decide", decide);
    return ei_unit_run();
}
