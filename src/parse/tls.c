/* TLS ClientHello, from the record layer down to the extensions we judge by.
 * Wire formats follow RFC 8446 (TLS 1.3), which keeps TLS 1.2's ClientHello layout. */
#include "egress_inspector/tls.h"

#include <string.h>

#include "parse/cursor.h"

enum {
    TLS_CONTENT_HANDSHAKE = 22,
    TLS_HANDSHAKE_CLIENT_HELLO = 1,
    TLS_MAX_RECORD = 16384, /* 2^14: RFC 8446 5.1 */
    TLS_RECORD_HEADER = 5,
    TLS_HANDSHAKE_HEADER = 4,

    EXT_SERVER_NAME = 0,
    EXT_ALPN = 16,
    EXT_SUPPORTED_VERSIONS = 43,
    EXT_ECH = 0xfe0d,

    SNI_HOST_NAME = 0,
};

bool ei_tls_sniff(const uint8_t *data, size_t len)
{
    if (len == 0)
        return false;
    if (data[0] == TLS_CONTENT_HANDSHAKE)
        return (len < 2 || data[1] == 3) && (len < 6 || data[5] == TLS_HANDSHAKE_CLIENT_HELLO);
    /* SSL 2.0 record: 2-byte length with the high bit set, then msg type CLIENT-HELLO,
     * then a 3.x version for a hello that can negotiate SSL 3 / TLS. */
    if (data[0] & 0x80)
        return (len < 3 || data[2] == 1) && (len < 4 || data[3] == 3);
    return false;
}

static ei_parse_status malformed(ei_tls_hello *hello, ei_reason why)
{
    hello->problem = why;
    return EI_PARSE_MALFORMED;
}

/* server_name (RFC 6066 3):
 *   struct { NameType name_type; select (name_type) { case host_name: HostName; } name; }
 *       ServerName;
 *   enum { host_name(0), (255) } NameType;
 *   opaque HostName<1..2^16-1>;
 *   struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
 * A name type other than host_name has no defined layout, so nothing after it can be
 * read: refused. An empty HostName is kept (len 0) so the decision can name it. */
static bool parse_server_name(ei_cursor ext, ei_tls_hello *hello)
{
    ei_cursor list = ei_cursor_block16(&ext);
    if (!ei_cursor_finished(&ext) || ei_cursor_left(&list) == 0)
        return false;
    while (ei_cursor_left(&list) > 0) {
        uint8_t type = ei_cursor_u8(&list);
        ei_view name = ei_cursor_bytes(&list, ei_cursor_u16(&list));
        if (!ei_cursor_ok(&list) || type != SNI_HOST_NAME)
            return false;
        if (hello->sni_count++ == 0)
            hello->sni = name;
    }
    return ei_cursor_ok(&list);
}

/* application_layer_protocol_negotiation (RFC 7301 3.1):
 *   opaque ProtocolName<1..2^8-1>;
 *   struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList; */
static bool parse_alpn(ei_cursor ext, ei_tls_hello *hello)
{
    ei_cursor list = ei_cursor_block16(&ext);
    if (!ei_cursor_finished(&ext) || ei_cursor_left(&list) < 2)
        return false;
    while (ei_cursor_left(&list) > 0) {
        ei_view name = ei_cursor_bytes(&list, ei_cursor_u8(&list));
        if (!ei_cursor_ok(&list) || name.len == 0)
            return false;
        if (hello->alpn_count < EI_TLS_MAX_ALPN)
            hello->alpn[hello->alpn_count++] = name;
    }
    return ei_cursor_ok(&list);
}

/* supported_versions, client form (RFC 8446 4.2.1):
 *   struct { ProtocolVersion versions<2..254>; } SupportedVersions; */
static bool parse_supported_versions(ei_cursor ext, ei_tls_hello *hello)
{
    ei_cursor list = ei_cursor_block8(&ext);
    size_t n = ei_cursor_left(&list);
    if (!ei_cursor_finished(&ext) || n < 2 || n % 2 != 0)
        return false;
    while (ei_cursor_left(&list) > 0) {
        uint16_t v = ei_cursor_u16(&list);
        if (hello->version_count < EI_TLS_MAX_VERSIONS)
            hello->versions[hello->version_count++] = v;
    }
    return ei_cursor_ok(&list);
}

/* ClientHello body (RFC 8446 4.1.2):
 *   ProtocolVersion legacy_version;             uint16
 *   Random random;                              32 bytes
 *   opaque legacy_session_id<0..32>;
 *   CipherSuite cipher_suites<2..2^16-2>;       pairs of bytes
 *   opaque legacy_compression_methods<1..2^8-1>;
 *   Extension extensions<8..2^16-1>;            absent in some TLS 1.0 hellos
 *   struct { ExtensionType extension_type; opaque extension_data<0..2^16-1>; } Extension;
 * "There MUST NOT be more than one extension of the same type" (4.2): a duplicate is
 * refused, since two readers may each pick a different copy. */
static ei_parse_status parse_body(ei_cursor body, ei_tls_hello *hello)
{
    hello->legacy_version = ei_cursor_u16(&body);
    ei_cursor_skip(&body, 32);
    ei_cursor session = ei_cursor_block8(&body);
    ei_cursor suites = ei_cursor_block16(&body);
    ei_cursor compression = ei_cursor_block8(&body);
    if (!ei_cursor_ok(&body) || ei_cursor_left(&session) > 32 ||
        ei_cursor_left(&suites) < 2 || ei_cursor_left(&suites) % 2 != 0 ||
        ei_cursor_left(&compression) < 1)
        return malformed(hello, EI_REASON_TLS_MALFORMED);
    if (ei_cursor_left(&body) == 0)
        return EI_PARSE_OK;

    ei_cursor exts = ei_cursor_block16(&body);
    if (!ei_cursor_finished(&body))
        return malformed(hello, EI_REASON_TLS_MALFORMED);

    uint16_t seen[EI_TLS_MAX_EXTENSIONS];
    size_t nseen = 0;
    while (ei_cursor_left(&exts) > 0) {
        uint16_t type = ei_cursor_u16(&exts);
        ei_cursor data = ei_cursor_block16(&exts);
        if (!ei_cursor_ok(&exts))
            return malformed(hello, EI_REASON_TLS_MALFORMED);
        for (size_t i = 0; i < nseen; i++)
            if (seen[i] == type)
                return malformed(hello, EI_REASON_TLS_DUPLICATE_EXTENSION);
        if (nseen == EI_TLS_MAX_EXTENSIONS)
            return malformed(hello, EI_REASON_TLS_MALFORMED);
        seen[nseen++] = type;

        bool ok = true;
        switch (type) {
        case EXT_SERVER_NAME:
            ok = parse_server_name(data, hello);
            break;
        case EXT_ALPN:
            ok = parse_alpn(data, hello);
            break;
        case EXT_SUPPORTED_VERSIONS:
            ok = parse_supported_versions(data, hello);
            break;
        case EXT_ECH:
            hello->ech = true;
            break;
        default:
            break;
        }
        if (!ok)
            return malformed(hello, EI_REASON_TLS_MALFORMED);
    }
    if (hello->sni_count > 1)
        return malformed(hello, EI_REASON_MULTIPLE_NAMES);
    return EI_PARSE_OK;
}

/* SSL 2.0-compatible CLIENT-HELLO (RFC 6101 E.1): msg_length (15 bits, high bit set) |
 * msg_type (1) | version (2) | cipher_spec_length (2) | session_id_length (2) |
 * challenge_length (2) | cipher specs | session id | challenge. It cannot carry
 * extensions, hence no name; it is read only to tell it from garbage. */
static ei_parse_status parse_sslv2(ei_cursor c, ei_tls_hello *hello)
{
    if (ei_cursor_left(&c) < 2)
        return EI_PARSE_NEED_MORE;
    size_t msg_len = ei_cursor_u16(&c) & 0x7fffu;
    if (ei_cursor_left(&c) < msg_len)
        return EI_PARSE_NEED_MORE;
    ei_cursor msg = ei_cursor_sub(&c, msg_len);
    uint8_t type = ei_cursor_u8(&msg);
    hello->legacy_version = ei_cursor_u16(&msg);
    size_t specs = ei_cursor_u16(&msg);
    size_t session = ei_cursor_u16(&msg);
    size_t challenge = ei_cursor_u16(&msg);
    ei_cursor_skip(&msg, specs + session + challenge);
    if (!ei_cursor_finished(&msg) || type != TLS_HANDSHAKE_CLIENT_HELLO ||
        specs == 0 || specs % 3 != 0)
        return malformed(hello, EI_REASON_TLS_MALFORMED);
    hello->sslv2 = true;
    return EI_PARSE_OK;
}

/* Record layer (RFC 8446 5.1):
 *   struct { ContentType type; ProtocolVersion legacy_record_version; uint16 length;
 *            opaque fragment[length]; } TLSPlaintext;
 * Handshake (RFC 8446 4): msg_type (1) | length (3) | body.
 * The ClientHello is the client's first message, so every record until it is complete
 * must be a non-empty handshake record, and the last of them must end where the
 * ClientHello ends. The common case, one record holding the whole message, is read in
 * place; otherwise the fragments are joined in scratch. */
ei_parse_status ei_tls_parse_client_hello(const uint8_t *data, size_t len, uint8_t *scratch,
                                          size_t scratch_cap, ei_tls_hello *hello)
{
    memset(hello, 0, sizeof *hello);
    ei_cursor c = ei_cursor_make(data, len);
    if (len == 0)
        return EI_PARSE_NEED_MORE;
    if (!ei_tls_sniff(data, len))
        return malformed(hello, EI_REASON_TLS_MALFORMED);
    if (data[0] != TLS_CONTENT_HANDSHAKE)
        return parse_sslv2(c, hello);

    size_t got = 0;       /* handshake bytes joined in scratch */
    size_t msg_total = 0; /* header + body, once the header is known */
    for (;;) {
        if (ei_cursor_left(&c) < TLS_RECORD_HEADER)
            return EI_PARSE_NEED_MORE; /* the sniff above vetted the bytes we have */
        uint8_t type = ei_cursor_u8(&c);
        uint16_t version = ei_cursor_u16(&c);
        size_t rlen = ei_cursor_u16(&c);
        if (type != TLS_CONTENT_HANDSHAKE || version >> 8 != 3 || rlen == 0 ||
            rlen > TLS_MAX_RECORD)
            return malformed(hello, EI_REASON_TLS_MALFORMED);
        size_t take = rlen < ei_cursor_left(&c) ? rlen : ei_cursor_left(&c);
        if (take == 0)
            return EI_PARSE_NEED_MORE;
        ei_view frag = ei_cursor_bytes(&c, take);

        if (got == 0 && take == rlen && rlen >= TLS_HANDSHAKE_HEADER) {
            ei_cursor hs = ei_cursor_from_view(frag);
            uint8_t msg_type = ei_cursor_u8(&hs);
            ei_cursor body = ei_cursor_block24(&hs);
            if (msg_type != TLS_HANDSHAKE_CLIENT_HELLO)
                return malformed(hello, EI_REASON_TLS_MALFORMED);
            if (ei_cursor_finished(&hs))
                return parse_body(body, hello);
        }

        if (take > scratch_cap - got)
            return malformed(hello, EI_REASON_REASSEMBLY_LIMIT);
        memcpy(scratch + got, frag.ptr, take);
        got += take;
        if (scratch[0] != TLS_HANDSHAKE_CLIENT_HELLO)
            return malformed(hello, EI_REASON_TLS_MALFORMED);
        if (msg_total == 0 && got >= TLS_HANDSHAKE_HEADER) {
            msg_total = TLS_HANDSHAKE_HEADER +
                        ((size_t)scratch[1] << 16 | (size_t)scratch[2] << 8 | scratch[3]);
            if (msg_total > scratch_cap)
                return malformed(hello, EI_REASON_REASSEMBLY_LIMIT);
        }
        /* A record running past the end of the ClientHello would carry a second
         * handshake message in a client's first flight: refused. */
        if (msg_total != 0 && got - take + rlen > msg_total)
            return malformed(hello, EI_REASON_TLS_MALFORMED);
        if (take < rlen)
            return EI_PARSE_NEED_MORE;
        if (msg_total != 0 && got == msg_total)
            return parse_body(ei_cursor_make(scratch + TLS_HANDSHAKE_HEADER,
                                             msg_total - TLS_HANDSHAKE_HEADER), hello);
    }
}

/* QUIC carries the handshake in CRYPTO frames, without records (RFC 9001 4): the stream
 * is the ClientHello message itself, and nothing may follow it in the client's first
 * flight. */
ei_parse_status ei_tls_parse_handshake(const uint8_t *data, size_t len, ei_tls_hello *hello)
{
    memset(hello, 0, sizeof *hello);
    ei_cursor c = ei_cursor_make(data, len);
    int type = ei_cursor_peek(&c);
    if (type < 0)
        return EI_PARSE_NEED_MORE;
    if (type != TLS_HANDSHAKE_CLIENT_HELLO)
        return malformed(hello, EI_REASON_TLS_MALFORMED);
    if (len < TLS_HANDSHAKE_HEADER)
        return EI_PARSE_NEED_MORE;
    ei_cursor_skip(&c, 1);
    size_t body = ei_cursor_u24(&c);
    if (len - TLS_HANDSHAKE_HEADER < body)
        return EI_PARSE_NEED_MORE;
    if (len - TLS_HANDSHAKE_HEADER > body)
        return malformed(hello, EI_REASON_TLS_MALFORMED);
    return parse_body(ei_cursor_sub(&c, body), hello);
}
