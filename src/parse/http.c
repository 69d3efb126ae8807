/* HTTP/1.x request head (RFC 9112 2-5, RFC 9110 7.2).
 *
 *   request-line   = method SP request-target SP HTTP-version CRLF
 *   field-line     = field-name ":" OWS field-value OWS CRLF
 *   request head   = request-line *( field-line ) CRLF
 *   Host           = uri-host [ ":" port ]
 *
 * Lines end in CRLF or a bare LF (RFC 9112 2.2 lets a recipient accept LF); a CR anywhere
 * else is refused, as are obs-fold and whitespace before a colon, which servers and
 * middleboxes have read in different ways (request smuggling). */
#include "egress_inspector/http.h"

#include <string.h>

#include "parse/cursor.h"

enum { METHOD_MAX = 24 };

static bool is_method_char(uint8_t ch)
{
    return (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_';
}

/* tchar (RFC 9110 5.6.2) */
static bool is_token_char(uint8_t ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

bool ei_http_sniff(const uint8_t *data, size_t len)
{
    size_t i = 0;
    for (; i < len && i <= METHOD_MAX; i++) {
        if (data[i] == ' ' || data[i] == '\r' || data[i] == '\n')
            return i > 0;
        if (!is_method_char(data[i]))
            return false;
    }
    return i == len && len > 0;
}

static ei_parse_status malformed(ei_http_request *req, ei_reason why)
{
    req->problem = why;
    return EI_PARSE_MALFORMED;
}

/* The next line, without its CRLF or LF. false when no LF has arrived yet. */
static bool next_line(ei_cursor *c, ei_view *line)
{
    if (!ei_cursor_until(c, '\n', line))
        return false;
    if (line->len > 0 && line->ptr[line->len - 1] == '\r')
        line->len--;
    return true;
}

/* Bytes up to (not including) the first `stop`, which is consumed; the rest of the
 * cursor when there is none. */
static ei_view take_until(ei_cursor *c, uint8_t stop)
{
    ei_view v;
    return ei_cursor_until(c, stop, &v) ? v : ei_cursor_rest(c);
}

static bool has_byte(ei_view v, uint8_t b)
{
    return v.len > 0 && memchr(v.ptr, b, v.len) != NULL;
}

/* Names compare case-insensitively and one trailing dot does not matter. */
static bool same_host(ei_view a, ei_view b)
{
    if (a.len > 0 && a.ptr[a.len - 1] == '.')
        a.len--;
    if (b.len > 0 && b.ptr[b.len - 1] == '.')
        b.len--;
    return ei_view_eq_nocase(a, b);
}

/* authority = host [ ":" port ], host = "[" IPv6 "]" / reg-name / IPv4. Splits off the
 * port, which must be 1-5 digits up to 65535 when present (an empty port is allowed, as
 * RFC 3986 does). userinfo ("user@host") is refused: it is deprecated for http (RFC 9110
 * 4.2.4) and a classic way to make a URL look like it names another host. */
static bool split_authority(ei_view auth, ei_view *host, uint16_t *port, bool *has_port)
{
    ei_cursor c = ei_cursor_from_view(auth);
    *has_port = false;
    *port = 0;
    if (has_byte(auth, '@'))
        return false;
    if (auth.len > 0 && auth.ptr[0] == '[') {
        take_until(&c, ']');
        *host = ei_cursor_consumed(&c);
        if (host->len < 2 || host->ptr[host->len - 1] != ']')
            return false;
        if (ei_cursor_left(&c) > 0 && ei_cursor_u8(&c) != ':')
            return false;
        *has_port = ei_cursor_tell(&c) > host->len;
    } else {
        *host = take_until(&c, ':');
        *has_port = host->len < auth.len;
    }
    ei_view digits = ei_cursor_rest(&c);
    if (digits.len > 5)
        return false;
    uint32_t value = 0;
    for (size_t i = 0; i < digits.len; i++) {
        if (digits.ptr[i] < '0' || digits.ptr[i] > '9')
            return false;
        value = value * 10 + (uint32_t)(digits.ptr[i] - '0');
    }
    if (value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

/* The authority ends at the path, the query or the fragment (RFC 3986 3.2). */
static bool is_authority_char(uint8_t b)
{
    return b != '/' && b != '?' && b != '#';
}

/* absolute-form: scheme "://" authority [ path-abempty ] [ "?" query ] */
static bool absolute_authority(ei_view target, ei_view *authority)
{
    ei_cursor c = ei_cursor_from_view(target);
    ei_view scheme = take_until(&c, ':');
    if (scheme.len == target.len || !(ei_view_is(scheme, "http") || ei_view_is(scheme, "https")))
        return false;
    if (ei_cursor_peek_at(&c, 0) != '/' || ei_cursor_peek_at(&c, 1) != '/')
        return false;
    ei_cursor_skip(&c, 2);
    *authority = ei_cursor_while(&c, is_authority_char);
    return ei_cursor_ok(&c);
}

static ei_parse_status parse_request_line(ei_view line, ei_http_request *req)
{
    ei_cursor c = ei_cursor_from_view(line);
    req->method = take_until(&c, ' ');
    req->target = take_until(&c, ' ');
    ei_view version = ei_cursor_rest(&c);
    if (req->method.len == 0 || req->method.len > METHOD_MAX || req->target.len == 0 ||
        has_byte(req->target, ' ') || has_byte(line, '\r') || version.len != 8 ||
        memcmp(version.ptr, "HTTP/1.", 7) != 0 || version.ptr[7] < '0' || version.ptr[7] > '9')
        return EI_PARSE_MALFORMED;
    for (size_t i = 0; i < req->method.len; i++)
        if (!is_method_char(req->method.ptr[i]))
            return EI_PARSE_MALFORMED;
    req->version_minor = (uint8_t)(version.ptr[7] - '0');
    if (ei_view_is(req->method, "connect"))
        req->form = EI_HTTP_AUTHORITY_FORM;
    else if (req->target.ptr[0] == '/')
        req->form = EI_HTTP_ORIGIN_FORM;
    else if (req->target.len == 1 && req->target.ptr[0] == '*')
        req->form = EI_HTTP_ASTERISK_FORM;
    else
        req->form = EI_HTTP_ABSOLUTE_FORM;
    return EI_PARSE_OK;
}

/* Remembers the first problem; the head is still read to its end, so the log can name
 * the Host of a request that is refused. */
static void note(ei_http_request *req, ei_reason why)
{
    if (req->problem == EI_REASON_NONE)
        req->problem = why;
}

static ei_view trim_ows(ei_view v)
{
    while (v.len > 0 && (v.ptr[0] == ' ' || v.ptr[0] == '\t')) {
        v.ptr++;
        v.len--;
    }
    while (v.len > 0 && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
        v.len--;
    return v;
}

/* One field line: name ":" OWS value OWS. Returns false for a line that is not one. */
static bool parse_field(ei_view line, ei_view *name, ei_view *value)
{
    if (line.ptr[0] == ' ' || line.ptr[0] == '\t' || has_byte(line, '\r'))
        return false; /* obs-fold, or a bare CR */
    ei_cursor lc = ei_cursor_from_view(line);
    *name = take_until(&lc, ':');
    if (name->len == line.len || name->len == 0)
        return false;
    for (size_t i = 0; i < name->len; i++)
        if (!is_token_char(name->ptr[i]))
            return false; /* includes whitespace before the colon */
    *value = trim_ows(ei_cursor_rest(&lc));
    return true;
}

/* Checks the target against Host and settles the name the request is for. */
static void settle_host(ei_http_request *req, ei_view host_value, const uint8_t *data)
{
    ei_view host = { NULL, 0 };
    uint16_t port;
    bool has_port;
    if (req->host_headers >= 1) {
        if (!split_authority(host_value, &host, &port, &has_port)) {
            note(req, EI_REASON_HTTP_MALFORMED);
            host = host_value; /* still worth naming in the log */
        }
        if (host.ptr == NULL)
            host.ptr = data; /* present but empty: a name of length 0, not "no name" */
    }
    req->host = host;
    if (req->problem != EI_REASON_NONE && !req->line_ok)
        return;

    ei_view authority;
    if (req->form == EI_HTTP_AUTHORITY_FORM) {
        authority = req->target;
    } else if (req->form == EI_HTTP_ABSOLUTE_FORM) {
        if (!absolute_authority(req->target, &authority)) {
            note(req, EI_REASON_HTTP_MALFORMED);
            return;
        }
    } else {
        return;
    }
    ei_view target_host;
    uint16_t target_port;
    if (!split_authority(authority, &target_host, &target_port, &has_port) ||
        target_host.len == 0 || (req->form == EI_HTTP_AUTHORITY_FORM && !has_port)) {
        note(req, EI_REASON_HTTP_MALFORMED);
        return;
    }
    if (req->host_headers >= 1 && !same_host(host, target_host))
        note(req, EI_REASON_HTTP_HOST_MISMATCH);
    if (req->host_headers == 0)
        req->host = target_host;
    if (req->form == EI_HTTP_AUTHORITY_FORM)
        req->connect_port = target_port;
}

/* Content-Length (RFC 9110 8.6): 1*DIGIT. Repeated, every value must be the same. */
static void note_length(ei_http_request *req, ei_view value, bool *seen)
{
    uint64_t n = 0;
    bool ok = value.len > 0 && value.len <= 15; /* under 2^50: no overflow */
    for (size_t i = 0; ok && i < value.len; i++) {
        ok = value.ptr[i] >= '0' && value.ptr[i] <= '9';
        n = n * 10 + (uint64_t)(value.ptr[i] - '0');
    }
    if (!ok || (*seen && n != req->content_length))
        note(req, EI_REASON_HTTP_BODY_FRAMING);
    req->content_length = n;
    *seen = true;
}

ei_parse_status ei_http_parse_request(const uint8_t *data, size_t len, ei_http_request *req)
{
    memset(req, 0, sizeof *req);
    ei_cursor c = ei_cursor_make(data, len);
    ei_view line;
    if (!next_line(&c, &line))
        return len == 0 || ei_http_sniff(data, len) ? EI_PARSE_NEED_MORE
                                                    : malformed(req, EI_REASON_HTTP_MALFORMED);
    if (!ei_http_sniff(data, len))
        return malformed(req, EI_REASON_HTTP_MALFORMED);
    req->line_ok = parse_request_line(line, req) == EI_PARSE_OK;
    if (!req->line_ok)
        note(req, EI_REASON_HTTP_MALFORMED);

    ei_view host_value = { NULL, 0 };
    bool length_seen = false;
    for (;;) {
        if (!next_line(&c, &line))
            return EI_PARSE_NEED_MORE;
        if (line.len == 0)
            break;
        ei_view name, value;
        if (!parse_field(line, &name, &value)) {
            note(req, EI_REASON_HTTP_MALFORMED);
            continue;
        }
        if (ei_view_is(name, "content-length"))
            note_length(req, value, &length_seen);
        else if (ei_view_is(name, "transfer-encoding"))
            note(req, EI_REASON_HTTP_BODY_FRAMING); /* chunked: its end is not in the head */
        if (!ei_view_is(name, "host"))
            continue;
        if (++req->host_headers == 1)
            host_value = value;
        else
            note(req, EI_REASON_HTTP_MULTIPLE_HOST);
    }
    req->head_len = ei_cursor_tell(&c);
    settle_host(req, host_value, data);
    return req->problem == EI_REASON_NONE ? EI_PARSE_OK : EI_PARSE_MALFORMED;
}
