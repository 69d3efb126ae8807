/* The pod view: which pod has which address, with its labels and its namespace's (see
 * egress_inspector/workload.h). Built whole from pod and namespace objects in the API's
 * JSON shape, from files (--pods, --namespaces: what `kubectl get -o json` prints) or from
 * the watch (kube/watch.c), and never changed after. */
#ifndef EI_KUBE_VIEW_H
#define EI_KUBE_VIEW_H

#include <json-c/json.h>
#include <stdio.h>

#include "egress_inspector/workload.h"

typedef struct {
    uint64_t pods;              /* workloads: pods with an address of their own */
    uint64_t addresses;
    uint64_t namespaces;
    uint64_t host_network;      /* pods on the node's network: not workloads */
    uint64_t finished;          /* Succeeded or Failed: no longer workloads */
    uint64_t no_address;        /* not given an address yet */
    uint64_t no_namespace;      /* in a namespace the view does not know (yet) */
    uint64_t address_conflicts; /* addresses two running pods claim: no pod there */
    uint64_t malformed;         /* objects not in the API's shape */
} ei_workloads_stats;

/* Builds a view. namespaces_known: the namespaces given are all there are, and a pod in
 * any other is not a workload yet; false (no namespace list): each namespace is known by
 * its name alone (the label kubernetes.io/metadata.name). NULL when memory runs out. */
EI_MUST_USE ei_workloads *ei_workloads_build(json_object *const *pods, size_t npods,
                                             json_object *const *namespaces, size_t nnamespaces,
                                             bool namespaces_known);
void ei_workloads_free(ei_workloads *view);
const ei_workloads_stats *ei_workloads_stats_of(const ei_workloads *view);

/* The objects of a list: {"items": [...]} (a PodList, a NamespaceList, kubectl's List), a
 * bare array, or one object with metadata. *out (freed by the caller) receives them,
 * borrowed from root. SIZE_MAX when root is none of these, or memory runs out. */
EI_MUST_USE size_t ei_kube_items(json_object *root, json_object ***out);

/* Reads --pods and --namespaces files (ns_path may be NULL). NULL with every problem
 * written to err. */
EI_MUST_USE ei_workloads *ei_workloads_load(const char *pods_path, const char *ns_path, FILE *err);

#endif
