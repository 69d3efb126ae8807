#include "io/audit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "io/jsonw.h"
#include "io/log.h"

typedef struct {
    bool used;
    ei_addr src;
    uint16_t dport;
    uint16_t target_port;
    uint8_t reason;
    bool enforced;        /* an enforced deny and a monitored one are different kinds */
    char host[64];        /* enough to tell kinds apart; longer names share a prefix key */
    ei_addr dst;          /* with no name (an address or coverage deny): the destination */
    uint8_t proto;
    uint64_t suppressed;
} deny_kind;

struct ei_audit {
    pthread_mutex_t lock;
    ei_log_format format;
    char source[128];
    uint64_t interval_ns;
    uint64_t window_start;
    uint64_t sequence;
    uint64_t over_limit;  /* denies of kinds beyond EI_AUDIT_KEYS, counted only */
    ei_audit_write_fn write;
    void *ctx;
    deny_kind kinds[EI_AUDIT_KEYS];
};

ei_audit *ei_audit_new(ei_log_format format, const char *source, uint64_t interval_ns,
                       ei_audit_write_fn write, void *ctx)
{
    ei_audit *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    pthread_mutex_init(&a->lock, NULL);
    a->format = format;
    snprintf(a->source, sizeof a->source, "%s", source);
    a->interval_ns = interval_ns;
    a->write = write;
    a->ctx = ctx;
    return a;
}

/* Portarium's outcome: a deny carried out is "denied"; a flow decided only because the
 * daemon was stopping was never judged, so enforcement was unavailable; everything else
 * (allows, and monitor mode's would-denies) went through: "allowed". */
static const char *outcome(const ei_flow_event *ev)
{
    if (ev->decision.reason == EI_REASON_SHUTDOWN)
        return "enforcement_unavailable";
    return ev->enforced ? "denied" : "allowed";
}

static void write_cloudevent(ei_audit *a, const ei_flow_event *ev, uint64_t count)
{
    char ts[32], src[EI_ADDR_STRLEN], dst[EI_ADDR_STRLEN], id[160], dest[300], latency[32];
    ei_log_format_time(ev->ts_ns, ts);
    snprintf(id, sizeof id, "%s-%llu", a->source, (unsigned long long)++a->sequence);
    unsigned port = ev->target_port != 0 ? ev->target_port : ev->dport; /* what was judged */
    if (ev->host != NULL && ev->host_valid)
        snprintf(dest, sizeof dest, "%.*s:%u", (int)ev->host_len, ev->host, port);
    else
        snprintf(dest, sizeof dest, "%s:%u", ei_addr_format(&ev->dst, dst), port);
    snprintf(latency, sizeof latency, "%.3f", (double)ev->held_ns / 1e6);
    ei_jsonw w;
    ei_jsonw_begin(&w);
    ei_jsonw_str(&w, "specversion", "1.0");
    ei_jsonw_str(&w, "type", "io.portarium.egress.attempt");
    ei_jsonw_str(&w, "source", a->source);
    ei_jsonw_str(&w, "id", id);
    ei_jsonw_str(&w, "time", ts);
    ei_jsonw_str(&w, "datacontenttype", "application/json");
    ei_jsonw_object(&w, "data");
    /* fixed fields first, the wire's name last (cut, see ei_jsonw_raw_name) */
    ei_jsonw_str(&w, "outcome", outcome(ev));
    if (ev->decision.verdict == EI_VERDICT_DENY)
        ei_jsonw_str(&w, "denyReason", ei_reason_name(ev->decision.reason));
    ei_jsonw_str(&w, "policy", ev->decision.policy ? ei_policy_name(ev->decision.policy) : NULL);
    ei_jsonw_str(&w, "rule", ev->decision.match.rule);
    ei_jsonw_str(&w, "enforcementMode", ei_mode_name(ev->mode));
    if (count > 0) {
        ei_jsonw_bool(&w, "aggregated", true);
        ei_jsonw_uint(&w, "count", count);
    }
    ei_jsonw_str(&w, "destination", dest);
    ei_jsonw_str(&w, "destinationAddress", ei_addr_format(&ev->dst, dst));
    if (ev->target_port != 0) /* through a CONNECT or SOCKS proxy: the port connected to */
        ei_jsonw_uint(&w, "proxyPort", ev->dport);
    ei_jsonw_str(&w, "protocol", ei_l7_name(ev->l7));
    ei_jsonw_number(&w, "latencyMs", latency);
    ei_jsonw_str(&w, "workloadAddress", ei_addr_format(&ev->src, src));
    if (ev->workload != NULL) { /* the pod, as the API server names it */
        ei_jsonw_str(&w, "workloadNamespace", ev->workload->namespace_name);
        ei_jsonw_str(&w, "workloadPod", ev->workload->name);
    }
    ei_jsonw_raw_name(&w, "host", ev->host, ev->host_len);
    ei_jsonw_close(&w);
    ei_jsonw_end(&w);
    a->write(a->ctx, w.buf, w.len);
}

static void write_event(ei_audit *a, const ei_flow_event *ev, uint64_t count)
{
    if (a->format == EI_LOG_CLOUDEVENTS) {
        write_cloudevent(a, ev, count);
        return;
    }
    ei_jsonw w;
    if (count == 0) {
        ei_log_format_event(&w, ev);
    } else {
        char ts[32], src[EI_ADDR_STRLEN];
        ei_log_format_time(ev->ts_ns, ts);
        ei_jsonw_begin(&w);
        ei_jsonw_str(&w, "ts", ts);
        ei_jsonw_str(&w, "event", "decisions_aggregated");
        ei_jsonw_str(&w, "verdict", "deny");
        ei_jsonw_str(&w, "reason", ei_reason_name(ev->decision.reason));
        ei_jsonw_uint(&w, "count", count);
        ei_jsonw_uint(&w, "interval_s", a->interval_ns / 1000000000u);
        ei_jsonw_str(&w, "src", ei_addr_format(&ev->src, src));
        if (ev->host == NULL) { /* an address's kind */
            char dst[EI_ADDR_STRLEN], number[4];
            ei_jsonw_str(&w, "dst", ei_addr_format(&ev->dst, dst));
            ei_jsonw_str(&w, "proto", ei_log_proto_name(ev->proto, number));
        }
        ei_jsonw_uint(&w, "dport", ev->dport);
        if (ev->target_port != 0)
            ei_jsonw_uint(&w, "target_port", ev->target_port);
        ei_jsonw_raw_name(&w, "host", ev->host, ev->host_len);
        ei_jsonw_end(&w);
    }
    a->write(a->ctx, w.buf, w.len);
}

static uint32_t kind_hash(const ei_flow_event *ev, size_t host_len)
{
    uint64_t h = ei_hash_bytes(EI_HASH_BASIS, ev->src.bytes, sizeof ev->src.bytes);
    h = ei_hash_bytes(h, ev->host, host_len);
    if (host_len == 0) /* no name: the address it went to tells kinds apart */
        h = ei_hash_bytes(h, ev->dst.bytes, sizeof ev->dst.bytes) ^ ev->proto;
    h = ei_hash_word(h, (uint64_t)ev->dport | (ev->enforced ? 0x10000u : 0u) | (uint64_t)ev->decision.reason << 32 |
                            (uint64_t)ev->target_port << 40);
    return ei_hash_fold(h);
}

/* Closes the window: an aggregate line per repeated kind, one for those over the limit. */
static void flush(ei_audit *a, uint64_t now_ns)
{
    for (size_t i = 0; i < EI_AUDIT_KEYS; i++) {
        deny_kind *k = &a->kinds[i];
        if (k->used && k->suppressed > 0) {
            ei_flow_event ev;
            memset(&ev, 0, sizeof ev);
            ev.ts_ns = now_ns;
            ev.src = k->src;
            ev.dst = k->dst;
            ev.proto = k->proto;
            ev.dport = k->dport;
            ev.target_port = k->target_port;
            ev.host = k->host[0] ? k->host : NULL;
            ev.host_len = strlen(k->host);
            ev.host_valid = true;
            ev.decision.verdict = EI_VERDICT_DENY;
            ev.decision.reason = (ei_reason)k->reason;
            ev.enforced = k->enforced;
            ev.mode = k->enforced ? EI_MODE_ENFORCE : EI_MODE_MONITOR;
            write_event(a, &ev, k->suppressed);
        }
        k->used = false;
    }
    if (a->over_limit > 0) {
        ei_jsonw w;
        char ts[32];
        ei_log_format_time(now_ns, ts);
        ei_jsonw_begin(&w);
        ei_jsonw_str(&w, "ts", ts);
        ei_jsonw_str(&w, "event", "decisions_aggregated");
        ei_jsonw_str(&w, "verdict", "deny");
        ei_jsonw_str(&w, "reason", "many_kinds");
        ei_jsonw_uint(&w, "count", a->over_limit);
        ei_jsonw_end(&w);
        a->write(a->ctx, w.buf, w.len);
        a->over_limit = 0;
    }
    a->window_start = now_ns;
}

void ei_audit_decision(ei_audit *a, const ei_flow_event *ev)
{
    pthread_mutex_lock(&a->lock);
    if (a->window_start == 0)
        a->window_start = ev->ts_ns;
    if (ev->decision.verdict != EI_VERDICT_DENY) {
        write_event(a, ev, 0);
        pthread_mutex_unlock(&a->lock);
        return;
    }
    size_t host_len = ev->host != NULL ? ev->host_len : 0;
    if (host_len > sizeof a->kinds[0].host - 1)
        host_len = sizeof a->kinds[0].host - 1;
    uint32_t h = kind_hash(ev, host_len);
    for (size_t probe = 0; probe < 16; probe++) {
        deny_kind *k = &a->kinds[(h + probe) % EI_AUDIT_KEYS];
        if (!k->used) {
            k->used = true;
            k->src = ev->src;
            k->dport = ev->dport;
            k->target_port = ev->target_port;
            k->reason = (uint8_t)ev->decision.reason;
            k->enforced = ev->enforced;
            k->dst = ev->dst;
            k->proto = ev->proto;
            memcpy(k->host, ev->host != NULL ? ev->host : "", host_len);
            k->host[host_len] = '\0';
            k->suppressed = 0;
            write_event(a, ev, 0); /* the first of its kind in this window: in full */
            pthread_mutex_unlock(&a->lock);
            return;
        }
        if (k->dport == ev->dport && k->target_port == ev->target_port && k->reason == ev->decision.reason &&
            k->enforced == ev->enforced && memcmp(&k->src, &ev->src, sizeof k->src) == 0 &&
            strlen(k->host) == host_len && memcmp(k->host, ev->host != NULL ? ev->host : "", host_len) == 0 &&
            (host_len > 0 || (k->proto == ev->proto && memcmp(&k->dst, &ev->dst, sizeof k->dst) == 0))) {
            k->suppressed++;
            pthread_mutex_unlock(&a->lock);
            return;
        }
    }
    a->over_limit++;
    pthread_mutex_unlock(&a->lock);
}

void ei_audit_tick(ei_audit *a, uint64_t now_ns)
{
    pthread_mutex_lock(&a->lock);
    if (a->window_start != 0 && now_ns >= a->window_start + a->interval_ns)
        flush(a, now_ns);
    pthread_mutex_unlock(&a->lock);
}

void ei_audit_free(ei_audit *a, uint64_t now_ns)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    flush(a, now_ns);
    pthread_mutex_unlock(&a->lock);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
