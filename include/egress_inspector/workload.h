/* Workloads as Kubernetes knows them: a pod, its labels and its namespace's labels, found
 * by the pod's address. Policies select workloads by these labels (`namespaces` and
 * `pods` lines, ClusterNetworkPolicy subjects); the view that maps addresses to pods is
 * built from `kubectl get -o json` lists (--pods, --namespaces) or from the API server's
 * watch (--kube), and replaced as a whole when it changes. */
#ifndef EGRESS_INSPECTOR_WORKLOAD_H
#define EGRESS_INSPECTOR_WORKLOAD_H

#include "egress_inspector/common.h"
#include "egress_inspector/selector.h"

typedef struct {
    const char *namespace_name;
    const char *name;
    const char *uid;
    const ei_label *labels;    /* the pod's */
    size_t nlabels;
    const ei_label *ns_labels; /* its namespace's, kubernetes.io/metadata.name included */
    size_t nns_labels;
} ei_workload;

/* A pod view: every pod of the node (or of the lists given) that is a workload, by
 * address. Immutable once built; shared read-only by every thread. */
typedef struct ei_workloads ei_workloads;

/* The pod that has address a, NULL when none has it (or two running pods claim it: the
 * view then knows no pod there, rather than guess). */
EI_MUST_USE const ei_workload *ei_workloads_find(const ei_workloads *view, const ei_addr *a);

#endif
