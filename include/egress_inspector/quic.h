/* QUIC client Initials: a UDP datagram -> the CRYPTO data of the client Initial packets
 * it carries, decrypted (RFC 9000 17.2.2, RFC 9001 5, RFC 9369 for version 2, and the
 * drafts 23 to 34 and mvfst's draft 27 versions that are still seen). The ClientHello inside is read by tls.h's
 * ei_tls_parse_handshake once the CRYPTO stream is whole. Crypto is OpenSSL's libcrypto
 * (HMAC-SHA256 for HKDF, AES-128-ECB for header protection, AES-128-GCM). */
#ifndef EGRESS_INSPECTOR_QUIC_H
#define EGRESS_INSPECTOR_QUIC_H

#include "egress_inspector/common.h"

#define EI_QUIC_MAX_CID 20
#define EI_QUIC_MAX_CRYPTO 16    /* CRYPTO frames kept per datagram; more: malformed */
#define EI_QUIC_MIN_DATAGRAM 1200 /* RFC 9000 14.1: a server drops a smaller client Initial */

/* What a flow remembers of its first Initial: keys are derived from the Destination
 * Connection ID the client chose, for the version it spoke. */
typedef struct {
    uint32_t version;
    uint8_t dcid_len;
    uint8_t dcid[EI_QUIC_MAX_CID];
} ei_quic_conn;

/* The client's Initial keys (RFC 9001 5.2). */
typedef struct {
    uint8_t key[16], iv[12], hp[16];
} ei_quic_keys;

typedef struct {
    uint64_t offset;
    ei_view data;          /* into the caller's plaintext buffer */
} ei_quic_crypto;

typedef struct {
    ei_quic_conn conn;     /* of the datagram's first Initial */
    uint8_t ncrypto;
    ei_quic_crypto crypto[EI_QUIC_MAX_CRYPTO];
    uint8_t initials;      /* client Initial packets decrypted */
    bool other;            /* packets beside the Initials (0-RTT, Handshake, 1-RTT) */
    /* When the result is not EI_PARSE_OK: quic_version_unknown, quic_not_initial,
     * quic_malformed (a header or frame that lies, a datagram under 1200 bytes, a
     * packet that does not decrypt, another connection ID in one datagram). */
    ei_reason problem;
} ei_quic_datagram;

/* libcrypto's algorithms and contexts, fetched once (OpenSSL 3 looks an algorithm up on
 * every use otherwise, which is most of what an Initial costs). One per thread; NULL
 * wherever one is taken means "made for this call". */
typedef struct ei_quic_ctx ei_quic_ctx;
EI_MUST_USE ei_quic_ctx *ei_quic_ctx_new(void); /* NULL when memory runs out */
void ei_quic_ctx_free(ei_quic_ctx *cx);

/* Whether a datagram could be a QUIC long-header packet of a version we decrypt (cheap:
 * no crypto; the fixed bit is not looked at, since RFC 9287 lets peers grease it). */
EI_MUST_USE bool ei_quic_sniff(const uint8_t *data, size_t len);

/* Whether the version is one of those reserved to force Version Negotiation (0x?a?a?a?a):
 * the server answers it and reads nothing of it; the client starts over in another. */
EI_MUST_USE bool ei_quic_version_forces_negotiation(uint32_t version);

/* Whether the version is one whose Initials can be decrypted. */
EI_MUST_USE bool ei_quic_version_known(uint32_t version);

/* Derives the client's Initial keys for conn. False when the version is not known. */
EI_MUST_USE bool ei_quic_initial_keys(ei_quic_ctx *cx, const ei_quic_conn *conn, ei_quic_keys *keys);

/* Reads the client Initials of one datagram. conn: the flow's (its first Initial's), or
 * NULL for a flow's first datagram, whose first packet must then be an Initial that sets
 * it (out->conn). plain must hold len bytes: the decrypted payloads, which out->crypto
 * points into. Returns EI_PARSE_OK, or EI_PARSE_MALFORMED with out->problem. Packets
 * other than Initials are stepped over by their lengths (out->other). */
EI_MUST_USE ei_parse_status ei_quic_read_datagram(ei_quic_ctx *cx, const uint8_t *data, size_t len,
                                                  const ei_quic_conn *conn, uint8_t *plain,
                                                  ei_quic_datagram *out);

/* The other way, for what makes Initials to be read (explain, tests): frames (the
 * plaintext payload, its padding included) protected as one client Initial of conn's
 * version with packet number pn (4 bytes), no Source Connection ID and no token, into
 * out. Returns its length, or 0 when the version is unknown, frames are longer than a
 * 2-byte length says, or it does not fit cap. (A server drops a datagram under
 * EI_QUIC_MIN_DATAGRAM bytes: padding them is the caller's.) */
EI_MUST_USE size_t ei_quic_seal_initial(ei_quic_ctx *cx, const ei_quic_conn *conn, uint32_t pn,
                                        const uint8_t *frames, size_t n, uint8_t *out, size_t cap);

#endif
