/* Types shared by every module of the egress-inspector core. */
#ifndef EGRESS_INSPECTOR_COMMON_H
#define EGRESS_INSPECTOR_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EI_MUST_USE __attribute__((warn_unused_result))

/* Outcome of every parser: a complete message, a prefix that needs more bytes, or bytes
 * that cannot be the message the parser was asked for. */
typedef enum {
    EI_PARSE_OK = 0,
    EI_PARSE_NEED_MORE,
    EI_PARSE_MALFORMED,
} ei_parse_status;

/* A read-only window into bytes owned by someone else (usually the packet). */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} ei_view;

/* An IPv4 or IPv6 address in network byte order. IPv4 uses the first 4 bytes; the rest
 * are zero, so two addresses compare equal with memcmp over the whole struct. */
typedef struct {
    uint8_t family; /* 4 or 6 */
    uint8_t pad[3];
    uint8_t bytes[16];
} ei_addr;

/* Writes the textual form of addr ("192.0.2.1", "2001:db8::1") into out, which must hold
 * EI_ADDR_STRLEN bytes. Returns out. */
#define EI_ADDR_STRLEN 46
const char *ei_addr_format(const ei_addr *addr, char out[EI_ADDR_STRLEN]);

/* Parses a textual IPv4 or IPv6 address. Returns false when text is neither. */
EI_MUST_USE bool ei_addr_parse(const char *text, ei_addr *out);

/* ADDR or ADDR/LEN (n bytes of s, no NUL needed); a bare address is a host route. Host
 * bits past LEN are refused rather than cleared: "10.1.0.1/16" is as likely a typo for
 * 10.1.0.1/32 as for 10.1.0.0/16. The one grammar of a CIDR, for the rules file and the
 * command line alike. */
typedef enum {
    EI_PREFIX_OK = 0,
    EI_PREFIX_BAD_ADDRESS,
    EI_PREFIX_BAD_LENGTH,
    EI_PREFIX_HOST_BITS,
} ei_prefix_status;

EI_MUST_USE ei_prefix_status ei_prefix_parse(const char *s, size_t n, ei_addr *addr, unsigned *bits);

/* Same family and bytes (bytes past an IPv4 address are zero in every ei_addr). */
static inline bool ei_addr_equal(const ei_addr *a, const ei_addr *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

/* Clears the bits of a past its first `bits` (the network of a prefix). */
void ei_addr_clear_host_bits(ei_addr *a, unsigned bits);

/* Why a flow was decided the way it was. Every verdict carries exactly one reason; the
 * names (ei_reason_name) are part of the log format and never change meaning. */
typedef enum {
    EI_REASON_NONE = 0,
    /* allow */
    EI_REASON_ALLOWED_NAME,        /* host matched an exact or wildcard entry */
    EI_REASON_ALLOWED_ADDRESS,     /* destination matched a CIDR entry */
    EI_REASON_ALLOWED_TCP_NAME,    /* destination is an address of a tcp:// entry's name */
    /* deny: policy */
    EI_REASON_NAME_NOT_ALLOWED,    /* a clean, single name that no entry allows */
    EI_REASON_NO_HOSTNAME,         /* the flow's first message carries no name */
    EI_REASON_NOT_TLS_OR_HTTP,     /* client data that is neither a ClientHello nor a request */
    EI_REASON_NO_NAME_WITHIN_LIMIT,/* byte or packet bound reached before a name */
    /* deny: ambiguity in the name itself */
    EI_REASON_EMPTY_NAME,
    EI_REASON_INVALID_NAME,        /* outside the hostname grammar */
    EI_REASON_MULTIPLE_NAMES,      /* two server_name entries, or two names in one */
    /* deny: TLS */
    EI_REASON_TLS_MALFORMED,       /* a length that lies, truncated structure, bad type */
    EI_REASON_TLS_DUPLICATE_EXTENSION,
    /* deny: HTTP */
    EI_REASON_HTTP_MALFORMED,
    EI_REASON_HTTP_MULTIPLE_HOST,
    EI_REASON_HTTP_HOST_MISMATCH,  /* Host disagrees with absolute URI or CONNECT target */
    EI_REASON_HTTP_BODY_FRAMING,   /* a body length the head does not give plainly */
    /* deny: QUIC (a client Initial read as a server reads it) */
    EI_REASON_QUIC_MALFORMED,      /* a header or frame that lies, no decryption, < 1200 bytes */
    EI_REASON_QUIC_VERSION_UNKNOWN,/* a version whose Initials we cannot decrypt (gQUIC, ...) */
    EI_REASON_QUIC_NOT_INITIAL,    /* a flow's first datagram carries no client Initial */
    EI_REASON_QUIC_CRYPTO_CONFLICT,/* CRYPTO bytes sent twice that differ */
    /* deny: the name is allowed, the destination is not one of its addresses */
    EI_REASON_SNI_IP_MISMATCH,     /* TLS: the server name resolves elsewhere */
    EI_REASON_HOST_IP_MISMATCH,    /* HTTP Host or SOCKS target: resolves elsewhere */
    EI_REASON_DNS_TIMEOUT,         /* the inspector's lookup got no answer in time */
    EI_REASON_DNS_FAILED,          /* the resolver answered with an error */
    EI_REASON_DNS_UNRESOLVED,      /* nothing known of the name and no lookup possible (replay) */
    /* deny: egress the inspector does not read (--coverage all), allowed only by an
     * address entry (or, for TCP, a tcp:// entry) */
    EI_REASON_PORT_NOT_INSPECTED,  /* TCP to a port outside --ports */
    EI_REASON_QUIC_NOT_INSPECTED,  /* UDP to port 443: clients fall back to TCP */
    EI_REASON_UDP_NOT_INSPECTED,   /* any other UDP */
    EI_REASON_ICMP_NOT_INSPECTED,  /* an ICMP or ICMPv6 request (echo, timestamp, ...) */
    EI_REASON_PROTO_NOT_INSPECTED, /* another IP protocol (SCTP, GRE, ESP, IP in IP, ...) */
    EI_REASON_DNS_RESOLVER_NOT_NAMED, /* DNS (port 53) to a server not named by --dns-from */
    /* deny: the sender is no workload the pod view knows (after a bounded wait, live), and
     * no `source` CIDR covers it */
    EI_REASON_WORKLOAD_UNKNOWN,
    /* deny: transport */
    EI_REASON_TCP_OVERLAP_CONFLICT,/* retransmitted bytes differ from what was seen */
    /* client segments that carry data the server would not read as the inspector does */
    EI_REASON_TCP_DATA_IN_SYN,     /* data in a SYN (no Fast Open) or a SYN-ACK */
    EI_REASON_TCP_DATA_WITHOUT_ACK,/* a receiver drops data without the ACK flag */
    EI_REASON_TCP_BAD_ACK,         /* acknowledges what the server never sent */
    EI_REASON_TCP_STALE_TIMESTAMP, /* older than the client's last: PAWS drops it */
    EI_REASON_TCP_UNEXPECTED_OPTION,/* MD5, TCP-AO, MPTCP, SYN-only or unknown options */
    EI_REASON_TCP_URGENT,          /* URG: the receiver takes the urgent byte out */
    EI_REASON_TTL_CHANGED,         /* TTL or hop limit differs from the SYN's */
    EI_REASON_TCP_OUT_OF_WINDOW,   /* far outside the stream the server expects */
    EI_REASON_TCP_SYN_CONFLICT,    /* another SYN (ISN) for a connection not over, or a
                                      SYN-ACK for an ISN that was not judged */
    EI_REASON_TCP_NO_HANDSHAKE,    /* live: data before the server's SYN-ACK was seen */
    EI_REASON_MIDSTREAM,           /* live: the connection's start was not seen (restart,
                                      eviction, expiry): no name read midstream is trusted */
    EI_REASON_REASSEMBLY_LIMIT,    /* message larger than the per-flow buffer */
    EI_REASON_HELD_LIMIT,          /* too many packets waiting for a decision */
    EI_REASON_FLOW_EVICTED,        /* the flow table made room; held packets are released */
    EI_REASON_INCOMPLETE,          /* the flow ended (or the capture did) mid-message */
    EI_REASON_SHUTDOWN,            /* the daemon stopped while the flow was undecided */
    EI_REASON_COUNT
} ei_reason;

/* Stable snake_case name of a reason, e.g. "tls_duplicate_extension". */
const char *ei_reason_name(ei_reason reason);

/* True for the reasons that allow a flow. */
EI_MUST_USE bool ei_reason_allows(ei_reason reason);

/* The verdict on a flow, or on one packet of it. */
typedef enum {
    EI_VERDICT_PENDING = 0, /* not decided yet: pass the packet, keep watching the flow */
    EI_VERDICT_ALLOW,
    EI_VERDICT_DENY,
} ei_verdict;

const char *ei_verdict_name(ei_verdict verdict);

typedef enum {
    EI_MODE_ENFORCE = 0,
    EI_MODE_MONITOR,
} ei_mode;

const char *ei_mode_name(ei_mode mode);

/* ---- building blocks, written once ---- */

/* ASCII only: wire names are bytes, never locale text. */
static inline uint8_t ei_ascii_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* Two views equal but for ASCII case. */
static inline bool ei_view_eq_nocase(ei_view a, ei_view b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (ei_ascii_lower(a.ptr[i]) != ei_ascii_lower(b.ptr[i]))
            return false;
    return true;
}

/* A view equal to a NUL-terminated word but for ASCII case ("Host", "STARTTLS"). */
static inline bool ei_view_is(ei_view a, const char *word)
{
    ei_view w = { (const uint8_t *)word, strlen(word) };
    return ei_view_eq_nocase(a, w);
}

/* One hash family for every table: FNV-1a's 64-bit step for byte-at-a-time use (the
 * policy's suffix walk extends a hash one byte at a time), and a word-at-a-time mix of
 * the same seed for fixed keys (flow keys, addresses). Seed a table with a secret
 * (getrandom) where a remote peer chooses the keys. */
#define EI_HASH_BASIS 0xcbf29ce484222325ull

static inline uint64_t ei_hash_byte(uint64_t h, uint8_t b)
{
    return (h ^ b) * 0x100000001b3ull;
}

static inline uint64_t ei_hash_word(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

/* Words while 8 bytes are left, then the tail byte by byte. */
uint64_t ei_hash_bytes(uint64_t h, const void *data, size_t len);

static inline uint32_t ei_hash_fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32));
}

/* Growable arrays: returns an array with room for item n (n <= *cap), grown by doubling
 * from `first` items when full; *cap is updated. NULL when memory runs out or the size
 * would overflow, and then `items` is untouched and still the caller's. */
EI_MUST_USE void *ei_grow(void *items, size_t elem, size_t n, size_t *cap, size_t first);

/* The same for arrays whose count and capacity are 32-bit (tables kept small per entry). */
EI_MUST_USE static inline void *ei_grow32(void *items, size_t elem, uint32_t n, uint32_t *cap,
                                          uint32_t first)
{
    size_t c = *cap;
    void *grown = n < UINT32_MAX ? ei_grow(items, elem, n, &c, first) : NULL;
    if (grown != NULL)
        *cap = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    return grown;
}

#endif
