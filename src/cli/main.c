/* egress-inspector: command line. Each subcommand is one door into the same core. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/hosts.h"
#include "cli/explain.h"
#include "cli/iptables.h"
#include "cli/observe.h"
#include "cli/suggest.h"
#include "cli/options.h"
#include "io/rules_load.h"
#include "egress_inspector/pipeline.h"
#include "io/daemon.h"
#include "io/replay.h"
#include "kube/view.h"
#include "kube/watch.h"

#ifndef EI_VERSION
#define EI_VERSION "0.1.0"
#endif

static const char usage[] =
    "usage: egress-inspector COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  replay --rules FILE --pcap FILE [--mode enforce|monitor] [--summary]\n"
    "         [--dns-from CIDR]... [PIPELINE OPTIONS]\n"
    "      Run a capture (pcap or pcapng) through the pipeline; print one JSON line per\n"
    "      decided flow on stdout. DNS answers in the capture are learned from when they\n"
    "      answer a question in it (and come from a --dns-from resolver, when named); no\n"
    "      lookup is ever made (a name bound to nothing is denied: dns_unresolved).\n"
    "  run --rules FILE (--queue N | --queues A-B) [--mode enforce|monitor]\n"
    "      [--fail closed|open] [--mark-allow HEX] [--mark-deny HEX] [--dns-queue N|off]\n"
    "      [--resolver IP[:PORT]] [--queue-maxlen N] [--metrics ADDR:PORT]\n"
    "      [--log-format json|cloudevents] [--log-interval SECONDS]\n"
    "      [--log-buffer BYTES] [--kube auto | --kubeconfig FILE] [--node-name NAME]\n"
    "      [--workload-wait MS] [--control PATH [--control-group NAME]]\n"
    "      [PIPELINE OPTIONS]\n"
    "      The daemon: judge the packets iptables queues; JSON lines on stdout.\n"
    "      --kube auto (in a pod: the service account) or --kubeconfig FILE: list and\n"
    "      watch this node's pods ($NODE_NAME) and the namespaces, the pod view that\n"
    "      namespaces and pods lines select from; /readyz fails until both are listed.\n"
    "      A flow from an address no pod has yet waits --workload-wait MS (3000) for\n"
    "      the pod's event, then is denied workload_unknown.\n"
    "      SIGUSR1: enforce, SIGUSR2: monitor, SIGHUP: reload rules, SIGTERM: stop.\n"
    "      Log lines wait in a buffer of --log-buffer bytes (8388608) for a slow reader;\n"
    "      when it is full they are dropped whole and counted, never waited for.\n"
    "      --control PATH: a Unix socket (0600; 0660 and that group with\n"
    "      --control-group) for observe and status.\n"
    "  iptables (--print | --apply | --remove) [--queue N | --queues A-B]\n"
    "      [--source CIDR]... [--in-iface PATTERN]... [--hook forward|output]...\n"
    "      [--ports LIST] [--fail closed|open] [--mark-allow HEX] [--mark-deny HEX]\n"
    "      [--dns-queue N|off] [--dns-from CIDR]...\n"
    "      [--coverage all|inspected] [--quic inspect|block]\n"
    "      The node rules (IPv4 and IPv6) in chains of their own. --dns-from: the\n"
    "      resolvers whose answers are read (by the conntrack entry's original\n"
    "      destination, so a DNAT'd service address works) and, with --coverage all,\n"
    "      the only ones DNS may go to; none: any resolver. --ports and --coverage\n"
    "      as for run (the two must agree).\n"
    "  check-rules FILE\n"
    "      Validate a rules file (or Portarium policy JSON); print every error.\n"
    "  observe --control PATH [--verdict allow|deny] [--policy NAME] [--source CIDR]\n"
    "          [--name GLOB] [--output json|table] [--count N] [--follow]\n"
    "      The decision lines a running daemon logs, as they come: unchanged (json, the\n"
    "      default when stdout is no terminal) or as a table. Ends (exit 0) after\n"
    "      --count N matching lines, when the daemon closes, or on SIGINT; --follow\n"
    "      reconnects when the daemon closes (a restart) instead.\n"
    "  status --control PATH\n"
    "      The daemon's mode, rules generation and counters, as one JSON object.\n";

static const char usage_more[] = /* one string would be longer than C11 promises */
    "  suggest [--from FILE] [--rules FILE] [--format rules|portarium] [--min-count N]\n"
    "      [--min-siblings N]  An allowlist from decision lines; N (3) names below one\n"
    "      parent P become *.P, never on a public suffix (suggest --help).\n"
    "  explain --rules FILE --source IP [--name NAME] [--port N] [--dest IP]\n"
    "      [--l7 tls|http] [PIPELINE OPTIONS]\n"
    "      What the pipeline decides for that flow (the decision line replay would\n"
    "      print), and for a deny the entries nearest to allowing it (explain --help).\n"
    "  diff --from FILE [PIPELINE OPTIONS] OLD.rules NEW.rules\n"
    "      The flows of a decision log whose verdict NEW would change (diff --help).\n"
    "\n"
    "  Wherever a rules file is read (--rules), ClusterNetworkPolicy documents\n"
    "  (policy.networking.k8s.io/v1alpha2, YAML or JSON: Accept rules to domainNames and\n"
    "  networks; told by their kind) and a Portarium MachineExecutionPolicy JSON\n"
    "  document or list work too (told apart by its first character); --policy-json FILE\n"
    "  is the same option under the name Portarium users look for.\n"
    "  version\n"
    "  help\n"
    "\n";

static const char usage_pipeline[] =
    "PIPELINE OPTIONS (replay and run):\n"
    "  --reassembly-bytes N   longest first message read (16384)\n"
    "  --max-flows N          flow table entries (262144)\n"
    "  --dest-check strict|off  a flow allowed by name must go to an address of that\n"
    "                         name (strict, the default) or anywhere (off)\n"
    "  --hosts FILE           fixed bindings, /etc/hosts format\n"
    "  --dns-timeout MS       how long a flow waits for a lookup (2000)\n"
    "  --dns-min-ttl S, --dns-max-ttl S  TTL clamps (30, 3600)\n"
    "  --dns-cache-size N, --dns-cache-per-workload N  cache bounds (65536, 1024)\n"
    "  --dns-queue N|off      the queue of DNS answers to workloads (the last flow\n"
    "                         queue + 1); run and iptables must agree\n"
    "  --checksums verify|report|off  a packet with a wrong checksum is dropped (verify:\n"
    "                         run's default), or counted and flagged in its flow's\n"
    "                         decision line (report: replay's default, since captures\n"
    "                         made on the sending host hold checksums left to the card)\n"
    "  --preamble-ports LIST|none|any  ports whose flows may start with a SOCKS,\n"
    "                         STARTTLS or PROXY preamble (21,25,110,143,389,587,\n"
    "                         1080,5432)\n"
    "  --undecided-timeout S  idle undecided flows are denied `incomplete` (30)\n"
    "  --ports LIST|any       TCP ports whose TLS or HTTP is read, as iptables multiport\n"
    "                         takes them: PORT or FIRST:LAST, comma-separated (80,443)\n"
    "  --coverage all|inspected  all (the default): the rest of a workload's egress\n"
    "                         (TCP to other ports, UDP, ICMP, other protocols) is\n"
    "                         decided at its first packet by address entries (TCP:\n"
    "                         tcp:// entries too), else denied port_not_inspected,\n"
    "                         quic_not_inspected, udp_not_inspected, icmp_not_inspected,\n"
    "                         proto_not_inspected; DNS to a server not named by\n"
    "                         --dns-from: dns_resolver_not_named. inspected: only TCP\n"
    "                         to --ports is judged\n"
    "  --quic inspect|block   inspect (the default): QUIC Initials (versions 1, 2 and\n"
    "                         drafts) on UDP 443, and wherever a client's first\n"
    "                         datagram decrypts as one, are read and judged as TLS\n"
    "                         (l7 quic); block: UDP 443 is quic_not_inspected, and\n"
    "                         clients fall back to TCP\n"
    "  --pods FILE, --namespaces FILE  the pod view (what kubectl get pods -A -o json and\n"
    "                         kubectl get namespaces -o json print): policies select pods\n"
    "                         by their labels and their namespace's (namespaces, pods\n"
    "                         lines; ClusterNetworkPolicy subjects); a flow from an\n"
    "                         address no pod has, and no source CIDR covers, is denied\n"
    "                         workload_unknown\n";

void print_usage(FILE *f)
{
    fputs(usage, f);
    fputs(usage_more, f);
    fputs(usage_pipeline, f);
}

/* Parses a decimal number in [min, max]; false (with a message) otherwise. */
bool parse_number(const char *opt, const char *text, uint64_t min, uint64_t max,
                         uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
        fprintf(stderr, "egress-inspector: %s: '%s' is not a number from %" PRIu64 " to %" PRIu64 "\n",
                opt, text, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool parse_mode(const char *text, ei_mode *mode)
{
    if (strcmp(text, "enforce") == 0)
        *mode = EI_MODE_ENFORCE;
    else if (strcmp(text, "monitor") == 0)
        *mode = EI_MODE_MONITOR;
    else {
        fprintf(stderr, "egress-inspector: --mode: '%s' is neither enforce nor monitor\n", text);
        return false;
    }
    return true;
}

static void default_ports(ei_pipeline_config *pipe);

void core_defaults(core_options *o, ei_pipeline_config *pipe)
{
    o->pipe = pipe;
    ei_pipeline_config_default(pipe);
    default_ports(pipe);
    ei_dns_cache_config_default(&o->cache);
    o->hosts = NULL;
    o->pods = o->namespaces = NULL;
}

/* One port (1-65535) at *tok, which moves past it; 0 when there is none. */
static unsigned read_port(const char **tok)
{
    char *end;
    errno = 0;
    unsigned long port = strtoul(*tok, &end, 10);
    if (errno != 0 || end == *tok || **tok < '0' || **tok > '9' || port == 0 || port > 65535)
        return 0;
    *tok = end;
    return (unsigned)port;
}

/* --preamble-ports: a comma-separated list of ports, `none` or `any`. */
static bool parse_preamble_ports(const char *arg, ei_pipeline_config *pipe)
{
    pipe->npreamble_ports = 0;
    pipe->preambles_any_port = strcmp(arg, "any") == 0;
    if (pipe->preambles_any_port || strcmp(arg, "none") == 0)
        return true;
    const size_t max = sizeof pipe->preamble_ports / sizeof pipe->preamble_ports[0];
    for (const char *tok = arg;; tok++) {
        unsigned port = read_port(&tok);
        if (port == 0 || (*tok != ',' && *tok != '\0')) {
            fprintf(stderr, "egress-inspector: --preamble-ports: '%s' is not a list of ports\n", arg);
            return false;
        }
        if (pipe->npreamble_ports == max) {
            fprintf(stderr, "egress-inspector: --preamble-ports: at most %zu ports\n", max);
            return false;
        }
        pipe->preamble_ports[pipe->npreamble_ports++] = (uint16_t)port;
        if (*tok == '\0')
            return true;
    }
}

/* --ports: the TCP ports whose first messages are read (and the node rules queue), as
 * iptables' multiport takes them: PORT or FIRST:LAST, comma-separated, at most 15 ports
 * with a range counting twice; or `any`. */
static bool parse_ports(const char *arg, ei_pipeline_config *pipe)
{
    pipe->nports = 0;
    if (strcmp(arg, "any") == 0)
        return true;
    unsigned slots = 0;
    for (const char *tok = arg;; tok++) {
        unsigned first = read_port(&tok), last = first;
        if (first != 0 && *tok == ':') {
            tok++;
            last = read_port(&tok);
        }
        if (first == 0 || last < first || (*tok != ',' && *tok != '\0')) {
            fprintf(stderr, "egress-inspector: --ports: '%s' is not a list of ports "
                    "(PORT or FIRST:LAST, comma-separated) or any\n", arg);
            return false;
        }
        slots += first == last ? 1 : 2;
        if (slots > 15) {
            fprintf(stderr, "egress-inspector: --ports: at most 15 ports, a range counting two "
                    "(iptables multiport)\n");
            return false;
        }
        pipe->ports[pipe->nports].first = (uint16_t)first;
        pipe->ports[pipe->nports++].last = (uint16_t)last;
        if (*tok == '\0')
            return true;
    }
}

/* The ports as multiport takes them (NULL for any). */
static const char *format_ports(const ei_pipeline_config *pipe, char *buf, size_t size)
{
    if (pipe->nports == 0)
        return NULL;
    size_t n = 0;
    buf[0] = '\0';
    for (uint8_t i = 0; i < pipe->nports && n < size; i++) {
        int w = pipe->ports[i].first == pipe->ports[i].last
                    ? snprintf(buf + n, size - n, "%s%u", i ? "," : "", pipe->ports[i].first)
                    : snprintf(buf + n, size - n, "%s%u:%u", i ? "," : "", pipe->ports[i].first,
                               pipe->ports[i].last);
        n += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

static bool parse_coverage(const char *arg, ei_pipeline_config *pipe)
{
    if (strcmp(arg, "all") == 0)
        pipe->coverage = EI_COVERAGE_ALL;
    else if (strcmp(arg, "inspected") == 0)
        pipe->coverage = EI_COVERAGE_INSPECTED;
    else {
        fprintf(stderr, "egress-inspector: --coverage: '%s' is neither all nor inspected\n", arg);
        return false;
    }
    return true;
}

static bool parse_quic(const char *arg, ei_pipeline_config *pipe)
{
    if (strcmp(arg, "inspect") == 0)
        pipe->quic = EI_QUIC_INSPECT;
    else if (strcmp(arg, "block") == 0)
        pipe->quic = EI_QUIC_BLOCK;
    else {
        fprintf(stderr, "egress-inspector: --quic: '%s' is neither inspect nor block\n", arg);
        return false;
    }
    return true;
}

/* The command line's default: the node rules' ports. */
static void default_ports(ei_pipeline_config *pipe)
{
    bool ok = parse_ports("80,443", pipe);
    (void)ok;
}

/* Handles one pipeline option; -1 when c is not one, 0 when its value is bad, 1 done. */
int pipeline_option(core_options *o, int c, const char *arg)
{
    uint64_t n;
    switch (c) {
    case OPT_CHECKSUMS:
        if (strcmp(arg, "verify") == 0)
            o->pipe->checksums = EI_CHECKSUM_VERIFY;
        else if (strcmp(arg, "report") == 0)
            o->pipe->checksums = EI_CHECKSUM_REPORT;
        else if (strcmp(arg, "off") == 0)
            o->pipe->checksums = EI_CHECKSUM_OFF;
        else {
            fprintf(stderr, "egress-inspector: --checksums: '%s' is not verify, report or off\n", arg);
            return 0;
        }
        return 1;
    case OPT_PREAMBLE_PORTS:
        return parse_preamble_ports(arg, o->pipe) ? 1 : 0;
    case OPT_PORTS:
        return parse_ports(arg, o->pipe) ? 1 : 0;
    case OPT_COVERAGE:
        return parse_coverage(arg, o->pipe) ? 1 : 0;
    case OPT_QUIC:
        return parse_quic(arg, o->pipe) ? 1 : 0;
    case OPT_UNDECIDED_TIMEOUT:
        if (!parse_number("--undecided-timeout", arg, 1, 3600, &n))
            return 0;
        o->pipe->undecided_timeout_ns = n * 1000000000ull;
        return 1;
    case OPT_REASM:
        if (!parse_number("--reassembly-bytes", arg, 256, 1u << 20, &n))
            return 0;
        o->pipe->reassembly_bytes = (uint32_t)n;
        return 1;
    case OPT_FLOWS:
        if (!parse_number("--max-flows", arg, 1, 1u << 26, &n))
            return 0;
        o->pipe->max_flows = (uint32_t)n;
        return 1;
    case OPT_DEST_CHECK:
        if (strcmp(arg, "strict") != 0 && strcmp(arg, "off") != 0) {
            fprintf(stderr, "egress-inspector: --dest-check: '%s' is neither strict nor off\n", arg);
            return 0;
        }
        o->pipe->dest_check = strcmp(arg, "strict") == 0;
        return 1;
    case OPT_HOSTS:
        o->hosts = arg;
        return 1;
    case OPT_PODS:
        o->pods = arg;
        return 1;
    case OPT_NAMESPACES:
        o->namespaces = arg;
        return 1;
    case OPT_DNS_TIMEOUT:
        if (!parse_number("--dns-timeout", arg, 10, 60000, &n))
            return 0;
        o->pipe->dns_timeout_ns = n * 1000000ull;
        return 1;
    case OPT_DNS_MIN_TTL:
        if (!parse_number("--dns-min-ttl", arg, 0, 86400, &n))
            return 0;
        o->cache.min_ttl_s = (uint32_t)n;
        return 1;
    case OPT_DNS_MAX_TTL:
        if (!parse_number("--dns-max-ttl", arg, 1, 604800 /* 7 days */, &n))
            return 0;
        o->cache.max_ttl_s = (uint32_t)n;
        return 1;
    case OPT_DNS_CACHE:
        if (!parse_number("--dns-cache-size", arg, 1, 1u << 24, &n))
            return 0;
        o->cache.max_entries = (uint32_t)n;
        return 1;
    case OPT_DNS_PER_WORKLOAD:
        if (!parse_number("--dns-cache-per-workload", arg, 1, 1u << 24, &n))
            return 0;
        o->cache.max_per_workload = (uint32_t)n;
        return 1;
    default:
        return -1;
    }
}

/* The cache the options describe, with the hosts file pinned in it; NULL (reported)
 * when the hosts file has an error or memory runs out. */
ei_dns_cache *core_cache(const core_options *o)
{
    if (o->cache.min_ttl_s > o->cache.max_ttl_s) {
        fprintf(stderr, "egress-inspector: --dns-min-ttl is above --dns-max-ttl\n");
        return NULL;
    }
    ei_dns_cache_config cfg = o->cache;
    cfg.hash_seed = o->pipe->hash_seed;
    ei_dns_cache *c = ei_dns_cache_new(&cfg);
    if (c == NULL) {
        fprintf(stderr, "egress-inspector: out of memory\n");
        return NULL;
    }
    if (o->hosts != NULL && ei_hosts_load(o->hosts, c, stderr) < 0) {
        fprintf(stderr, "egress-inspector: %s: not loaded\n", o->hosts);
        ei_dns_cache_free(c);
        return NULL;
    }
    return c;
}

/* The fixed pod view of --pods and --namespaces, into *view (NULL when none is given).
 * false (reported) when a file is bad, or the rules select pods by labels with no view
 * to select them from (watching: the caller has one coming from the API server). */
bool core_view(const core_options *o, const ei_policy_set *set, bool watching,
                      ei_workloads **view)
{
    *view = NULL;
    if (o->namespaces != NULL && o->pods == NULL) {
        fprintf(stderr, "egress-inspector: --namespaces needs --pods\n");
        return false;
    }
    if (o->pods == NULL) {
        if (set != NULL && ei_policy_set_selects(set) && !watching) {
            fprintf(stderr, "egress-inspector: policy '%s' selects pods by labels: give --pods FILE "
                    "(kubectl get pods -A -o json) and --namespaces FILE, or --kube\n",
                    ei_policy_set_first_selecting(set));
            return false;
        }
        return true;
    }
    *view = ei_workloads_load(o->pods, o->namespaces, stderr);
    return *view != NULL;
}

/* A CIDR option (--source, --dns-from): the rules file's grammar; what goes on is the
 * prefix as we write it back (text, EI_ADDR_STRLEN + 4 bytes), never the argument's own
 * bytes. */
bool parse_cidr(const char *opt, const char *arg, ei_addr *net, unsigned *bits, char *text)
{
    if (ei_prefix_parse(arg, strlen(arg), net, bits) != EI_PREFIX_OK) {
        fprintf(stderr, "egress-inspector: %s: '%s' is not a CIDR (ADDR or ADDR/LEN, no host bits)\n",
                opt, arg);
        return false;
    }
    char shown[EI_ADDR_STRLEN];
    snprintf(text, EI_ADDR_STRLEN + 4, "%s/%u", ei_addr_format(net, shown), *bits);
    return true;
}

static int cmd_replay(int argc, char **argv)
{
    enum { OPT_SUMMARY = 256, OPT_DNS_FROM };
    static const struct option opts[] = {
        { "rules", required_argument, NULL, 'r' },
        { "policy-json", required_argument, NULL, 'r' },
        { "pcap", required_argument, NULL, 'p' },
        { "mode", required_argument, NULL, 'm' },
        { "summary", no_argument, NULL, OPT_SUMMARY },
        { "dns-from", required_argument, NULL, OPT_DNS_FROM },
        PIPELINE_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ei_replay_options ro = { .out = stdout, .err = stderr, .mode = EI_MODE_ENFORCE };
    core_options core;
    core_defaults(&core, &ro.pipeline);
    ro.pipeline.checksums = EI_CHECKSUM_REPORT; /* see --checksums */
    ro.pipeline.tunnels = true; /* captures may be taken on a tunnel's path */
    const char *rules = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "r:p:m:", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rules = optarg; break;
        case 'p': ro.pcap_path = optarg; break;
        case 'm':
            if (!parse_mode(optarg, &ro.mode))
                return 2;
            break;
        case OPT_SUMMARY: ro.summary = true; break;
        case OPT_DNS_FROM: {
            ei_pipeline_config *pc = &ro.pipeline;
            const size_t max = sizeof pc->dns_from / sizeof pc->dns_from[0];
            char text[EI_ADDR_STRLEN + 4];
            unsigned bits;
            if (pc->ndns_from == max) {
                fprintf(stderr, "egress-inspector: --dns-from: at most %zu\n", max);
                return 2;
            }
            if (!parse_cidr("--dns-from", optarg, &pc->dns_from[pc->ndns_from], &bits, text))
                return 2;
            pc->dns_from_bits[pc->ndns_from++] = (uint8_t)bits;
            break;
        }
        default: {
            int done = pipeline_option(&core, c, optarg);
            if (done < 0)
                print_usage(stderr);
            if (done <= 0)
                return 2;
        }
        }
    }
    if (rules == NULL || ro.pcap_path == NULL || optind != argc) {
        fprintf(stderr, "egress-inspector replay: --rules FILE and --pcap FILE are required\n");
        return 2;
    }
    ei_policy_set *set = ei_rules_load(rules, stderr, NULL);
    if (set == NULL)
        return 2;
    ei_workloads *view = NULL;
    if (!core_view(&core, set, false, &view)) {
        ei_policy_set_free(set);
        return 2;
    }
    ro.dns = core_cache(&core);
    if (ro.dns == NULL) {
        ei_workloads_free(view);
        ei_policy_set_free(set);
        return 2;
    }
    ro.policy = set;
    ro.workloads = view;
    int status = ei_replay_run(&ro);
    ei_dns_cache_free(ro.dns);
    ei_workloads_free(view);
    ei_policy_set_free(set);
    return status;
}

/* Options `run` and `iptables` share, so that the two always agree. */
typedef struct {
    uint16_t queue_first, queue_last;
    bool fail_open;
    uint32_t mark_allow, mark_deny;
    int32_t dns_queue; /* DNS_QUEUE_OFF, DNS_QUEUE_NEXT (queue_last + 1), or a queue */
} node_options;

enum { DNS_QUEUE_OFF = -1, DNS_QUEUE_NEXT = -2 };
enum { OPT_QUEUE = 300, OPT_QUEUES, OPT_FAIL, OPT_MARK_ALLOW, OPT_MARK_DENY, OPT_DNS_QUEUE };

#define NODE_LONG_OPTIONS                                           \
    { "queue", required_argument, NULL, OPT_QUEUE },                \
    { "queues", required_argument, NULL, OPT_QUEUES },              \
    { "fail", required_argument, NULL, OPT_FAIL },                  \
    { "mark-allow", required_argument, NULL, OPT_MARK_ALLOW },      \
    { "mark-deny", required_argument, NULL, OPT_MARK_DENY },        \
    { "dns-queue", required_argument, NULL, OPT_DNS_QUEUE }

static void node_defaults(node_options *n)
{
    n->queue_first = n->queue_last = 0;
    n->fail_open = false;
    /* Clear of kube-proxy (0x4000 masquerade, 0x8000 drop), Calico (0xffff0000), Cilium
     * (0x0f00 and the upper half) and Istio (0x539). */
    n->mark_allow = 0x1000;
    n->mark_deny = 0x2000;
    n->dns_queue = DNS_QUEUE_NEXT;
}

static bool parse_mark(const char *opt, const char *text, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 0);
    if (errno != 0 || end == text || *end != '\0' || v == 0 || v > 0xffffffffUL) {
        fprintf(stderr, "egress-inspector: %s: '%s' is not a non-zero 32-bit mark\n", opt, text);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Handles one shared option; false (with a message) when its value is bad. */
static bool node_option(node_options *n, int c, const char *arg)
{
    uint64_t a, b;
    switch (c) {
    case OPT_QUEUE:
        if (!parse_number("--queue", arg, 0, 65535, &a))
            return false;
        n->queue_first = n->queue_last = (uint16_t)a;
        return true;
    case OPT_QUEUES: {
        char first[16];
        const char *dash = strchr(arg, '-');
        size_t len = dash ? (size_t)(dash - arg) : 0;
        if (dash == NULL || len == 0 || len >= sizeof first) {
            fprintf(stderr, "egress-inspector: --queues: '%s' is not A-B\n", arg);
            return false;
        }
        memcpy(first, arg, len);
        first[len] = '\0';
        if (!parse_number("--queues", first, 0, 65535, &a) ||
            !parse_number("--queues", dash + 1, a, a + 63 > 65535 ? 65535 : a + 63, &b))
            return false;
        n->queue_first = (uint16_t)a;
        n->queue_last = (uint16_t)b;
        return true;
    }
    case OPT_FAIL:
        if (strcmp(arg, "closed") != 0 && strcmp(arg, "open") != 0) {
            fprintf(stderr, "egress-inspector: --fail: '%s' is neither closed nor open\n", arg);
            return false;
        }
        n->fail_open = strcmp(arg, "open") == 0;
        return true;
    case OPT_MARK_ALLOW:
        return parse_mark("--mark-allow", arg, &n->mark_allow);
    case OPT_MARK_DENY:
        return parse_mark("--mark-deny", arg, &n->mark_deny);
    case OPT_DNS_QUEUE:
        if (strcmp(arg, "off") == 0) {
            n->dns_queue = DNS_QUEUE_OFF;
            return true;
        }
        if (!parse_number("--dns-queue", arg, 0, 65535, &a))
            return false;
        n->dns_queue = (int32_t)a;
        return true;
    default:
        return false;
    }
}

static bool node_check(node_options *n)
{
    if (n->dns_queue == DNS_QUEUE_NEXT)
        n->dns_queue = n->queue_last < 65535 ? n->queue_last + 1 : DNS_QUEUE_OFF;
    if (n->dns_queue >= n->queue_first && n->dns_queue <= n->queue_last) {
        fprintf(stderr, "egress-inspector: --dns-queue %d is one of the flow queues\n", n->dns_queue);
        return false;
    }
    if (n->mark_allow & n->mark_deny) {
        fprintf(stderr, "egress-inspector: --mark-allow and --mark-deny share bits\n");
        return false;
    }
    if ((n->mark_allow | n->mark_deny) & 0xc000u) {
        fprintf(stderr, "egress-inspector: marks 0x4000 and 0x8000 belong to kube-proxy\n");
        return false;
    }
    return true;
}

static int cmd_run(int argc, char **argv)
{
    enum { OPT_MAXLEN = 256, OPT_METRICS, OPT_LOG_FORMAT, OPT_LOG_INTERVAL, OPT_RESOLVER, OPT_LOG_BUFFER,
           OPT_KUBE, OPT_KUBECONFIG, OPT_NODE_NAME, OPT_WORKLOAD_WAIT, OPT_CONTROL, OPT_CONTROL_GROUP };
    static const struct option opts[] = {
        { "rules", required_argument, NULL, 'r' },
        { "kube", required_argument, NULL, OPT_KUBE },
        { "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
        { "node-name", required_argument, NULL, OPT_NODE_NAME },
        { "workload-wait", required_argument, NULL, OPT_WORKLOAD_WAIT },
        { "policy-json", required_argument, NULL, 'r' },
        { "mode", required_argument, NULL, 'm' },
        { "resolver", required_argument, NULL, OPT_RESOLVER },
        { "queue-maxlen", required_argument, NULL, OPT_MAXLEN },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "log-format", required_argument, NULL, OPT_LOG_FORMAT },
        { "log-interval", required_argument, NULL, OPT_LOG_INTERVAL },
        { "log-buffer", required_argument, NULL, OPT_LOG_BUFFER },
        { "control", required_argument, NULL, OPT_CONTROL },
        { "control-group", required_argument, NULL, OPT_CONTROL_GROUP },
        PIPELINE_LONG_OPTIONS,
        NODE_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ei_daemon_options d = { .mode = EI_MODE_ENFORCE, .queue_maxlen = 4096,
                            .log_interval_ns = 10ull * 1000000000ull, .log_buffer = 8u << 20 };
    core_options core;
    core_defaults(&core, &d.pipeline);
    node_options n;
    node_defaults(&n);
    uint64_t v, workload_wait_ms = 3000;
    const char *kube = NULL, *kubeconfig = NULL, *node_name = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "r:m:", opts, NULL)) != -1) {
        switch (c) {
        case 'r': d.rules_path = optarg; break;
        case OPT_KUBE:
            if (strcmp(optarg, "auto") != 0) {
                fprintf(stderr, "egress-inspector: --kube: only 'auto' (in a pod); or --kubeconfig FILE\n");
                return 2;
            }
            kube = optarg;
            break;
        case OPT_KUBECONFIG: kubeconfig = optarg; break;
        case OPT_NODE_NAME: node_name = optarg; break;
        case OPT_WORKLOAD_WAIT:
            if (!parse_number("--workload-wait", optarg, 0, 60000, &workload_wait_ms))
                return 2;
            break;
        case 'm':
            if (!parse_mode(optarg, &d.mode))
                return 2;
            break;
        case OPT_METRICS:
            d.metrics_listen = optarg;
            break;
        case OPT_CONTROL:
            d.control_path = optarg;
            break;
        case OPT_CONTROL_GROUP:
            d.control_group = optarg;
            break;
        case OPT_RESOLVER:
            d.resolver = optarg;
            break;
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "json") == 0)
                d.log_format = EI_LOG_JSON;
            else if (strcmp(optarg, "cloudevents") == 0)
                d.log_format = EI_LOG_CLOUDEVENTS;
            else {
                fprintf(stderr, "egress-inspector: --log-format: '%s' is neither json nor cloudevents\n", optarg);
                return 2;
            }
            break;
        case OPT_LOG_INTERVAL:
            if (!parse_number("--log-interval", optarg, 1, 3600, &v))
                return 2;
            d.log_interval_ns = v * 1000000000ull;
            break;
        case OPT_LOG_BUFFER:
            if (!parse_number("--log-buffer", optarg, 4096, 1u << 30, &v))
                return 2;
            d.log_buffer = (size_t)v;
            break;
        case OPT_MAXLEN:
            if (!parse_number("--queue-maxlen", optarg, 16, 1u << 20, &v))
                return 2;
            d.queue_maxlen = (uint32_t)v;
            break;
        case '?':
            print_usage(stderr);
            return 2;
        default: {
            int done = pipeline_option(&core, c, optarg);
            if (done == 0 || (done < 0 && !node_option(&n, c, optarg)))
                return 2;
        }
        }
    }
    if (d.rules_path == NULL || optind != argc) {
        fprintf(stderr, "egress-inspector run: --rules FILE is required\n");
        return 2;
    }
    if (d.control_group != NULL && d.control_path == NULL) {
        fprintf(stderr, "egress-inspector run: --control-group needs --control PATH\n");
        return 2;
    }
    if (!node_check(&n))
        return 2;
    d.queue_first = n.queue_first;
    d.queue_last = n.queue_last;
    d.fail_open = n.fail_open;
    d.mark_allow = n.mark_allow;
    d.mark_deny = n.mark_deny;
    d.dns_queue = n.dns_queue;
    if ((kube != NULL) + (kubeconfig != NULL) + (core.pods != NULL) > 1) {
        fprintf(stderr, "egress-inspector: one pod view: --kube auto, --kubeconfig FILE or --pods FILE\n");
        return 2;
    }
    ei_kube_config kc;
    char err[600];
    if ((kube != NULL && !ei_kube_config_in_cluster(&kc, node_name, err, sizeof err)) ||
        (kubeconfig != NULL && !ei_kube_config_file(&kc, kubeconfig, node_name, err, sizeof err))) {
        fprintf(stderr, "egress-inspector: %s\n", err);
        return 2;
    }
    d.kube = kube != NULL || kubeconfig != NULL ? &kc : NULL;
    /* a watched view changes: a pod that connects before its event waits for it */
    d.pipeline.workload_wait_ns = d.kube != NULL ? workload_wait_ms * 1000000ull : 0;
    ei_workloads *view = NULL;
    if (!core_view(&core, NULL, true, &view)) /* the rules are the daemon's to check */
        return 2;
    d.view = view;
    d.dns = core_cache(&core);
    int status = 2;
    if (d.dns != NULL)
        status = ei_daemon_run(&d); /* frees d.view */
    else
        ei_workloads_free(view);
    ei_dns_cache_free(d.dns);
    if (d.kube != NULL)
        ei_kube_config_clear(&kc);
    return status;
}

static int cmd_iptables(int argc, char **argv)
{
    static char source_text[EI_IPTABLES_MAX_SELECTORS][EI_ADDR_STRLEN + 4];
    static char dns_from_text[EI_IPTABLES_MAX_SELECTORS][EI_ADDR_STRLEN + 4];
    enum { OPT_PRINT = 256, OPT_APPLY, OPT_REMOVE, OPT_SOURCE, OPT_IFACE, OPT_HOOK, OPT_DNS_FROM };
    static const struct option opts[] = {
        { "print", no_argument, NULL, OPT_PRINT },
        { "apply", no_argument, NULL, OPT_APPLY },
        { "remove", no_argument, NULL, OPT_REMOVE },
        { "source", required_argument, NULL, OPT_SOURCE },
        { "dns-from", required_argument, NULL, OPT_DNS_FROM },
        { "in-iface", required_argument, NULL, OPT_IFACE },
        { "hook", required_argument, NULL, OPT_HOOK },
        { "ports", required_argument, NULL, OPT_PORTS },
        { "coverage", required_argument, NULL, OPT_COVERAGE },
        { "quic", required_argument, NULL, OPT_QUIC },
        NODE_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ei_iptables_options o = { 0 };
    ei_pipeline_config ports; /* --ports and --coverage, read as run and replay read them */
    ei_pipeline_config_default(&ports);
    default_ports(&ports);
    static char ports_text[16 * 12];
    node_options n;
    node_defaults(&n);
    int action = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_PRINT: case OPT_APPLY: case OPT_REMOVE:
            if (action != 0 && action != c) {
                fprintf(stderr, "egress-inspector iptables: one of --print, --apply, --remove\n");
                return 2;
            }
            action = c;
            break;
        case OPT_SOURCE:
        case OPT_DNS_FROM: {
            bool dns = c == OPT_DNS_FROM;
            size_t *count = dns ? &o.ndns_from : &o.nsources;
            if (*count == EI_IPTABLES_MAX_SELECTORS) {
                fprintf(stderr, "egress-inspector: %s: at most %d\n", dns ? "--dns-from" : "--source",
                        EI_IPTABLES_MAX_SELECTORS);
                return 2;
            }
            ei_addr net;
            unsigned bits;
            char *text = dns ? dns_from_text[*count] : source_text[*count];
            if (!parse_cidr(dns ? "--dns-from" : "--source", optarg, &net, &bits, text))
                return 2;
            if (dns)
                o.dns_from[o.ndns_from++] = text;
            else
                o.sources[o.nsources++] = text;
            break;
        }
        case OPT_IFACE:
            if (strlen(optarg) == 0 || strlen(optarg) > 15 || strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+") != strlen(optarg) ||
                o.niifaces == EI_IPTABLES_MAX_SELECTORS) {
                fprintf(stderr, "egress-inspector: --in-iface: '%s' is not an interface pattern\n", optarg);
                return 2;
            }
            o.iifaces[o.niifaces++] = optarg;
            break;
        case OPT_HOOK:
            if (strcmp(optarg, "forward") == 0)
                o.hook_forward = true;
            else if (strcmp(optarg, "output") == 0)
                o.hook_output = true;
            else {
                fprintf(stderr, "egress-inspector: --hook: '%s' is neither forward nor output\n", optarg);
                return 2;
            }
            break;
        case OPT_PORTS:
            if (!parse_ports(optarg, &ports))
                return 2;
            break;
        case OPT_COVERAGE:
            if (!parse_coverage(optarg, &ports))
                return 2;
            break;
        case OPT_QUIC:
            if (!parse_quic(optarg, &ports))
                return 2;
            break;
        case '?':
            print_usage(stderr);
            return 2;
        default:
            if (!node_option(&n, c, optarg))
                return 2;
        }
    }
    if (action == 0 || optind != argc) {
        fprintf(stderr, "egress-inspector iptables: --print, --apply or --remove\n");
        return 2;
    }
    if (!node_check(&n))
        return 2;
    if (!o.hook_forward && !o.hook_output)
        o.hook_forward = true;
    if (o.hook_output && o.nsources == 0 && ports.coverage == EI_COVERAGE_ALL && action != OPT_REMOVE) {
        /* every new exchange of every process on the node: the kubelet's, the daemon's
         * own lookups */
        fprintf(stderr, "egress-inspector iptables: --hook output with --coverage all would judge "
                "everything the node itself begins; name the workloads' --source, or use "
                "--coverage inspected\n");
        return 2;
    }
    o.queue_first = n.queue_first;
    o.queue_last = n.queue_last;
    o.fail_open = n.fail_open;
    o.mark_allow = n.mark_allow;
    o.mark_deny = n.mark_deny;
    o.dns_queue = n.dns_queue;
    o.ports = format_ports(&ports, ports_text, sizeof ports_text);
    o.coverage_inspected = ports.coverage == EI_COVERAGE_INSPECTED;
    o.quic_inspect = ports.quic == EI_QUIC_INSPECT;
    if (action == OPT_REMOVE)
        return ei_iptables_remove();
    if (action == OPT_PRINT) {
        ei_iptables_print(stdout, &o);
        return 0;
    }
    return ei_iptables_apply(&o);
}

static int cmd_check_rules(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: egress-inspector check-rules FILE\n");
        return 2;
    }
    unsigned errors = 0;
    ei_policy_set *set = ei_rules_load(argv[1], stderr, &errors);
    if (set == NULL) {
        fprintf(stderr, "%s: %u error%s; nothing applied\n", argv[1], errors, errors == 1 ? "" : "s");
        return 1;
    }
    printf("%s: ok: %zu polic%s, %zu allow entr%s\n", argv[1], ei_policy_set_policies(set),
           ei_policy_set_policies(set) == 1 ? "y" : "ies", ei_policy_set_entries(set),
           ei_policy_set_entries(set) == 1 ? "y" : "ies");
    ei_policy_set_free(set);
    return 0;
}

int main(int argc, char **argv)
{
    /* suggest, explain, diff, observe and status print a usage of their own; the others
     * are described by the command list, which `COMMAND --help` prints */
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
        bool own_help;
    } commands[] = {
        { "replay", cmd_replay, false },      { "check-rules", cmd_check_rules, false },
        { "run", cmd_run, false },            { "iptables", cmd_iptables, false },
        { "suggest", ei_cmd_suggest, true },  { "explain", ei_cmd_explain, true },
        { "diff", ei_cmd_diff, true },        { "observe", ei_cmd_observe, true },
        { "status", ei_cmd_observe, true },
    };
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0)
            continue;
        if (!commands[i].own_help && argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            print_usage(stdout);
            return 0;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("egress-inspector %s\n", EI_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    fprintf(stderr, "egress-inspector: unknown command '%s'\n\n", cmd);
    print_usage(stderr);
    return 2;
}
