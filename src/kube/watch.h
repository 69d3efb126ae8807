/* The API server's view of the node's pods: list, then watch, the pods of this node
 * (fieldSelector spec.nodeName) and every namespace, over HTTPS with the service
 * account's token (libcurl, in threads of its own). Each change that is applied builds a
 * new pod view (kube/view.h) and hands it to `publish`; the caller owns it from then.
 *
 * The protocol, as client-go's reflector speaks it: a list gives the objects and a
 * resourceVersion; a watch from that version gives ADDED, MODIFIED, DELETED and BOOKMARK
 * events, one JSON object a line; a watch that ends is resumed from the last version seen;
 * 410 Gone (an ERROR event with code 410, or the status) means the version is too old, so
 * the resource is listed afresh. A failed request is retried with backoff (0.5 s doubling
 * to 30 s, reset by a success). The token is read again from its file at every request,
 * as kubelet rotates it. */
#ifndef EI_KUBE_WATCH_H
#define EI_KUBE_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "egress_inspector/workload.h"

typedef struct {
    char server[512];      /* https://HOST:PORT */
    char token_file[512];  /* the bearer token, read at every request ("" : token below) */
    char token[4096];
    char ca_file[512];     /* "" : ca_data, else the system's */
    char *ca_data;         /* PEM (owned) */
    char node_name[254];
} ei_kube_config;

/* --kube auto: in-cluster (KUBERNETES_SERVICE_HOST and _PORT, the service account's token
 * and CA at /var/run/secrets/kubernetes.io/serviceaccount/). --kubeconfig FILE: its
 * current context's cluster and user (token, tokenFile, certificate-authority(-data)).
 * NODE_NAME from node (NULL: $NODE_NAME). false with a reason in err. */
EI_MUST_USE bool ei_kube_config_in_cluster(ei_kube_config *cfg, const char *node, char *err, size_t errlen);
EI_MUST_USE bool ei_kube_config_file(ei_kube_config *cfg, const char *path, const char *node,
                                     char *err, size_t errlen);
void ei_kube_config_clear(ei_kube_config *cfg);
/* The node whose pods are watched: node, else $NODE_NAME. */
EI_MUST_USE bool ei_kube_config_node(ei_kube_config *cfg, const char *node, char *err, size_t errlen);

typedef struct {
    bool synced;              /* pods and namespaces listed at least once */
    uint64_t pods;            /* known now (the node's, workloads or not) */
    uint64_t namespaces;
    uint64_t workloads;       /* in the last view published */
    uint64_t lists;           /* list requests that succeeded (relists included) */
    uint64_t relists;         /* after 410 Gone */
    uint64_t watches;         /* watch requests begun */
    uint64_t watch_restarts;  /* watches that ended for any reason other than stopping */
    uint64_t events;          /* ADDED, MODIFIED, DELETED applied */
    uint64_t bookmarks;
    uint64_t errors;          /* failed requests: connection, TLS, HTTP status, bad JSON */
    uint64_t unauthorized;    /* 401 and 403 */
    uint64_t token_changes;   /* the token file's content changed */
    uint64_t views;           /* views published */
} ei_kube_stats;

typedef struct ei_kube_watch ei_kube_watch;

/* Called from a watch thread with each new view (never NULL); the callee owns it. */
typedef void (*ei_kube_publish_fn)(void *ctx, ei_workloads *view);

EI_MUST_USE ei_kube_watch *ei_kube_watch_start(const ei_kube_config *cfg, ei_kube_publish_fn publish,
                                               void *ctx, char *err, size_t errlen);
/* Stops the threads (an open request is aborted) and frees the watch. */
void ei_kube_watch_stop(ei_kube_watch *w);
void ei_kube_watch_stats(ei_kube_watch *w, ei_kube_stats *out);

#endif
