/* Preambles before the first named message. Formats:
 *
 * SOCKS 4 (and 4a), RFC-less but fixed since 1992:
 *   VN=4 (1) | CD=1 CONNECT (1) | DSTPORT (2) | DSTIP (4) | USERID ... 0x00
 *   4a: DSTIP = 0.0.0.x (x != 0), then DOMAIN ... 0x00
 * SOCKS 5 (RFC 1928, RFC 1929):
 *   greeting: VER=5 (1) | NMETHODS (1) | METHODS (NMETHODS)
 *   user/password: VER=1 (1) | ULEN (1) | UNAME | PLEN (1) | PASSWD (refused: see below)
 *   request:  VER=5 (1) | CMD=1 CONNECT (1) | RSV=0 (1) | ATYP (1) | DST.ADDR | DST.PORT (2)
 *             ATYP 1: 4 bytes, 3: LEN (1) + name, 4: 16 bytes
 * STARTTLS (RFC 3207 SMTP, RFC 2595 POP3/IMAP, RFC 4217 FTP): CRLF-terminated command
 *   lines from a short list, the last of which asks for TLS (STARTTLS, STLS, AUTH TLS).
 * LDAP StartTLS (RFC 4511 4.14.1): one BER LDAPMessage carrying ExtendedRequest with the
 *   OID 1.3.6.1.4.1.1466.20037.
 * PostgreSQL SSLRequest: length 8 (4) | code 80877103 (4).
 * PROXY protocol (haproxy's proxy-protocol.txt): v1 "PROXY ... CRLF" of at most 107
 *   bytes; v2 a 12-byte signature, ver/cmd (1), family (1), length (2), addresses.
 *
 * What reaches the server before a verdict must not be a channel of the client's choosing,
 * so each grammar admits no free data: a SOCKS 5 greeting offers at most three distinct
 * methods of 0 (none), 1 (GSSAPI), 2 (password), and a user/password exchange is
 * refused (its reply is needed before the target is named, so it cannot be held back
 * until the target is judged); a SOCKS 4 request by address carries no user id (by name,
 * 4a, it is judged whole before it passes); a greeting line (EHLO, HELO, LHLO) comes once
 * and names a host of at most 64 bytes or an address literal; other commands take no
 * argument; AUTH before TLS is refused but for FTP's AUTH TLS; an IMAP tag is at most 16
 * letters and digits; a PROXY v2 header carries exactly its addresses (no TLVs). What is
 * left is addresses, ports and one host name: the README's residual. */
#include "egress_inspector/preamble.h"

#include <string.h>

#include "parse/cursor.h"

static const uint8_t postgres_ssl[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
static const uint8_t proxy_v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                          0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
static const char ldap_starttls_oid[] = "1.3.6.1.4.1.1466.20037";

const char *ei_preamble_name(ei_preamble_kind kind)
{
    switch (kind) {
    case EI_PREAMBLE_SOCKS4: return "socks4";
    case EI_PREAMBLE_SOCKS5: return "socks5";
    case EI_PREAMBLE_STARTTLS: return "starttls";
    case EI_PREAMBLE_LDAP_STARTTLS: return "ldap_starttls";
    case EI_PREAMBLE_POSTGRES_SSL: return "postgres_ssl";
    case EI_PREAMBLE_PROXY: return "proxy_protocol";
    case EI_PREAMBLE_NONE: break;
    }
    return "none";
}

/* Whether the first n bytes of data equal the first n of want (n <= want's length):
 * a prefix of a fixed string is the start of it. */
static bool prefix_of(const uint8_t *data, size_t len, const void *want, size_t want_len)
{
    size_t n = len < want_len ? len : want_len;
    return memcmp(data, want, n) == 0;
}

/* The result for a structure that ended early: more may come, unless the bound is hit. */
static ei_parse_status short_read(size_t len)
{
    return len >= EI_PREAMBLE_MAX ? EI_PARSE_MALFORMED : EI_PARSE_NEED_MORE;
}

static ei_parse_status socks4(ei_cursor c, ei_preamble *out)
{
    out->kind = EI_PREAMBLE_SOCKS4;
    ei_cursor_skip(&c, 2);
    out->port = ei_cursor_u16(&c);
    ei_view ip = ei_cursor_bytes(&c, 4);
    if (!ei_cursor_ok(&c))
        return short_read(ei_cursor_size(&c));
    bool socks4a = ip.ptr[0] == 0 && ip.ptr[1] == 0 && ip.ptr[2] == 0 && ip.ptr[3] != 0;
    if (!socks4a && ei_cursor_peek(&c) > 0)
        return EI_PARSE_MALFORMED; /* a user id would pass before any verdict */
    for (int field = 0; field < (socks4a ? 2 : 1); field++) {
        /* USERID, then (4a) the host name: each NUL-terminated, at most 255 bytes */
        size_t n = ei_cursor_find(&c, 0);
        if (n > 255)
            return n == SIZE_MAX && ei_cursor_left(&c) <= 255 ? short_read(ei_cursor_size(&c))
                                                              : EI_PARSE_MALFORMED;
        ei_view field_bytes = ei_cursor_bytes(&c, n);
        ei_cursor_skip(&c, 1);
        if (field == 1) {
            out->name = field_bytes;
            out->has_name = true;
        }
    }
    out->length = ei_cursor_tell(&c);
    return EI_PARSE_OK;
}

static ei_parse_status socks5(ei_cursor c, ei_preamble *out)
{
    out->kind = EI_PREAMBLE_SOCKS5;
    ei_cursor_skip(&c, 1);
    ei_cursor methods = ei_cursor_block8(&c);
    if (!ei_cursor_ok(&c))
        return short_read(ei_cursor_size(&c));
    size_t nmethods = ei_cursor_left(&methods);
    if (nmethods == 0 || nmethods > 3)
        return EI_PARSE_MALFORMED;
    unsigned seen = 0;
    while (ei_cursor_left(&methods) > 0) {
        uint8_t m = ei_cursor_u8(&methods);
        if (m > 2 || (seen & (1u << m)))
            return EI_PARSE_MALFORMED;
        seen |= 1u << m;
    }
    out->units = 1; /* the greeting is whole: the proxy answers it */
    if (ei_cursor_left(&c) == 0)
        return EI_PARSE_NEED_MORE;
    if (ei_cursor_peek(&c) == 1) /* RFC 1929 username/password: free data, refused */
        return EI_PARSE_MALFORMED;
    uint8_t ver = ei_cursor_u8(&c);
    uint8_t cmd = ei_cursor_u8(&c);
    uint8_t rsv = ei_cursor_u8(&c);
    uint8_t atyp = ei_cursor_u8(&c);
    if (ei_cursor_ok(&c) && (ver != 5 || cmd != 1 || rsv != 0))
        return EI_PARSE_MALFORMED;
    if (atyp == 3) {
        out->name = ei_cursor_bytes(&c, ei_cursor_u8(&c));
        out->has_name = true;
    } else if (atyp == 1 || atyp == 4) {
        ei_cursor_skip(&c, atyp == 1 ? 4 : 16);
    } else if (ei_cursor_ok(&c)) {
        return EI_PARSE_MALFORMED;
    }
    out->port = ei_cursor_u16(&c);
    if (!ei_cursor_ok(&c))
        return short_read(ei_cursor_size(&c));
    out->length = ei_cursor_tell(&c);
    return EI_PARSE_OK;
}

static bool is_space(uint8_t b)
{
    return b == ' ';
}

static bool is_not_space(uint8_t b)
{
    return b != ' ';
}

static ei_view next_word(ei_cursor *c)
{
    ei_cursor_while(c, is_space);
    return ei_cursor_while(c, is_not_space);
}

static bool is_alnum(uint8_t b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
}

/* A greeting's argument (RFC 5321 4.1.2): a host name (letters, digits, '-', '.') of at
 * most 64 bytes, or an address literal ([1.2.3.4], [IPv6:...]). */
static bool greeting_host(ei_view v)
{
    if (v.len == 0 || v.len > 64)
        return false;
    bool literal = v.ptr[0] == '[' && v.ptr[v.len - 1] == ']';
    for (size_t i = literal ? 1 : 0; i < v.len - (literal ? 1 : 0); i++) {
        uint8_t b = v.ptr[i];
        bool ok = is_alnum(b) || b == '.' || (literal ? b == ':' : b == '-');
        if (!ok)
            return false;
    }
    return true;
}

enum { CMD_REFUSED = 0, CMD_OK, CMD_GREETING, CMD_TLS };

/* What one command line before TLS is: a greeting (once), another argument-less command,
 * the request for TLS (the last line), or refused. */
static int starttls_command(ei_view line)
{
    static const char *const bare[] = { "CAPA", "CAPABILITY", "FEAT", "NOOP" };
    ei_cursor c = ei_cursor_from_view(line);
    ei_view cmd = next_word(&c);
    ei_view arg = next_word(&c);
    if (ei_view_is(arg, "STARTTLS") || ei_view_is(arg, "CAPABILITY") || ei_view_is(arg, "NOOP")) {
        for (size_t i = 0; i < cmd.len; i++) /* IMAP: a tag, then the command */
            if (i == 16 || !is_alnum(cmd.ptr[i]))
                return CMD_REFUSED;
        cmd = arg;
        arg = next_word(&c);
    }
    ei_view extra = next_word(&c);
    if (extra.len > 0 || ei_cursor_left(&c) > 0)
        return CMD_REFUSED;
    if ((ei_view_is(cmd, "STARTTLS") || ei_view_is(cmd, "STLS")) && arg.len == 0)
        return CMD_TLS;
    if (ei_view_is(cmd, "AUTH")) /* FTP's AUTH TLS, POP3's bare AUTH (a list of mechanisms);
                                  * any other AUTH carries credentials */
        return ei_view_is(arg, "TLS") || ei_view_is(arg, "SSL") || ei_view_is(arg, "TLS-C") ? CMD_TLS
               : arg.len == 0 ? CMD_OK : CMD_REFUSED;
    if (ei_view_is(cmd, "EHLO") || ei_view_is(cmd, "HELO") || ei_view_is(cmd, "LHLO"))
        return greeting_host(arg) ? CMD_GREETING : CMD_REFUSED;
    for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++)
        if (ei_view_is(cmd, bare[i]))
            return arg.len == 0 ? CMD_OK : CMD_REFUSED;
    return CMD_REFUSED;
}

static ei_parse_status starttls(ei_cursor c, ei_preamble *out)
{
    out->kind = EI_PREAMBLE_STARTTLS;
    int greeted = 0;
    for (int lines = 0; lines < EI_PREAMBLE_LINES; lines++) {
        ei_view line;
        if (!ei_cursor_until(&c, '\n', &line)) {
            ei_view partial = ei_cursor_remaining(&c);
            /* a partial line must still be printable text */
            for (size_t i = 0; i < partial.len; i++)
                if ((partial.ptr[i] < 0x20 || partial.ptr[i] > 0x7e) && partial.ptr[i] != '\r')
                    return EI_PARSE_MALFORMED;
            return lines == 0 && partial.len == 0 ? EI_PARSE_NEED_MORE : short_read(ei_cursor_size(&c));
        }
        if (line.len == 0 || line.ptr[line.len - 1] != '\r')
            return EI_PARSE_MALFORMED;
        line.len--;
        for (size_t i = 0; i < line.len; i++)
            if (line.ptr[i] < 0x20 || line.ptr[i] > 0x7e)
                return EI_PARSE_MALFORMED;
        int kind = starttls_command(line);
        if (kind == CMD_REFUSED || (kind == CMD_GREETING && greeted++ > 0) ||
            ei_cursor_tell(&c) > EI_PREAMBLE_MAX)
            return EI_PARSE_MALFORMED;
        out->units = (unsigned)lines + 1;
        if (kind == CMD_TLS) {
            out->length = ei_cursor_tell(&c);
            return EI_PARSE_OK;
        }
    }
    return EI_PARSE_MALFORMED;
}

static ei_parse_status ldap_starttls(ei_cursor c, ei_preamble *out)
{
    out->kind = EI_PREAMBLE_LDAP_STARTTLS;
    ei_cursor_skip(&c, 1);
    uint8_t len = ei_cursor_u8(&c);
    if (!ei_cursor_ok(&c))
        return EI_PARSE_NEED_MORE;
    if (len >= 0x80 || len < sizeof ldap_starttls_oid)
        return EI_PARSE_MALFORMED;
    ei_view msg = ei_cursor_bytes(&c, len);
    if (!ei_cursor_ok(&c))
        return EI_PARSE_NEED_MORE;
    /* ExtendedRequest [APPLICATION 23] whose requestName is the StartTLS OID */
    if (memchr(msg.ptr, 0x77, msg.len) == NULL ||
        memmem(msg.ptr, msg.len, ldap_starttls_oid, sizeof ldap_starttls_oid - 1) == NULL)
        return EI_PARSE_MALFORMED;
    out->length = ei_cursor_tell(&c);
    return EI_PARSE_OK;
}

static ei_parse_status proxy_v1(ei_cursor c, ei_preamble *out)
{
    out->kind = EI_PREAMBLE_PROXY;
    ei_view line;
    size_t n = ei_cursor_find(&c, '\n'); /* the LF is within the first 108 bytes */
    if (n > 107)
        return n == SIZE_MAX && ei_cursor_left(&c) < 108 ? EI_PARSE_NEED_MORE : EI_PARSE_MALFORMED;
    if (!ei_cursor_until(&c, '\n', &line) || line.len < 7 || line.ptr[line.len - 1] != '\r')
        return EI_PARSE_MALFORMED;
    for (size_t i = 0; i + 1 < line.len; i++) {
        uint8_t b = line.ptr[i];
        if (!((b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'f') ||
              b == ' ' || b == '.' || b == ':'))
            return EI_PARSE_MALFORMED;
    }
    out->length = ei_cursor_tell(&c);
    return EI_PARSE_OK;
}

static ei_parse_status proxy_v2(ei_cursor c, ei_preamble *out)
{
    out->kind = EI_PREAMBLE_PROXY;
    ei_cursor_skip(&c, 12);
    uint8_t ver_cmd = ei_cursor_u8(&c);
    uint8_t family = ei_cursor_u8(&c);
    ei_cursor addresses = ei_cursor_block16(&c);
    if (!ei_cursor_ok(&c))
        return short_read(ei_cursor_size(&c));
    /* the address block's size for each family (TCP or UDP over IPv4, IPv6, UNIX), and
     * nothing after it: TLVs are free data */
    size_t want = family >> 4 == 1 ? 12 : family >> 4 == 2 ? 36 : family >> 4 == 3 ? 216 : 0;
    if (ver_cmd >> 4 != 2 || (ver_cmd & 0x0f) > 1 || ei_cursor_left(&addresses) != want ||
        ei_cursor_tell(&c) > EI_PREAMBLE_MAX)
        return EI_PARSE_MALFORMED;
    out->length = ei_cursor_tell(&c);
    return EI_PARSE_OK;
}

/* Case-insensitive: do the bytes so far match the start of word? */
static bool starts_with_word(const uint8_t *data, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t k = 0; k < n && k < len; k++) {
        uint8_t ch = data[k];
        if (ch >= 'a' && ch <= 'z')
            ch = (uint8_t)(ch - 32);
        if (ch != (uint8_t)word[k])
            return false;
    }
    return true;
}

static bool starts_like_command(const uint8_t *data, size_t len)
{
    static const char *const first[] = { "EHLO ", "HELO ", "LHLO ", "CAPA\r", "STLS\r",
                                         "STARTTLS\r", "FEAT\r", "AUTH ", "AUTH\r" };
    for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
        if (starts_with_word(data, len, first[i]))
            return true;
    /* An IMAP tag (printable, no space or '+', at most 32 bytes), then CAPABILITY or
     * STARTTLS. Decided on the bytes seen so far, the same way however many more come:
     * a prefix that could still become such a line is one. */
    size_t i = 0;
    for (; i < len && data[i] != ' '; i++)
        if (i == 32 || data[i] < 0x21 || data[i] > 0x7e || data[i] == '+')
            return false;
    if (i == len)
        return len > 0;
    if (i == 0)
        return false;
    size_t rest = len - i - 1;
    return starts_with_word(data + i + 1, rest, "CAPABILITY") ||
           starts_with_word(data + i + 1, rest, "STARTTLS");
}

ei_parse_status ei_preamble_parse(const uint8_t *data, size_t len, ei_preamble *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return EI_PARSE_NEED_MORE;
    ei_cursor c = ei_cursor_make(data, len);
    if (data[0] == 4 && (len < 2 || data[1] == 1))
        return socks4(c, out);
    if (data[0] == 5 && (len < 2 || (data[1] >= 1 && data[1] <= 16)))
        return socks5(c, out);
    if (data[0] == 0 && prefix_of(data, len, postgres_ssl, sizeof postgres_ssl)) {
        out->kind = EI_PREAMBLE_POSTGRES_SSL;
        if (len < sizeof postgres_ssl)
            return EI_PARSE_NEED_MORE;
        out->length = sizeof postgres_ssl;
        return EI_PARSE_OK;
    }
    if (data[0] == 0x30 && (len < 2 || data[1] < 0x80))
        return ldap_starttls(c, out);
    if (data[0] == 0x0d && prefix_of(data, len, proxy_v2_sig, sizeof proxy_v2_sig))
        return proxy_v2(c, out);
    if (prefix_of(data, len, "PROXY ", 6))
        return proxy_v1(c, out);
    if (starts_like_command(data, len))
        return starttls(c, out);
    return EI_PARSE_MALFORMED;
}
