#include "io/log.h"

#include <inttypes.h>
#include <time.h>

void ei_log_format_time(uint64_t ts_ns, char out[32])
{
    time_t secs = (time_t)(ts_ns / 1000000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06" PRIu64 "Z", ts_ns % 1000000000u / 1000u);
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

void ei_log_format_event(ei_jsonw *w, const ei_flow_event *ev)
{
    char ts[32], src[EI_ADDR_STRLEN], dst[EI_ADDR_STRLEN];
    ei_log_format_time(ev->ts_ns, ts);
    ei_jsonw_begin(w);
    ei_jsonw_str(w, "ts", ts);
    ei_jsonw_str(w, "event", "decision");
    ei_jsonw_str(w, "src", ei_addr_format(&ev->src, src));
    ei_jsonw_uint(w, "sport", ev->sport);
    ei_jsonw_str(w, "dst", ei_addr_format(&ev->dst, dst));
    ei_jsonw_uint(w, "dport", ev->dport);
    ei_jsonw_str(w, "proto", "tcp");
    ei_jsonw_str(w, "l7", ei_l7_name(ev->l7));
    ei_jsonw_strn(w, "host", ev->host, ev->host_len, true);
    ei_jsonw_str(w, "verdict", ei_verdict_name(ev->decision.verdict));
    ei_jsonw_str(w, "reason", ei_reason_name(ev->decision.reason));
    ei_jsonw_str(w, "policy", ei_policy_name(ev->decision.policy));
    ei_jsonw_str(w, "rule", ev->decision.match.rule);
    if (ev->decision.match.rule != NULL)
        ei_jsonw_uint(w, "rule_line", ev->decision.match.line);
    ei_jsonw_str(w, "mode", ei_mode_name(ev->mode));
    ei_jsonw_bool(w, "enforced", ev->enforced);
    if (ev->l7 == EI_L7_TLS) {
        ei_jsonw_str(w, "tls_version", tls_version_name(ev->tls_version));
        ei_jsonw_strn(w, "alpn", ev->alpn.len ? (const char *)ev->alpn.ptr : NULL,
                      ev->alpn.len, false);
        ei_jsonw_bool(w, "ech", ev->ech);
    }
    if (ev->held_ns > 0) /* what the decision cost the flow: reassembly, a lookup */
        ei_jsonw_uint(w, "held_us", ev->held_ns / 1000);
    if (ev->midstream)
        ei_jsonw_bool(w, "midstream", true);
    ei_jsonw_end(w);
}
