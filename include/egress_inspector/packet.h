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
    EI_PKT_OTHER_L4,        /* ICMP, SCTP, ESP, ...: no payload to read, but the
                               addresses and l4 are set (and ICMP's fields) */
    EI_PKT_ERROR_COUNT
} ei_packet_error;

const char *ei_packet_error_name(ei_packet_error err);

enum {
    EI_TCP_FIN = 0x01,
    EI_TCP_SYN = 0x02,
    EI_TCP_RST = 0x04,
    EI_TCP_PSH = 0x08,
    EI_TCP_ACK = 0x10,
    EI_TCP_URG = 0x20,
};

/* TCP options a segment carried (RFC 9293 3.2, RFC 7323, RFC 2018, RFC 2385, RFC 7413),
 * as bits: a receiver treats some of them (MD5, and kinds it does not know) as a reason
 * to drop the segment, which the inspector must know before it trusts the data. */
enum {
    EI_TCPOPT_MSS = 0x01,       /* kind 2: SYN only */
    EI_TCPOPT_WSCALE = 0x02,    /* kind 3: SYN only */
    EI_TCPOPT_SACK_PERM = 0x04, /* kind 4: SYN only */
    EI_TCPOPT_SACK = 0x08,      /* kind 5 */
    EI_TCPOPT_TS = 0x10,        /* kind 8: tsval is set */
    EI_TCPOPT_MD5 = 0x20,       /* kind 19: dropped by a server that has no key */
    EI_TCPOPT_FASTOPEN = 0x40,  /* kind 34 */
    EI_TCPOPT_OTHER = 0x80,     /* any other kind (MPTCP, TCP-AO, experimental, ...) */
};

/* What a checksum check found (ei_packet_checksum). */
typedef enum {
    EI_CSUM_OK = 0,
    EI_CSUM_BAD,
    EI_CSUM_UNKNOWN,  /* the capture cut the packet short: nothing to sum */
} ei_csum;

typedef struct {
    ei_addr src;
    ei_addr dst;
    uint8_t l4;         /* IPPROTO_TCP or IPPROTO_UDP when parsing succeeded; with
                           EI_PKT_OTHER_L4 the innermost protocol number read */
    uint16_t sport;     /* ICMP, ICMPv6: the identifier of a query or its reply */
    uint16_t dport;     /* ICMP, ICMPv6: 0 */
    uint8_t icmp_type;  /* ICMP, ICMPv6 */
    uint8_t tcp_flags;  /* EI_TCP_* */
    uint32_t seq;
    uint32_t ack;
    uint16_t urgent;    /* TCP urgent pointer (meaningful with EI_TCP_URG) */
    uint8_t tcp_options;/* EI_TCPOPT_* */
    uint8_t ttl;        /* IPv4 TTL or IPv6 hop limit, as the packet arrived */
    uint32_t tsval;     /* TCP timestamp value, with EI_TCPOPT_TS */
    ei_view ip_header;  /* the innermost IP header (IPv4: with options), for checksums */
    ei_view segment;    /* the whole TCP or UDP header and payload */
    ei_view payload;    /* TCP or UDP payload, trimmed to the IP length (no link padding) */
    bool truncated;     /* the capture cut the payload short of the IP length */
} ei_packet;

/* Reads one packet of the given link type. Returns EI_PKT_OK and fills *out, or the
 * first problem found. Tunnels are looked through (the innermost packet wins), up to
 * EI_MAX_ENCAP layers; PPPoE sessions too. */
EI_MUST_USE ei_packet_error ei_packet_parse(int linktype, const uint8_t *data, size_t len,
                                            ei_packet *out);

/* The same, but no tunnel is entered: the packet as the node that forwards it sees it. An
 * encapsulated packet is judged as what it is on the wire (a UDP datagram, GRE or IP in
 * IP), never as what it carries: the daemon must not let a packet to one workload speak
 * for another that it merely contains. */
EI_MUST_USE ei_packet_error ei_packet_parse_outer(int linktype, const uint8_t *data, size_t len,
                                                  ei_packet *out);

/* Verifies the checksums a receiver verifies, of a packet that ei_packet_parse read: (when
 * header) the IPv4 header's, and (when l4) the TCP or UDP checksum over the pseudo-header
 * (RFC 9293 3.1, RFC 8200 8.1). A UDP checksum of zero over IPv4 means none was sent
 * (RFC 768). */
EI_MUST_USE ei_csum ei_packet_checksum(const ei_packet *pkt, bool header, bool l4);

/* The same arithmetic for a writer of packets (RFC 1071): bytes are summed as they lie in
 * memory, and ei_csum_field gives the 16 bits to store in the checksum field as they are
 * (memcpy), whatever the machine's byte order (RFC 1071 2.B). */
EI_MUST_USE uint64_t ei_csum_add(uint64_t sum, ei_view bytes);
EI_MUST_USE uint16_t ei_csum_field(uint64_t sum);

#endif
