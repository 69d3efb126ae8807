/* ClusterNetworkPolicy documents as policy input: what sniffs as one, each translation
 * (subjects to selectors, domain names and networks to entries on their ports) checked
 * through the policy set as the daemon uses it, entries named POLICY/RULE at their YAML
 * line, YAML and JSON, lists and multiple documents, every refusal with its line, the
 * deny-all pattern, and every warning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/cnp.h"
#include "unit.h"

#define API "apiVersion: policy.networking.k8s.io/v1alpha2\n"
#define CNP API "kind: ClusterNetworkPolicy\n"

/* ---- helpers ---- */

typedef struct {
    ei_policy_set *set;
    unsigned errors;
    char *err; /* everything written to err */
    size_t errlen;
} result;

static result parse_text(const char *text, size_t len)
{
    result r = { 0 };
    FILE *f = open_memstream(&r.err, &r.errlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    r.errors = 12345;
    r.set = ei_cnp_parse("p.yaml", text, len, f, &r.errors);
    fclose(f);
    CU_ASSERT((r.set == NULL) == (r.errors > 0)); /* any error, and nothing is returned */
    return r;
}

static result parse(const char *text)
{
    return parse_text(text, strlen(text));
}

static result parse_ok(const char *text)
{
    result r = parse(text);
    if (r.set == NULL)
        printf("\n  unexpected errors:\n%s", r.err);
    CU_ASSERT_EQUAL(r.errors, 0);
    return r;
}

static void done(result *r)
{
    ei_policy_set_free(r->set);
    free(r->err);
}

/* The number of lines of err that are errors (neither warnings nor notes). */
static unsigned error_lines(const char *err)
{
    unsigned n = 0;
    for (const char *l = err; *l != '\0';) {
        const char *nl = strchr(l, '\n');
        size_t len = nl != NULL ? (size_t)(nl - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
        if (strstr(line, ": warning: ") == NULL && strstr(line, ": note: ") == NULL)
            n++;
        l += len + (nl != NULL);
    }
    return n;
}

static bool has(const result *r, const char *text)
{
    if (strstr(r->err, text) != NULL)
        return true;
    printf("\n  missing '%s' in:\n%s", text, r->err);
    return false;
}

static ei_addr addr(const char *text)
{
    ei_addr a;
    CU_ASSERT_FATAL(ei_addr_parse(text, &a));
    return a;
}

#define LABEL(k, v) { { (const uint8_t *)(k), sizeof(k) - 1 }, { (const uint8_t *)(v), sizeof(v) - 1 } }

static const ei_label payments_ns[] = { LABEL("kubernetes.io/metadata.name", "payments"), LABEL("env", "prod") };
static const ei_label sandbox_ns[] = { LABEL("kubernetes.io/metadata.name", "sandbox"), LABEL("env", "dev") };
static const ei_label api_pod[] = { LABEL("app", "api"), LABEL("version", "2") };
static const ei_label debug_pod[] = { LABEL("app", "api"), LABEL("debug", "") };
static const ei_label runner_pod[] = { LABEL("app", "runner"), LABEL("tier", "backend"), LABEL("canary", "true") };
static const ei_label web_pod[] = { LABEL("app", "runner"), LABEL("tier", "frontend") };

static const ei_workload pay_api = { "payments", "api-1", "u1", api_pod, 2, payments_ns, 2 };
static const ei_workload pay_debug = { "payments", "debug-1", "u2", debug_pod, 2, payments_ns, 2 };
static const ei_workload sand_runner = { "sandbox", "runner-1", "u3", runner_pod, 3, sandbox_ns, 2 };
static const ei_workload sand_web = { "sandbox", "web-1", "u4", web_pod, 2, sandbox_ns, 2 };

/* Whether the policy named name governs wl. */
static bool governs(const ei_policy_set *set, const ei_workload *wl, const char *name)
{
    ei_addr src = addr("203.0.113.99");
    ei_policy_iter it;
    ei_policy_iter_init(&it, set, &src, wl);
    for (const ei_policy *p; (p = ei_policy_iter_next(&it)) != NULL;)
        if (strcmp(ei_policy_name(p), name) == 0)
            return true;
    return false;
}

/* The first entry of the policies governing wl that allows host on port, as decide()
 * looks them up. */
static ei_match name_match(const ei_policy_set *set, const ei_workload *wl, const char *host, uint16_t port)
{
    ei_addr src = addr("203.0.113.99");
    ei_policy_iter it;
    ei_policy_iter_init(&it, set, &src, wl);
    for (const ei_policy *p; (p = ei_policy_iter_next(&it)) != NULL;) {
        ei_match m = ei_policy_match_name(p, host, strlen(host), port);
        if (m.rule != NULL)
            return m;
    }
    return (ei_match){ NULL, 0 };
}

static ei_match address_match(const ei_policy_set *set, const ei_workload *wl, const char *dst, uint16_t port)
{
    ei_addr src = addr("203.0.113.99"), d = addr(dst);
    ei_policy_iter it;
    ei_policy_iter_init(&it, set, &src, wl);
    for (const ei_policy *p; (p = ei_policy_iter_next(&it)) != NULL;) {
        ei_match m = ei_policy_match_address(p, &d, port);
        if (m.rule != NULL)
            return m;
    }
    return (ei_match){ NULL, 0 };
}

/* rule NULL: nothing may match. */
static void expect_match(ei_match m, const char *what, const char *rule, unsigned line)
{
    bool ok = rule == NULL ? m.rule == NULL
                           : m.rule != NULL && strcmp(m.rule, rule) == 0 && m.line == line;
    if (!ok)
        printf("\n  %s: matched '%s' line %u, want '%s' line %u", what, m.rule ? m.rule : "-", m.line,
               rule ? rule : "-", line);
    CU_ASSERT(ok);
}

/* ---- sniffing ---- */

static void test_sniff(void)
{
    static const char *const yes[] = {
        CNP "metadata: {name: p}\n",
        "# a comment\n---\n" API "kind: \"ClusterNetworkPolicy\"\n",
        "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicyList\nitems: []\n",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: policy.networking.k8s.io/v1alpha2\n"
        "  kind: ClusterNetworkPolicy\n",
        "{\"apiVersion\":\"policy.networking.k8s.io/v1alpha2\",\"kind\":\"ClusterNetworkPolicy\"}",
        "{\n  \"kind\" : \"ClusterNetworkPolicyList\",\n  \"items\": []\n}\n",
        "{apiVersion: policy.networking.k8s.io/v1alpha2, kind: ClusterNetworkPolicy}",
        "kind: 'ClusterNetworkPolicy' # the kind\n",
        "\t kind: ClusterNetworkPolicy\r\n",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!ei_cnp_sniff(yes[i], strlen(yes[i])))
            printf("\n  should sniff as CNP: %s", yes[i]);
        CU_ASSERT(ei_cnp_sniff(yes[i], strlen(yes[i])));
    }
    static const char *const no[] = {
        "",
        "policy payments\nnamespaces kubernetes.io/metadata.name=payments\npods app=api,!debug\n"
        "allow api.stripe.example\n",
        "# converted from kind: ClusterNetworkPolicy\nallow a.example\n",
        "  # kind: ClusterNetworkPolicy\n",
        "[{\"kind\": \"MachineExecutionPolicy\", \"metadata\": {\"name\": \"p\"}, \"spec\": {\"egressAllowlist\": "
        "[\"https://a.example\"]}}]",
        "{\"items\": [{\"egressAllowlist\": [\"https://a.example/kind\"]}]}",
        "kind: ClusterNetworkPolicyX\n",
        "kind: NetworkPolicy\n",
        "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n",
        "mykind: ClusterNetworkPolicy\n",
        "kind ClusterNetworkPolicy\n",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (ei_cnp_sniff(no[i], strlen(no[i])))
            printf("\n  should not sniff as CNP: %s", no[i]);
        CU_ASSERT_FALSE(ei_cnp_sniff(no[i], strlen(no[i])));
    }
    /* the length is honoured */
    static const char cut[] = "kind: ClusterNetworkPolicy";
    CU_ASSERT(ei_cnp_sniff(cut, sizeof cut - 1));
    CU_ASSERT_FALSE(ei_cnp_sniff(cut, 10));
}

/* ---- translation ---- */

static const char payments[] =
    CNP                                                    /* 1-2 */
    "metadata:\n"                                          /* 3 */
    "  name: payments\n"                                   /* 4 */
    "spec:\n"                                              /* 5 */
    "  tier: Admin\n"                                      /* 6 */
    "  priority: 10\n"                                     /* 7 */
    "  subject:\n"                                         /* 8 */
    "    pods:\n"                                          /* 9 */
    "      namespaceSelector:\n"                           /* 10 */
    "        matchLabels: {kubernetes.io/metadata.name: payments}\n" /* 11 */
    "      podSelector:\n"                                 /* 12 */
    "        matchLabels: {app: api}\n"                    /* 13 */
    "        matchExpressions:\n"                          /* 14 */
    "        - {key: debug, operator: DoesNotExist}\n"     /* 15 */
    "  egress:\n"                                          /* 16 */
    "  - name: stripe\n"                                   /* 17 */
    "    action: Accept\n"                                 /* 18 */
    "    to:\n"                                            /* 19 */
    "    - domainNames:\n"                                 /* 20 */
    "      - api.stripe.example\n"                         /* 21 */
    "      - \"*.Stripe.example.\"\n"                      /* 22 */
    "    - networks: [\"192.0.2.0/24\", \"2001:db8::/32\"]\n" /* 23 */
    "    protocols:\n"                                     /* 24 */
    "    - tcp: {destinationPort: {number: 443}}\n"        /* 25 */
    "    - udp: {destinationPort: {number: 443}}\n"        /* 26 */
    "    - tcp:\n"                                         /* 27 */
    "        destinationPort:\n"                           /* 28 */
    "          number: 8443\n"                             /* 29 */
    "    - udp: {destinationPort: {number: 8443}}\n"       /* 30 */
    "  - action: Accept\n"                                 /* 31 */
    "    to:\n"                                            /* 32 */
    "    - domainNames: [status.example]\n"                /* 33 */
    "    - networks: [198.51.100.0/24, \"fd00::/8\"]\n"    /* 34 */
    "  - name: deny-the-rest\n"                            /* 35 */
    "    action: Deny\n"                                   /* 36 */
    "    to: [{networks: [\"0.0.0.0/0\", \"::/0\"]}]\n";   /* 37 */

static void check_payments(const ei_policy_set *set, unsigned offset)
{
    CU_ASSERT_EQUAL(ei_policy_set_policies(set), 2); /* default and payments */
    /* 2 names and 2 networks on 443 and 8443 (TCP and UDP: once each), 1 name, 2 networks */
    CU_ASSERT_EQUAL(ei_policy_set_entries(set), 11);
    CU_ASSERT(ei_policy_set_selects(set));
    CU_ASSERT(governs(set, &pay_api, "payments"));
    CU_ASSERT_FALSE(governs(set, &pay_debug, "payments"));   /* debug DoesNotExist */
    CU_ASSERT_FALSE(governs(set, &sand_runner, "payments")); /* another namespace */
    CU_ASSERT(governs(set, &pay_debug, "default"));
    static const struct {
        const char *host;
        uint16_t port;
        const char *rule;
        unsigned line;
    } names[] = {
        { "api.stripe.example", 443, "payments/stripe", 21 },
        { "api.stripe.example", 8443, "payments/stripe", 21 },
        { "api.stripe.example", 80, NULL, 0 },
        { "x.y.stripe.example", 443, "payments/stripe", 22 }, /* one or more labels */
        { "stripe.example", 443, NULL, 0 },                   /* never the apex */
        { "status.example", 443, "payments/egress[1]", 33 },  /* no protocols: 443 and 80 */
        { "status.example", 80, "payments/egress[1]", 33 },
        { "status.example", 8443, NULL, 0 },
        { "other.example", 443, NULL, 0 },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ei_match m = name_match(set, &pay_api, names[i].host, names[i].port);
        expect_match(m, names[i].host, names[i].rule, names[i].rule ? names[i].line + offset : 0);
        CU_ASSERT_PTR_NULL(name_match(set, &pay_debug, names[i].host, names[i].port).rule);
    }
    static const struct {
        const char *dst;
        uint16_t port;
        const char *rule;
        unsigned line;
    } addrs[] = {
        { "192.0.2.7", 443, "payments/stripe", 23 },
        { "192.0.2.7", 8443, "payments/stripe", 23 },
        { "192.0.2.7", 80, NULL, 0 },
        { "2001:db8::1", 8443, "payments/stripe", 23 },
        { "198.51.100.9", 22, "payments/egress[1]", 34 }, /* no protocols: every port */
        { "fd00::1", 5, "payments/egress[1]", 34 },
        { "203.0.113.1", 443, NULL, 0 },                 /* the deny-all allows nothing */
    };
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        ei_match m = address_match(set, &pay_api, addrs[i].dst, addrs[i].port);
        expect_match(m, addrs[i].dst, addrs[i].rule, addrs[i].rule ? addrs[i].line + offset : 0);
    }
}

static void test_translation(void)
{
    result r = parse_ok(payments);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.set);
    check_payments(r.set, 0);
    CU_ASSERT(has(&r, "p.yaml:6: warning: spec.tier and spec.priority are not used"));
    CU_ASSERT(has(&r, "p.yaml:35: note: the deny-all is what the daemon does anyway"));
    CU_ASSERT_EQUAL(error_lines(r.err), 0);
    CU_ASSERT_PTR_NULL(strstr(r.err, "given for")); /* TCP and UDP alike: no warning */
    done(&r);
}

/* Each subject, as the workloads it selects: bit 0 pay_api, 1 pay_debug, 2 sand_runner,
 * 3 sand_web. */
static void test_subjects(void)
{
    static const struct {
        const char *subject;
        unsigned selects;
    } cases[] = {
        { "namespaces: {}", 15 },
        { "namespaces: {matchLabels: {env: prod}}", 3 },
        { "namespaces: {matchLabels: {kubernetes.io/metadata.name: sandbox}}", 12 },
        { "namespaces: {matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}", 12 },
        { "namespaces: {matchExpressions: [{key: env, operator: In, values: [dev, prod]}]}", 15 },
        { "namespaces: {matchExpressions: [{key: team, operator: Exists}]}", 0 },
        { "pods: {podSelector: {}}", 15 },
        { "pods: {namespaceSelector: null, podSelector: {}}", 15 },
        { "pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: runner}}}", 12 },
        { "pods: {podSelector: {matchExpressions: [{key: app, operator: In, values: [runner]}, "
          "{key: tier, operator: NotIn, values: [frontend]}]}}", 4 },
        { "pods: {podSelector: {matchExpressions: [{key: debug, operator: Exists}]}}", 2 },
        { "pods: {namespaceSelector: {matchLabels: {env: prod}}, podSelector: {matchExpressions: "
          "[{key: debug, operator: DoesNotExist, values: []}]}}", 1 },
        { "pods: {podSelector: {matchLabels: {version: 2}}}", 1 },    /* a YAML number */
        { "pods: {podSelector: {matchLabels: {canary: true}}}", 4 },  /* a YAML boolean */
        { "pods: {podSelector: {matchLabels: {app: runner, tier: frontend}}}", 8 },
        { "pods: {podSelector: {matchLabels: {debug: \"\"}}}", 2 },   /* an empty value */
    };
    const ei_workload *wls[] = { &pay_api, &pay_debug, &sand_runner, &sand_web };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 CNP "metadata: {name: p}\nspec:\n  subject:\n    %s\n  egress:\n  - action: Accept\n"
                 "    to: [{domainNames: [x.example]}]\n", cases[i].subject);
        result r = parse_ok(text);
        for (size_t w = 0; r.set != NULL && w < 4; w++) {
            bool want = (cases[i].selects >> w) & 1;
            if (governs(r.set, wls[w], "p") != want)
                printf("\n  %s: workload %zu %s", cases[i].subject, w, want ? "not selected" : "selected");
            CU_ASSERT_EQUAL(governs(r.set, wls[w], "p"), want);
            CU_ASSERT_EQUAL(name_match(r.set, wls[w], "x.example", 443).rule != NULL, want);
        }
        done(&r);
    }
}

/* JSON, lists and documents after documents: the same policy, the same answers. */
static void test_json_and_lists(void)
{
    static const char json[] =
        "{\n"
        "  \"apiVersion\": \"policy.networking.k8s.io/v1alpha2\",\n"
        "  \"kind\": \"ClusterNetworkPolicy\",\n"
        "  \"metadata\": {\"name\": \"payments\"},\n"
        "  \"spec\": {\n"
        "\t\"tier\": \"Admin\", \"priority\": 10,\n"
        "    \"subject\": {\"pods\": {\n"
        "      \"namespaceSelector\": {\"matchLabels\": {\"kubernetes.io/metadata.name\": \"payments\"}},\n"
        "      \"podSelector\": {\"matchLabels\": {\"app\": \"api\"},\n"
        "                      \"matchExpressions\": [{\"key\": \"debug\", \"operator\": \"DoesNotExist\"}]}}},\n"
        "    \"egress\": [{\"name\": \"stripe\", \"action\": \"Accept\",\n"
        "      \"to\": [{\"domainNames\": [\"api.stripe.example\"]}],\n"
        "      \"protocols\": [{\"tcp\": {\"destinationPort\": {\"number\": 443}}}]}]\n"
        "  }\n"
        "}\n";
    CU_ASSERT(ei_cnp_sniff(json, sizeof json - 1));
    result r = parse_ok(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.set);
    CU_ASSERT(governs(r.set, &pay_api, "payments"));
    CU_ASSERT_FALSE(governs(r.set, &pay_debug, "payments"));
    expect_match(name_match(r.set, &pay_api, "api.stripe.example", 443), "json", "payments/stripe", 12);
    expect_match(name_match(r.set, &pay_api, "api.stripe.example", 80), "json", NULL, 0);
    done(&r);

    /* documents after documents: lines count from the top of the file; empty ones are skipped */
    char multi[4096];
    snprintf(multi, sizeof multi, "---\n# nothing\n---\n%s---\n" CNP "metadata: {name: second}\nspec:\n"
             "  subject: {namespaces: {matchLabels: {env: dev}}}\n  egress:\n  - action: Accept\n"
             "    to: [{domainNames: [dev.example]}]\n---\n", payments);
    r = parse_ok(multi);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.set);
    CU_ASSERT_EQUAL(ei_policy_set_policies(r.set), 3);
    expect_match(name_match(r.set, &pay_api, "api.stripe.example", 443), "multi", "payments/stripe", 24);
    expect_match(name_match(r.set, &sand_web, "dev.example", 80), "multi", "second/egress[0]", 49);
    expect_match(name_match(r.set, &pay_api, "dev.example", 80), "multi", NULL, 0);
    /* tier and priority are said to be unused once for the file */
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "warning: spec.tier"));
    CU_ASSERT_PTR_NULL(strstr(strstr(r.err, "warning: spec.tier") + 1, "warning: spec.tier"));
    done(&r);

    /* kind: List (as kubectl get -o yaml prints) and ClusterNetworkPolicyList, whose items
     * the API server lists without apiVersion and kind */
    static const char list[] =
        "apiVersion: v1\n"                                 /* 1 */
        "kind: List\n"                                     /* 2 */
        "items:\n"                                         /* 3 */
        "- apiVersion: policy.networking.k8s.io/v1alpha2\n" /* 4 */
        "  kind: ClusterNetworkPolicy\n"                   /* 5 */
        "  metadata: {name: a}\n"                          /* 6 */
        "  spec:\n"                                        /* 7 */
        "    subject: {namespaces: {}}\n"                  /* 8 */
        "    egress: [{action: Accept, to: [{domainNames: [a.example]}]}]\n" /* 9 */
        "- apiVersion: policy.networking.k8s.io/v1alpha2\n" /* 10 */
        "  kind: ClusterNetworkPolicy\n"                   /* 11 */
        "  metadata: {name: b}\n"                          /* 12 */
        "  spec:\n"                                        /* 13 */
        "    subject: {namespaces: {}}\n"                  /* 14 */
        "    egress: [{action: Accept, to: [{networks: [10.0.0.0/8]}]}]\n" /* 15 */
        "---\n"                                            /* 16 */
        "{\"apiVersion\": \"policy.networking.k8s.io/v1alpha2\", \"kind\": \"ClusterNetworkPolicyList\",\n"
        " \"metadata\": {\"resourceVersion\": \"7\"}, \"items\": [\n" /* 18 */
        "  {\"metadata\": {\"name\": \"c\"}, \"spec\": {\"subject\": {\"namespaces\": {}},\n" /* 19 */
        "   \"egress\": [{\"action\": \"Accept\", \"to\": [{\"domainNames\": [\"c.example\"]}]}]}}]}\n"; /* 20 */
    r = parse_ok(list);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.set);
    CU_ASSERT_EQUAL(ei_policy_set_policies(r.set), 4);
    expect_match(name_match(r.set, &sand_web, "a.example", 443), "list a", "a/egress[0]", 9);
    expect_match(address_match(r.set, &sand_web, "10.1.2.3", 22), "list b", "b/egress[0]", 15);
    expect_match(name_match(r.set, &sand_web, "c.example", 443), "list c", "c/egress[0]", 20);
    done(&r);

    /* an empty list is a set that denies everything */
    r = parse_ok(API "kind: ClusterNetworkPolicyList\nitems: []\n");
    CU_ASSERT_PTR_NOT_NULL(r.set);
    CU_ASSERT(r.set != NULL && ei_policy_set_policies(r.set) == 1);
    done(&r);
}

/* ---- refusals ---- */

#define HEAD CNP "metadata: {name: p}\nspec:\n  subject: {namespaces: {}}\n  egress:\n" /* lines 1-6 */
#define ACCEPT_TO(peer) "  - action: Accept\n    to: [" peer "]\n"            /* lines 7-8 */
#define RULE_PORT(p) ACCEPT_TO("{networks: [10.0.0.0/8]}") "    protocols: [{tcp: {destinationPort: " p "}}]\n"

static void test_each_error(void)
{
    static const struct {
        const char *text;
        unsigned line;
        const char *message;
    } cases[] = {
        /* the document */
        { "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: ClusterNetworkPolicy\n", 1,
          "unknown apiVersion 'policy.networking.k8s.io/v1alpha1' (policy.networking.k8s.io/v1alpha2)" },
        { "kind: ClusterNetworkPolicy\nmetadata: {name: p}\n", 1, "unknown apiVersion ''" },
        { API "kind: NetworkPolicy\n", 2, "unknown kind 'NetworkPolicy'" },
        { API "kind: AdminNetworkPolicy\n", 2, "unknown kind 'AdminNetworkPolicy'" },
        { API "metadata: {name: p}\n", 1, "kind is missing" },
        { "- a\n- b\n", 1, "a document must be a mapping" },
        { CNP "metadata: {labels: {a: b}}\nspec: {subject: {namespaces: {}}}\n", 3, "metadata.name is missing" },
        { CNP "spec: {subject: {namespaces: {}}}\n", 1, "metadata.name is missing" },
        { CNP "metadata: {name: default}\nspec: {subject: {namespaces: {}}}\n", 3, "metadata.name 'default'" },
        { CNP "metadata: {name: \"a b\"}\nspec: {subject: {namespaces: {}}}\n", 3, "bad metadata.name 'a b'" },
        { CNP "metadata: {name: \"a\\nallow x.example\"}\nspec: {subject: {namespaces: {}}}\n", 3,
          "bad metadata.name" },
        { CNP "metadata: {name: p}\n", 1, "spec is missing" },
        { CNP "metadata: {name: p}\nspecs: {}\n", 4, "unknown field 'specs' in a ClusterNetworkPolicy" },
        { CNP "metadata: {name: p}\nspec:\n  tier: Admin\n", 5, "spec.subject is missing" },
        { CNP "metadata: {name: p}\nspec:\n  tier: Medium\n  subject: {namespaces: {}}\n", 5, "unknown tier 'Medium'" },
        { CNP "metadata: {name: p}\nspec:\n  priority: 1001\n  subject: {namespaces: {}}\n", 5, "bad priority '1001'" },
        { CNP "metadata: {name: p}\nspec:\n  priority: -1\n  subject: {namespaces: {}}\n", 5, "bad priority '-1'" },
        { CNP "metadata: {name: p}\nspec:\n  subjects: {namespaces: {}}\n", 5, "unknown field 'subjects' in spec" },
        /* the subject */
        { CNP "metadata: {name: p}\nspec:\n  subject: {}\n", 5, "spec.subject needs exactly one of namespaces and pods" },
        { CNP "metadata: {name: p}\nspec:\n  subject: {namespaces: null}\n", 5, "spec.subject needs exactly one of namespaces and pods" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    namespaces: {}\n    pods: {podSelector: {}}\n", 6,
          "spec.subject needs exactly one of namespaces and pods" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    pods: {namespaceSelector: {}}\n", 6,
          "subject.pods needs podSelector" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    namespaces: {matchLabel: {a: b}}\n", 6,
          "unknown field 'matchLabel' in subject.namespaces" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    namespaces: {matchLabels: {app: \"a,b\"}}\n", 6,
          "bad label value 'a,b'" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    namespaces: {matchLabels: {app: \"a # b\"}}\n", 6,
          "bad label value 'a # b'" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    namespaces: {matchLabels: {\"a b\": x}}\n", 6,
          "bad label key 'a b'" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    namespaces: {matchLabels: {a: [x]}}\n", 6,
          "a label value must be a string" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    namespaces:\n      matchLabels: {a: -x}\n", 7,
          "bad namespaces selector" }, /* from the selector parser, mapped back */
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    namespaces:\n      matchLabels: {a: x, a: y}\n", 7,
          "'a' given twice in matchLabels" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    pods:\n      podSelector:\n        matchExpressions:\n"
          "        - {key: a, operator: In}\n", 9, "values of In and NotIn must be a list" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    pods:\n      podSelector:\n        matchExpressions:\n"
          "        - {key: a, operator: NotIn, values: []}\n", 9, "values of In and NotIn needs at least 1 item" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    pods:\n      podSelector:\n        matchExpressions:\n"
          "        - {key: a, operator: Exists, values: [x]}\n", 9, "Exists takes no values" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    pods:\n      podSelector:\n        matchExpressions:\n"
          "        - {key: a, operator: Equals, values: [x]}\n", 9, "unknown operator 'Equals'" },
        { CNP "metadata: {name: p}\nspec:\n  subject:\n    pods:\n      podSelector:\n        matchExpressions:\n"
          "        - {operator: Exists}\n", 9, "a matchExpressions item needs key and operator" },
        /* rules */
        { HEAD "  - action: Deny\n    to: [{networks: [10.0.0.0/8]}]\n", 7, "Deny rules are refused" },
        { HEAD "  - action: Deny\n    to: [{domainNames: [x.example]}]\n", 7, "Deny rules are refused" },
        { HEAD "  - action: Deny\n    to: [{networks: [0.0.0.0/0]}, {domainNames: [x.example]}]\n", 7,
          "Deny rules are refused" },
        { HEAD "  - action: Deny\n    to: [{namespaces: {}}]\n", 7, "Deny rules are refused" },
        { HEAD "  - action: Deny\n    to: [{networks: [0.0.0.0/0]}]\n"
          "    protocols: [{tcp: {destinationPort: {number: 443}}}]\n", 7, "Deny rules are refused" },
        { HEAD "  - action: Pass\n    to: [{networks: [0.0.0.0/0]}]\n", 7, "Pass rules are refused" },
        { HEAD "  - action: Deny\n    to: [{networks: [0.0.0.0/0, \"::/0\"]}]\n" ACCEPT_TO("{domainNames: [x.example]}"),
          7, "a deny-all before an Accept rule of its policy (line 9)" },
        { HEAD "  - action: Reject\n    to: [{networks: [0.0.0.0/0]}]\n", 7, "unknown action 'Reject'" },
        { HEAD "  - to: [{networks: [0.0.0.0/0]}]\n", 7, "an egress rule needs action" },
        { HEAD "  - action: Accept\n", 7, "to must be a list" },
        { HEAD "  - action: Accept\n    to: []\n", 8, "to needs at least 1 item" },
        { HEAD "  - action: Accept\n    too: []\n", 8, "unknown field 'too' in an egress rule" },
        { HEAD "  - action: Accept\n    action: Accept\n    to: [{networks: [10.0.0.0/8]}]\n", 8,
          "'action' given twice in an egress rule" },
        { HEAD "  - name: [x]\n    action: Accept\n    to: [{networks: [10.0.0.0/8]}]\n", 7,
          "a rule's name must be a string" },
        /* peers */
        { HEAD ACCEPT_TO("{}"), 8, "a peer needs exactly one of domainNames, networks, namespaces, pods, nodes" },
        { HEAD ACCEPT_TO("{domainNames: [a.example], networks: [10.0.0.0/8]}"), 8, "a peer needs exactly one" },
        { HEAD ACCEPT_TO("{fqdns: [a.example]}"), 8, "unknown field 'fqdns' in a peer" },
        { HEAD ACCEPT_TO("{domainNames: []}"), 8, "domainNames needs at least 1 item" },
        { HEAD ACCEPT_TO("{domainNames: a.example}"), 8, "domainNames must be a list" },
        { HEAD "  - action: Accept\n    to:\n    - domainNames:\n      - a.example\n      - a..example\n", 11,
          "bad domain name 'a..example'" },
        { HEAD ACCEPT_TO("{domainNames: [\"*.com\"]}"), 8, "bad domain name '*.com'" },
        { HEAD ACCEPT_TO("{domainNames: [localhost]}"), 8, "bad domain name 'localhost'" },
        { HEAD ACCEPT_TO("{domainNames: [\"a.*.example\"]}"), 8, "bad domain name 'a.*.example'" },
        { HEAD ACCEPT_TO("{domainNames: [\"*\"]}"), 8, "bad domain name '*'" },
        { HEAD ACCEPT_TO("{domainNames: [-a.example]}"), 8, "bad domain name '-a.example'" },
        { HEAD ACCEPT_TO("{domainNames: [a_.example]}"), 8, "bad domain name 'a_.example'" },
        { HEAD ACCEPT_TO("{domainNames: [a.example..]}"), 8, "bad domain name 'a.example..'" },
        { HEAD ACCEPT_TO("{domainNames: [\"https://a.example\"]}"), 8, "bad domain name 'https://a.example'" },
        { HEAD ACCEPT_TO("{domainNames: [\"a.example:443\"]}"), 8, "bad domain name 'a.example:443'" },
        { HEAD ACCEPT_TO("{domainNames: [\"caf\xc3\xa9.example\"]}"), 8, "bad domain name" },
        { HEAD ACCEPT_TO("{domainNames: [a1234567890123456789012345678901234567890123456789012345678901234.example]}"),
          8, "bad name" }, /* a 65-byte label: from the rules parser, mapped back */
        { HEAD ACCEPT_TO("{networks: [10.0.0.0]}"), 8, "bad CIDR '10.0.0.0'" },
        { HEAD ACCEPT_TO("{networks: [\"10.0.0.0/8 x\"]}"), 8, "bad CIDR '10.0.0.0/8 x'" },
        { HEAD ACCEPT_TO("{networks: [example.com/8]}"), 8, "bad CIDR 'example.com/8'" },
        { HEAD ACCEPT_TO("{networks: [10.0.0.1/8]}"), 8, "host bits set in '10.0.0.1/8'" },
        { HEAD ACCEPT_TO("{networks: [10.0.0.0/33]}"), 8, "bad prefix length '/33'" },
        { HEAD ACCEPT_TO("{networks: [\"fd00::1/8\"]}"), 8, "host bits set in 'fd00::1/8'" },
        { HEAD ACCEPT_TO("{networks: [abc/8]}"), 8, "bad address 'abc'" },
        /* protocols */
        { HEAD RULE_PORT("{number: 0}"), 9, "bad port '0' (1-65535)" },
        { HEAD RULE_PORT("{number: 65536}"), 9, "bad port '65536' (1-65535)" },
        { HEAD RULE_PORT("{number: http}"), 9, "bad port 'http'" },
        { HEAD RULE_PORT("{number: 1, range: {start: 1, end: 2}}"), 9, "destinationPort needs exactly one of number and range" },
        { HEAD RULE_PORT("{range: {start: 90, end: 80}}"), 9, "range start 90 must be less than its end 80" },
        { HEAD RULE_PORT("{range: {start: 90}}"), 9, "range end is missing" },
        { HEAD RULE_PORT("{ports: 1}"), 9, "unknown field 'ports' in destinationPort" },
        { HEAD ACCEPT_TO("{networks: [10.0.0.0/8]}") "    protocols: [{tcp: {}}]\n", 9, "tcp needs destinationPort" },
        { HEAD ACCEPT_TO("{networks: [10.0.0.0/8]}") "    protocols: []\n", 9, "protocols needs at least 1 item" },
        { HEAD ACCEPT_TO("{networks: [10.0.0.0/8]}") "    protocols: [{}]\n", 9,
          "a protocols item needs exactly one of tcp, udp, sctp, destinationNamedPort" },
        { HEAD ACCEPT_TO("{networks: [10.0.0.0/8]}")
          "    protocols: [{tcp: {destinationPort: {number: 1}}, udp: {destinationPort: {number: 1}}}]\n", 9,
          "a protocols item needs exactly one" },
        { HEAD ACCEPT_TO("{networks: [10.0.0.0/8]}") "    protocols: [{icmp: {}}]\n", 9,
          "unknown field 'icmp' in a protocols item" },
        /* more documents */
        { HEAD ACCEPT_TO("{networks: [10.0.0.0/8]}") "---\n" CNP "metadata:\n  name: p\nspec: {subject: {namespaces: {}}}\n",
          13, "policy 'p' is defined twice" },
        { "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: x}\n", 4,
          "a List item of kind 'Pod'" },
        { "apiVersion: v2\nkind: List\nitems: []\n", 1, "unknown apiVersion 'v2' of a List (v1)" },
        { API "kind: ClusterNetworkPolicyList\nitems:\n- kind: Pod\n", 4,
          "a ClusterNetworkPolicyList item of another kind" },
        /* not YAML */
        { CNP "metadata: {name: p\nspec: {}\n", 4, "not valid YAML: did not find expected ',' or '}'" },
        { CNP "metadata:\n  name: p\n    spec: x\n", 5, "not valid YAML" },
        { "{\"apiVersion\": \"policy.networking.k8s.io/v1alpha2\",\n\"kind\": \"ClusterNetworkPolicy\",,}\n", 2,
          "not valid YAML" },
        { "", 1, "no document in the file" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r = parse(cases[i].text);
        char want[256];
        snprintf(want, sizeof want, "p.yaml:%u: %s", cases[i].line, cases[i].message);
        bool ok = r.set == NULL && r.errors == 1 && error_lines(r.err) == 1 && strstr(r.err, want) != NULL;
        if (!ok)
            printf("\n  case %zu: want one error '%s', got %u:\n%s", i, want, r.errors, r.err);
        CU_ASSERT(ok);
        done(&r);
    }
}

/* Every error of a file in one go, each at its line. */
static void test_all_errors_at_once(void)
{
    result r = parse(HEAD ACCEPT_TO("{domainNames: [a..example]}")        /* 7-8 */
                     ACCEPT_TO("{networks: [10.0.0.1/8]}")               /* 9-10 */
                     "  - action: Deny\n    to: [{networks: [10.0.0.0/8]}]\n" /* 11-12 */
                     "---\n" CNP "metadata: {name: default}\nspec: {subject: {namespaces: {}}}\n" /* 13-17 */
                     "---\n" API "kind: Pod\n");                          /* 18-20 */
    CU_ASSERT_PTR_NULL(r.set);
    CU_ASSERT_EQUAL(r.errors, 5);
    CU_ASSERT_EQUAL(error_lines(r.err), 5);
    CU_ASSERT(has(&r, "p.yaml:8: bad domain name"));
    CU_ASSERT(has(&r, "p.yaml:10: host bits set"));
    CU_ASSERT(has(&r, "p.yaml:11: Deny rules are refused"));
    CU_ASSERT(has(&r, "p.yaml:16: metadata.name 'default'"));
    CU_ASSERT(has(&r, "p.yaml:20: unknown kind 'Pod'"));
    done(&r);
}

/* The API's bounds: 25 rules, 25 peers, 25 names (and networks). */
static void test_bounds(void)
{
    enum { BIG = 8192 };
    char *text = malloc(BIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    for (int kind = 0; kind < 3; kind++) {
        for (int n = 25; n <= 26; n++) {
            size_t len = (size_t)snprintf(text, BIG, "%s", HEAD);
            if (kind == 0) /* rules */
                for (int i = 0; i < n; i++)
                    len += (size_t)snprintf(text + len, BIG - len, ACCEPT_TO("{domainNames: [r%d.example]}"), i);
            if (kind == 1) { /* peers */
                len += (size_t)snprintf(text + len, BIG - len, "  - action: Accept\n    to:\n");
                for (int i = 0; i < n; i++)
                    len += (size_t)snprintf(text + len, BIG - len, "    - domainNames: [p%d.example]\n", i);
            }
            if (kind == 2) { /* networks in one peer */
                len += (size_t)snprintf(text + len, BIG - len, "  - action: Accept\n    to:\n    - networks:\n");
                for (int i = 0; i < n; i++)
                    len += (size_t)snprintf(text + len, BIG - len, "      - 10.%d.0.0/16\n", i);
            }
            CU_ASSERT_FATAL(len < BIG);
            result r = parse(text);
            if (n == 25) {
                CU_ASSERT_EQUAL(r.errors, 0);
                CU_ASSERT(r.set != NULL && ei_policy_set_entries(r.set) == 25);
            } else {
                const char *what = kind == 0 ? "spec.egress has more than 25" : kind == 1 ? "to has more than 25"
                                                                                       : "networks has more than 25";
                CU_ASSERT_EQUAL(r.errors, 1);
                CU_ASSERT(has(&r, what));
            }
            done(&r);
        }
    }
    /* a rule's name: 100 characters at most */
    char name[102];
    memset(name, 'n', 101);
    name[101] = '\0';
    snprintf(text, BIG, HEAD "  - name: %s\n    action: Accept\n    to: [{networks: [10.0.0.0/8]}]\n", name);
    result r = parse(text);
    CU_ASSERT(has(&r, "p.yaml:7: a rule's name is longer than 100 characters"));
    done(&r);
    name[100] = '\0';
    snprintf(text, BIG, HEAD "  - name: %s\n    action: Accept\n    to: [{networks: [10.0.0.0/8]}]\n", name);
    r = parse_ok(text);
    done(&r);
    free(text);
}

/* ---- the deny-all pattern ---- */

static void test_deny_all(void)
{
    static const char *const accepted[] = {
        HEAD ACCEPT_TO("{domainNames: [x.example]}") "  - action: Deny\n    to: [{networks: [0.0.0.0/0, \"::/0\"]}]\n",
        HEAD ACCEPT_TO("{domainNames: [x.example]}") "  - action: Deny\n    to: [{networks: [0.0.0.0/0]}]\n",
        HEAD ACCEPT_TO("{domainNames: [x.example]}") "  - action: Deny\n    to: [{networks: [\"::/0\"]}, {networks: [0.0.0.0/0]}]\n",
        HEAD ACCEPT_TO("{domainNames: [x.example]}") "  - action: Deny\n    to: [{networks: [0.0.0.0/0]}]\n"
             "  - action: Deny\n    to: [{networks: [\"::/0\"]}]\n",
        HEAD "  - name: all\n    action: Deny\n    to: [{networks: [0.0.0.0/0, \"::/0\"]}]\n", /* a policy of only a deny-all */
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        result r = parse_ok(accepted[i]);
        CU_ASSERT(has(&r, ": note: the deny-all is what the daemon does anyway"));
        CU_ASSERT_PTR_NULL(strstr(r.err, "warning"));
        if (r.set != NULL && i < 4) {
            expect_match(name_match(r.set, &pay_api, "x.example", 443), "deny-all", "p/egress[0]", 8);
            expect_match(address_match(r.set, &pay_api, "203.0.113.1", 443), "deny-all", NULL, 0);
        }
        done(&r);
    }
    result r = parse_ok(accepted[4]);
    CU_ASSERT(has(&r, "p.yaml:7: note:"));
    CU_ASSERT(r.set != NULL && ei_policy_set_entries(r.set) == 0);
    CU_ASSERT(r.set != NULL && governs(r.set, &pay_api, "p"));
    done(&r);

    /* a deny-all that comes first, in a cluster, denies what a later-precedence policy
     * accepts; the daemon allows it, and says so */
    static const char two[] =
        CNP "metadata: {name: first}\nspec:\n  tier: Admin\n  priority: 10\n  subject: {namespaces: {}}\n" /* 1-7 */
        "  egress:\n"                                                                      /* 8 */
        "  - {action: Accept, to: [{domainNames: [a.example]}]}\n"                         /* 9 */
        "  - {action: Deny, to: [{networks: [0.0.0.0/0, \"::/0\"]}]}\n"                    /* 10 */
        "---\n"                                                                            /* 11 */
        CNP "metadata: {name: second}\nspec:\n  tier: Admin\n  priority: %d\n  subject: {namespaces: {}}\n"
        "  egress:\n  - {action: Accept, to: [{domainNames: [b.example]}]}\n"
        "---\n"
        CNP "metadata: {name: third}\nspec:\n  tier: %s\n  priority: 500\n  subject: {namespaces: {}}\n"
        "  egress:\n  - {action: Accept, to: [{domainNames: [c.example]}]}\n";
    static const struct {
        int priority;
        const char *tier;
        const char *warning; /* NULL: none */
    } orders[] = {
        { 20, "Admin", "p.yaml:10: warning: the deny-all of 'first' takes precedence over the Accept rules of "
                       "'second' and 1 other policy (" },
        { 10, "Baseline", "p.yaml:10: warning: the deny-all of 'first' takes precedence over the Accept rules "
                          "of 'second' and 1 other policy (" }, /* the same priority: either may win */
        { 5, "Baseline", "p.yaml:10: warning: the deny-all of 'first' takes precedence over the Accept rules "
                         "of 'third' (" },
        { 5, "Admin", "p.yaml:10: warning: the deny-all of 'first' takes precedence over the Accept rules "
                      "of 'third' (" },
    };
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++) {
        char text[2048];
        snprintf(text, sizeof text, two, orders[i].priority, orders[i].tier);
        r = parse_ok(text);
        CU_ASSERT(has(&r, orders[i].warning));
        done(&r);
    }
    /* the Baseline deny-all below everything, as tests/pcaps/kube/cnp.yaml has it */
    r = parse_ok(CNP "metadata: {name: a}\nspec:\n  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n"
                 "  egress: [{action: Accept, to: [{domainNames: [a.example]}]}]\n---\n"
                 CNP "metadata: {name: z}\nspec:\n  tier: Baseline\n  priority: 0\n  subject: {namespaces: {}}\n"
                 "  egress: [{action: Deny, to: [{networks: [0.0.0.0/0, \"::/0\"]}]}]\n");
    CU_ASSERT_PTR_NULL(strstr(r.err, "takes precedence"));
    CU_ASSERT(has(&r, "p.yaml:17: note:"));
    done(&r);
}

/* ---- warnings ---- */

static void test_warnings(void)
{
    static const char text[] =
        CNP                                                      /* 1-2 */
        "metadata: {name: w}\n"                                  /* 3 */
        "spec:\n"                                                /* 4 */
        "  tier: Admin\n"                                        /* 5 */
        "  priority: 5\n"                                        /* 6 */
        "  subject: {namespaces: {}}\n"                          /* 7 */
        "  ingress:\n"                                           /* 8 */
        "  - {action: Accept, from: [{namespaces: {}}]}\n"       /* 9 */
        "  egress:\n"                                            /* 10 */
        "  - name: mixed\n"                                      /* 11 */
        "    action: Accept\n"                                   /* 12 */
        "    to:\n"                                              /* 13 */
        "    - namespaces: {}\n"                                 /* 14 */
        "    - pods: {namespaceSelector: {}, podSelector: {}}\n" /* 15 */
        "    - nodes: {}\n"                                      /* 16 */
        "    - domainNames: [ok.example]\n"                      /* 17 */
        "    protocols:\n"                                       /* 18 */
        "    - sctp: {destinationPort: {number: 9}}\n"           /* 19 */
        "    - destinationNamedPort: web\n"                      /* 20 */
        "    - tcp: {destinationPort: {range: {start: 8000, end: 8080}}}\n" /* 21 */
        "    - tcp: {destinationPort: {number: 443}}\n"          /* 22 */
        "  - name: nothing\n"                                    /* 23 */
        "    action: Accept\n"                                   /* 24 */
        "    to: [{pods: {podSelector: {}}}]\n"                  /* 25 */
        "  - name: sctp-only\n"                                  /* 26 */
        "    action: Accept\n"                                   /* 27 */
        "    to: [{networks: [10.0.0.0/8]}]\n"                   /* 28 */
        "    protocols: [{sctp: {destinationPort: {number: 9}}}]\n" /* 29 */
        "  - name: tcp-net\n"                                    /* 30 */
        "    action: Accept\n"                                   /* 31 */
        "    to: [{networks: [10.1.0.0/16]}]\n"                  /* 32 */
        "    protocols: [{tcp: {destinationPort: {number: 5432}}}]\n"; /* 33 */
    result r = parse_ok(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.set);
    static const char *const warnings[] = {
        "p.yaml:5: warning: spec.tier and spec.priority are not used",
        "p.yaml:8: warning: spec.ingress is ignored: the daemon judges egress",
        "p.yaml:14: warning: namespaces peers are not enforced: traffic to them is denied unless another entry allows it",
        "p.yaml:15: warning: pods peers are not enforced",
        "p.yaml:16: warning: nodes peers are not enforced",
        "p.yaml:19: warning: sctp is not enforced: the rule allows nothing on SCTP",
        "p.yaml:20: warning: destinationNamedPort 'web' is not enforced: the rule allows nothing on it",
        "p.yaml:21: warning: port ranges are not enforced: the rule allows nothing on tcp 8000-8080",
        "p.yaml:25: warning: pods peers are not enforced",
        "p.yaml:23: warning: the Accept rule 'w/nothing' allows nothing the daemon can enforce",
        "p.yaml:29: warning: sctp is not enforced",
        "p.yaml:26: warning: the Accept rule 'w/sctp-only' allows nothing the daemon can enforce",
        "p.yaml:30: warning: port 5432 is given for TCP only, but address entries know no protocol",
    };
    for (size_t i = 0; i < sizeof warnings / sizeof warnings[0]; i++)
        CU_ASSERT(has(&r, warnings[i]));
    CU_ASSERT_EQUAL(error_lines(r.err), 0);
    /* what is enforced still is */
    expect_match(name_match(r.set, &sand_web, "ok.example", 443), "mixed", "w/mixed", 17);
    expect_match(name_match(r.set, &sand_web, "ok.example", 8000), "mixed", NULL, 0);
    expect_match(name_match(r.set, &sand_web, "ok.example", 80), "mixed", NULL, 0);
    expect_match(address_match(r.set, &sand_web, "10.1.2.3", 5432), "tcp-net", "w/tcp-net", 32);
    expect_match(address_match(r.set, &sand_web, "10.1.2.3", 443), "tcp-net", NULL, 0);
    expect_match(address_match(r.set, &sand_web, "10.2.0.1", 9), "sctp-only", NULL, 0);
    CU_ASSERT_EQUAL(ei_policy_set_entries(r.set), 2);
    done(&r);
}

int main(void)
{
    static const ei_unit_case sniff[] = { EI_CASE(test_sniff) };
    static const ei_unit_case translate[] = {
        EI_CASE(test_translation),
        EI_CASE(test_subjects),
        EI_CASE(test_json_and_lists),
    };
    static const ei_unit_case refuse[] = {
        EI_CASE(test_each_error),
        EI_CASE(test_all_errors_at_once),
        EI_CASE(test_bounds),
        EI_CASE(test_deny_all),
    };
    static const ei_unit_case warn[] = { EI_CASE(test_warnings) };
    EI_SUITE("sniff", sniff);
    EI_SUITE("translation", translate);
    EI_SUITE("refusals", refuse);
    EI_SUITE("warnings", warn);
    return ei_unit_run();
}
