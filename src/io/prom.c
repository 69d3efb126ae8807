/* The Prometheus text. See prom.h. */
#include "io/prom.h"

#include <stddef.h>
#include <string.h>

static void help(FILE *out, const char *name, const char *type, const char *text)
{
    if (text != NULL)
        fprintf(out, "# HELP egress_inspector_%s %s\n", name, text);
    fprintf(out, "# TYPE egress_inspector_%s %s\n", name, type);
}

static void value(FILE *out, const char *name, uint64_t v)
{
    fprintf(out, "egress_inspector_%s %llu\n", name, (unsigned long long)v);
}

/* A metric with no labels: its TYPE line (and HELP when given), then its value. */
static void single(FILE *out, const char *name, const char *type, const char *text, uint64_t v)
{
    help(out, name, type, text);
    value(out, name, v);
}

/* A histogram from per-bucket counts (not cumulative) and bounds in ns, the last of
 * which is +Inf. */
static void histogram(FILE *out, const char *name, const char *text, const uint64_t *counts,
                      const uint64_t *bounds_ns, int n, uint64_t sum_ns)
{
    help(out, name, "histogram", text);
    uint64_t cumulative = 0;
    for (int b = 0; b < n; b++) {
        cumulative += counts[b];
        if (b + 1 < n)
            fprintf(out, "egress_inspector_%s_bucket{le=\"%g\"} %llu\n", name,
                    (double)bounds_ns[b] / 1e9, (unsigned long long)cumulative);
        else
            fprintf(out, "egress_inspector_%s_bucket{le=\"+Inf\"} %llu\n", name,
                    (unsigned long long)cumulative);
    }
    fprintf(out, "egress_inspector_%s_sum %.9f\negress_inspector_%s_count %llu\n", name,
            (double)sum_ns / 1e9, name, (unsigned long long)cumulative);
}

/* One line per queue of a per-queue NFQUEUE counter. */
static void per_queue(FILE *out, const ei_prom_snapshot *s, const char *name, size_t field)
{
    for (size_t i = 0; i < s->nqueues; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&s->queues[i].nfq + field, sizeof v);
        fprintf(out, "egress_inspector_%s{queue=\"%u\"} %llu\n", name, s->queues[i].queue,
                (unsigned long long)v);
    }
}

static void render_queues(const ei_prom_snapshot *s, FILE *out)
{
    help(out, "packets_total", "counter", "Packets the queues handed to the daemon.");
    per_queue(out, s, "packets_total", offsetof(ei_nfq_stats, queued));
    help(out, "verdicts_total", "counter", NULL);
    per_queue(out, s, "verdicts_total", offsetof(ei_nfq_stats, verdicts));
    help(out, "verdict_batches_total", "counter", NULL);
    per_queue(out, s, "verdict_batches_total", offsetof(ei_nfq_stats, batches));
    help(out, "netlink_errors_total", "counter", NULL);
    for (size_t i = 0; i < s->nqueues; i++)
        fprintf(out, "egress_inspector_netlink_errors_total{queue=\"%u\"} %llu\n", s->queues[i].queue,
                (unsigned long long)s->queues[i].nfq.netlink_errors +
                    (unsigned long long)s->queues[i].nfq.bad_messages);
    help(out, "verdict_send_retries_total", "counter",
         "Verdict sends that failed and were kept to be sent again.");
    per_queue(out, s, "verdict_send_retries_total", offsetof(ei_nfq_stats, send_retries));
    help(out, "verdicts_pending", "gauge", "Verdicts decided but not yet taken by the kernel.");
    per_queue(out, s, "verdicts_pending", offsetof(ei_nfq_stats, pending));
    help(out, "kernel_queue_dropped_total", "counter",
         "Packets the kernel dropped: queue full, or no listener.");
    for (size_t i = 0; i < s->nqueues; i++) {
        const ei_prom_queue *q = &s->queues[i];
        if (!q->kernel_known)
            continue;
        fprintf(out, "egress_inspector_kernel_queue_dropped_total{queue=\"%u\"} %lu\n", q->queue,
                q->kernel_queue_dropped);
        fprintf(out, "egress_inspector_kernel_user_dropped_total{queue=\"%u\"} %lu\n", q->queue,
                q->kernel_user_dropped);
    }
}

static void render_flows(const ei_counters *sum, FILE *out)
{
    histogram(out, "decision_hold_seconds", "How long a flow's first held packet waited for its verdict.",
              sum->latency_buckets, ei_latency_bounds_ns, EI_LATENCY_BUCKETS, sum->latency_sum_ns);
    help(out, "packet_actions_total", "counter", NULL);
    for (int a = 0; a < EI_ACTION_COUNT; a++)
        fprintf(out, "egress_inspector_packet_actions_total{action=\"%s\"} %llu\n",
                ei_action_name((ei_action)a), (unsigned long long)sum->actions[a]);
    help(out, "decisions_total", "counter", "Flows decided, by verdict and reason.");
    for (int r = 1; r < EI_REASON_COUNT; r++)
        fprintf(out, "egress_inspector_decisions_total{verdict=\"%s\",reason=\"%s\"} %llu\n",
                ei_reason_allows((ei_reason)r) ? "allow" : "deny", ei_reason_name((ei_reason)r),
                (unsigned long long)sum->decisions[r]);
    help(out, "denies_not_enforced_total", "counter",
         "Denies logged and let through: the daemon in monitor mode, or every policy that governs the workload.");
    fprintf(out, "egress_inspector_denies_not_enforced_total{mode=\"daemon\"} %llu\n"
                 "egress_inspector_denies_not_enforced_total{mode=\"policy\"} %llu\n",
            (unsigned long long)sum->denies_monitored[0], (unsigned long long)sum->denies_monitored[1]);
    help(out, "packet_errors_total", "counter", "Packets whose headers could not be read, by kind.");
    for (int e = 1; e < EI_PKT_ERROR_COUNT; e++)
        fprintf(out, "egress_inspector_packet_errors_total{kind=\"%s\"} %llu\n",
                ei_packet_error_name((ei_packet_error)e), (unsigned long long)sum->packet_errors[e]);
    single(out, "packets_truncated_total", "counter", "Packets shorter than their IP length says.",
           sum->packets_truncated);
    single(out, "flows", "gauge", NULL, sum->flows);
    single(out, "held_packets", "gauge", NULL, sum->held);
    single(out, "reassemblies_in_progress", "gauge", NULL, sum->reassembling);
    single(out, "reassembly_buffered_bytes", "gauge", NULL, sum->buffered_bytes);
    single(out, "flows_created_total", "counter", NULL, sum->flows_created);
    single(out, "flows_evicted_total", "counter", NULL, sum->flows_evicted);
    single(out, "flows_expired_total", "counter", NULL, sum->flows_expired);
    single(out, "flows_midstream_total", "counter", NULL, sum->flows_midstream);
    single(out, "buffer_budget_exhausted_total", "counter", NULL, sum->buffer_budget_exhausted);
    single(out, "bad_checksums_total", "counter",
           "Packets of unsettled flows with a wrong checksum (dropped when verified).", sum->bad_checksums);
    single(out, "flows_confirming", "gauge",
           "Allowed flows whose judged bytes the server has not acknowledged yet.", sum->confirming);
    single(out, "flows_confirmed_total", "counter", NULL, sum->flows_confirmed);
    single(out, "flows_revoked_total", "counter",
           "Allowed flows denied later: the server was about to read other bytes than those judged.",
           sum->flows_revoked);
    single(out, "out_of_memory_total", "counter", NULL, sum->out_of_memory);
}

static void render_dns(const ei_prom_snapshot *s, FILE *out)
{
    const ei_counters *sum = &s->sum;
    single(out, "dns_answers_total", "counter", "DNS answers to workloads read from the answer queue.",
           sum->dns_answers);
    help(out, "dns_answers_malformed_total", "counter", "Answers passed on unread, by kind.");
    for (int d = 1; d < EI_DNS_PROBLEM_COUNT; d++)
        fprintf(out, "egress_inspector_dns_answers_malformed_total{kind=\"%s\"} %llu\n",
                ei_dns_problem_name((ei_dns_problem)d), (unsigned long long)sum->dns_malformed[d]);
    fprintf(out, "egress_inspector_dns_answers_malformed_total{kind=\"tcp_split\"} %llu\n",
            (unsigned long long)sum->dns_tcp_split);
    single(out, "dns_names_learned_total", "counter", NULL, sum->dns_names_learned);
    single(out, "dns_questions_total", "counter", "Workloads' DNS questions seen.", sum->dns_queries);
    single(out, "dns_answers_unasked_total", "counter",
           "Answers to no question a workload asked: passed on, unread.", sum->dns_unasked);
    single(out, "dns_answers_unnamed_total", "counter",
           "Answers from a resolver not named: passed on, unread.", sum->dns_unnamed);
    single(out, "dns_questions_forgotten_total", "counter",
           "Questions pushed out of the table before their answer came.", sum->dns_queries_forgotten);
    single(out, "dns_waiting_flows", "gauge", "Flows held until a lookup ends.", sum->dns_waiting);
    single(out, "dns_wait_limit_total", "counter", NULL, sum->dns_wait_limit);
    static const char *const binds[3] = { "unknown", "mismatch", "match" };
    help(out, "dest_checks_total", "counter", "Names allowed by policy, checked against the destination.");
    for (int b = 0; b < 3; b++)
        fprintf(out, "egress_inspector_dest_checks_total{result=\"%s\"} %llu\n", binds[b],
                (unsigned long long)sum->dest_checks[b]);
    single(out, "dns_cache_entries", "gauge", NULL, s->cache.entries);
    single(out, "dns_cache_workloads", "gauge", NULL, s->cache.workloads);
    single(out, "dns_cache_evictions_total", "counter", NULL, s->cache.evicted);
    single(out, "dns_cache_expired_total", "counter", NULL, s->cache.expired);
    if (!s->has_resolver)
        return;
    const ei_resolver_stats *rs = &s->resolver;
    single(out, "dns_lookups_total", "counter", "Lookups the inspector made itself.", rs->lookups);
    single(out, "dns_lookup_failures_total", "counter", NULL, rs->failures);
    single(out, "dns_lookups_merged_total", "counter", NULL, rs->merged);
    single(out, "dns_lookups_rejected_total", "counter", NULL, rs->rejected);
    single(out, "dns_refreshes_total", "counter", NULL, rs->refreshes);
    single(out, "dns_lookups_in_flight", "gauge", NULL, rs->in_flight);
    histogram(out, "dns_lookup_seconds", "How long the inspector's own lookups took.",
              rs->latency_buckets, ei_resolver_bounds_ns, EI_RESOLVER_BUCKETS, rs->latency_sum_ns);
}

static void render_workloads(const ei_prom_snapshot *s, FILE *out)
{
    const ei_counters *sum = &s->sum;
    single(out, "workload_waiting_flows", "gauge",
           "Flows held until the pod view knows the address that sent them.", sum->workload_waiting);
    help(out, "workload_waits_total", "counter", "Flows that waited for their pod, by outcome.");
    fprintf(out, "egress_inspector_workload_waits_total{outcome=\"found\"} %llu\n",
            (unsigned long long)sum->workload_wait_found);
    fprintf(out, "egress_inspector_workload_waits_total{outcome=\"timeout\"} %llu\n",
            (unsigned long long)sum->workload_wait_timeout);
    single(out, "workload_wait_limit_total", "counter", NULL, sum->workload_wait_limit);
    if (!s->has_view)
        return;
    const ei_workloads_stats *v = &s->view;
    single(out, "workloads", "gauge", "Pods the view knows by address.", v->pods);
    single(out, "workload_addresses", "gauge", NULL, v->addresses);
    single(out, "workload_address_conflicts", "gauge",
           "Addresses two running pods claim: no pod is known there.", v->address_conflicts);
    help(out, "pods_not_workloads", "gauge", "Pods the view leaves out, by why.");
    const struct { const char *why; uint64_t n; } out_of_view[] = {
        { "host_network", v->host_network }, { "finished", v->finished },
        { "no_address", v->no_address }, { "no_namespace", v->no_namespace },
        { "malformed", v->malformed },
    };
    for (size_t i = 0; i < sizeof out_of_view / sizeof out_of_view[0]; i++)
        fprintf(out, "egress_inspector_pods_not_workloads{why=\"%s\"} %llu\n", out_of_view[i].why,
                (unsigned long long)out_of_view[i].n);
    single(out, "namespaces", "gauge", "Namespaces the view knows.", v->namespaces);
    if (!s->has_watch)
        return;
    const ei_kube_stats *w = &s->watch;
    single(out, "kube_synced", "gauge", "1 once pods and namespaces were listed.", w->synced);
    single(out, "kube_pods", "gauge", "The node's pods the watch knows.", w->pods);
    single(out, "kube_lists_total", "counter", NULL, w->lists);
    single(out, "kube_relists_total", "counter", "Lists after 410 Gone.", w->relists);
    single(out, "kube_watches_total", "counter", NULL, w->watches);
    single(out, "kube_watch_restarts_total", "counter", NULL, w->watch_restarts);
    single(out, "kube_events_total", "counter", NULL, w->events);
    single(out, "kube_bookmarks_total", "counter", NULL, w->bookmarks);
    single(out, "kube_errors_total", "counter", "Failed API requests.", w->errors);
    single(out, "kube_unauthorized_total", "counter", NULL, w->unauthorized);
    single(out, "kube_token_changes_total", "counter", NULL, w->token_changes);
    single(out, "kube_views_total", "counter", "Pod views built.", w->views);
}

void ei_prom_render(const ei_prom_snapshot *s, FILE *out)
{
    render_queues(s, out);
    render_flows(&s->sum, out);
    render_dns(s, out);
    render_workloads(s, out);
    help(out, "mode", "gauge", NULL);
    fprintf(out, "egress_inspector_mode{mode=\"enforce\"} %d\negress_inspector_mode{mode=\"monitor\"} %d\n",
            s->mode == EI_MODE_ENFORCE, s->mode == EI_MODE_MONITOR);
    single(out, "rules_generation", "gauge", NULL, s->generation);
    single(out, "reload_failures_total", "counter", NULL, s->reload_failures);
    single(out, "log_lines_total", "counter", "Log lines queued for output.", s->log.lines);
    single(out, "log_lines_dropped_total", "counter",
           "Log lines dropped whole because the output was slower than the node.", s->log.lines_dropped);
    single(out, "log_write_errors_total", "counter", NULL, s->log.write_errors);
    single(out, "server_resets_total", "counter", "Resets sent to the servers of denied flows.",
           s->resets.sent);
    single(out, "server_reset_errors_total", "counter", NULL, s->resets.errors);
    single(out, "control_clients", "gauge", "Clients of the control socket connected now.", s->control.clients);
    single(out, "control_lines_dropped_total", "counter",
           "Decision lines an observer of the control socket missed: its buffer was full.",
           s->control.lines_dropped);
}

/* ---- the control socket's status object ---- */

static void status_decisions(const ei_counters *sum, FILE *out)
{
    uint64_t allowed = 0, denied = 0;
    for (int r = 1; r < EI_REASON_COUNT; r++) {
        if (ei_reason_allows((ei_reason)r))
            allowed += sum->decisions[r];
        else
            denied += sum->decisions[r];
    }
    fprintf(out, "\"decisions\":{\"allowed\":%llu,\"denied\":%llu,\"by_reason\":{",
            (unsigned long long)allowed, (unsigned long long)denied);
    const char *sep = "";
    for (int r = 1; r < EI_REASON_COUNT; r++) {
        if (sum->decisions[r] == 0)
            continue;
        fprintf(out, "%s\"%s\":%llu", sep, ei_reason_name((ei_reason)r), (unsigned long long)sum->decisions[r]);
        sep = ",";
    }
    fputs("}}", out);
}

void ei_prom_status(const ei_prom_snapshot *s, FILE *out)
{
    /* every string here is one of our own names: nothing to escape */
    fprintf(out, "{\"mode\":\"%s\",\"rules_generation\":%llu,\"reload_failures\":%llu,\"queues\":[",
            ei_mode_name(s->mode), (unsigned long long)s->generation, (unsigned long long)s->reload_failures);
    for (size_t i = 0; i < s->nqueues; i++)
        fprintf(out, "%s{\"queue\":%u,\"packets\":%llu,\"verdicts\":%llu}", i ? "," : "", s->queues[i].queue,
                (unsigned long long)s->queues[i].nfq.queued, (unsigned long long)s->queues[i].nfq.verdicts);
    fputs("],", out);
    status_decisions(&s->sum, out);
    fprintf(out, ",\"held_packets\":%llu,\"flows\":%llu,\"log_lines_dropped\":%llu,"
                 "\"control\":{\"clients\":%llu,\"observers\":%llu,\"lines_dropped\":%llu}",
            (unsigned long long)s->sum.held, (unsigned long long)s->sum.flows,
            (unsigned long long)s->log.lines_dropped, (unsigned long long)s->control.clients,
            (unsigned long long)s->control.observers, (unsigned long long)s->control.lines_dropped);
    if (s->has_view)
        fprintf(out, ",\"pods\":%llu,\"kube_synced\":%s", (unsigned long long)s->view.pods,
                !s->has_watch || s->watch.synced ? "true" : "false");
    fputc('}', out);
}
