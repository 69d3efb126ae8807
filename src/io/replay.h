/* Replay: a capture file, packet by packet, through the same pipeline as the daemon. */
#ifndef EI_IO_REPLAY_H
#define EI_IO_REPLAY_H

#include <stdio.h>

#include "egress_inspector/pipeline.h"

typedef struct {
    const char *pcap_path;
    const ei_policy_set *policy;
    ei_mode mode;
    ei_pipeline_config pipeline;
    ei_dns_cache *dns;  /* learned into from the capture's DNS answers, and --hosts */
    const ei_workloads *workloads; /* --pods, --namespaces (NULL: none) */
    FILE *out;      /* decision lines */
    FILE *err;      /* errors and the closing summary */
    bool summary;   /* print counters as a JSON line on err at the end */
} ei_replay_options;

/* Reads the whole capture (pcap or pcapng). Returns 0, or 2 when the file cannot be
 * opened or read to its end (after printing the decisions made until then), 1 when
 * memory runs out, 3 when a held packet got no verdict (a pipeline bug, never expected).
 * Borrows everything in opt for the call; the caller keeps policy and dns. */
EI_MUST_USE int ei_replay_run(const ei_replay_options *opt);

#endif
