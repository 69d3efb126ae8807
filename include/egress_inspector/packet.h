/* Link, network and transport headers: bytes of one captured or queued packet -> a view
 * of the addresses, ports, TCP fields and payload. Nothing is copied. */
#ifndef EGRESS_INSPECTOR_PACKET_H
#define EGRESS_INSPECTOR_PACKET_H

#include "egress_inspector/common.h"

/* Link layers, numbered as libpcap's LINKTYPE_ values so a pcap header can be used as is.
 * NFQUEUE hands us bare IP packets: EI_LINK_RAW. */
typedef enum {
    EI_LINK_NULL = 0,      /* BSD loopback: 4-byte address family in host byte order */
    EI_LINK_ETHERNET = 1,  /* with up to EI_MAX_VLAN_TAGS 802.1Q / 802.1ad tags */
    EI_LINK_PPP = 9,
    EI_LINK_C_HDLC = 104,  /* Cisco HDLC */
    EI_LINK_RADIOTAP = 127,/* 802.11 data frames behind a radiotap header */
    EI_LINK_RAW = 101,     /* IPv4 or IPv6, told apart by the version nibble */
    EI_LINK_LOOP = 108,    /* OpenBSD loopback: family in network byte order */
    EI_LINK_SLL = 113,     /* Linux cooked capture v1 */
    EI_LINK_IPV4 = 228,
    EI_LINK_IPV6 = 229,
    EI_LINK_NFLOG = 239,   /* Linux nfnetlink_log */
    EI_LINK_SLL2 = 276,    /* Linux cooked capture v2 */
} ei_link;

#define EI_MAX_VLAN_TAGS 4
#define EI_MAX_IPV6_EXT_HEADERS 8
/* Tunnel layers looked through: IP in IP, GRE (and ERSPAN), VXLAN, Geneve, GTP-U. */
#define EI_MAX_ENCAP 4

/* Whether the packet's link type is one we read. */
EI_MUST_USE bool ei_link_supported(int linktype);

/* Why a packet could not be read; counted by the pipeline. */
typedef enum {
    EI_PKT_OK = 0,
    EI_PKT_NOT_IP,          /* ARP, LLDP, ...: not ours to judge */
    EI_PKT_TRUNCATED_LINK,
    EI_PKT_BAD_IPV4,
    EI_PKT_BAD_IPV6,
    EI_PKT_IPV6_EXT_LIMIT,  /* more extension headers than EI_MAX_IPV6_EXT_HEADERS */
    EI_PKT_FRAGMENT,        /* an IP fragment: ports and payload cannot be trusted */
    EI_PKT_BAD_TCP,
    EI_PKT_BAD_UDP,
    EI_PKT_OTHER_L4,        /* ICMP, SCTP, ESP, ...: not inspected */
    EI_PKT_ERROR_COUNT
} ei_packet_error;

const char *ei_packet_error_name(ei_packet_error err);

enum {
    EI_TCP_FIN = 0x01,
    EI_TCP_SYN = 0x02,
    EI_TCP_RST = 0x04,
    EI_TCP_PSH = 0x08,
    EI_TCP_ACK = 0x10,
};

typedef struct {
    ei_addr src;
    ei_addr dst;
    uint8_t l4;         /* IPPROTO_TCP or IPPROTO_UDP when parsing succeeded */
    uint16_t sport;
    uint16_t dport;
    uint8_t tcp_flags;  /* EI_TCP_* */
    uint32_t seq;
    uint32_t ack;
    ei_view payload;    /* TCP or UDP payload, trimmed to the IP length (no link padding) */
    bool truncated;     /* the capture cut the payload short of the IP length */
} ei_packet;

/* Reads one packet of the given link type. Returns EI_PKT_OK and fills *out, or the
 * first problem found. Tunnels are looked through (the innermost packet wins), up to
 * EI_MAX_ENCAP layers; PPPoE sessions too. */
EI_MUST_USE ei_packet_error ei_packet_parse(int linktype, const uint8_t *data, size_t len,
                                            ei_packet *out);

#endif
