#include "io/log.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static void digits(char *out, unsigned value, int n)
{
    while (n-- > 0) {
        out[n] = (char)('0' + value % 10);
        value /= 10;
    }
}

/* Every decision line carries a time: formatted by hand (the civil date from days since
 * the epoch, as in Howard Hinnant's date algorithms) rather than gmtime_r + strftime +
 * snprintf, which cost more than the rest of the line. */
void ei_log_format_time(uint64_t ts_ns, char out[32])
{
    uint64_t secs = ts_ns / 1000000000u;
    int64_t z = (int64_t)(secs / 86400) + 719468;
    unsigned sod = (unsigned)(secs % 86400);
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned month = mp < 10 ? mp + 3 : mp - 9;
    unsigned year = (unsigned)(yoe + era * 400 + (month <= 2));
    memcpy(out, "0000-00-00T00:00:00.000000Z", 28);
    digits(out, year, 4);
    digits(out + 5, month, 2);
    digits(out + 8, day, 2);
    digits(out + 11, sod / 3600, 2);
    digits(out + 14, sod / 60 % 60, 2);
    digits(out + 17, sod % 60, 2);
    digits(out + 20, (unsigned)(ts_ns % 1000000000u / 1000u), 6);
}

static const char *tls_version_name(uint16_t v)
{
    switch (v) {
    case 0x0300: return "ssl3";
    case 0x0301: return "1.0";
    case 0x0302: return "1.1";
    case 0x0303: return "1.2";
    case 0x0304: return "1.3";
    case 0x0002: return "ssl2";
    default: return NULL;
    }
}

const char *ei_log_proto_name(uint8_t proto, char number[4])
{
    switch (proto) {
    case IPPROTO_TCP: return "tcp";
    case IPPROTO_UDP: return "udp";
    case IPPROTO_ICMP: return "icmp";
    case IPPROTO_ICMPV6: return "icmpv6";
    case IPPROTO_SCTP: return "sctp";
    case IPPROTO_GRE: return "gre";
    case IPPROTO_ESP: return "esp";
    default:
        snprintf(number, 4, "%u", proto);
        return number;
    }
}

/* "1", "2", "draft-29", or the number in hex. */
static const char *quic_version_name(uint32_t v, char buf[16])
{
    if (v == 1)
        return "1";
    if (v == 0x6b3343cf)
        return "2";
    if (v >> 8 == 0xff0000)
        snprintf(buf, 16, "draft-%u", v & 0xff);
    else
        snprintf(buf, 16, "0x%08x", v);
    return buf;
}

void ei_log_format_event(ei_jsonw *w, const ei_flow_event *ev)
{
    char number[4];
    char ts[32], src[EI_ADDR_STRLEN], dst[EI_ADDR_STRLEN];
    ei_log_format_time(ev->ts_ns, ts);
    /* The fields a reader must never miss come first, bounded ones before the one the
     * wire chose (the name), which is cut at EI_JSONW_RAW_NAME_MAX bytes. */
    ei_jsonw_begin(w);
    ei_jsonw_lit(w, "ts", ts);
    ei_jsonw_lit(w, "event", "decision");
    ei_jsonw_lit(w, "verdict", ei_verdict_name(ev->decision.verdict));
    ei_jsonw_lit(w, "reason", ei_reason_name(ev->decision.reason));
    ei_jsonw_lit(w, "policy", ei_policy_name(ev->decision.policy)); /* letters, digits, -_. */
    ei_jsonw_str(w, "rule", ev->decision.match.rule);
    if (ev->decision.match.rule != NULL)
        ei_jsonw_uint(w, "rule_line", ev->decision.match.line);
    ei_jsonw_lit(w, "mode", ei_mode_name(ev->mode));
    ei_jsonw_bool(w, "enforced", ev->enforced);
    ei_jsonw_lit(w, "src", ei_addr_format(&ev->src, src));
    if (ev->workload != NULL) { /* from the API server: escaped */
        ei_jsonw_str(w, "namespace", ev->workload->namespace_name);
        ei_jsonw_str(w, "pod", ev->workload->name);
    }
    ei_jsonw_uint(w, "sport", ev->sport);
    ei_jsonw_lit(w, "dst", ei_addr_format(&ev->dst, dst));
    ei_jsonw_uint(w, "dport", ev->dport);
    if (ev->target_port != 0) /* a proxy's: the port its request named was judged */
        ei_jsonw_uint(w, "target_port", ev->target_port);
    ei_jsonw_lit(w, "proto", ei_log_proto_name(ev->proto, number));
    ei_jsonw_lit(w, "l7", ei_l7_name(ev->l7));
    if (ev->host_valid) /* normalized: lower-case letters, digits, '-', '_', '.' */
        ei_jsonw_lit(w, "host", ev->host);
    else
        ei_jsonw_raw_name(w, "host", ev->host, ev->host_len);
    if (ev->l7 == EI_L7_QUIC) {
        char v[16];
        ei_jsonw_lit(w, "quic_version", quic_version_name(ev->quic_version, v));
    }
    if (ev->l7 == EI_L7_TLS || ev->l7 == EI_L7_QUIC) {
        ei_jsonw_lit(w, "tls_version", tls_version_name(ev->tls_version));
        ei_jsonw_strn(w, "alpn", ev->alpn.len ? (const char *)ev->alpn.ptr : NULL,
                      ev->alpn.len, false); /* at most 255 bytes (one protocol name) */
        ei_jsonw_bool(w, "ech", ev->ech);
    }
    if (ev->held_ns > 0) /* what the decision cost the flow: reassembly, a lookup */
        ei_jsonw_uint(w, "held_us", ev->held_ns / 1000);
    if (ev->midstream)
        ei_jsonw_bool(w, "midstream", true);
    if (ev->bad_checksum)
        ei_jsonw_bool(w, "bad_checksum", true);
    if (ev->revoked) /* a second line for a flow allowed before: now denied */
        ei_jsonw_bool(w, "revoked", true);
    ei_jsonw_end(w);
}

void ei_log_begin_event(ei_jsonw *w, const char *event, uint64_t wall_ns)
{
    char ts[32];
    ei_log_format_time(wall_ns, ts);
    ei_jsonw_begin(w);
    ei_jsonw_lit(w, "ts", ts);
    ei_jsonw_lit(w, "event", event);
}
