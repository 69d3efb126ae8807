#include "io/replay.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <zlib.h>

#include <errno.h>
#include <string.h>

#include "io/log.h"

typedef struct {
    FILE *out;
    ei_jsonw line;
    uint64_t held, released; /* every held packet must come back with a verdict */
} replay_ctx;

static void on_release(void *ctx, uint64_t packet_id, ei_action action)
{
    (void)packet_id;
    (void)action;
    ((replay_ctx *)ctx)->released++;
}

static void on_event(void *ctx, const ei_flow_event *ev)
{
    replay_ctx *rc = ctx;
    size_t n;
    ei_log_format_event(&rc->line, ev);
    n = rc->line.len;
    fwrite(rc->line.buf, 1, n, rc->out);
}

static void print_summary(FILE *err, const ei_counters *c, uint64_t frames)
{
    ei_jsonw w;
    ei_jsonw_begin(&w);
    ei_jsonw_str(&w, "event", "replay_summary");
    ei_jsonw_uint(&w, "frames", frames);
    ei_jsonw_uint(&w, "flows", c->flows_created);
    ei_jsonw_uint(&w, "flows_midstream", c->flows_midstream);
    ei_jsonw_uint(&w, "flows_evicted", c->flows_evicted);
    ei_jsonw_uint(&w, "flows_expired", c->flows_expired);
    for (int a = 0; a < EI_ACTION_COUNT; a++) {
        char key[32];
        snprintf(key, sizeof key, "packets_%s", ei_action_name((ei_action)a));
        ei_jsonw_uint(&w, key, c->actions[a]);
    }
    ei_jsonw_uint(&w, "packets_released", c->released);
    if (c->packets_truncated) /* the capture's snap length cut them: what is cut is unread */
        ei_jsonw_uint(&w, "packets_truncated", c->packets_truncated);
    for (int e = 1; e < EI_PKT_ERROR_COUNT; e++)
        if (c->packet_errors[e]) {
            char key[48];
            snprintf(key, sizeof key, "packet_error_%s", ei_packet_error_name((ei_packet_error)e));
            ei_jsonw_uint(&w, key, c->packet_errors[e]);
        }
    for (int r = 1; r < EI_REASON_COUNT; r++)
        if (c->decisions[r]) {
            char key[48];
            snprintf(key, sizeof key, "decided_%s", ei_reason_name((ei_reason)r));
            ei_jsonw_uint(&w, key, c->decisions[r]);
        }
    ei_jsonw_uint(&w, "dns_answers", c->dns_answers);
    ei_jsonw_uint(&w, "dns_names_learned", c->dns_names_learned);
    ei_jsonw_uint(&w, "dns_questions", c->dns_queries);
    ei_jsonw_uint(&w, "dns_unasked", c->dns_unasked);
    ei_jsonw_uint(&w, "dns_unnamed", c->dns_unnamed);
    for (int d = 1; d < EI_DNS_PROBLEM_COUNT; d++)
        if (c->dns_malformed[d]) {
            char key[48];
            snprintf(key, sizeof key, "dns_malformed_%s", ei_dns_problem_name((ei_dns_problem)d));
            ei_jsonw_uint(&w, key, c->dns_malformed[d]);
        }
    ei_jsonw_uint(&w, "buffer_budget_exhausted", c->buffer_budget_exhausted);
    ei_jsonw_uint(&w, "out_of_memory", c->out_of_memory);
    /* the server's stream: wrong checksums (read, with --checksums report), and allowed
     * flows the capture's server acknowledged, or that showed it other bytes */
    ei_jsonw_uint(&w, "bad_checksums", c->bad_checksums);
    ei_jsonw_uint(&w, "flows_confirmed", c->flows_confirmed);
    ei_jsonw_uint(&w, "flows_revoked", c->flows_revoked);
    ei_jsonw_end(&w);
    fwrite(w.buf, 1, w.len, err);
}

/* Captures are often kept gzipped. zlib reads plain files unchanged, so every capture
 * goes through it, streamed: nothing is unpacked to disk or held whole in memory. */
static ssize_t gz_read(void *cookie, char *buf, size_t size)
{
    int n = gzread(cookie, buf, size > 1u << 30 ? 1u << 30 : (unsigned)size);
    return n < 0 ? -1 : n;
}

static int gz_close(void *cookie)
{
    return gzclose(cookie) == Z_OK ? 0 : -1;
}

static pcap_t *open_capture(const char *path, char *errbuf)
{
    /* A plain capture goes to libpcap directly: zlib would copy every byte once more. */
    FILE *plain = fopen(path, "rb");
    if (plain == NULL) {
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s", strerror(errno));
        return NULL;
    }
    unsigned char magic[2] = { 0, 0 };
    bool gzipped = fread(magic, 1, 2, plain) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (!gzipped && fseek(plain, 0, SEEK_SET) == 0) {
        pcap_t *pc = pcap_fopen_offline_with_tstamp_precision(plain, PCAP_TSTAMP_PRECISION_NANO, errbuf);
        if (pc == NULL)
            fclose(plain);
        return pc;
    }
    fclose(plain);
    gzFile gz = gzopen(path, "rb");
    if (gz == NULL) {
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s", strerror(errno));
        return NULL;
    }
    cookie_io_functions_t io = { .read = gz_read, .close = gz_close };
    FILE *f = fopencookie(gz, "rb", io);
    if (f == NULL) {
        gzclose(gz);
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s", strerror(errno));
        return NULL;
    }
    pcap_t *pc = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (pc == NULL)
        fclose(f);
    return pc;
}

int ei_replay_run(const ei_replay_options *opt)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *pc = open_capture(opt->pcap_path, errbuf);
    if (pc == NULL) {
        fprintf(opt->err, "egress-inspector: %s: cannot read capture: %s\n", opt->pcap_path, errbuf);
        return 2;
    }
    int linktype = pcap_datalink(pc);
    if (!ei_link_supported(linktype)) {
        fprintf(opt->err, "egress-inspector: %s: link type %d (%s) is not supported\n",
                opt->pcap_path, linktype, pcap_datalink_val_to_name(linktype) ? pcap_datalink_val_to_name(linktype) : "?");
        pcap_close(pc);
        return 2;
    }
    replay_ctx rc = { .out = opt->out };
    ei_pipeline *p = ei_pipeline_new(&opt->pipeline, opt->policy, opt->mode, on_event, on_release, &rc);
    if (p == NULL) {
        fprintf(opt->err, "egress-inspector: out of memory\n");
        pcap_close(pc);
        return 1;
    }
    ei_pipeline_set_dns(p, opt->dns, NULL); /* no lookups: the result is the capture's */
    if (opt->workloads != NULL)
        ei_pipeline_set_workloads(p, opt->workloads, 0);
    struct pcap_pkthdr *hdr;
    const u_char *data;
    uint64_t frames = 0, now = 0;
    int rv;
    while ((rv = pcap_next_ex(pc, &hdr, &data)) == 1) {
        now = (uint64_t)hdr->ts.tv_sec * 1000000000u + (uint64_t)hdr->ts.tv_usec;
        frames++;
        if (ei_pipeline_packet(p, linktype, data, hdr->caplen, now, frames, 0) == EI_ACTION_HOLD)
            rc.held++;
    }
    int status = 0;
    if (rv == PCAP_ERROR) {
        fprintf(opt->err, "egress-inspector: %s: error after frame %llu: %s\n", opt->pcap_path,
                (unsigned long long)frames, pcap_geterr(pc));
        status = 2;
    }
    ei_pipeline_flush(p, now, EI_REASON_INCOMPLETE);
    if (rc.released != rc.held) { /* a lost verdict: the pipeline broke its promise */
        fprintf(opt->err, "egress-inspector: %s: %llu held packets got no verdict\n", opt->pcap_path,
                (unsigned long long)(rc.held - rc.released));
        status = 3;
    }
    if (opt->summary)
        print_summary(opt->err, ei_pipeline_counters(p), frames);
    ei_pipeline_free(p, now);
    pcap_close(pc);
    fflush(opt->out);
    return status;
}
