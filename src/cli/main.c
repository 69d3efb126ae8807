/* egress-inspector: command line. Each subcommand is one door into the same core. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/rules_load.h"
#include "egress_inspector/pipeline.h"
#include "io/replay.h"

#ifndef EI_VERSION
#define EI_VERSION "0.1.0"
#endif

static const char usage[] =
    "usage: egress-inspector COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  replay --rules FILE --pcap FILE [--mode enforce|monitor]\n"
    "         [--reassembly-bytes N] [--max-flows N] [--summary]\n"
    "      Run a capture (pcap or pcapng) through the pipeline; print one JSON line per\n"
    "      decided flow on stdout.\n"
    "  check-rules FILE\n"
    "      Validate a rules file; print every error as FILE:LINE: message.\n"
    "  version\n"
    "  help\n";

/* Parses a decimal number in [min, max]; false (with a message) otherwise. */
static bool parse_number(const char *opt, const char *text, uint64_t min, uint64_t max,
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

static bool parse_mode(const char *text, ei_mode *mode)
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

static int cmd_replay(int argc, char **argv)
{
    enum { OPT_REASM = 256, OPT_FLOWS, OPT_SUMMARY };
    static const struct option opts[] = {
        { "rules", required_argument, NULL, 'r' },
        { "pcap", required_argument, NULL, 'p' },
        { "mode", required_argument, NULL, 'm' },
        { "reassembly-bytes", required_argument, NULL, OPT_REASM },
        { "max-flows", required_argument, NULL, OPT_FLOWS },
        { "summary", no_argument, NULL, OPT_SUMMARY },
        { NULL, 0, NULL, 0 },
    };
    ei_replay_options ro = { .out = stdout, .err = stderr, .mode = EI_MODE_ENFORCE };
    ei_pipeline_config_default(&ro.pipeline);
    const char *rules = NULL;
    uint64_t n;
    int c;
    while ((c = getopt_long(argc, argv, "r:p:m:", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rules = optarg; break;
        case 'p': ro.pcap_path = optarg; break;
        case 'm':
            if (!parse_mode(optarg, &ro.mode))
                return 2;
            break;
        case OPT_REASM:
            if (!parse_number("--reassembly-bytes", optarg, 256, 1u << 20, &n))
                return 2;
            ro.pipeline.reassembly_bytes = (uint32_t)n;
            break;
        case OPT_FLOWS:
            if (!parse_number("--max-flows", optarg, 1, 1u << 26, &n))
                return 2;
            ro.pipeline.max_flows = (uint32_t)n;
            break;
        case OPT_SUMMARY: ro.summary = true; break;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (rules == NULL || ro.pcap_path == NULL || optind != argc) {
        fprintf(stderr, "egress-inspector replay: --rules FILE and --pcap FILE are required\n");
        return 2;
    }
    ei_policy_set *set = ei_rules_load(rules, stderr, NULL);
    if (set == NULL)
        return 2;
    ro.policy = set;
    int status = ei_replay_run(&ro);
    ei_policy_set_free(set);
    return status;
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
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "replay") == 0)
        return cmd_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "check-rules") == 0)
        return cmd_check_rules(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("egress-inspector %s\n", EI_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "egress-inspector: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
