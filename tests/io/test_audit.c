/* The decision log: CloudEvents fields, and a flood of denies held to a bounded number of
 * lines whose counts add up. */
#include <netinet/in.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "io/audit.h"
#include "io/log.h"
#include "unit.h"

typedef struct {
    unsigned lines;
    unsigned aggregated;
    unsigned long long counted; /* denies accounted for: lines in full plus aggregate counts */
    char last[4096];
} sink;

static void collect(void *ctx, const char *line, size_t len)
{
    sink *s = ctx;
    s->lines++;
    memcpy(s->last, line, len < sizeof s->last - 1 ? len : sizeof s->last - 1);
    s->last[len < sizeof s->last - 1 ? len : sizeof s->last - 1] = '\0';
    const char *c = strstr(s->last, "\"count\":");
    if (c != NULL) {
        s->aggregated++;
        s->counted += strtoull(c + 8, NULL, 10);
    } else {
        s->counted++;
    }
}

static ei_policy_set *policy_set;

static ei_flow_event deny_event(uint64_t ts, const char *host, uint8_t src_last)
{
    if (policy_set == NULL)
        policy_set = ei_rules_parse("allow allowed.example\n", 22, NULL, NULL, NULL);
    ei_flow_event ev;
    memset(&ev, 0, sizeof ev);
    ev.ts_ns = ts;
    CU_ASSERT(ei_addr_parse("10.244.0.10", &ev.src));
    ev.src.bytes[3] = src_last;
    CU_ASSERT(ei_addr_parse("203.0.113.10", &ev.dst));
    ev.sport = 40000;
    ev.dport = 443;
    ev.l7 = EI_L7_TLS;
    ev.host = host;
    ev.host_len = strlen(host);
    ev.host_valid = true;
    ev.decision.verdict = EI_VERDICT_DENY;
    ev.decision.reason = EI_REASON_NAME_NOT_ALLOWED;
    ev.decision.policy = ei_policy_for_source(policy_set, &ev.src);
    ev.enforced = true;
    ev.held_ns = 1500000;
    return ev;
}

/* The hand-made RFC 3339 times, against dates gmtime knows: epoch, leap days, centuries. */
static void test_time_format(void)
{
    static const struct { uint64_t s; const char *want; } cases[] = {
        { 0, "1970-01-01T00:00:00" }, { 951782400, "2000-02-29T00:00:00" },
        { 1709251199, "2024-02-29T23:59:59" }, { 4102444800, "2100-01-01T00:00:00" },
        { 1764547200, "2025-12-01T00:00:00" }, { 4107542399, "2100-02-28T23:59:59" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        ei_log_format_time(cases[i].s * 1000000000ull + 123456789, out);
        CU_ASSERT_EQUAL(strncmp(out, cases[i].want, 19), 0);
        CU_ASSERT_STRING_EQUAL(out + 19, ".123456Z");
    }
}

static void test_flood_is_bounded(void)
{
    sink s;
    memset(&s, 0, sizeof s);
    const uint64_t second = 1000000000ull;
    ei_audit *a = ei_audit_new(EI_LOG_JSON, "egress-inspector/test", 10 * second, collect, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    uint64_t t = 1764547200ull * second;
    /* 10,000 denied connections from one pod to one name, over 20 seconds */
    for (int i = 0; i < 10000; i++) {
        ei_flow_event ev = deny_event(t + (uint64_t)i * 2000000u, "denied.example", 10);
        ei_audit_decision(a, &ev);
        ei_audit_tick(a, ev.ts_ns);
    }
    /* and 10,000 to names that all differ (a flood that tries to defeat aggregation) */
    static char names[10000][32];
    for (int i = 0; i < 10000; i++) {
        snprintf(names[i], sizeof names[i], "n%d.evil.test", i);
        ei_flow_event ev = deny_event(t + 20 * second, names[i], 11);
        ei_audit_decision(a, &ev);
    }
    ei_audit_free(a, t + 31 * second);
    printf("\n  20,000 denies -> %u lines (%u aggregate), %llu accounted for\n", s.lines,
           s.aggregated, s.counted);
    CU_ASSERT(s.lines <= 2 * 3 + EI_AUDIT_KEYS + 2);
    CU_ASSERT_EQUAL(s.counted, 20000);
}

static void test_cloudevent_fields(void)
{
    sink s;
    memset(&s, 0, sizeof s);
    ei_audit *a = ei_audit_new(EI_LOG_CLOUDEVENTS, "egress-inspector/node-1", 10000000000ull, collect, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    ei_flow_event ev = deny_event(1764547200000000000ull, "denied.example", 10);
    ei_audit_decision(a, &ev);
    static const char *const want[] = {
        "\"specversion\":\"1.0\"", "\"type\":\"io.portarium.egress.attempt\"",
        "\"source\":\"egress-inspector/node-1\"", "\"id\":\"egress-inspector/node-1-1\"",
        "\"time\":\"2025-12-01T00:00:00.000000Z\"", "\"data\":{\"outcome\":\"denied\"",
        "\"denyReason\":\"name_not_allowed\"", "\"destination\":\"denied.example:443\"",
        "\"latencyMs\":1.500", "\"workloadAddress\":\"10.244.0.10\"" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(s.last, want[i]));
        if (strstr(s.last, want[i]) == NULL)
            printf("\n  missing %s in %s", want[i], s.last);
    }
    ev.decision.verdict = EI_VERDICT_ALLOW;
    ev.decision.reason = EI_REASON_ALLOWED_NAME;
    ev.enforced = false;
    ev.host = "allowed.example";
    ev.host_len = strlen(ev.host);
    ei_audit_decision(a, &ev);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last, "\"outcome\":\"allowed\""));
    CU_ASSERT_PTR_NULL(strstr(s.last, "denyReason"));
    ev.decision.verdict = EI_VERDICT_DENY;
    ev.decision.reason = EI_REASON_SHUTDOWN;
    ei_audit_decision(a, &ev);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last, "\"outcome\":\"enforcement_unavailable\""));
    ei_audit_free(a, ev.ts_ns);
}

/* A string field of a parsed object, or NULL. */
static const char *field(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* A denied HTTP request whose Host is 1,000 bytes of spaces, quotes, backslashes and
 * control bytes: the record a SIEM receives parses, and carries verdict, reason, policy
 * and mode; the name is cut at EI_JSONW_RAW_NAME_MAX with a flag that says so. */
enum { HOSTILE_LEN = 1000 };
static char hostile[HOSTILE_LEN + 1]; /* NUL-terminated, for deny_event's strlen */

static const char *hostile_name(void)
{
    for (size_t i = 0; i < HOSTILE_LEN; i++)
        hostile[i] = "a \"\\\x01\x7f\xff."[i % 8];
    return hostile;
}

static void test_hostile_name_json_line(void)
{
    ei_flow_event ev = deny_event(1764547200000000000ull, hostile_name(), 10);
    ev.host_len = HOSTILE_LEN;
    ev.host_valid = false;
    ev.l7 = EI_L7_HTTP;
    ev.decision.reason = EI_REASON_INVALID_NAME;
    ei_jsonw w;
    ei_log_format_event(&w, &ev);
    CU_ASSERT_EQUAL(w.buf[w.len - 1], '\n');
    json_object *o = json_tokener_parse(w.buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(field(o, "verdict"), "deny");
    CU_ASSERT_STRING_EQUAL(field(o, "reason"), "invalid_name");
    CU_ASSERT_PTR_NOT_NULL(field(o, "policy"));
    CU_ASSERT_STRING_EQUAL(field(o, "mode"), "enforce");
    CU_ASSERT_STRING_EQUAL(field(o, "host_truncated"), "true");
    CU_ASSERT_PTR_NOT_NULL(field(o, "dst")); /* and the rest still fits */
    json_object *host;
    CU_ASSERT_FATAL(json_object_object_get_ex(o, "host", &host));
    /* 256 wire bytes; each non-ASCII byte b is U+00b, two bytes of UTF-8 once parsed */
    CU_ASSERT_EQUAL(json_object_get_string_len(host), 256 + 256 / 8 * 1 /* \xff */);
    json_object_put(o);
}

/* Denies that carry no name (by address, coverage) are kinds by their destination: a pod
 * that tries many addresses on one port is shown each of them once per window. */
static void test_nameless_denies_are_kinds_by_destination(void)
{
    sink s;
    memset(&s, 0, sizeof s);
    ei_audit *a = ei_audit_new(EI_LOG_JSON, "egress-inspector/n", 1000000000ull, collect, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    ei_flow_event ev = deny_event(1764547200000000000ull, "", 10);
    ev.host = NULL;
    ev.host_len = 0;
    ev.proto = IPPROTO_UDP;
    ev.dport = 443;
    ev.decision.reason = EI_REASON_QUIC_NOT_INSPECTED;
    for (int i = 0; i < 3; i++) {
        ei_audit_decision(a, &ev); /* .10 in full, then counted */
        ev.dst.bytes[3] = 20;
        ei_audit_decision(a, &ev); /* .20 in full, then counted */
        ev.dst.bytes[3] = 10;
    }
    CU_ASSERT_EQUAL(s.lines, 2);
    ev.ts_ns += 2000000000ull;
    ei_audit_tick(a, ev.ts_ns);
    CU_ASSERT_EQUAL(s.lines, 4);
    CU_ASSERT_EQUAL(s.aggregated, 2);
    CU_ASSERT_EQUAL(s.counted, 6);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last, "\"proto\":\"udp\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last, "\"dst\":\"203.0.113."));
    ei_audit_free(a, ev.ts_ns);
}

/* Through a proxy: the json line has dport (the proxy's) and target_port (judged); the
 * CloudEvent's destination is the name and the port judged, proxyPort the proxy's; the
 * same name to two target ports is two kinds, each aggregate saying its target_port. */
static void test_proxy_target_port(void)
{
    sink s;
    memset(&s, 0, sizeof s);
    ei_audit *a = ei_audit_new(EI_LOG_JSON, "egress-inspector/n", 1000000000ull, collect, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    ei_flow_event ev = deny_event(1764547200000000000ull, "denied.example", 10);
    ev.proto = IPPROTO_TCP;
    ev.l7 = EI_L7_HTTP;
    ev.dport = 3128;
    ev.target_port = 443;
    for (int i = 0; i < 3; i++) {
        ei_audit_decision(a, &ev);
        if (i == 0)
            CU_ASSERT_PTR_NOT_NULL(strstr(s.last, "\"dport\":3128,\"target_port\":443,"));
        ev.target_port = 8443;
        ei_audit_decision(a, &ev);
        ev.target_port = 443;
    }
    CU_ASSERT_EQUAL(s.lines, 2); /* two kinds, each in full once */
    ev.ts_ns += 2000000000ull;
    ei_audit_tick(a, ev.ts_ns);
    CU_ASSERT_EQUAL(s.aggregated, 2);
    CU_ASSERT_EQUAL(s.counted, 6);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last, "\"target_port\":"));
    ei_audit_free(a, ev.ts_ns);

    memset(&s, 0, sizeof s);
    a = ei_audit_new(EI_LOG_CLOUDEVENTS, "egress-inspector/n", 1000000000ull, collect, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    ei_audit_decision(a, &ev);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last, "\"destination\":\"denied.example:443\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s.last, "\"proxyPort\":3128"));
    ev.target_port = 0; /* not through a proxy: no proxyPort */
    ev.dport = 443;
    ev.src.bytes[3] = 11;
    ei_audit_decision(a, &ev);
    CU_ASSERT_PTR_NULL(strstr(s.last, "proxyPort"));
    ei_audit_free(a, ev.ts_ns);
}

static void test_hostile_name_cloudevent_and_aggregate(void)
{
    for (int format = 0; format < 2; format++) {
        sink s;
        memset(&s, 0, sizeof s);
        ei_audit *a = ei_audit_new(format ? EI_LOG_CLOUDEVENTS : EI_LOG_JSON, "egress-inspector/n", 1000000000ull,
                                   collect, &s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        ei_flow_event ev = deny_event(1764547200000000000ull, hostile_name(), 10);
        ev.host_len = HOSTILE_LEN;
        ev.host_valid = false;
        for (int i = 0; i < 3; i++) /* the first in full, the rest aggregated */
            ei_audit_decision(a, &ev);
        json_object *o = json_tokener_parse(s.last);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        if (format) {
            json_object *data;
            CU_ASSERT_FATAL(json_object_object_get_ex(o, "data", &data));
            CU_ASSERT_STRING_EQUAL(field(data, "outcome"), "denied");
            CU_ASSERT_STRING_EQUAL(field(data, "denyReason"), "name_not_allowed");
            CU_ASSERT_STRING_EQUAL(field(data, "enforcementMode"), "enforce");
            CU_ASSERT_PTR_NOT_NULL(field(data, "policy"));
            CU_ASSERT_STRING_EQUAL(field(data, "host_truncated"), "true");
        } else {
            CU_ASSERT_STRING_EQUAL(field(o, "verdict"), "deny");
        }
        json_object_put(o);
        ev.ts_ns += 2000000000ull;
        ei_audit_tick(a, ev.ts_ns); /* the aggregate line, with the same name */
        o = json_tokener_parse(s.last);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_PTR_NULL(field(o, "truncated"));
        json_object_put(o);
        ei_audit_free(a, ev.ts_ns);
        CU_ASSERT(s.lines >= 2);
    }
}

int main(void)
{
    static const ei_unit_case cases[] = { EI_CASE(test_time_format), EI_CASE(test_flood_is_bounded),
                                          EI_CASE(test_cloudevent_fields),
                                          EI_CASE(test_hostile_name_json_line),
                                          EI_CASE(test_hostile_name_cloudevent_and_aggregate),
                                          EI_CASE(test_nameless_denies_are_kinds_by_destination),
                                          EI_CASE(test_proxy_target_port) };
    EI_SUITE("audit", cases);
    int rc = ei_unit_run();
    ei_policy_set_free(policy_set);
    return rc;
}
