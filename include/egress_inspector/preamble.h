/* Preambles: what some clients send before the message that names their destination.
 *
 * A SOCKS client first greets its proxy and names the target (by name or by address);
 * a mail, FTP, LDAP or PostgreSQL client asks the server to start TLS; a load balancer
 * prepends a PROXY protocol header. The ClientHello or HTTP request that follows is judged
 * as usual. Each preamble is read with its exact grammar and a hard bound, so that what
 * reaches the server before a decision is a few known commands, never free data. */
#ifndef EGRESS_INSPECTOR_PREAMBLE_H
#define EGRESS_INSPECTOR_PREAMBLE_H

#include "egress_inspector/common.h"

#define EI_PREAMBLE_MAX 512   /* bytes of preamble read at most */
#define EI_PREAMBLE_LINES 8   /* command lines of a STARTTLS dialogue */

typedef enum {
    EI_PREAMBLE_NONE = 0,
    EI_PREAMBLE_SOCKS4,       /* SOCKS 4 / 4a CONNECT */
    EI_PREAMBLE_SOCKS5,       /* greeting, optional user/password, CONNECT */
    EI_PREAMBLE_STARTTLS,     /* SMTP, POP3, IMAP, FTP command lines ending in STARTTLS */
    EI_PREAMBLE_LDAP_STARTTLS,
    EI_PREAMBLE_POSTGRES_SSL, /* SSLRequest */
    EI_PREAMBLE_PROXY,        /* PROXY protocol v1 or v2 header */
} ei_preamble_kind;

const char *ei_preamble_name(ei_preamble_kind kind);

typedef struct {
    ei_preamble_kind kind;
    size_t length;      /* bytes of the stream the preamble takes */
    ei_view name;       /* SOCKS 4a / 5 target name (raw), len 0 when by address */
    bool has_name;
    uint16_t port;      /* SOCKS target port */
    /* With EI_PARSE_NEED_MORE: the preamble's messages already whole (a SOCKS greeting,
     * a command line). Only those may reach the server before a decision: a partial one
     * may still turn out to be something else. */
    unsigned units;
} ei_preamble;

/* Reads a preamble at the start of a client's stream.
 * EI_PARSE_OK: a whole preamble of out->length bytes (the message starts after it).
 * EI_PARSE_NEED_MORE: the bytes so far are the start of one.
 * EI_PARSE_MALFORMED: the stream does not start with any preamble we know (kind NONE),
 * or one began and broke its grammar or bound (kind set). */
EI_MUST_USE ei_parse_status ei_preamble_parse(const uint8_t *data, size_t len, ei_preamble *out);

#endif
