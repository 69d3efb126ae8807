/* DNS responses: the answer a resolver gives a workload -> the names it asked about (the
 * question and its CNAME chain) and the addresses they have, with the shortest TTL. */
#ifndef EGRESS_INSPECTOR_DNS_H
#define EGRESS_INSPECTOR_DNS_H

#include "egress_inspector/common.h"
#include "egress_inspector/name.h"

#define EI_DNS_MAX_RECORDS 32 /* answer records read; more are counted, not read */
#define EI_DNS_MAX_CHAIN 8    /* CNAME hops followed from the question's name */
#define EI_DNS_MAX_ADDRS 16   /* A / AAAA records kept for the chain's last name */

/* Why a response taught nothing. Counted by the pipeline (dns_malformed by kind). */
typedef enum {
    EI_DNS_OK = 0,
    EI_DNS_NOT_RESPONSE,   /* QR clear: a query, or not DNS at all */
    EI_DNS_TRUNCATED,      /* a section or record runs past the message */
    EI_DNS_BAD_QUESTION,   /* QDCOUNT is not 1 */
    EI_DNS_BAD_NAME,       /* a label outside the hostname grammar, a pointer loop, too long */
    EI_DNS_BAD_RDATA,      /* an A record not 4 bytes long, an AAAA not 16, a bad CNAME */
    EI_DNS_CHAIN_TOO_LONG, /* more than EI_DNS_MAX_CHAIN CNAME hops */
    EI_DNS_PROBLEM_COUNT
} ei_dns_problem;

const char *ei_dns_problem_name(ei_dns_problem problem);

typedef struct {
    uint16_t id;
    uint8_t rcode;
    uint16_t qtype;
    /* chain[0] is the question's name; chain[i + 1] the CNAME target of chain[i].
     * Normalized (lower case, no trailing dot), NUL-terminated. */
    char chain[EI_DNS_MAX_CHAIN + 1][EI_NAME_MAX + 1];
    uint8_t chain_len;
    ei_addr addrs[EI_DNS_MAX_ADDRS]; /* of the chain's last name */
    uint8_t naddrs;
    bool addrs_dropped;   /* the chain's last name had more than EI_DNS_MAX_ADDRS */
    bool records_dropped; /* the answer section had more than EI_DNS_MAX_RECORDS */
    uint32_t ttl;         /* the least TTL of the CNAME and address records used */
    ei_dns_problem problem;
} ei_dns_answer;

/* A workload's question: what an answer must match to teach anything. */
typedef struct {
    uint16_t id;
    uint16_t qtype;
    char name[EI_NAME_MAX + 1]; /* normalized, NUL-terminated */
} ei_dns_query;

/* DNS over TCP (RFC 1035 4.2.2, RFC 7766): a 2-byte length, then the message.
 * EI_PARSE_OK: *msg is the first message, whole in `segment` (bytes after it are left
 * alone). EI_PARSE_NEED_MORE: the message does not end in this segment; *msg is empty. */
EI_MUST_USE ei_parse_status ei_dns_tcp_message(ei_view segment, ei_view *msg);

/* Parses one DNS message (as carried by UDP; ei_dns_tcp_message unwraps TCP's).
 * EI_PARSE_OK: *out holds the question's chain and its addresses (none for NXDOMAIN or
 * an answer without A / AAAA records; rcode says which). EI_PARSE_MALFORMED:
 * out->problem says why, and nothing in *out may be used. Allocates nothing. */
EI_MUST_USE ei_parse_status ei_dns_parse_response(const uint8_t *msg, size_t len,
                                                  ei_dns_answer *out);

/* Parses a standard query (QR clear, opcode QUERY, one question) into *out. EI_PARSE_OK
 * or EI_PARSE_MALFORMED (not a query we can match an answer to). */
EI_MUST_USE ei_parse_status ei_dns_parse_query(const uint8_t *msg, size_t len, ei_dns_query *out);

#endif
