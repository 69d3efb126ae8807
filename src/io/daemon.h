/* `egress-inspector run`: the NFQUEUE daemon. One thread per queue, each with its own
 * pipeline and epoll loop; the main thread owns signals, reloads and the policy. */
#ifndef EI_IO_DAEMON_H
#define EI_IO_DAEMON_H

#include "egress_inspector/pipeline.h"
#include "io/audit.h"
#include "kube/view.h"
#include "kube/watch.h"

typedef struct {
    const char *rules_path;
    uint16_t queue_first;
    uint16_t queue_last;
    ei_mode mode;
    bool fail_open;
    uint32_t mark_allow;  /* packet mark bits of a flow decided allowed (or monitored) */
    uint32_t mark_deny;   /* packet mark bits of a flow decided denied */
    uint32_t queue_maxlen;
    ei_log_format log_format;
    uint64_t log_interval_ns;   /* window in which repeated denies are aggregated */
    size_t log_buffer;          /* bytes of log lines waiting for stdout's reader */
    const char *metrics_listen; /* "ADDR:PORT" for /metrics, /healthz, /readyz; NULL: none */
    const char *control_path;   /* the control socket (io/control.h); NULL: none */
    const char *control_group;  /* its group (mode 0660); NULL: root's alone (0600) */
    ei_pipeline_config pipeline;
    ei_dns_cache *dns;          /* shared by every queue; --hosts already pinned */
    const char *resolver;       /* "IP[:PORT]" of the resolver; NULL: the node's resolv.conf */
    int32_t dns_queue;          /* the queue of DNS answers to workloads; < 0: none */
    ei_workloads *view;         /* --pods, --namespaces: a fixed pod view (the daemon frees it) */
    const ei_kube_config *kube; /* --kube, --kubeconfig: the view from the API server's watch */
} ei_daemon_options;

/* Runs until SIGTERM or SIGINT. With kube, /readyz fails until the pods and namespaces
 * were listed, and until then no address is a pod's (flows wait, then workload_unknown). Returns the process exit status: 0 after a clean stop,
 * 1 when the queues cannot be bound, 2 when the rules cannot be loaded. */
EI_MUST_USE int ei_daemon_run(const ei_daemon_options *opt);

#endif
