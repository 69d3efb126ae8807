/* TLS ClientHello: the first bytes a TLS client sends -> its server name and what else
 * tells the flow apart (ALPN, offered versions, ECH). */
#ifndef EGRESS_INSPECTOR_TLS_H
#define EGRESS_INSPECTOR_TLS_H

#include "egress_inspector/common.h"

#define EI_TLS_MAX_ALPN 4        /* ALPN names kept for the log; more are checked, not kept */
#define EI_TLS_MAX_VERSIONS 8    /* supported_versions entries kept */
#define EI_TLS_MAX_EXTENSIONS 128 /* a ClientHello with more is refused as malformed */

typedef struct {
    uint16_t legacy_version;
    bool sslv2;            /* an SSL 2.0-compatible hello: it has no extensions, so no name */
    unsigned sni_count;    /* host_name entries across the server_name extension */
    ei_view sni;           /* the first host_name (raw bytes, may be empty); len 0 if none */
    bool ech;              /* encrypted_client_hello (0xfe0d) is present */
    uint8_t alpn_count;
    ei_view alpn[EI_TLS_MAX_ALPN];
    uint8_t version_count;
    uint16_t versions[EI_TLS_MAX_VERSIONS];
    /* When the result is EI_PARSE_MALFORMED: tls_malformed, tls_duplicate_extension,
     * multiple_names or reassembly_limit. */
    ei_reason problem;
} ei_tls_hello;

/* True when the stream's first bytes can start a ClientHello (a handshake record or an
 * SSL 2.0 hello). Needs at least one byte; with fewer than 6, answers for what is there. */
EI_MUST_USE bool ei_tls_sniff(const uint8_t *data, size_t len);

/* Parses the ClientHello at the start of a client's byte stream, across as many TLS
 * records as it takes. Records that split the handshake are joined in scratch (which
 * must hold scratch_cap bytes). A handshake message longer than scratch_cap is refused
 * as soon as its length is read: EI_PARSE_MALFORMED with EI_REASON_REASSEMBLY_LIMIT.
 * Returns EI_PARSE_OK (hello filled, views point into data or scratch), EI_PARSE_NEED_MORE
 * (the stream so far is a consistent prefix) or EI_PARSE_MALFORMED (hello->problem says
 * why). Allocates nothing. */
EI_MUST_USE ei_parse_status ei_tls_parse_client_hello(const uint8_t *data, size_t len,
                                                      uint8_t *scratch, size_t scratch_cap,
                                                      ei_tls_hello *hello);

/* The same for a bare handshake message, as QUIC's CRYPTO stream carries it: NEED_MORE
 * until the whole ClientHello is there; bytes past its end are malformed. */
EI_MUST_USE ei_parse_status ei_tls_parse_handshake(const uint8_t *data, size_t len,
                                                   ei_tls_hello *hello);

#endif
