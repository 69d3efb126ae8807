/* The layers of src/parse/packet*.c and how they call each other. Each reads its header
 * through a cursor and hands the next a cursor over exactly its payload. depth counts
 * the tunnels entered (EI_MAX_ENCAP bounds it). Not a public interface.
 *
 *   packet.c   the entry, and link layers: Ethernet and its tags, SLL, PPP, NFLOG,
 *              802.11 and radiotap, BSD loopback
 *   tunnel.c   GRE, ERSPAN, GTP-U, VXLAN, Geneve, CAPWAP
 *   ip.c       IPv4, IPv6 and its extension headers
 *   l4.c       TCP, UDP (and the UDP ports that carry tunnels) */
#ifndef EI_PARSE_PACKET_LAYERS_H
#define EI_PARSE_PACKET_LAYERS_H

#include "egress_inspector/packet.h"
#include "parse/cursor.h"

enum {
    ETHERTYPE_IPV4 = 0x0800,
    ETHERTYPE_IPV6 = 0x86dd,
    ETHERTYPE_VLAN = 0x8100,
    ETHERTYPE_QINQ = 0x88a8,
    ETHERTYPE_QINQ_OLD = 0x9100,
};
enum {
    PORT_GTP_U = 2152,
    PORT_VXLAN = 4789,
    PORT_VXLAN_GPE = 4790,
    PORT_GENEVE = 6081,
    PORT_CAPWAP_DATA = 5247,
    ETHERTYPE_TEB = 0x6558,     /* transparent Ethernet bridging (GRE, Geneve) */
    ETHERTYPE_ERSPAN_2 = 0x88be,
    ETHERTYPE_ERSPAN_3 = 0x22eb,
    ETHERTYPE_PPPOE = 0x8864,
    PPP_IPV4 = 0x0021,
    PPP_IPV6 = 0x0057,
};

EI_MUST_USE ei_packet_error pk_ethernet(ei_cursor c, int depth, ei_packet *out);
EI_MUST_USE ei_packet_error pk_ethertype(uint16_t type, ei_cursor c, int depth, ei_packet *out);
EI_MUST_USE ei_packet_error pk_80211(ei_cursor c, int depth, bool may_swap, ei_packet *out);
EI_MUST_USE ei_packet_error pk_gre(ei_cursor c, int depth, ei_packet *out);
EI_MUST_USE ei_packet_error pk_udp_tunnel(uint16_t sport, uint16_t dport, ei_cursor c, int depth, ei_packet *out);
EI_MUST_USE ei_packet_error pk_capwap(ei_cursor c, int depth, ei_packet *out);
EI_MUST_USE ei_packet_error pk_ip(ei_cursor c, int depth, ei_packet *out);
EI_MUST_USE ei_packet_error pk_ipv4(ei_cursor c, int depth, ei_packet *out);
EI_MUST_USE ei_packet_error pk_ipv6(ei_cursor c, int depth, ei_packet *out);
EI_MUST_USE ei_packet_error pk_l4(uint8_t proto, ei_cursor c, int depth, ei_packet *out);

#endif
