/* Reading the client's first message: what a ClientHello, an HTTP request head or a
 * naming SOCKS preamble says, before the policy is asked. A function of the bytes and the
 * configuration alone. */
#include <string.h>

#include "egress_inspector/http.h"
#include "egress_inspector/preamble.h"
#include "egress_inspector/tls.h"
#include "pipeline/internal.h"

static uint16_t highest_version(const ei_tls_hello *h)
{
    uint16_t best = 0;
    for (uint8_t i = 0; i < h->version_count; i++)
        if ((h->versions[i] & 0x0f0f) != 0x0a0a && h->versions[i] > best) /* skip GREASE */
            best = h->versions[i];
    return best ? best : h->legacy_version;
}

void pl_message_from_hello(const ei_tls_hello *hello, ei_parse_status st, ei_l7 l7, pl_message *m)
{
    m->l7 = l7;
    m->status = st;
    m->problem = hello->problem;
    if (hello->sni_count > 0)
        m->host = hello->sni;
    m->ech = hello->ech;
    m->tls_version = highest_version(hello);
    if (hello->alpn_count > 0)
        m->alpn = hello->alpn[0];
}

/* Reads the client's first bytes as a ClientHello or an HTTP request head, after a
 * preamble (SOCKS, STARTTLS, PROXY) if there is one. A SOCKS preamble that names its
 * target is itself the message: the proxy connects to that name. */
/* Whether flows to this port may begin with a preamble. */
static bool preamble_port(const ei_pipeline_config *cfg, uint16_t port)
{
    if (cfg->preambles_any_port)
        return true;
    for (uint8_t i = 0; i < cfg->npreamble_ports; i++)
        if (cfg->preamble_ports[i] == port)
            return true;
    return false;
}

void pl_read_message(const ei_pipeline_config *cfg, uint16_t port, uint8_t *scratch,
                     const uint8_t *data, size_t len, pl_message *m)
{
    memset(m, 0, sizeof *m);
    ei_preamble pre;
    if (preamble_port(cfg, port) && !ei_tls_sniff(data, len)) {
        ei_parse_status st = ei_preamble_parse(data, len, &pre);
        if (st == EI_PARSE_NEED_MORE || (st == EI_PARSE_OK && !pre.has_name && pre.length == len)) {
            /* Passed on (the server must answer) only once a whole preamble message
             * is in: a partial first line could still be the start of a request. */
            m->status = EI_PARSE_NEED_MORE;
            m->in_preamble = st == EI_PARSE_OK || pre.units > 0;
            return;
        }
        if (st == EI_PARSE_OK && pre.has_name) {
            m->status = EI_PARSE_OK;
            m->l7 = EI_L7_SOCKS;
            m->host = pre.name;
            m->port = pre.port;
            return;
        }
        if (st == EI_PARSE_OK) {
            data += pre.length;
            len -= pre.length;
        }
    }
    if (ei_tls_sniff(data, len)) {
        ei_tls_hello hello;
        ei_parse_status st = ei_tls_parse_client_hello(data, len, scratch, cfg->reassembly_bytes,
                                                       &hello);
        pl_message_from_hello(&hello, st, EI_L7_TLS, m);
    } else if (ei_http_sniff(data, len)) {
        ei_http_request req;
        m->l7 = EI_L7_HTTP;
        m->status = ei_http_parse_request(data, len, &req);
        m->problem = req.problem;
        m->host = req.host;
        m->port = req.connect_port;
        if (m->status == EI_PARSE_OK && req.form != EI_HTTP_AUTHORITY_FORM)
            m->http_next = req.head_len + req.content_length;
        if (m->status == EI_PARSE_MALFORMED && !req.line_ok && req.host_headers == 0) {
            m->l7 = EI_L7_NONE; /* lines of text, but no request: some other protocol */
            m->problem = EI_REASON_NONE;
        } else if (m->status == EI_PARSE_NEED_MORE && !req.line_ok && memchr(data, '\n', len)) {
            /* A whole first line that is no request line (an EHLO on 443): another
             * protocol, waiting for its answer. Judged now, not when the flow times out. */
            m->status = EI_PARSE_OK;
            m->l7 = EI_L7_NONE;
            m->problem = EI_REASON_NONE;
            m->host = (ei_view){ NULL, 0 };
        }
    } else {
        m->status = EI_PARSE_OK; /* a complete answer: this is neither */
    }
}
