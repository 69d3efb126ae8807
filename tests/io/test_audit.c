/* The decision log: CloudEvents fields, and a flood of denies held to a bounded number of
 * lines whose counts add up. */
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

int main(void)
{
    static const ei_unit_case cases[] = { EI_CASE(test_time_format), EI_CASE(test_flood_is_bounded),
                                          EI_CASE(test_cloudevent_fields) };
    EI_SUITE("audit", cases);
    int rc = ei_unit_run();
    ei_policy_set_free(policy_set);
    return rc;
}
