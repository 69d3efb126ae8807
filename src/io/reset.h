/* Resets for the server's side of a denied connection.
 *
 * The node rules answer the client of a denied flow with a TCP reset (REJECT); the server
 * would keep its half of the connection until its own timeout, which a pod could use to
 * hold the server's resources open. So, as Suricata's rejectboth does, the daemon sends
 * the server a reset too, from the client's address, with the sequence number the server
 * expects (RFC 5961 3.2 accepts no other). A raw socket, opened once; sends never block
 * and a failure is counted, never retried. */
#ifndef EI_IO_RESET_H
#define EI_IO_RESET_H

#include "egress_inspector/pipeline.h"

typedef struct ei_resetter ei_resetter;

typedef struct {
    uint64_t sent;    /* resets sent to servers */
    uint64_t errors;  /* sends that failed (counted, not retried) */
} ei_reset_stats;

/* NULL (with errno) when no raw socket can be had (no CAP_NET_RAW). */
EI_MUST_USE ei_resetter *ei_reset_open(void);
void ei_reset_close(ei_resetter *r);

/* Sends the server of a denied flow its reset(s), when the event knows where the
 * server's side stands. Thread-safe: every queue thread shares one resetter. */
void ei_reset_server(ei_resetter *r, const ei_flow_event *ev);

ei_reset_stats ei_reset_stats_of(ei_resetter *r);

/* The reset itself, as the raw socket sends it: a RST|ACK from the event's client to its
 * server with sequence number seq and the server's next sequence number acknowledged, an
 * IPv4 or IPv6 header and 20 bytes of TCP, checksums filled in. Returns its length. */
#define EI_RESET_PACKET_MAX 60
size_t ei_reset_packet(const ei_flow_event *ev, uint32_t seq, uint8_t out[EI_RESET_PACKET_MAX]);

#endif
