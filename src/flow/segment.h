/* Whether a client segment carrying data belongs to the stream the server will read.
 *
 * An inline inspector sees segments, not the server's stream. A segment the server's stack
 * would discard (wrong flags, an acknowledgement of nothing, a stale timestamp, an option
 * it drops, a TTL that dies on the way) or read differently (urgent data) must never
 * decide a flow: that is the insertion attack of Ptacek and Newsham (1998). No honest
 * client sends such a segment before its first message, so each is a named reason to deny
 * the flow rather than a packet to drop quietly. Checksums are checked before this (a
 * packet with a wrong one is dropped, since the network can corrupt one). */
#ifndef EI_FLOW_SEGMENT_H
#define EI_FLOW_SEGMENT_H

#include "egress_inspector/packet.h"
#include "flow/table.h"

/* How far from the stream's start (bytes, either way) a segment of a flow that has not
 * sent its first message may lie: far more than any receive window at that point. */
#define EI_SEGMENT_WINDOW (1u << 20)

/* EI_REASON_NONE when pkt (a client segment with payload, of flow f) may be read as part
 * of the server's stream, else why not. live: the flow must have been seen from its SYN
 * and its SYN-ACK (the daemon's queue sees both). Pure: changes nothing. */
EI_MUST_USE ei_reason ei_segment_check(const ei_flow *f, const ei_packet *pkt, bool live);

/* What a client segment that passed ei_segment_check teaches the flow (its newest
 * timestamp). */
void ei_segment_learn(ei_flow *f, const ei_packet *pkt);

#endif
