/* HTTP/1.x request head: the first bytes of a plain-HTTP client (or a proxy client) ->
 * the name it asks for. */
#ifndef EGRESS_INSPECTOR_HTTP_H
#define EGRESS_INSPECTOR_HTTP_H

#include "egress_inspector/common.h"

typedef enum {
    EI_HTTP_ORIGIN_FORM = 0,   /* GET /path */
    EI_HTTP_ABSOLUTE_FORM,     /* GET http://host/path (to a proxy) */
    EI_HTTP_AUTHORITY_FORM,    /* CONNECT host:port */
    EI_HTTP_ASTERISK_FORM,     /* OPTIONS * */
} ei_http_target_form;

typedef struct {
    ei_view method;
    ei_view target;
    ei_http_target_form form;
    bool line_ok;              /* the request line is method SP target SP HTTP/1.x */
    uint8_t version_minor;     /* HTTP/1.x */
    unsigned host_headers;     /* Host header lines seen */
    /* The name the request is for: the host part (no port, brackets kept for an IPv6
     * literal) of the Host header, or of the target's authority when there is no Host.
     * len 0 and ptr NULL when the request names nothing (HTTP/1.0 without Host). A Host
     * header that is present but empty gives ptr non-NULL and len 0. */
    ei_view host;
    /* The port of a CONNECT target, else 0. */
    uint16_t connect_port;
    /* With EI_PARSE_OK: the head's length (through its empty line), and the body that
     * follows it (RFC 9112 6.3): content_length bytes, or none. A request whose body
     * length the head does not give plainly (Transfer-Encoding, Content-Length values
     * that disagree or are not digits) is malformed (http_body_framing): its next
     * request could not be found, and two readers could disagree on where it starts. */
    size_t head_len;
    uint64_t content_length;
    /* When the result is EI_PARSE_MALFORMED: http_malformed, http_multiple_host or
     * http_host_mismatch (the first found). host is still filled when a Host was seen. */
    ei_reason problem;
} ei_http_request;

/* True when the stream's first bytes can start a request line (an upper-case method
 * token followed by a space or the line's end). With fewer bytes, answers for what is
 * there. */
EI_MUST_USE bool ei_http_sniff(const uint8_t *data, size_t len);

/* Parses the request line and header fields up to the empty line that ends them.
 * Returns EI_PARSE_OK (req filled, views into data), EI_PARSE_NEED_MORE (the empty line
 * has not arrived) or EI_PARSE_MALFORMED (req->problem says why). A request that is
 * refused is still read to the end of its head, so that its Host can be reported.
 * Fails closed on what two readers could read differently: more than one Host, a Host
 * that disagrees with an absolute-form or CONNECT target, whitespace before a field's
 * colon, obsolete line folding, a bare CR. Allocates nothing. */
EI_MUST_USE ei_parse_status ei_http_parse_request(const uint8_t *data, size_t len,
                                                  ei_http_request *req);

#endif
