/* The command line's shared pieces (src/cli/main.c): the pipeline and DNS options that
 * replay, run, explain and diff take alike, so that each judges with the daemon's very
 * settings, and the small parsers every command uses. */
#ifndef EI_CLI_OPTIONS_H
#define EI_CLI_OPTIONS_H

#include <getopt.h>
#include <stdio.h>

#include "egress_inspector/dns_cache.h"
#include "egress_inspector/pipeline.h"
#include "kube/view.h"

/* Pipeline and DNS options, shared by `replay` and `run` so that a replay can check a
 * policy with the very settings the daemon uses. */
enum { OPT_REASM = 400, OPT_FLOWS, OPT_DEST_CHECK, OPT_HOSTS, OPT_DNS_TIMEOUT, OPT_DNS_MIN_TTL,
       OPT_DNS_MAX_TTL, OPT_DNS_CACHE, OPT_DNS_PER_WORKLOAD, OPT_CHECKSUMS, OPT_PREAMBLE_PORTS,
       OPT_UNDECIDED_TIMEOUT, OPT_PORTS, OPT_COVERAGE, OPT_QUIC, OPT_PODS, OPT_NAMESPACES };

#define PIPELINE_LONG_OPTIONS                                               \
    { "reassembly-bytes", required_argument, NULL, OPT_REASM },             \
    { "max-flows", required_argument, NULL, OPT_FLOWS },                    \
    { "dest-check", required_argument, NULL, OPT_DEST_CHECK },              \
    { "hosts", required_argument, NULL, OPT_HOSTS },                        \
    { "dns-timeout", required_argument, NULL, OPT_DNS_TIMEOUT },            \
    { "dns-min-ttl", required_argument, NULL, OPT_DNS_MIN_TTL },            \
    { "dns-max-ttl", required_argument, NULL, OPT_DNS_MAX_TTL },            \
    { "dns-cache-size", required_argument, NULL, OPT_DNS_CACHE },           \
    { "dns-cache-per-workload", required_argument, NULL, OPT_DNS_PER_WORKLOAD }, \
    { "checksums", required_argument, NULL, OPT_CHECKSUMS },                \
    { "preamble-ports", required_argument, NULL, OPT_PREAMBLE_PORTS },      \
    { "undecided-timeout", required_argument, NULL, OPT_UNDECIDED_TIMEOUT }, \
    { "ports", required_argument, NULL, OPT_PORTS },                        \
    { "coverage", required_argument, NULL, OPT_COVERAGE },                  \
    { "quic", required_argument, NULL, OPT_QUIC },                          \
    { "pods", required_argument, NULL, OPT_PODS },                          \
    { "namespaces", required_argument, NULL, OPT_NAMESPACES }

typedef struct {
    ei_pipeline_config *pipe;
    ei_dns_cache_config cache;
    const char *hosts;
    const char *pods;       /* --pods, --namespaces: a fixed pod view */
    const char *namespaces;
} core_options;

void core_defaults(core_options *o, ei_pipeline_config *pipe);
/* Handles one pipeline option; -1 when c is not one, 0 when its value is bad, 1 done. */
int pipeline_option(core_options *o, int c, const char *arg);
/* The cache the options describe, with the hosts file pinned in it; NULL (reported)
 * when the hosts file has an error or memory runs out. */
ei_dns_cache *core_cache(const core_options *o);
/* The fixed pod view of --pods and --namespaces, into *view (NULL when none is given).
 * false (reported) when a file is bad, or set selects pods by labels with no view to
 * select them from (watching: the caller has one coming from the API server). */
bool core_view(const core_options *o, const ei_policy_set *set, bool watching, ei_workloads **view);
/* Parses a decimal number in [min, max]; false (with a message) otherwise. */
bool parse_number(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out);
bool parse_mode(const char *text, ei_mode *mode);
/* A CIDR option: the rules file's grammar; text receives it as written back. */
bool parse_cidr(const char *opt, const char *arg, ei_addr *net, unsigned *bits, char *text);
void print_usage(FILE *f);

#endif
