/* The pod view (see view.h). A pod is a workload when it is on the pod network (not
 * hostNetwork), not finished (phase Succeeded or Failed), has an address
 * (status.podIPs, else status.podIP) and its namespace is known. Two pods may claim one
 * address for a while: a pod being deleted keeps its address until the kubelet tears it
 * down, and the address may then be handed to a new pod. A running pod's claim beats a
 * terminating one's (deletionTimestamp set); two claims of the same standing leave the
 * address to no pod, so that nothing is judged with another pod's policy.
 *
 * The view keeps a reference to every object it read: the labels point into them. */
#include "kube/view.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ei_workload w;
    ei_label *labels; /* the pod's, then the namespace's */
    bool terminating;
} record;

typedef struct {
    ei_addr addr;
    uint32_t rec; /* NO_REC: an empty slot; CONFLICT: claimed twice */
} slot;

#define NO_REC UINT32_MAX        /* an empty slot */
#define CONFLICT (UINT32_MAX - 1) /* claimed twice: no pod there */

struct ei_workloads {
    record *recs;
    size_t n;
    slot *slots;
    uint32_t mask;
    json_object **held; /* the objects read */
    size_t nheld;
    ei_workloads_stats st;
};

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o != NULL && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* metadata.labels into out (NULL: count only). false when they are not strings. */
static bool read_labels(json_object *labels, ei_label *out, size_t *n)
{
    *n = 0;
    if (labels == NULL)
        return true;
    if (!json_object_is_type(labels, json_type_object))
        return false;
    json_object_object_foreach(labels, k, v) {
        if (!json_object_is_type(v, json_type_string))
            return false;
        if (out != NULL) {
            out[*n].key = (ei_view){ (const uint8_t *)k, strlen(k) };
            out[*n].value = (ei_view){ (const uint8_t *)json_object_get_string(v),
                                       (size_t)json_object_get_string_len(v) };
        }
        (*n)++;
    }
    return true;
}

static uint32_t addr_hash(const ei_addr *a)
{
    return ei_hash_fold(ei_hash_bytes(0, a->bytes, 16) ^ a->family);
}

static slot *find_slot(const ei_workloads *v, const ei_addr *a)
{
    for (uint32_t i = addr_hash(a) & v->mask;; i = (i + 1) & v->mask) {
        slot *s = &v->slots[i];
        if (s->rec == NO_REC || (s->addr.family == a->family && memcmp(s->addr.bytes, a->bytes, 16) == 0))
            return s;
    }
}

static void claim(ei_workloads *v, const ei_addr *a, uint32_t rec)
{
    slot *s = find_slot(v, a);
    if (s->rec == NO_REC) {
        s->addr = *a;
        s->rec = rec;
        v->st.addresses++;
        return;
    }
    if (s->rec == CONFLICT || s->rec == rec)
        return;
    bool old_t = v->recs[s->rec].terminating, new_t = v->recs[rec].terminating;
    if (old_t && !new_t) {
        s->rec = rec; /* the address was handed on: the running pod has it */
    } else if (old_t == new_t) {
        s->rec = CONFLICT;
        v->st.address_conflicts++;
    }
}

/* The addresses of a pod, from status.podIPs (status.podIP when it is absent). At most
 * max; the count of valid ones. */
static size_t pod_addresses(json_object *status, ei_addr *out, size_t max)
{
    size_t n = 0;
    json_object *ips = get(status, "podIPs");
    if (ips != NULL && json_object_is_type(ips, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(ips) && n < max; i++) {
            const char *ip = str(json_object_array_get_idx(ips, i), "ip");
            if (ip != NULL && ei_addr_parse(ip, &out[n]))
                n++;
        }
        return n;
    }
    const char *ip = str(status, "podIP");
    if (ip != NULL && n < max && ei_addr_parse(ip, &out[n]))
        n++;
    return n;
}

/* One pod: a record, or counted as what it is. false when memory runs out. */
static bool add_pod(ei_workloads *v, json_object *pod, json_object *ns_by_name, bool namespaces_known)
{
    json_object *meta = get(pod, "metadata"), *spec = get(pod, "spec"), *status = get(pod, "status");
    const char *name = str(meta, "name"), *ns = str(meta, "namespace");
    json_object *hostnet = get(spec, "hostNetwork");
    const char *phase = str(status, "phase");
    size_t npod = 0, nns = 0;
    if (name == NULL || ns == NULL || !read_labels(get(meta, "labels"), NULL, &npod)) {
        v->st.malformed++;
        return true;
    }
    if (hostnet != NULL && json_object_get_boolean(hostnet)) {
        v->st.host_network++;
        return true;
    }
    if (phase != NULL && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)) {
        v->st.finished++;
        return true;
    }
    ei_addr addrs[8];
    size_t naddrs = pod_addresses(status, addrs, 8);
    if (naddrs == 0) {
        v->st.no_address++;
        return true;
    }
    json_object *nsobj = get(ns_by_name, ns);
    json_object *ns_labels = get(get(nsobj, "metadata"), "labels");
    if (nsobj == NULL && namespaces_known) {
        v->st.no_namespace++;
        return true;
    }
    if (!read_labels(ns_labels, NULL, &nns)) {
        v->st.malformed++;
        return true;
    }
    record *r = &v->recs[v->n];
    memset(r, 0, sizeof *r);
    r->labels = calloc(npod + nns + 1, sizeof *r->labels);
    if (r->labels == NULL)
        return false;
    (void)read_labels(get(meta, "labels"), r->labels, &npod);
    (void)read_labels(ns_labels, r->labels + npod, &nns);
    bool has_name_label = false;
    for (size_t i = 0; i < nns; i++)
        has_name_label |= r->labels[npod + i].key.len == 27 &&
                          memcmp(r->labels[npod + i].key.ptr, "kubernetes.io/metadata.name", 27) == 0;
    if (!has_name_label) /* the API sets it on every namespace; a list may lack it */
        r->labels[npod + nns++] = (ei_label){ { (const uint8_t *)"kubernetes.io/metadata.name", 27 },
                                              { (const uint8_t *)ns, strlen(ns) } };
    r->w = (ei_workload){ .namespace_name = ns, .name = name, .uid = str(meta, "uid"),
                          .labels = r->labels, .nlabels = npod,
                          .ns_labels = r->labels + npod, .nns_labels = nns };
    r->terminating = get(meta, "deletionTimestamp") != NULL;
    v->held[v->nheld++] = json_object_get(pod);
    uint32_t rec = (uint32_t)v->n++;
    v->st.pods++;
    for (size_t i = 0; i < naddrs; i++)
        claim(v, &addrs[i], rec);
    return true;
}

ei_workloads *ei_workloads_build(json_object *const *pods, size_t npods,
                                 json_object *const *namespaces, size_t nnamespaces,
                                 bool namespaces_known)
{
    uint32_t slots = 16;
    while (slots < 4 * npods * 2 + 16 && slots < (1u << 30))
        slots <<= 1; /* at most 8 addresses a pod (two in practice), load under 1/2 */
    ei_workloads *v = calloc(1, sizeof *v);
    if (v == NULL)
        return NULL;
    json_object *by_name = json_object_new_object();
    v->held = calloc(npods + 1, sizeof(json_object *)); /* the pods, and by_name */
    v->recs = calloc(npods + 1, sizeof(record));
    v->slots = malloc(slots * sizeof(slot));
    if (v->recs == NULL || v->slots == NULL || v->held == NULL || by_name == NULL) {
        json_object_put(by_name);
        ei_workloads_free(v);
        return NULL;
    }
    v->mask = slots - 1;
    for (uint32_t i = 0; i < slots; i++)
        v->slots[i].rec = NO_REC;
    for (size_t i = 0; i < nnamespaces; i++) {
        const char *name = str(get(namespaces[i], "metadata"), "name");
        if (name == NULL) {
            v->st.malformed++;
            continue;
        }
        if (json_object_object_add(by_name, name, json_object_get(namespaces[i])) != 0) {
            json_object_put(namespaces[i]);
            json_object_put(by_name);
            ei_workloads_free(v);
            return NULL;
        }
        v->st.namespaces++;
    }
    bool ok = true;
    for (size_t i = 0; i < npods && ok; i++)
        ok = add_pod(v, pods[i], by_name, namespaces_known);
    v->held[v->nheld++] = by_name; /* the namespaces whose labels the records point into */
    if (!ok) {
        ei_workloads_free(v);
        return NULL;
    }
    return v;
}

void ei_workloads_free(ei_workloads *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++)
        free(v->recs[i].labels);
    for (size_t i = 0; i < v->nheld; i++)
        json_object_put(v->held[i]);
    free(v->held);
    free(v->recs);
    free(v->slots);
    free(v);
}

const ei_workloads_stats *ei_workloads_stats_of(const ei_workloads *v)
{
    return &v->st;
}

const ei_workload *ei_workloads_find(const ei_workloads *v, const ei_addr *a)
{
    const slot *s = find_slot(v, a);
    return s->rec < CONFLICT ? &v->recs[s->rec].w : NULL;
}

size_t ei_kube_items(json_object *root, json_object ***out)
{
    *out = NULL;
    json_object *items = get(root, "items");
    if (items == NULL && json_object_is_type(root, json_type_array))
        items = root;
    if (items == NULL || !json_object_is_type(items, json_type_array)) {
        if (!json_object_is_type(root, json_type_object) || get(root, "metadata") == NULL)
            return SIZE_MAX;
        *out = malloc(sizeof(json_object *));
        if (*out == NULL)
            return SIZE_MAX;
        (*out)[0] = root;
        return 1;
    }
    size_t n = json_object_array_length(items);
    *out = calloc(n + 1, sizeof(json_object *));
    if (*out == NULL)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        (*out)[i] = json_object_array_get_idx(items, i);
    return n;
}

static json_object *read_json(const char *path, FILE *err)
{
    json_object *root = json_object_from_file(path);
    if (root == NULL)
        fprintf(err, "%s: cannot read it as JSON: %s\n", path, json_util_get_last_err());
    return root;
}

ei_workloads *ei_workloads_load(const char *pods_path, const char *ns_path, FILE *err)
{
    json_object *pods = read_json(pods_path, err);
    json_object *nss = ns_path != NULL ? read_json(ns_path, err) : NULL;
    json_object **pv = NULL, **nv = NULL;
    size_t np = pods != NULL ? ei_kube_items(pods, &pv) : SIZE_MAX;
    size_t nn = nss != NULL ? ei_kube_items(nss, &nv) : 0;
    if (pods != NULL && np == SIZE_MAX)
        fprintf(err, "%s: not a list of pods (kubectl get pods -A -o json)\n", pods_path);
    if (nss != NULL && nn == SIZE_MAX)
        fprintf(err, "%s: not a list of namespaces (kubectl get namespaces -o json)\n", ns_path);
    ei_workloads *v = NULL;
    if (np != SIZE_MAX && nn != SIZE_MAX && (ns_path == NULL || nss != NULL)) {
        v = ei_workloads_build(pv, np, nv, nn, ns_path != NULL);
        if (v == NULL)
            fprintf(err, "%s: out of memory\n", pods_path);
        else if (v->st.malformed > 0)
            fprintf(err, "%s: warning: %llu objects not in the API's shape were left out\n",
                    pods_path, (unsigned long long)v->st.malformed);
    }
    free(pv);
    free(nv);
    json_object_put(pods); /* the view holds what it uses */
    json_object_put(nss);
    return v;
}
