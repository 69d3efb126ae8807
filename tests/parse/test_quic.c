/* QUIC client Initials: the RFC 9001 and RFC 9369 vectors decrypt to their ClientHello,
 * and their plaintext seals to them;
 * every way a datagram can lie or fail to decrypt is refused as a server refuses it. */
#include <string.h>

#include "egress_inspector/quic.h"
#include "egress_inspector/tls.h"
#include "quic_vectors.h"
#include "unit.h"

static void test_initial_keys(void)
{
    ei_quic_conn conn = { .version = 1, .dcid_len = sizeof RFC_DCID };
    memcpy(conn.dcid, RFC_DCID, sizeof RFC_DCID);
    ei_quic_keys k;
    CU_ASSERT_FATAL(ei_quic_initial_keys(NULL, &conn, &k));
    CU_ASSERT(memcmp(k.key, RFC9001_KEY, 16) == 0);
    CU_ASSERT(memcmp(k.iv, RFC9001_IV, 12) == 0);
    CU_ASSERT(memcmp(k.hp, RFC9001_HP, 16) == 0);
    conn.version = 0x6b3343cf;
    CU_ASSERT_FATAL(ei_quic_initial_keys(NULL, &conn, &k));
    CU_ASSERT(memcmp(k.key, RFC9369_KEY, 16) == 0);
    conn.version = 0x51303530; /* Q050: Google's own crypto */
    CU_ASSERT_FALSE(ei_quic_initial_keys(NULL, &conn, &k));
}

/* The vector's datagram decrypts to one CRYPTO frame at offset 0 holding the ClientHello,
 * which names example.com. */
static void check_vector(const uint8_t *pkt, size_t len, uint32_t version)
{
    static uint8_t plain[2400];
    ei_quic_datagram d;
    CU_ASSERT_TRUE(ei_quic_sniff(pkt, len));
    CU_ASSERT_EQUAL_FATAL(ei_quic_read_datagram(NULL, pkt, len, NULL, plain, &d), EI_PARSE_OK);
    CU_ASSERT_EQUAL(d.conn.version, version);
    CU_ASSERT_EQUAL(d.conn.dcid_len, sizeof RFC_DCID);
    CU_ASSERT(memcmp(d.conn.dcid, RFC_DCID, sizeof RFC_DCID) == 0);
    CU_ASSERT_EQUAL(d.initials, 1);
    CU_ASSERT_FALSE(d.other);
    CU_ASSERT_EQUAL_FATAL(d.ncrypto, 1);
    CU_ASSERT_EQUAL(d.crypto[0].offset, 0);
    CU_ASSERT_EQUAL_FATAL(d.crypto[0].data.len, sizeof RFC_CLIENT_HELLO);
    CU_ASSERT(memcmp(d.crypto[0].data.ptr, RFC_CLIENT_HELLO, sizeof RFC_CLIENT_HELLO) == 0);
    ei_tls_hello h;
    CU_ASSERT_EQUAL_FATAL(ei_tls_parse_handshake(d.crypto[0].data.ptr, d.crypto[0].data.len, &h),
                          EI_PARSE_OK);
    CU_ASSERT_EQUAL(h.sni.len, 11);
    CU_ASSERT(memcmp(h.sni.ptr, "example.com", 11) == 0);
    CU_ASSERT_EQUAL(h.alpn_count, 1);
    /* the flow's later datagrams are read with the keys of its first */
    ei_quic_datagram again;
    CU_ASSERT_EQUAL(ei_quic_read_datagram(NULL, pkt, len, &d.conn, plain, &again), EI_PARSE_OK);
    ei_quic_conn other = d.conn;
    other.dcid[0] ^= 1;
    CU_ASSERT_EQUAL(ei_quic_read_datagram(NULL, pkt, len, &other, plain, &again), EI_PARSE_MALFORMED);
    CU_ASSERT_EQUAL(again.problem, EI_REASON_QUIC_MALFORMED);
}

static void test_rfc_vectors(void)
{
    check_vector(RFC9001_INITIAL, sizeof RFC9001_INITIAL, 1);
    check_vector(RFC9369_INITIAL, sizeof RFC9369_INITIAL, 0x6b3343cf);
}

/* Sealing the vectors' plaintext (one CRYPTO frame with the ClientHello, PADDING to
 * 1162 bytes, packet number 2) gives the RFCs' protected packets byte for byte. */
static void test_seal_gives_the_rfc_packets(void)
{
    uint8_t frames[1162] = { 0x06, 0x00, 0x40, 0xf1 };
    memcpy(frames + 4, RFC_CLIENT_HELLO, sizeof RFC_CLIENT_HELLO);
    ei_quic_conn conn = { .version = 1, .dcid_len = sizeof RFC_DCID };
    memcpy(conn.dcid, RFC_DCID, sizeof RFC_DCID);
    static uint8_t out[1300];
    CU_ASSERT_EQUAL_FATAL(ei_quic_seal_initial(NULL, &conn, 2, frames, sizeof frames, out, sizeof out), 1200);
    CU_ASSERT(memcmp(out, RFC9001_INITIAL, 1200) == 0);
    conn.version = 0x6b3343cf;
    ei_quic_ctx *cx = ei_quic_ctx_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cx);
    CU_ASSERT_EQUAL_FATAL(ei_quic_seal_initial(cx, &conn, 2, frames, sizeof frames, out, sizeof out), 1200);
    CU_ASSERT(memcmp(out, RFC9369_INITIAL, 1200) == 0);
    CU_ASSERT_EQUAL(ei_quic_seal_initial(cx, &conn, 2, frames, sizeof frames, out, 1199), 0); /* no room */
    CU_ASSERT_EQUAL(ei_quic_seal_initial(cx, &conn, 2, frames, 16384, out, sizeof out), 0); /* too long */
    conn.version = 0x51303530;
    CU_ASSERT_EQUAL(ei_quic_seal_initial(cx, &conn, 2, frames, sizeof frames, out, sizeof out), 0);
    ei_quic_ctx_free(cx);
}

static ei_reason refused(const uint8_t *pkt, size_t len)
{
    static uint8_t plain[4096];
    ei_quic_datagram d;
    if (ei_quic_read_datagram(NULL, pkt, len, NULL, plain, &d) != EI_PARSE_MALFORMED)
        return EI_REASON_NONE;
    return d.problem;
}

static void test_what_a_server_refuses(void)
{
    static uint8_t p[2400];
    const size_t n = sizeof RFC9001_INITIAL;
    /* one bit of the ciphertext, of the tag, of the header (the AAD) */
    size_t at[] = { 100, n - 1, 6 };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        memcpy(p, RFC9001_INITIAL, n);
        p[at[i]] ^= 0x01;
        CU_ASSERT_EQUAL(refused(p, n), EI_REASON_QUIC_MALFORMED);
    }
    /* every cut of the datagram: never read past it, never accepted */
    for (size_t cut = 0; cut < n; cut++) {
        ei_reason r = refused(RFC9001_INITIAL, cut);
        CU_ASSERT(r == EI_REASON_QUIC_MALFORMED || r == EI_REASON_QUIC_NOT_INITIAL);
    }
    /* a version nobody can decrypt, and Version Negotiation */
    memcpy(p, RFC9001_INITIAL, n);
    memcpy(p + 1, "Q050", 4);
    CU_ASSERT_FALSE(ei_quic_sniff(p, n));
    CU_ASSERT_EQUAL(refused(p, n), EI_REASON_QUIC_VERSION_UNKNOWN);
    memset(p + 1, 0, 4);
    CU_ASSERT_EQUAL(refused(p, n), EI_REASON_QUIC_VERSION_UNKNOWN);
    /* a short header, or nothing QUIC at all */
    memcpy(p, RFC9001_INITIAL, n);
    p[0] = 0x40;
    CU_ASSERT_EQUAL(refused(p, n), EI_REASON_QUIC_NOT_INITIAL);
    /* a connection ID longer than 20 bytes */
    memcpy(p, RFC9001_INITIAL, n);
    p[5] = 21;
    CU_ASSERT_EQUAL(refused(p, n), EI_REASON_QUIC_MALFORMED);
    /* a length that runs past the datagram */
    memcpy(p, RFC9001_INITIAL, n);
    p[16] = 0x4f;
    CU_ASSERT_EQUAL(refused(p, n), EI_REASON_QUIC_MALFORMED);
}

static void test_coalesced_and_padding(void)
{
    static uint8_t p[2400 + 100], plain[sizeof p];
    const size_t n = sizeof RFC9001_INITIAL;
    ei_quic_datagram d;
    /* two Initials in one datagram: both read */
    memcpy(p, RFC9001_INITIAL, n);
    memcpy(p + n, RFC9001_INITIAL, n);
    CU_ASSERT_EQUAL(ei_quic_read_datagram(NULL, p, 2 * n, NULL, plain, &d), EI_PARSE_OK);
    CU_ASSERT_EQUAL(d.initials, 2);
    CU_ASSERT_EQUAL(d.ncrypto, 2);
    /* zeros after the packet: the datagram's padding */
    memset(p + n, 0, 100);
    CU_ASSERT_EQUAL(ei_quic_read_datagram(NULL, p, n + 100, NULL, plain, &d), EI_PARSE_OK);
    CU_ASSERT_EQUAL(d.initials, 1);
    /* a second packet of another connection in the same datagram */
    memcpy(p + n, RFC9001_INITIAL, n);
    p[n + 6] ^= 1;
    CU_ASSERT_EQUAL(ei_quic_read_datagram(NULL, p, 2 * n, NULL, plain, &d), EI_PARSE_MALFORMED);
    /* a version 1 and a version 2 packet together: one connection, one version */
    memcpy(p + n, RFC9369_INITIAL, sizeof RFC9369_INITIAL);
    CU_ASSERT_EQUAL(ei_quic_read_datagram(NULL, p, 2 * n, NULL, plain, &d), EI_PARSE_MALFORMED);
}

static void test_bare_handshake(void)
{
    ei_tls_hello h;
    CU_ASSERT_EQUAL(ei_tls_parse_handshake(RFC_CLIENT_HELLO, 3, &h), EI_PARSE_NEED_MORE);
    CU_ASSERT_EQUAL(ei_tls_parse_handshake(RFC_CLIENT_HELLO, sizeof RFC_CLIENT_HELLO - 1, &h),
                    EI_PARSE_NEED_MORE);
    uint8_t longer[sizeof RFC_CLIENT_HELLO + 1];
    memcpy(longer, RFC_CLIENT_HELLO, sizeof RFC_CLIENT_HELLO);
    longer[sizeof RFC_CLIENT_HELLO] = 0x02;
    CU_ASSERT_EQUAL(ei_tls_parse_handshake(longer, sizeof longer, &h), EI_PARSE_MALFORMED);
    longer[0] = 0x02; /* a ServerHello */
    CU_ASSERT_EQUAL(ei_tls_parse_handshake(longer, 4, &h), EI_PARSE_MALFORMED);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_initial_keys),
        EI_CASE(test_rfc_vectors),
        EI_CASE(test_seal_gives_the_rfc_packets),
        EI_CASE(test_what_a_server_refuses),
        EI_CASE(test_coalesced_and_padding),
        EI_CASE(test_bare_handshake),
    };
    EI_SUITE("quic", cases);
    return ei_unit_run();
}
