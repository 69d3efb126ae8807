/* `explain` (one flow, asked by its facts) and `diff` (the flows of a log, judged by two
 * rule sets): both ask the pipeline itself through io/explain.c, with the options replay
 * and the daemon take. */
#include "cli/explain.h"

#include <getopt.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "io/explain.h"
#include "io/rules_load.h"

enum { OPT_SOURCE = 300, OPT_NAME, OPT_PORT, OPT_DEST, OPT_L7, OPT_TARGET_PORT, OPT_FROM, MAX_NEAR = 5 };

/* What explain and diff share: the rules and pod view, the pipeline's options. */
typedef struct {
    core_options core;
    ei_pipeline_config pipe;
    ei_mode mode;
    ei_dns_cache *dns;
    ei_workloads *view;
} judge;

static void judge_defaults(judge *j)
{
    memset(j, 0, sizeof *j);
    core_defaults(&j->core, &j->pipe);
    j->pipe.dest_check = false; /* what the policy says; --dest-check strict with --hosts */
}

static bool judge_open(judge *j, const ei_policy_set *set)
{
    if (!core_view(&j->core, set, false, &j->view))
        return false;
    j->dns = core_cache(&j->core);
    return j->dns != NULL;
}

static void judge_close(judge *j)
{
    ei_dns_cache_free(j->dns);
    ei_workloads_free(j->view);
}

static bool parse_l7(const char *arg, ei_l7 *l7)
{
    if (strcmp(arg, "tls") == 0)
        *l7 = EI_L7_TLS;
    else if (strcmp(arg, "http") == 0)
        *l7 = EI_L7_HTTP;
    else if (strcmp(arg, "socks") == 0)
        *l7 = EI_L7_SOCKS;
    else if (strcmp(arg, "quic") == 0)
        *l7 = EI_L7_QUIC;
    else {
        fprintf(stderr, "egress-inspector: --l7: '%s' is none of tls, http, socks, quic\n", arg);
        return false;
    }
    return true;
}

static bool parse_address(const char *opt, const char *arg, ei_addr *a)
{
    if (ei_addr_parse(arg, a))
        return true;
    fprintf(stderr, "egress-inspector: %s: '%s' is not an IPv4 or IPv6 address\n", opt, arg);
    return false;
}

/* ---- explain ---- */

static const char explain_usage[] =
    "usage: egress-inspector explain --rules FILE --source IP [--name NAME] [--port N]\n"
    "           [--dest IP] [--l7 tls|http|socks|quic] [--target-port N]\n"
    "           [--mode enforce|monitor] [PIPELINE OPTIONS]\n"
    "  What the pipeline decides for one flow from --source to NAME on --port (443;\n"
    "  80 is read as HTTP), as replay would for a capture of it: one JSON line, the\n"
    "  decision line (verdict, reason, policy, rule, rule_line, mode, namespace, pod)\n"
    "  and, for a deny, \"nearest\": the entries nearest to allowing it and why each did\n"
    "  not (other_port, wildcard_not_apex, other_policy, other_name, tcp_entry). Without\n"
    "  --dest, an address no address entry covers. --dest-check is off unless asked\n"
    "  (strict needs the name's addresses: --hosts FILE). --pods and --namespaces give\n"
    "  the pod view, as for replay. Through a proxy on --port: --target-port N makes the\n"
    "  message a CONNECT to NAME:N (--l7 http, the default) or a SOCKS 5 request\n"
    "  (--l7 socks, read on --preamble-ports only, as live), the decision line's\n"
    "  target_port. --l7 quic: a UDP flow, its QUIC version 1 Initial naming NAME.\n";

static void add_nearest(json_object *line, const ei_policy_set *set, const judge *j,
                        const ei_explain_flow *flow, const ei_explain_result *r)
{
    char name[EI_NAME_MAX + 1];
    size_t len = 0;
    ei_flow_facts f;
    memset(&f, 0, sizeof f);
    f.src = flow->src;
    f.dst = r->dst;
    f.dport = flow->target_port != 0 ? flow->target_port : flow->port; /* what was judged */
    f.have_message = flow->name != NULL;
    if (flow->name != NULL && ei_name_normalize((const uint8_t *)flow->name, strlen(flow->name), name, &len) ==
                                  EI_REASON_NONE) {
        f.host = name;
        f.host_len = len;
    }
    f.workload = j->view != NULL ? ei_workloads_find(j->view, &flow->src) : NULL;
    ei_near near[MAX_NEAR];
    size_t n = ei_policy_nearest(set, &f, flow->dst_given, near, MAX_NEAR);
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < n && list != NULL; i++) {
        json_object *e = json_object_new_object();
        if (e == NULL)
            break;
        json_object_object_add(e, "rule", json_object_new_string(near[i].rule));
        json_object_object_add(e, "rule_line", json_object_new_int((int)near[i].line));
        json_object_object_add(e, "policy", json_object_new_string(ei_policy_name(near[i].policy)));
        json_object_object_add(e, "why", json_object_new_string(ei_near_why_name(near[i].why)));
        if (near[i].port != 0)
            json_object_object_add(e, "port", json_object_new_int(near[i].port));
        json_object_array_add(list, e);
    }
    if (list != NULL)
        json_object_object_add(line, "nearest", list);
}

int ei_cmd_explain(int argc, char **argv)
{
    static const struct option opts[] = {
        { "rules", required_argument, NULL, 'r' },
        { "policy-json", required_argument, NULL, 'r' },
        { "mode", required_argument, NULL, 'm' },
        { "source", required_argument, NULL, OPT_SOURCE },
        { "name", required_argument, NULL, OPT_NAME },
        { "port", required_argument, NULL, OPT_PORT },
        { "dest", required_argument, NULL, OPT_DEST },
        { "l7", required_argument, NULL, OPT_L7 },
        { "target-port", required_argument, NULL, OPT_TARGET_PORT },
        { "help", no_argument, NULL, 'h' },
        PIPELINE_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    judge j;
    judge_defaults(&j);
    ei_explain_flow flow = { .port = 443, .l7 = EI_L7_NONE };
    const char *rules = NULL;
    bool have_source = false, l7_given = false;
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "r:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rules = optarg; break;
        case 'm': if (!parse_mode(optarg, &j.mode)) return 2; break;
        case 'h': fputs(explain_usage, stdout); return 0;
        case OPT_SOURCE: if (!parse_address("--source", optarg, &flow.src)) return 2; have_source = true; break;
        case OPT_NAME: flow.name = optarg; break;
        case OPT_PORT: if (!parse_number("--port", optarg, 1, 65535, &v)) return 2; flow.port = (uint16_t)v; break;
        case OPT_DEST: if (!parse_address("--dest", optarg, &flow.dst)) return 2; flow.dst_given = true; break;
        case OPT_L7: if (!parse_l7(optarg, &flow.l7)) return 2; l7_given = true; break;
        case OPT_TARGET_PORT:
            if (!parse_number("--target-port", optarg, 1, 65535, &v))
                return 2;
            flow.target_port = (uint16_t)v;
            break;
        default: {
            int done = pipeline_option(&j.core, c, optarg);
            if (done < 0)
                fputs(explain_usage, stderr);
            if (done <= 0)
                return 2;
        }
        }
    }
    if (rules == NULL || !have_source || optind != argc) {
        fputs(explain_usage, stderr);
        return 2;
    }
    if (flow.dst_given && flow.dst.family != flow.src.family) {
        fprintf(stderr, "egress-inspector: --source and --dest are of different families\n");
        return 2;
    }
    if (!l7_given && flow.name != NULL)
        flow.l7 = flow.port == 80 || flow.target_port != 0 ? EI_L7_HTTP : EI_L7_TLS;
    if (flow.l7 == EI_L7_SOCKS && flow.target_port == 0)
        flow.target_port = 443;
    if (flow.l7 == EI_L7_QUIC && flow.name == NULL) {
        fprintf(stderr, "egress-inspector explain: --l7 quic needs --name (an Initial names its server)\n");
        return 2;
    }
    if (flow.target_port != 0 && (flow.name == NULL || flow.l7 == EI_L7_TLS || flow.l7 == EI_L7_QUIC)) {
        fprintf(stderr, "egress-inspector explain: --target-port is a proxy request's: it needs --name, "
                "and --l7 http or socks\n");
        return 2;
    }
    ei_policy_set *set = ei_rules_load(rules, stderr, NULL);
    if (set == NULL)
        return 2;
    int status = 2;
    ei_explain_result r;
    if (judge_open(&j, set)) {
        status = 1;
        if (!ei_explain(&j.pipe, set, j.view, j.dns, j.mode, &flow, &r))
            fprintf(stderr, "egress-inspector: cannot explain that flow (out of memory, or a name too long)\n");
        else if (!r.decided)
            printf("{\"verdict\":\"pending\",\"why\":\"nothing decides the flow before its first message: give --name\"}\n");
        else
            status = 0;
    }
    if (status == 0) {
        json_object *line = json_tokener_parse(r.line);
        if (line != NULL && r.verdict == EI_VERDICT_DENY)
            add_nearest(line, set, &j, &flow, &r);
        if (line != NULL)
            json_object_object_add(line, "dest_given", json_object_new_boolean(flow.dst_given));
        puts(line != NULL ? json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN) : r.line);
        json_object_put(line);
    }
    judge_close(&j);
    ei_policy_set_free(set);
    return status;
}

/* ---- diff ---- */

static const char diff_usage[] =
    "usage: egress-inspector diff --from FILE [PIPELINE OPTIONS] OLD.rules NEW.rules\n"
    "  The flows seen in FILE (decision lines: replay's output or the daemon's log, json\n"
    "  or cloudevents; - for stdin) whose verdict would change from OLD to NEW: one JSON\n"
    "  line each, {src, host, dst, dport, seen, old: {verdict, reason, policy, rule},\n"
    "  new: {...}}, and a summary on stderr. Each distinct TCP flow, and QUIC flow by its\n"
    "  name, is judged by the pipeline under both rule sets, as explain does; other UDP,\n"
    "  ICMP and other protocols, and flows that name nothing on a port whose names are\n"
    "  read, are counted and left out.\n";

typedef struct {
    ei_explain_flow flow;
    char name[EI_NAME_MAX + 1];
    char key[600];
    uint64_t seen;
} seen_flow;

static const char *str_of(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

static int64_t int_of(json_object *o, const char *key, int64_t dflt)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v)
                                                                                            : dflt;
}

/* A decision line (json or cloudevents) as a flow to judge again. false: not one, or
 * not a flow explain can ask about (TCP, or QUIC naming its server). */
static bool flow_of_line(json_object *o, seen_flow *f, bool *not_tcp)
{
    json_object *data = NULL;
    *not_tcp = false;
    memset(f, 0, sizeof *f);
    const char *src, *dst, *host, *l7, *proto;
    int64_t dport, target = 0;
    if (json_object_object_get_ex(o, "data", &data)) { /* cloudevents */
        src = str_of(data, "workloadAddress");
        dst = str_of(data, "destinationAddress");
        host = str_of(data, "host");
        l7 = str_of(data, "protocol");
        const char *d = str_of(data, "destination"); /* NAME:PORT, the port judged */
        const char *colon = d != NULL ? strrchr(d, ':') : NULL;
        dport = colon != NULL ? strtol(colon + 1, NULL, 10) : -1;
        int64_t proxy = int_of(data, "proxyPort", 0); /* through a proxy: the port connected to */
        if (proxy != 0) {
            target = dport;
            dport = proxy;
        }
        proto = l7 != NULL && strcmp(l7, "quic") == 0 ? "udp" : "tcp";
    } else {
        const char *ev = str_of(o, "event");
        if (ev == NULL || strcmp(ev, "decision") != 0)
            return false;
        src = str_of(o, "src");
        dst = str_of(o, "dst");
        host = str_of(o, "host");
        l7 = str_of(o, "l7");
        proto = str_of(o, "proto");
        dport = int_of(o, "dport", -1);
        target = int_of(o, "target_port", 0);
    }
    if (src == NULL || dst == NULL || dport < 1 || dport > 65535 || target < 0 || target > 65535 || !ei_addr_parse(src, &f->flow.src) ||
        !ei_addr_parse(dst, &f->flow.dst))
        return false;
    bool quic = l7 != NULL && strcmp(l7, "quic") == 0;
    if (proto == NULL || (strcmp(proto, "tcp") != 0 && !(quic && strcmp(proto, "udp") == 0 && host != NULL))) {
        *not_tcp = true; /* judged by address alone, or named nothing a flow could say */
        return false;
    }
    f->flow.dst_given = true;
    f->flow.port = (uint16_t)dport;
    f->flow.l7 = l7 == NULL                  ? EI_L7_TLS
                 : strcmp(l7, "http") == 0  ? EI_L7_HTTP
                 : strcmp(l7, "socks") == 0 ? EI_L7_SOCKS
                 : quic                     ? EI_L7_QUIC
                                            : EI_L7_TLS;
    if (host != NULL && strlen(host) < sizeof f->name) {
        snprintf(f->name, sizeof f->name, "%s", host);
        f->flow.name = f->name;
        f->flow.target_port = (uint16_t)target; /* a proxy's request names it */
    }
    if (f->flow.l7 == EI_L7_SOCKS && f->flow.target_port == 0)
        return false; /* a SOCKS request is nothing without its target */
    snprintf(f->key, sizeof f->key, "%s|%s|%s|%u|%d|%u", src, host != NULL ? host : "", dst, f->flow.port, f->flow.l7,
             f->flow.target_port);
    return true;
}

static void side(json_object *line, const char *key, const ei_explain_result *r)
{
    json_object *o = json_object_new_object();
    if (o == NULL)
        return;
    json_object_object_add(o, "verdict", json_object_new_string(ei_verdict_name(r->verdict)));
    json_object_object_add(o, "reason", json_object_new_string(ei_reason_name(r->reason)));
    json_object_object_add(o, "policy", json_object_new_string(r->policy));
    json_object_object_add(o, "rule", r->rule[0] ? json_object_new_string(r->rule) : NULL);
    json_object_object_add(line, key, o);
}

/* Reads the log into distinct flows (a json-c object maps each key to its index). */
static seen_flow *read_flows(FILE *in, size_t *n, uint64_t *lines, uint64_t *skipped)
{
    seen_flow *flows = NULL;
    size_t cap = 0;
    json_object *index = json_object_new_object();
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t len;
    *n = 0;
    while (index != NULL && (len = getline(&buf, &bufcap, in)) >= 0) {
        json_object *o = len < (1 << 20) ? json_tokener_parse(buf) : NULL;
        seen_flow f;
        bool not_tcp = false;
        if (o == NULL || !flow_of_line(o, &f, &not_tcp)) {
            *skipped += not_tcp;
            json_object_put(o);
            continue;
        }
        (*lines)++;
        uint64_t count = (uint64_t)int_of(o, "count", 1);
        json_object *d = NULL;
        if (json_object_object_get_ex(o, "data", &d))
            count = (uint64_t)int_of(d, "count", 1);
        json_object_put(o);
        json_object *at = NULL;
        int64_t known = json_object_object_get_ex(index, f.key, &at) ? json_object_get_int64(at) : -1;
        if (flows != NULL && known >= 0 && (size_t)known < *n) {
            flows[known].seen += count;
            continue;
        }
        seen_flow *grown = ei_grow(flows, sizeof *flows, *n, &cap, 64);
        if (grown == NULL)
            break;
        flows = grown;
        f.seen = count;
        flows[*n] = f;
        if (flows[*n].flow.name != NULL)
            flows[*n].flow.name = flows[*n].name; /* its own copy, now in the array */
        json_object_object_add(index, f.key, json_object_new_int64((int64_t)*n));
        (*n)++;
    }
    free(buf);
    json_object_put(index);
    return flows;
}

int ei_cmd_diff(int argc, char **argv)
{
    static const struct option opts[] = {
        { "from", required_argument, NULL, OPT_FROM },
        { "mode", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        PIPELINE_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    judge j;
    judge_defaults(&j);
    const char *from = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FROM: from = optarg; break;
        case 'm': if (!parse_mode(optarg, &j.mode)) return 2; break;
        case 'h': fputs(diff_usage, stdout); return 0;
        default: {
            int done = pipeline_option(&j.core, c, optarg);
            if (done < 0)
                fputs(diff_usage, stderr);
            if (done <= 0)
                return 2;
        }
        }
    }
    if (from == NULL || argc - optind != 2) {
        fputs(diff_usage, stderr);
        return 2;
    }
    FILE *in = strcmp(from, "-") == 0 ? stdin : fopen(from, "re");
    if (in == NULL) {
        fprintf(stderr, "egress-inspector: %s: cannot open it\n", from);
        return 2;
    }
    ei_policy_set *old_set = ei_rules_load(argv[optind], stderr, NULL);
    ei_policy_set *new_set = ei_rules_load(argv[optind + 1], stderr, NULL);
    int status = 2;
    if (old_set != NULL && new_set != NULL && judge_open(&j, new_set) &&
        (j.view != NULL || !ei_policy_set_selects(old_set) || core_view(&j.core, old_set, false, &j.view))) {
        size_t n = 0;
        uint64_t lines = 0, skipped = 0, changed = 0, undecided = 0;
        seen_flow *flows = read_flows(in, &n, &lines, &skipped);
        for (size_t i = 0; i < n; i++) {
            ei_explain_result a, b;
            if (!ei_explain(&j.pipe, old_set, j.view, j.dns, j.mode, &flows[i].flow, &a) ||
                !ei_explain(&j.pipe, new_set, j.view, j.dns, j.mode, &flows[i].flow, &b) || !a.decided ||
                !b.decided) {
                undecided++;
                continue;
            }
            if (a.verdict == b.verdict)
                continue;
            changed++;
            json_object *line = json_object_new_object();
            if (line == NULL)
                break;
            char addr[EI_ADDR_STRLEN];
            json_object_object_add(line, "src", json_object_new_string(ei_addr_format(&flows[i].flow.src, addr)));
            json_object_object_add(line, "host", flows[i].flow.name ? json_object_new_string(flows[i].name) : NULL);
            json_object_object_add(line, "dst", json_object_new_string(ei_addr_format(&flows[i].flow.dst, addr)));
            json_object_object_add(line, "dport", json_object_new_int(flows[i].flow.port));
            if (flows[i].flow.target_port != 0)
                json_object_object_add(line, "target_port", json_object_new_int(flows[i].flow.target_port));
            json_object_object_add(line, "seen", json_object_new_int64((int64_t)flows[i].seen));
            side(line, "old", &a);
            side(line, "new", &b);
            puts(json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN));
            json_object_put(line);
        }
        fprintf(stderr, "# %llu decision lines, %zu distinct flows, %llu change verdict; "
                "%llu neither TCP nor QUIC, %llu not decided by their facts alone (left out)\n",
                (unsigned long long)lines, n, (unsigned long long)changed, (unsigned long long)skipped,
                (unsigned long long)undecided);
        free(flows);
        status = 0;
    }
    if (in != stdin)
        fclose(in);
    judge_close(&j);
    ei_policy_set_free(old_set);
    ei_policy_set_free(new_set);
    return status;
}
