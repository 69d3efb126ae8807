/* QUIC client Initials (see quic.h). A datagram may hold several QUIC packets
 * (coalesced, RFC 9000 12.2); each long-header packet gives its own length. Initial
 * packets are decrypted with the keys every observer can derive from the connection ID
 * the client chose (RFC 9001 5.2); their frames may only be PADDING, PING, ACK and CRYPTO
 * (RFC 9000 17.2.2), anything else is refused, as a server would. */
#include "egress_inspector/quic.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#include "parse/cursor.h"

enum {
    FRAME_PADDING = 0x00,
    FRAME_PING = 0x01,
    FRAME_ACK = 0x02,
    FRAME_ACK_ECN = 0x03,
    FRAME_CRYPTO = 0x06,
    TAG_LEN = 16,
    SAMPLE_LEN = 16,
};

typedef struct {
    uint32_t first, last; /* version range */
    uint8_t salt[20];
    bool v2;              /* RFC 9369: its own labels and long-header type numbers */
} version_info;

/* The Initial salts: RFC 9001 5.2, RFC 9369 3.3.1, the drafts' (23-28, 29-34), and
 * Facebook's mvfst versions of draft 27, which use draft 23's. */
static const version_info versions[] = {
    { 0x00000001, 0x00000001,
      { 0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
        0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a }, false },
    { 0x6b3343cf, 0x6b3343cf,
      { 0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
        0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9 }, true },
    { 0xff00001d, 0xff000022,
      { 0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61,
        0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99 }, false },
    { 0xff000017, 0xff00001c,
      { 0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4,
        0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02 }, false },
    { 0xfaceb002, 0xfaceb002, /* mvfst draft 27 */
      { 0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4,
        0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02 }, false },
    { 0xfaceb00e, 0xfaceb00e, /* mvfst experimental */
      { 0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4,
        0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02 }, false },
};

/* Versions 0x?a?a?a?a are reserved to make a server answer with Version Negotiation
 * (RFC 9000 15). Clients that send them (to exercise negotiation) protect the Initial as
 * draft 29 does, and observers read it so. */
static const version_info negotiation = {
    0, 0, { 0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61,
            0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99 }, false };

bool ei_quic_version_forces_negotiation(uint32_t version)
{
    return (version & 0x0f0f0f0f) == 0x0a0a0a0a;
}

static const version_info *version_of(uint32_t version)
{
    if (ei_quic_version_forces_negotiation(version))
        return &negotiation;
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        if (version >= versions[i].first && version <= versions[i].last)
            return &versions[i];
    return NULL;
}

bool ei_quic_version_known(uint32_t version)
{
    return version_of(version) != NULL;
}

bool ei_quic_sniff(const uint8_t *data, size_t len)
{
    if (len < 7 || !(data[0] & 0x80)) /* (the fixed bit may be greased: RFC 9287) */
        return false;
    uint32_t version = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];
    return ei_quic_version_known(version);
}

struct ei_quic_ctx {
    EVP_MAC *hmac;
    EVP_MAC_CTX *mac;      /* HMAC-SHA256, keyed anew for each use */
    EVP_CIPHER *ecb, *gcm; /* AES-128-ECB (header protection), AES-128-GCM */
    EVP_CIPHER_CTX *ecb_ctx, *gcm_ctx;
};

void ei_quic_ctx_free(ei_quic_ctx *cx)
{
    if (cx == NULL)
        return;
    EVP_CIPHER_CTX_free(cx->ecb_ctx);
    EVP_CIPHER_CTX_free(cx->gcm_ctx);
    EVP_CIPHER_free(cx->ecb);
    EVP_CIPHER_free(cx->gcm);
    EVP_MAC_CTX_free(cx->mac);
    EVP_MAC_free(cx->hmac);
    free(cx);
}

ei_quic_ctx *ei_quic_ctx_new(void)
{
    ei_quic_ctx *cx = calloc(1, sizeof *cx);
    if (cx == NULL)
        return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end() };
    cx->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    cx->mac = cx->hmac != NULL ? EVP_MAC_CTX_new(cx->hmac) : NULL;
    cx->ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    cx->gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    cx->ecb_ctx = EVP_CIPHER_CTX_new();
    cx->gcm_ctx = EVP_CIPHER_CTX_new();
    if (cx->mac == NULL || cx->ecb == NULL || cx->gcm == NULL || cx->ecb_ctx == NULL ||
        cx->gcm_ctx == NULL || EVP_MAC_CTX_set_params(cx->mac, params) != 1) {
        ei_quic_ctx_free(cx);
        return NULL;
    }
    return cx;
}

/* HMAC-SHA256(key, data) into out (32 bytes). */
static bool hmac(ei_quic_ctx *cx, const uint8_t *key, size_t klen, const uint8_t *data, size_t n,
                 uint8_t out[32])
{
    size_t got = 0;
    return EVP_MAC_init(cx->mac, key, klen, NULL) == 1 && EVP_MAC_update(cx->mac, data, n) == 1 &&
           EVP_MAC_final(cx->mac, out, &got, 32) == 1 && got == 32;
}

/* HKDF-Expand-Label (RFC 8446 7.1) for outputs of at most one SHA-256 block, which is
 * all QUIC's Initial keys need: HMAC(secret, HkdfLabel | 0x01) cut to len. */
static bool expand_label(ei_quic_ctx *cx, const uint8_t secret[32], const char *label,
                         uint8_t *out, size_t len)
{
    uint8_t info[2 + 1 + 6 + 32 + 1 + 1];
    size_t llen = strlen(label), n = 0;
    info[n++] = 0;
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(6 + llen);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, llen);
    n += llen;
    info[n++] = 0; /* no context */
    info[n++] = 1; /* the first (and only) block */
    uint8_t block[32];
    if (!hmac(cx, secret, 32, info, n, block))
        return false;
    memcpy(out, block, len);
    return true;
}

static bool derive(ei_quic_ctx *cx, const version_info *v, const ei_quic_conn *conn, ei_quic_keys *keys)
{
    uint8_t initial[32], client[32];
    /* HKDF-Extract (RFC 5869 2.2): HMAC with the salt as the key */
    return hmac(cx, v->salt, sizeof v->salt, conn->dcid, conn->dcid_len, initial) &&
           expand_label(cx, initial, "client in", client, 32) &&
           expand_label(cx, client, v->v2 ? "quicv2 key" : "quic key", keys->key, sizeof keys->key) &&
           expand_label(cx, client, v->v2 ? "quicv2 iv" : "quic iv", keys->iv, sizeof keys->iv) &&
           expand_label(cx, client, v->v2 ? "quicv2 hp" : "quic hp", keys->hp, sizeof keys->hp);
}

bool ei_quic_initial_keys(ei_quic_ctx *cx, const ei_quic_conn *conn, ei_quic_keys *keys)
{
    const version_info *v = version_of(conn->version);
    if (v == NULL)
        return false;
    ei_quic_ctx *own = cx != NULL ? NULL : ei_quic_ctx_new();
    bool ok = (cx != NULL || own != NULL) && derive(cx != NULL ? cx : own, v, conn, keys);
    ei_quic_ctx_free(own);
    return ok;
}

static ei_parse_status refuse(ei_quic_datagram *out, ei_reason why)
{
    out->problem = why;
    return EI_PARSE_MALFORMED;
}

/* The frames of one decrypted Initial: CRYPTO frames are kept (their data stays in the
 * plaintext buffer), the others only walked. */
static bool read_frames(ei_cursor c, ei_quic_datagram *out)
{
    if (ei_cursor_left(&c) == 0)
        return false; /* a packet with no frames is a protocol violation */
    while (ei_cursor_left(&c) > 0 && ei_cursor_ok(&c)) {
        uint64_t type = ei_cursor_varint(&c);
        switch (type) {
        case FRAME_PADDING:
        case FRAME_PING:
            break;
        case FRAME_ACK:
        case FRAME_ACK_ECN: {
            /* largest acknowledged, delay, range count, first range, ranges, ECN counts */
            (void)ei_cursor_varint(&c);
            (void)ei_cursor_varint(&c);
            uint64_t ranges = ei_cursor_varint(&c);
            (void)ei_cursor_varint(&c);
            if (ranges > ei_cursor_left(&c))
                return false; /* each range takes two bytes at least */
            for (uint64_t i = 0; i < 2 * ranges + (type == FRAME_ACK_ECN ? 3 : 0); i++)
                (void)ei_cursor_varint(&c);
            break;
        }
        case FRAME_CRYPTO: {
            uint64_t offset = ei_cursor_varint(&c), len = ei_cursor_varint(&c);
            if (len > ei_cursor_left(&c) || offset > (UINT64_C(1) << 62) - len ||
                out->ncrypto == EI_QUIC_MAX_CRYPTO)
                return false;
            ei_view data = ei_cursor_bytes(&c, (size_t)len);
            out->crypto[out->ncrypto].offset = offset;
            out->crypto[out->ncrypto++].data = data;
            break;
        }
        default: /* not allowed in an Initial (CONNECTION_CLOSE is not worth a flow) */
            return false;
        }
    }
    return ei_cursor_ok(&c);
}

/* Removes header protection (RFC 9001 5.4) and the AEAD (5.3) of one Initial. header:
 * the packet from its first byte to the packet number; the unprotected header is written
 * at plain, the payload right after it. Returns the payload's length, or -1. */
static long open_initial(const ei_quic_ctx *cx, const ei_quic_keys *k, ei_view packet,
                         size_t pn_offset, uint8_t *plain)
{
    EVP_CIPHER_CTX *ecb = cx->ecb_ctx, *gcm = cx->gcm_ctx;
    if (packet.ptr == NULL || packet.len < pn_offset + 4 + SAMPLE_LEN)
        return -1;
    uint8_t mask[32];
    int n = 0;
    if (EVP_EncryptInit_ex(ecb, cx->ecb, NULL, k->hp, NULL) != 1 ||
        EVP_EncryptUpdate(ecb, mask, &n, packet.ptr + pn_offset + 4, SAMPLE_LEN) != 1 || n != SAMPLE_LEN)
        return -1;
    uint8_t first = packet.ptr[0] ^ (mask[0] & 0x0f);
    size_t pn_len = (size_t)(first & 0x03) + 1, header = pn_offset + pn_len;
    if ((first & 0x0c) != 0 || packet.len < header + TAG_LEN)
        return -1; /* reserved bits set: a server closes the connection */
    memcpy(plain, packet.ptr, header);
    plain[0] = first;
    uint64_t pn = 0;
    for (size_t i = 0; i < pn_len; i++) {
        plain[pn_offset + i] ^= mask[1 + i];
        pn = pn << 8 | plain[pn_offset + i];
    }
    uint8_t nonce[12];
    memcpy(nonce, k->iv, sizeof nonce);
    for (size_t i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
    size_t ct = packet.len - header - TAG_LEN;
    uint8_t tag[TAG_LEN];
    memcpy(tag, packet.ptr + header + ct, TAG_LEN);
    int out = 0, fin = 0;
    if (EVP_DecryptInit_ex(gcm, cx->gcm, NULL, k->key, nonce) != 1 ||
        EVP_DecryptUpdate(gcm, NULL, &n, plain, (int)header) != 1 ||
        EVP_DecryptUpdate(gcm, plain + header, &out, packet.ptr + header, (int)ct) != 1 ||
        EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(gcm, plain + header + out, &fin) != 1)
        return -1; /* it does not decrypt: the server drops it */
    return (long)ct;
}

static size_t seal(ei_quic_ctx *cx, const version_info *v, const ei_quic_conn *conn, uint32_t pn,
                   const uint8_t *frames, size_t n, uint8_t *out)
{
    ei_quic_keys k;
    if (!derive(cx, v, conn, &k))
        return 0;
    size_t at = 0, length = 4 + n + TAG_LEN;
    out[at++] = (uint8_t)(0xc3 | (v->v2 ? 0x10 : 0x00)); /* long, Initial, 4-byte number */
    for (int i = 3; i >= 0; i--)
        out[at++] = (uint8_t)(conn->version >> (8 * i));
    out[at++] = conn->dcid_len;
    memcpy(out + at, conn->dcid, conn->dcid_len);
    at += conn->dcid_len;
    out[at++] = 0; /* no Source Connection ID */
    out[at++] = 0; /* no token */
    out[at++] = (uint8_t)(0x40 | length >> 8);
    out[at++] = (uint8_t)length;
    size_t pn_offset = at;
    for (int i = 3; i >= 0; i--)
        out[at++] = (uint8_t)(pn >> (8 * i));
    uint8_t nonce[12], mask[32];
    memcpy(nonce, k.iv, sizeof nonce);
    for (size_t i = 0; i < 4; i++)
        nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
    int got = 0, fin = 0, m = 0;
    if (EVP_EncryptInit_ex(cx->gcm_ctx, cx->gcm, NULL, k.key, nonce) != 1 ||
        EVP_EncryptUpdate(cx->gcm_ctx, NULL, &got, out, (int)at) != 1 ||
        EVP_EncryptUpdate(cx->gcm_ctx, out + at, &got, frames, (int)n) != 1 ||
        EVP_EncryptFinal_ex(cx->gcm_ctx, out + at + got, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(cx->gcm_ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + at + n) != 1 ||
        EVP_EncryptInit_ex(cx->ecb_ctx, cx->ecb, NULL, k.hp, NULL) != 1 ||
        EVP_EncryptUpdate(cx->ecb_ctx, mask, &m, out + pn_offset + 4, SAMPLE_LEN) != 1 || m != SAMPLE_LEN)
        return 0;
    out[0] ^= mask[0] & 0x0f;
    for (size_t i = 0; i < 4; i++)
        out[pn_offset + i] ^= mask[1 + i];
    return at + n + TAG_LEN;
}

size_t ei_quic_seal_initial(ei_quic_ctx *cx, const ei_quic_conn *conn, uint32_t pn, const uint8_t *frames,
                            size_t n, uint8_t *out, size_t cap)
{
    const version_info *v = version_of(conn->version);
    size_t head = 1 + 4 + 1 + (size_t)conn->dcid_len + 1 + 1 + 2 + 4;
    /* with a 4-byte packet number the sample is the ciphertext's first 16 bytes, which the
     * tag alone provides */
    if (v == NULL || conn->dcid_len > EI_QUIC_MAX_CID || n > 16383 - 4 - TAG_LEN || head + n + TAG_LEN > cap)
        return 0;
    ei_quic_ctx *own = cx != NULL ? NULL : ei_quic_ctx_new();
    size_t len = cx != NULL || own != NULL ? seal(cx != NULL ? cx : own, v, conn, pn, frames, n, out) : 0;
    ei_quic_ctx_free(own);
    return len;
}

/* One datagram's packets, with the contexts made once for it. */
static ei_parse_status read_packets(ei_quic_ctx *cx, ei_cursor c, const ei_quic_conn *conn,
                                    uint8_t *plain, ei_quic_datagram *out)
{
    ei_quic_keys keys;
    bool have_keys = false;
    ei_view dcid0 = { NULL, 0 };
    size_t used = 0; /* of plain */
    while (ei_cursor_left(&c) > 0) {
        ei_cursor at = c; /* the packet's first byte, to take it whole once its length is known */
        size_t start = ei_cursor_tell(&c);
        uint8_t first = ei_cursor_u8(&c);
        if (first == 0 && out->initials > 0)
            break; /* zeros after the last packet: the datagram's own padding */
        if (!(first & 0x80)) { /* a short header runs to the end of the datagram */
            out->other = true;
            break;
        }
        uint32_t version = ei_cursor_u32(&c);
        ei_view dcid = ei_cursor_bytes(&c, ei_cursor_u8(&c));
        ei_view scid = ei_cursor_bytes(&c, ei_cursor_u8(&c));
        if (!ei_cursor_ok(&c))
            return refuse(out, EI_REASON_QUIC_MALFORMED);
        const version_info *v = version_of(version);
        if (v == NULL)
            return refuse(out, EI_REASON_QUIC_VERSION_UNKNOWN); /* Version Negotiation too */
        /* (the fixed bit 0x40 may be 0: a client that remembers the server's
         * grease_quic_bit transport parameter may clear it from the start, RFC 9287 3.1) */
        if (dcid.len > EI_QUIC_MAX_CID || scid.len > EI_QUIC_MAX_CID)
            return refuse(out, EI_REASON_QUIC_MALFORMED);
        if (dcid0.ptr == NULL)
            dcid0 = dcid;
        else if (dcid.len != dcid0.len || memcmp(dcid.ptr, dcid0.ptr, dcid.len) != 0)
            return refuse(out, EI_REASON_QUIC_MALFORMED); /* coalesced: one connection only */
        unsigned type = (first >> 4) & 3;
        bool initial = type == (v->v2 ? 1u : 0u), retry = type == (v->v2 ? 0u : 3u);
        if (retry)
            return refuse(out, EI_REASON_QUIC_MALFORMED); /* only servers send Retry */
        if (initial)
            ei_cursor_skip(&c, (size_t)ei_cursor_varint(&c)); /* the token */
        uint64_t length = ei_cursor_varint(&c);
        size_t pn_offset = ei_cursor_tell(&c) - start;
        if (!ei_cursor_ok(&c) || length > ei_cursor_left(&c))
            return refuse(out, EI_REASON_QUIC_MALFORMED);
        ei_cursor_skip(&c, (size_t)length);
        if (!initial) {
            out->other = true; /* 0-RTT or Handshake: not ours to read */
            continue;
        }
        if (conn == NULL) { /* the flow's first Initial: its keys come from this one */
            out->conn.version = version;
            out->conn.dcid_len = (uint8_t)dcid.len;
            memcpy(out->conn.dcid, dcid.ptr, dcid.len);
            conn = &out->conn;
        }
        if (version != conn->version)
            return refuse(out, EI_REASON_QUIC_MALFORMED);
        const version_info *kv = version_of(conn->version);
        if (!have_keys && !(have_keys = kv != NULL && derive(cx, kv, conn, &keys)))
            return refuse(out, EI_REASON_QUIC_VERSION_UNKNOWN);
        ei_view packet = ei_cursor_bytes(&at, pn_offset + (size_t)length);
        long payload = open_initial(cx, &keys, packet, pn_offset, plain + used);
        if (payload < 0)
            return refuse(out, EI_REASON_QUIC_MALFORMED);
        size_t header = packet.len - (size_t)payload - TAG_LEN;
        if (!read_frames(ei_cursor_make(plain + used + header, (size_t)payload), out))
            return refuse(out, EI_REASON_QUIC_MALFORMED);
        used += header + (size_t)payload;
        out->initials++;
    }
    return EI_PARSE_OK;
}

ei_parse_status ei_quic_read_datagram(ei_quic_ctx *cx, const uint8_t *data, size_t len,
                                      const ei_quic_conn *conn, uint8_t *plain, ei_quic_datagram *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0 || !(data[0] & 0x80))
        return refuse(out, EI_REASON_QUIC_NOT_INITIAL);
    ei_quic_ctx *own = cx != NULL ? NULL : ei_quic_ctx_new();
    ei_parse_status st = cx != NULL || own != NULL
                             ? read_packets(cx != NULL ? cx : own, ei_cursor_make(data, len), conn, plain, out)
                             : refuse(out, EI_REASON_QUIC_MALFORMED);
    ei_quic_ctx_free(own);
    if (st != EI_PARSE_OK)
        return st;
    if (out->initials == 0)
        return refuse(out, EI_REASON_QUIC_NOT_INITIAL);
    if (len < EI_QUIC_MIN_DATAGRAM)
        return refuse(out, EI_REASON_QUIC_MALFORMED); /* a server drops it unread */
    return EI_PARSE_OK;
}
