/* QUIC client Initials. The first byte chooses the mode:
 *   even: the rest is a datagram as the wire gave it (header parsing, header protection,
 *         decryption failing or not);
 *   odd:  the rest is the plaintext frames of an Initial, which the harness protects with
 *         the keys of a fixed Destination Connection ID (RFC 9001 5), so that what lies
 *         behind decryption (frame walking, CRYPTO data, the ClientHello) is reached.
 * Checked: every CRYPTO view lies inside the plaintext buffer, the counts within bounds,
 * and the CRYPTO data at offset 0 reads as a ClientHello without fault. */
#include <string.h>

#include "egress_inspector/quic.h"
#include "egress_inspector/tls.h"
#include "fuzz.h"

enum { MAX_DGRAM = 4096 };
static uint8_t plain[MAX_DGRAM + 64];
static uint8_t dgram[MAX_DGRAM + 64];

/* A protected Initial around payload: no SCID, no token, 4-byte packet number 0.
 * Returns its length, or 0 when it does not fit. */
static size_t protect(const ei_quic_conn *conn, const uint8_t *payload, size_t n)
{
    return ei_quic_seal_initial(NULL, conn, 0, payload, n, dgram, MAX_DGRAM);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_DGRAM)
        return 0;
    static const ei_quic_conn fixed = { 1, 8, { 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08 } };
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    const ei_quic_conn *conn = NULL;
    if (data[0] & 1) {
        n = protect(&fixed, in, n);
        if (n == 0)
            return 0;
        in = dgram;
        conn = &fixed;
    }
    ei_quic_datagram d;
    ei_parse_status st = ei_quic_read_datagram(NULL, in, n, conn, plain, &d);
    if (st != EI_PARSE_OK) {
        CHECK(d.problem != EI_REASON_NONE);
        return 0;
    }
    CHECK(d.initials > 0 && d.ncrypto <= EI_QUIC_MAX_CRYPTO && d.conn.dcid_len <= EI_QUIC_MAX_CID);
    for (uint8_t i = 0; i < d.ncrypto; i++) {
        const ei_view v = d.crypto[i].data;
        CHECK(v.len == 0 || (v.ptr >= plain && v.ptr + v.len <= plain + n));
        if (d.crypto[i].offset == 0) {
            ei_tls_hello h;
            (void)ei_tls_parse_handshake(v.ptr, v.len, &h);
        }
    }
    return 0;
}
