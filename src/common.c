#include "egress_inspector/common.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

const char *ei_addr_format(const ei_addr *addr, char out[EI_ADDR_STRLEN])
{
    if (addr->family != 6) { /* by hand: inet_ntop goes through snprintf */
        char *o = out;
        for (int i = 0; i < 4; i++) {
            unsigned b = addr->bytes[i];
            if (b >= 100)
                *o++ = (char)('0' + b / 100);
            if (b >= 10)
                *o++ = (char)('0' + b / 10 % 10);
            *o++ = (char)('0' + b % 10);
            *o++ = i < 3 ? '.' : '\0';
        }
        return out;
    }
    /* RFC 5952: lower-case hex, no leading zeros, the longest run of two or more zero
     * groups (the first of equals) as "::". Addresses that begin with 80 zero bits
     * (IPv4-mapped and -compatible, which take a dotted tail) are left to inet_ntop. */
    static const uint8_t zeros[10];
    if (memcmp(addr->bytes, zeros, 10) == 0) {
        if (inet_ntop(AF_INET6, addr->bytes, out, EI_ADDR_STRLEN) == NULL)
            out[0] = '\0';
        return out;
    }
    unsigned g[8];
    int best = -1, best_len = 1;
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)addr->bytes[2 * (size_t)i] << 8 | addr->bytes[2 * (size_t)i + 1];
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j : i + 1;
    }
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            *o++ = ':';
            if (i == 0)
                *o++ = ':';
            i += best_len - 1;
            continue;
        }
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = g[i] >> shift & 15;
            if (d != 0 || started || shift == 0) {
                *o++ = hex[d];
                started = true;
            }
        }
        if (i < 7)
            *o++ = ':';
    }
    *o = '\0';
    return out;
}

bool ei_addr_parse(const char *text, ei_addr *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->family = 6;
        return true;
    }
    return false;
}

static const char *const reason_names[EI_REASON_COUNT] = {
    [EI_REASON_NONE] = "none",
    [EI_REASON_ALLOWED_NAME] = "allowed_name",
    [EI_REASON_ALLOWED_ADDRESS] = "allowed_address",
    [EI_REASON_ALLOWED_TCP_NAME] = "allowed_tcp_name",
    [EI_REASON_QUIC_MALFORMED] = "quic_malformed",
    [EI_REASON_QUIC_VERSION_UNKNOWN] = "quic_version_unknown",
    [EI_REASON_QUIC_NOT_INITIAL] = "quic_not_initial",
    [EI_REASON_QUIC_CRYPTO_CONFLICT] = "quic_crypto_conflict",
    [EI_REASON_SNI_IP_MISMATCH] = "sni_ip_mismatch",
    [EI_REASON_HOST_IP_MISMATCH] = "host_ip_mismatch",
    [EI_REASON_DNS_TIMEOUT] = "dns_timeout",
    [EI_REASON_DNS_FAILED] = "dns_failed",
    [EI_REASON_DNS_UNRESOLVED] = "dns_unresolved",
    [EI_REASON_PORT_NOT_INSPECTED] = "port_not_inspected",
    [EI_REASON_QUIC_NOT_INSPECTED] = "quic_not_inspected",
    [EI_REASON_UDP_NOT_INSPECTED] = "udp_not_inspected",
    [EI_REASON_ICMP_NOT_INSPECTED] = "icmp_not_inspected",
    [EI_REASON_PROTO_NOT_INSPECTED] = "proto_not_inspected",
    [EI_REASON_DNS_RESOLVER_NOT_NAMED] = "dns_resolver_not_named",
    [EI_REASON_WORKLOAD_UNKNOWN] = "workload_unknown",
    [EI_REASON_NAME_NOT_ALLOWED] = "name_not_allowed",
    [EI_REASON_NO_HOSTNAME] = "no_hostname",
    [EI_REASON_NOT_TLS_OR_HTTP] = "not_tls_or_http",
    [EI_REASON_NO_NAME_WITHIN_LIMIT] = "no_name_within_limit",
    [EI_REASON_EMPTY_NAME] = "empty_name",
    [EI_REASON_INVALID_NAME] = "invalid_name",
    [EI_REASON_MULTIPLE_NAMES] = "multiple_names",
    [EI_REASON_TLS_MALFORMED] = "tls_malformed",
    [EI_REASON_TLS_DUPLICATE_EXTENSION] = "tls_duplicate_extension",
    [EI_REASON_HTTP_MALFORMED] = "http_malformed",
    [EI_REASON_HTTP_MULTIPLE_HOST] = "http_multiple_host",
    [EI_REASON_HTTP_HOST_MISMATCH] = "http_host_mismatch",
    [EI_REASON_HTTP_BODY_FRAMING] = "http_body_framing",
    [EI_REASON_TCP_OVERLAP_CONFLICT] = "tcp_overlap_conflict",
    [EI_REASON_TCP_DATA_IN_SYN] = "tcp_data_in_syn",
    [EI_REASON_TCP_DATA_WITHOUT_ACK] = "tcp_data_without_ack",
    [EI_REASON_TCP_BAD_ACK] = "tcp_bad_ack",
    [EI_REASON_TCP_STALE_TIMESTAMP] = "tcp_stale_timestamp",
    [EI_REASON_TCP_UNEXPECTED_OPTION] = "tcp_unexpected_option",
    [EI_REASON_TCP_URGENT] = "tcp_urgent",
    [EI_REASON_TTL_CHANGED] = "ttl_changed",
    [EI_REASON_TCP_OUT_OF_WINDOW] = "tcp_out_of_window",
    [EI_REASON_TCP_SYN_CONFLICT] = "tcp_syn_conflict",
    [EI_REASON_TCP_NO_HANDSHAKE] = "tcp_no_handshake",
    [EI_REASON_MIDSTREAM] = "midstream",
    [EI_REASON_REASSEMBLY_LIMIT] = "reassembly_limit",
    [EI_REASON_HELD_LIMIT] = "held_limit",
    [EI_REASON_FLOW_EVICTED] = "flow_evicted",
    [EI_REASON_INCOMPLETE] = "incomplete",
    [EI_REASON_SHUTDOWN] = "shutdown",
};

const char *ei_reason_name(ei_reason reason)
{
    if ((unsigned)reason >= EI_REASON_COUNT)
        return "unknown";
    return reason_names[reason];
}

bool ei_reason_allows(ei_reason reason)
{
    return reason == EI_REASON_ALLOWED_NAME || reason == EI_REASON_ALLOWED_ADDRESS ||
           reason == EI_REASON_ALLOWED_TCP_NAME;
}

const char *ei_verdict_name(ei_verdict verdict)
{
    switch (verdict) {
    case EI_VERDICT_ALLOW: return "allow";
    case EI_VERDICT_DENY: return "deny";
    case EI_VERDICT_PENDING: break;
    }
    return "pending";
}

const char *ei_mode_name(ei_mode mode)
{
    return mode == EI_MODE_MONITOR ? "monitor" : "enforce";
}

uint64_t ei_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = ei_hash_word(h, w);
    }
    while (len-- > 0)
        h = ei_hash_byte(h, *p++);
    return h;
}

void *ei_grow(void *items, size_t elem, size_t n, size_t *cap, size_t first)
{
    if (n < *cap && items != NULL)
        return items;
    if (*cap > SIZE_MAX / 2)
        return NULL;
    size_t want = *cap ? *cap * 2 : first;
    if (want <= n)
        want = n + 1;
    if (elem == 0 || want > SIZE_MAX / elem)
        return NULL;
    void *grown = realloc(items, want * elem);
    if (grown == NULL)
        return NULL;
    *cap = want;
    return grown;
}

void ei_addr_clear_host_bits(ei_addr *a, unsigned bits)
{
    for (unsigned i = bits; i < 128; i++)
        a->bytes[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

ei_prefix_status ei_prefix_parse(const char *s, size_t n, ei_addr *addr, unsigned *bits)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash != NULL ? (size_t)(slash - s) : n;
    char text[EI_ADDR_STRLEN];
    if (alen >= sizeof text || memchr(s, '\0', alen) != NULL)
        return EI_PREFIX_BAD_ADDRESS;
    memcpy(text, s, alen);
    text[alen] = '\0';
    if (!ei_addr_parse(text, addr))
        return EI_PREFIX_BAD_ADDRESS;
    unsigned max = addr->family == 6 ? 128 : 32;
    *bits = max;
    if (slash != NULL) {
        const char *d = slash + 1;
        size_t dn = n - alen - 1;
        unsigned v = 0;
        if (dn < 1 || dn > 3)
            return EI_PREFIX_BAD_LENGTH;
        for (size_t i = 0; i < dn; i++) {
            if (d[i] < '0' || d[i] > '9')
                return EI_PREFIX_BAD_LENGTH;
            v = v * 10 + (unsigned)(d[i] - '0');
        }
        if (v > max)
            return EI_PREFIX_BAD_LENGTH;
        *bits = v;
    }
    ei_addr net = *addr;
    ei_addr_clear_host_bits(&net, *bits);
    return memcmp(net.bytes, addr->bytes, sizeof net.bytes) == 0 ? EI_PREFIX_OK : EI_PREFIX_HOST_BITS;
}
