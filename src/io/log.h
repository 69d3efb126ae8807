/* Decision lines: one JSON object per decided flow, the same in every mode. */
#ifndef EI_IO_LOG_H
#define EI_IO_LOG_H

#include <stdio.h>

#include "egress_inspector/pipeline.h"
#include "io/jsonw.h"

/* Formats one decided flow as a JSON line into w (ending in a newline). */
void ei_log_format_event(ei_jsonw *w, const ei_flow_event *ev);

/* Formats a time in nanoseconds since the epoch as RFC 3339 UTC with microseconds. */
void ei_log_format_time(uint64_t ts_ns, char out[32]);

#endif
