/* Decision lines: one JSON object per decided flow, the same in every mode. */
#ifndef EI_IO_LOG_H
#define EI_IO_LOG_H

#include <stdio.h>

#include "egress_inspector/pipeline.h"
#include "io/jsonw.h"

/* Formats one decided flow as a JSON line into w (ending in a newline). */
void ei_log_format_event(ei_jsonw *w, const ei_flow_event *ev);

/* An IP protocol's name as the decision lines write it ("tcp", "udp", "icmp", "icmpv6",
 * ...), or its number, written into `number`. */
const char *ei_log_proto_name(uint8_t proto, char number[4]);

/* Opens a lifecycle line of the daemon ("start", "reload", "mode", "shutdown"): its
 * stamp (wall time) and event name come first, as in a decision line. event is one of
 * our own names (no escaping). */
void ei_log_begin_event(ei_jsonw *w, const char *event, uint64_t wall_ns);

/* Formats a time in nanoseconds since the epoch as RFC 3339 UTC with microseconds. */
void ei_log_format_time(uint64_t ts_ns, char out[32]);

#endif
