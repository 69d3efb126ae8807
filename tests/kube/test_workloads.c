/* The pod view in the pipeline: which pod an address is (src/kube/view.c), and the flows
 * that wait for the view to learn a new pod's address (src/pipeline/wait.c): found, timed
 * out, over the bound, an address handed to a pod of another policy. Through the
 * pipeline's door, with a view built from objects in the API's shape. */
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "egress_inspector/pipeline.h"
#include "kube/view.h"
#include "unit.h"

static const char rules[] =
    "allow 203.0.113.250/32\n"
    "policy api\n"
    "pods app=api\n"
    "allow 203.0.113.10/32\n"
    "policy other\n"
    "pods app=other\n"
    "allow 203.0.113.11/32\n"
    "policy legacy\n"
    "source 10.250.0.0/16\n"
    "allow 203.0.113.12/32\n";

/* ---- views ---- */

static json_object *pod(const char *name, const char *ip, const char *app, const char *extra)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-%s\",\"labels\":{\"app\":\"%s\"}%s},"
             "\"spec\":{\"nodeName\":\"n\"},\"status\":{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"%s\"}]}}",
             name, name, app, extra, ip);
    json_object *o = json_tokener_parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    return o;
}

/* A view of n pods in namespace ns (known); drops its own references. */
static ei_workloads *view_of(json_object **pods, size_t n)
{
    json_object *ns = json_tokener_parse("{\"metadata\":{\"name\":\"ns\",\"labels\":{\"env\":\"test\"}}}");
    ei_workloads *v = ei_workloads_build(pods, n, &ns, 1, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    for (size_t i = 0; i < n; i++)
        json_object_put(pods[i]);
    json_object_put(ns);
    return v;
}

static const ei_workload *find(const ei_workloads *v, const char *ip)
{
    ei_addr a;
    CU_ASSERT(ei_addr_parse(ip, &a));
    return ei_workloads_find(v, &a);
}

static void test_view(void)
{
    json_object *pods[] = {
        pod("a", "10.244.0.10", "api", ""),
        pod("old", "10.244.0.11", "api", ",\"deletionTimestamp\":\"2026-01-01T00:00:00Z\""),
        pod("new", "10.244.0.11", "other", ""),                 /* the address handed on */
        pod("twin1", "10.244.0.12", "api", ""),
        pod("twin2", "10.244.0.12", "other", ""),               /* two running claims */
        json_tokener_parse("{\"metadata\":{\"name\":\"h\",\"namespace\":\"ns\"},\"spec\":{\"hostNetwork\":true},"
                           "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.1\"}}"),
        json_tokener_parse("{\"metadata\":{\"name\":\"done\",\"namespace\":\"ns\"},"
                           "\"status\":{\"phase\":\"Succeeded\",\"podIP\":\"10.244.0.13\"}}"),
        json_tokener_parse("{\"metadata\":{\"name\":\"x\",\"namespace\":\"gone\"},"
                           "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.0.14\"}}"),
        json_tokener_parse("{\"metadata\":{\"name\":\"bad\",\"namespace\":\"ns\",\"labels\":{\"a\":1}},"
                           "\"status\":{\"podIP\":\"10.244.0.15\"}}"),
        json_tokener_parse("{\"metadata\":{\"name\":\"v6\",\"namespace\":\"ns\"},\"status\":{\"podIPs\":"
                           "[{\"ip\":\"10.244.0.16\"},{\"ip\":\"fd00::16\"}]}}"),
    };
    ei_workloads *v = view_of(pods, sizeof pods / sizeof pods[0]);
    const ei_workloads_stats *st = ei_workloads_stats_of(v);
    CU_ASSERT_EQUAL(st->pods, 6);
    CU_ASSERT_EQUAL(st->host_network, 1);
    CU_ASSERT_EQUAL(st->finished, 1);
    CU_ASSERT_EQUAL(st->no_namespace, 1);
    CU_ASSERT_EQUAL(st->malformed, 1);
    CU_ASSERT_EQUAL(st->address_conflicts, 1);
    const ei_workload *w = find(v, "10.244.0.10");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_STRING_EQUAL(w->name, "a");
    CU_ASSERT_EQUAL(w->nns_labels, 2); /* env, and kubernetes.io/metadata.name added */
    w = find(v, "10.244.0.11");
    CU_ASSERT(w != NULL && strcmp(w->name, "new") == 0); /* the running pod, not the terminating one */
    CU_ASSERT_PTR_NULL(find(v, "10.244.0.12"));          /* no guess between two */
    CU_ASSERT_PTR_NULL(find(v, "10.0.0.1"));
    CU_ASSERT_PTR_NULL(find(v, "10.244.0.13"));
    CU_ASSERT_PTR_NULL(find(v, "10.244.0.14"));
    w = find(v, "fd00::16");
    CU_ASSERT(w != NULL && strcmp(w->name, "v6") == 0);
    ei_workloads_free(v);
}

/* ---- the pipeline ---- */

typedef struct {
    ei_pipeline *p;
    ei_policy_set *set;
    ei_flow_event last;
    char last_pod[64];
    int events;
    ei_action released[8];
    int nreleased;
    uint64_t now, id;
} rig;

static void on_event(void *ctx, const ei_flow_event *ev)
{
    rig *r = ctx;
    r->last = *ev;
    snprintf(r->last_pod, sizeof r->last_pod, "%s", ev->workload != NULL ? ev->workload->name : "-");
    r->last.workload = NULL; /* valid only during the call */
    r->events++;
}

static void on_release(void *ctx, uint64_t id, ei_action action)
{
    rig *r = ctx;
    (void)id;
    if (r->nreleased < 8)
        r->released[r->nreleased++] = action;
}

static void rig_open(rig *r, uint16_t max_waits)
{
    memset(r, 0, sizeof *r);
    ei_pipeline_config cfg;
    ei_pipeline_config_default(&cfg);
    cfg.checksums = EI_CHECKSUM_OFF;
    cfg.confirm = false;
    cfg.dest_check = false;
    cfg.live = true;
    cfg.quic = EI_QUIC_BLOCK;
    cfg.workload_wait_ns = 3000000000ull;
    cfg.max_dns_waits = max_waits;
    cfg.ports[0].first = cfg.ports[0].last = 443; /* 5432 is not read: decided at the SYN */
    cfg.nports = 1;
    r->set = ei_rules_parse(rules, sizeof rules - 1, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->set);
    r->p = ei_pipeline_new(&cfg, r->set, EI_MODE_ENFORCE, on_event, on_release, r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->p);
    r->now = 1000000000ull;
}

static void rig_close(rig *r)
{
    ei_pipeline_free(r->p, r->now);
    ei_policy_set_free(r->set);
}

/* A SYN from 10.244.0.<src> port sport to 203.0.113.<dst>:5432 (a port not read: the
 * address entries decide at once, the workload first). */
static ei_action syn(rig *r, uint8_t src, uint16_t sport, uint8_t dst)
{
    uint8_t pkt[40] = { 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, IPPROTO_TCP, 0, 0, 10, 244, 0, src, 203, 0, 113, dst };
    uint8_t *t = pkt + 20;
    t[0] = (uint8_t)(sport >> 8);
    t[1] = (uint8_t)sport;
    t[2] = 0x15;
    t[3] = 0x38; /* 5432 */
    t[7] = 1;
    t[12] = 0x50;
    t[13] = 0x02; /* SYN */
    r->now += 1000;
    return ei_pipeline_packet(r->p, EI_LINK_RAW, pkt, sizeof pkt, r->now, ++r->id, 0);
}

static void test_wait_found(void)
{
    rig r;
    rig_open(&r, 16);
    ei_workloads *empty = view_of(NULL, 0);
    ei_pipeline_set_workloads(r.p, empty, r.now);
    CU_ASSERT_EQUAL(syn(&r, 10, 40000, 10), EI_ACTION_HOLD); /* no pod has it yet */
    CU_ASSERT_EQUAL(syn(&r, 10, 40000, 10), EI_ACTION_HOLD); /* its retransmission waits too */
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->workload_waiting, 1);
    CU_ASSERT_EQUAL(r.events, 0);
    r.now += 500000000ull; /* the pod's event, half a second later */
    json_object *pods[] = { pod("api-1", "10.244.0.10", "api", "") };
    ei_workloads *v = view_of(pods, 1);
    ei_pipeline_set_workloads(r.p, v, r.now);
    CU_ASSERT_EQUAL(r.events, 1);
    CU_ASSERT_EQUAL(r.last.decision.verdict, EI_VERDICT_ALLOW);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(r.last.decision.policy), "api");
    CU_ASSERT_STRING_EQUAL(r.last_pod, "api-1");
    CU_ASSERT(r.last.held_ns >= 500000000ull);
    CU_ASSERT_EQUAL(r.nreleased, 2);
    CU_ASSERT_EQUAL(r.released[0], EI_ACTION_ALLOW);
    const ei_counters *c = ei_pipeline_counters(r.p);
    CU_ASSERT_EQUAL(c->workload_waiting, 0);
    CU_ASSERT_EQUAL(c->workload_waits, 1);
    CU_ASSERT_EQUAL(c->workload_wait_found, 1);
    /* an address no pod has: it waits, and the view's later changes do not know it */
    CU_ASSERT_EQUAL(syn(&r, 99, 40001, 250), EI_ACTION_HOLD);
    json_object *more[] = { pod("api-1", "10.244.0.10", "api", ""), pod("api-2", "10.244.0.11", "api", "") };
    ei_workloads *v2 = view_of(more, 2);
    ei_pipeline_set_workloads(r.p, v2, r.now);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->workload_waiting, 1);
    r.now += 3100000000ull;
    ei_pipeline_expire(r.p, r.now);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_WORKLOAD_UNKNOWN);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->workload_wait_timeout, 1);
    rig_close(&r);
    ei_workloads_free(v);
    ei_workloads_free(v2);
    ei_workloads_free(empty);
}

static void test_wait_timeout_and_bound(void)
{
    rig r;
    rig_open(&r, 1);
    ei_workloads *empty = view_of(NULL, 0);
    ei_pipeline_set_workloads(r.p, empty, r.now);
    CU_ASSERT_EQUAL(syn(&r, 10, 40000, 250), EI_ACTION_HOLD);
    /* the bound: a second flow that would wait is denied at once, and counted */
    CU_ASSERT_EQUAL(syn(&r, 20, 40000, 250), EI_ACTION_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_WORKLOAD_UNKNOWN);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->workload_wait_limit, 1);
    /* even the default policy's address entry does not let an unknown sender through */
    r.now += 3000000001ull;
    ei_pipeline_expire(r.p, r.now);
    CU_ASSERT_EQUAL(r.events, 2);
    CU_ASSERT_EQUAL(r.last.decision.verdict, EI_VERDICT_DENY);
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_WORKLOAD_UNKNOWN);
    CU_ASSERT_EQUAL(r.nreleased, 1);
    CU_ASSERT_EQUAL(r.released[0], EI_ACTION_DENY);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->workload_wait_timeout, 1);
    CU_ASSERT_EQUAL(ei_pipeline_counters(r.p)->workload_waiting, 0);
    rig_close(&r);
    ei_workloads_free(empty);
}

/* An address handed from a pod of one policy to a pod of another: the new pod's flows are
 * judged with its own policy, never the old one's. */
static void test_address_handed_on(void)
{
    rig r;
    rig_open(&r, 16);
    json_object *before[] = { pod("api-1", "10.244.0.10", "api", "") };
    ei_workloads *v1 = view_of(before, 1);
    ei_pipeline_set_workloads(r.p, v1, r.now);
    CU_ASSERT_EQUAL(syn(&r, 10, 40000, 10), EI_ACTION_ALLOW);
    /* api-1 deleted (its address known to no pod: a flow meanwhile waits) */
    ei_workloads *v2 = view_of(NULL, 0);
    ei_pipeline_set_workloads(r.p, v2, r.now);
    CU_ASSERT_EQUAL(syn(&r, 10, 40001, 10), EI_ACTION_HOLD);
    json_object *after[] = { pod("other-1", "10.244.0.10", "other", "") };
    ei_workloads *v3 = view_of(after, 1);
    ei_pipeline_set_workloads(r.p, v3, r.now);
    CU_ASSERT_EQUAL(r.last.decision.verdict, EI_VERDICT_DENY); /* api's entry is not other's */
    CU_ASSERT_EQUAL(r.last.decision.reason, EI_REASON_PORT_NOT_INSPECTED);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(r.last.decision.policy), "other");
    CU_ASSERT_STRING_EQUAL(r.last_pod, "other-1");
    CU_ASSERT_EQUAL(syn(&r, 10, 40002, 11), EI_ACTION_ALLOW);
    CU_ASSERT_STRING_EQUAL(ei_policy_name(r.last.decision.policy), "other");
    rig_close(&r);
    ei_workloads_free(v1);
    ei_workloads_free(v2);
    ei_workloads_free(v3);
}

int main(void)
{
    static const ei_unit_case view[] = { EI_CASE(test_view) };
    static const ei_unit_case waits[] = { EI_CASE(test_wait_found), EI_CASE(test_wait_timeout_and_bound),
                                          EI_CASE(test_address_handed_on) };
    EI_SUITE("pod view", view);
    EI_SUITE("waiting for a pod", waits);
    return ei_unit_run();
}
