/* List and watch the node's pods and the namespaces (see watch.h). One thread per
 * resource, each with its own curl handle; the two stores and the stats share one lock,
 * under which every view is built, so that views are published in the order of the
 * changes they hold. */
#include "kube/watch.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/view.h"

enum {
    WATCH_SECONDS = 300,             /* a watch's timeoutSeconds: then resumed */
    LIST_LIMIT = 500,                /* objects per page of a list */
    MAX_BODY = 64 << 20,             /* a list page, or one watch event */
    BACKOFF_FIRST_MS = 500,
    BACKOFF_MAX_MS = 30000,
};

typedef enum { R_PODS = 0, R_NAMESPACES, R_COUNT } resource_kind;

typedef enum { DONE_OK, DONE_GONE, DONE_FAILED, DONE_STOPPED } outcome;

struct ei_kube_watch;

typedef struct {
    struct ei_kube_watch *w;
    resource_kind kind;
    char path[600];          /* /api/v1/pods?fieldSelector=... */
    json_object *store;      /* key -> object (pods: namespace/name; namespaces: name) */
    char rv[64];             /* the resourceVersion to resume from ("" : list first) */
    bool listed;
    pthread_t thread;
    bool started;
    /* the request in flight */
    char *buf;
    size_t len;
    bool too_big;
    outcome event_outcome;   /* a watch's ERROR event */
    bool changed;
} resource;

struct ei_kube_watch {
    ei_kube_config cfg;
    ei_kube_publish_fn publish;
    void *ctx;
    resource res[R_COUNT];
    pthread_mutex_t lock;    /* the stores, the stats, the token seen */
    pthread_cond_t wake;     /* a backoff sleep ends early when stopping */
    atomic_bool stop;
    ei_kube_stats st;
    char token_seen[4096];
};

/* ---- configuration ---- */

static bool read_small_file(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    size_t n = fread(out, 1, size - 1, f);
    bool whole = feof(f);
    fclose(f);
    if (!whole)
        return false;
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    return true;
}

bool ei_kube_config_node(ei_kube_config *cfg, const char *node, char *err, size_t errlen)
{
    const char *n = node != NULL ? node : getenv("NODE_NAME");
    if (n == NULL || *n == '\0' || strlen(n) >= sizeof cfg->node_name || strpbrk(n, "/?&=% ") != NULL) {
        snprintf(err, errlen, "the node's name is needed to watch its pods: set NODE_NAME (the "
                 "downward API's spec.nodeName) or --node-name");
        return false;
    }
    snprintf(cfg->node_name, sizeof cfg->node_name, "%s", n);
    return true;
}

bool ei_kube_config_in_cluster(ei_kube_config *cfg, const char *node, char *err, size_t errlen)
{
    static const char sa[] = "/var/run/secrets/kubernetes.io/serviceaccount";
    memset(cfg, 0, sizeof *cfg);
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || port == NULL || *host == '\0') {
        snprintf(err, errlen, "--kube auto: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are "
                 "not set (not in a pod?); use --kubeconfig FILE");
        return false;
    }
    bool v6 = strchr(host, ':') != NULL;
    snprintf(cfg->server, sizeof cfg->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    snprintf(cfg->token_file, sizeof cfg->token_file, "%s/token", sa);
    snprintf(cfg->ca_file, sizeof cfg->ca_file, "%s/ca.crt", sa);
    if (!read_small_file(cfg->token_file, cfg->token, sizeof cfg->token)) {
        snprintf(err, errlen, "--kube auto: cannot read %s: %s (automountServiceAccountToken?)",
                 cfg->token_file, strerror(errno));
        return false;
    }
    cfg->token[0] = '\0'; /* read again at every request */
    return ei_kube_config_node(cfg, node, err, errlen);
}

void ei_kube_config_clear(ei_kube_config *cfg)
{
    free(cfg->ca_data);
    cfg->ca_data = NULL;
}

/* ---- HTTP ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg);
static size_t on_stream(char *data, size_t size, size_t n, void *arg);

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    resource *r = arg;
    return atomic_load(&r->w->stop) ? 1 : 0; /* non-zero aborts the transfer */
}

/* The bearer token for this request: the file's content now (kubelet rotates it). */
static void current_token(struct ei_kube_watch *w, char *out, size_t size)
{
    if (w->cfg.token_file[0] == '\0' || !read_small_file(w->cfg.token_file, out, size))
        snprintf(out, size, "%s", w->cfg.token);
    pthread_mutex_lock(&w->lock);
    if (strcmp(out, w->token_seen) != 0) {
        if (w->token_seen[0] != '\0')
            w->st.token_changes++;
        snprintf(w->token_seen, sizeof w->token_seen, "%s", out);
    }
    pthread_mutex_unlock(&w->lock);
}

/* One GET. stream: the body is read as watch events as it comes. Returns the HTTP status,
 * or 0 when the request did not complete (connection, TLS, aborted, too big). */
static long get(resource *r, const char *url, bool stream, long timeout_s)
{
    struct ei_kube_watch *w = r->w;
    CURL *c = curl_easy_init();
    if (c == NULL)
        return 0;
    char token[4096], auth[4200];
    current_token(w, token, sizeof token);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    struct curl_slist *h2 = h != NULL ? curl_slist_append(h, "Accept: application/json") : NULL;
    if (h2 == NULL) {
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return 0;
    }
    h = h2;
    r->len = 0;
    r->too_big = false;
    r->event_outcome = DONE_OK;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, stream ? on_stream : on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
    if (w->cfg.ca_data != NULL) {
        struct curl_blob blob = { w->cfg.ca_data, strlen(w->cfg.ca_data), CURL_BLOB_COPY };
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    } else if (w->cfg.ca_file[0] != '\0') {
        curl_easy_setopt(c, CURLOPT_CAINFO, w->cfg.ca_file);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK || (stream && rc == CURLE_OPERATION_TIMEDOUT && r->event_outcome == DONE_OK))
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK && stream && r->event_outcome != DONE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status); /* stopped by an ERROR event */
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (r->too_big)
        return 0;
    return status;
}

static bool append(resource *r, const char *data, size_t n)
{
    if (r->len + n + 1 > MAX_BODY) {
        r->too_big = true;
        return false;
    }
    char *grown = realloc(r->buf, r->len + n + 1);
    if (grown == NULL) {
        r->too_big = true;
        return false;
    }
    r->buf = grown;
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return true;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    return append(arg, data, size * n) ? size * n : 0;
}

/* ---- the stores ---- */

static void key_of(resource_kind kind, json_object *obj, char *out, size_t size)
{
    json_object *meta = NULL, *name = NULL, *ns = NULL;
    out[0] = '\0';
    if (!json_object_object_get_ex(obj, "metadata", &meta) || !json_object_object_get_ex(meta, "name", &name) ||
        !json_object_is_type(name, json_type_string))
        return;
    if (kind == R_PODS && json_object_object_get_ex(meta, "namespace", &ns) && json_object_is_type(ns, json_type_string))
        snprintf(out, size, "%s/%s", json_object_get_string(ns), json_object_get_string(name));
    else if (kind == R_NAMESPACES)
        snprintf(out, size, "%s", json_object_get_string(name));
}

static void version_of(json_object *obj, char *rv, size_t size)
{
    json_object *meta = NULL, *v = NULL;
    if (json_object_object_get_ex(obj, "metadata", &meta) && json_object_object_get_ex(meta, "resourceVersion", &v) &&
        json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0 &&
        (size_t)json_object_get_string_len(v) < size)
        snprintf(rv, size, "%s", json_object_get_string(v));
}

/* Builds a view of both stores and publishes it. Under the lock. */
static void publish_view(struct ei_kube_watch *w)
{
    if (!w->res[R_PODS].listed || !w->res[R_NAMESPACES].listed)
        return; /* until both are listed, the daemon's empty view stands (nothing known) */
    size_t n[R_COUNT];
    json_object **objs[R_COUNT] = { NULL, NULL };
    bool ok = true;
    for (int k = 0; k < R_COUNT; k++) {
        n[k] = 0;
        objs[k] = calloc((size_t)json_object_object_length(w->res[k].store) + 1, sizeof(json_object *));
        ok = ok && objs[k] != NULL;
        if (objs[k] == NULL)
            continue;
        json_object_object_foreach(w->res[k].store, key, val) {
            (void)key;
            objs[k][n[k]++] = val;
        }
    }
    ei_workloads *view = ok ? ei_workloads_build(objs[R_PODS], n[R_PODS], objs[R_NAMESPACES], n[R_NAMESPACES], true)
                            : NULL;
    free(objs[R_PODS]);
    free(objs[R_NAMESPACES]);
    if (view == NULL) {
        w->st.errors++; /* out of memory: the last view stands, and the next change retries */
        return;
    }
    w->st.synced = true;
    w->st.views++;
    w->st.workloads = ei_workloads_stats_of(view)->pods;
    w->st.pods = (uint64_t)json_object_object_length(w->res[R_PODS].store);
    w->st.namespaces = (uint64_t)json_object_object_length(w->res[R_NAMESPACES].store);
    w->publish(w->ctx, view);
}

/* One watch event (a whole line). Under the lock. */
static void apply_event(resource *r, const char *line, size_t len)
{
    struct ei_kube_watch *w = r->w;
    json_tokener *tok = json_tokener_new();
    json_object *ev = tok != NULL ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
    json_tokener_free(tok);
    json_object *type = NULL, *obj = NULL;
    if (ev == NULL || !json_object_object_get_ex(ev, "type", &type) || !json_object_is_type(type, json_type_string) ||
        !json_object_object_get_ex(ev, "object", &obj)) {
        w->st.errors++;
        r->event_outcome = DONE_FAILED; /* a stream we cannot read: start over from rv */
        json_object_put(ev);
        return;
    }
    const char *t = json_object_get_string(type);
    char key[600];
    key_of(r->kind, obj, key, sizeof key);
    if (strcmp(t, "ERROR") == 0) {
        json_object *code = NULL;
        bool gone = json_object_object_get_ex(obj, "code", &code) && json_object_get_int(code) == 410;
        r->event_outcome = gone ? DONE_GONE : DONE_FAILED;
        if (!gone)
            w->st.errors++;
    } else if (strcmp(t, "BOOKMARK") == 0) {
        version_of(obj, r->rv, sizeof r->rv);
        w->st.bookmarks++;
    } else if ((strcmp(t, "ADDED") == 0 || strcmp(t, "MODIFIED") == 0 || strcmp(t, "DELETED") == 0) &&
               key[0] != '\0') {
        if (t[0] == 'D')
            json_object_object_del(r->store, key);
        else if (json_object_object_add(r->store, key, json_object_get(obj)) != 0)
            w->st.errors++;
        version_of(obj, r->rv, sizeof r->rv);
        w->st.events++;
        r->changed = true;
    } else {
        w->st.errors++; /* an event of no known type, or an object without a name */
    }
    json_object_put(ev);
}

static size_t on_stream(char *data, size_t size, size_t n, void *arg)
{
    resource *r = arg;
    size_t total = size * n;
    if (!append(r, data, total))
        return 0;
    struct ei_kube_watch *w = r->w;
    pthread_mutex_lock(&w->lock);
    size_t start = 0;
    for (size_t i = 0; i < r->len && r->event_outcome == DONE_OK; i++) {
        if (r->buf[i] != '\n')
            continue;
        if (i > start)
            apply_event(r, r->buf + start, i - start);
        start = i + 1;
    }
    if (r->changed) /* one view for the events of this read */
        publish_view(w);
    r->changed = false;
    pthread_mutex_unlock(&w->lock);
    memmove(r->buf, r->buf + start, r->len - start);
    r->len -= start;
    return r->event_outcome == DONE_OK ? total : 0; /* an ERROR event ends the watch */
}

/* ---- the loop ---- */

static outcome list(resource *r)
{
    struct ei_kube_watch *w = r->w;
    json_object *store = json_object_new_object();
    if (store == NULL)
        return DONE_FAILED;
    char cont[2048] = "", rv[64] = "";
    for (;;) {
        char url[4096];
        char *esc = cont[0] != '\0' ? curl_easy_escape(NULL, cont, 0) : NULL;
        snprintf(url, sizeof url, "%s%s%slimit=%d%s%s", w->cfg.server, r->path, strchr(r->path, '?') ? "&" : "?",
                 LIST_LIMIT, esc != NULL ? "&continue=" : "", esc != NULL ? esc : "");
        curl_free(esc);
        long status = get(r, url, false, 60);
        if (atomic_load(&w->stop)) {
            json_object_put(store);
            return DONE_STOPPED;
        }
        json_object *root = status == 200 ? json_tokener_parse(r->buf != NULL ? r->buf : "") : NULL;
        json_object **items = NULL;
        size_t n = root != NULL ? ei_kube_items(root, &items) : SIZE_MAX;
        json_object *meta = NULL, *c = NULL;
        pthread_mutex_lock(&w->lock);
        if (status == 401 || status == 403)
            w->st.unauthorized++;
        if (n == SIZE_MAX) {
            w->st.errors++;
            pthread_mutex_unlock(&w->lock);
            free(items);
            json_object_put(root);
            json_object_put(store);
            return status == 410 ? DONE_GONE : DONE_FAILED;
        }
        pthread_mutex_unlock(&w->lock);
        for (size_t i = 0; i < n; i++) {
            char key[600];
            key_of(r->kind, items[i], key, sizeof key);
            if (key[0] != '\0' && json_object_object_add(store, key, json_object_get(items[i])) != 0)
                n = SIZE_MAX - 1; /* out of memory */
        }
        free(items);
        version_of(root, rv, sizeof rv);
        cont[0] = '\0';
        if (json_object_object_get_ex(root, "metadata", &meta) && json_object_object_get_ex(meta, "continue", &c) &&
            json_object_is_type(c, json_type_string) && (size_t)json_object_get_string_len(c) < sizeof cont)
            snprintf(cont, sizeof cont, "%s", json_object_get_string(c));
        json_object_put(root);
        if (n == SIZE_MAX - 1) {
            json_object_put(store);
            return DONE_FAILED;
        }
        if (cont[0] == '\0')
            break;
    }
    pthread_mutex_lock(&w->lock);
    json_object_put(r->store);
    r->store = store;
    snprintf(r->rv, sizeof r->rv, "%s", rv);
    r->listed = true;
    w->st.lists++;
    publish_view(w);
    pthread_mutex_unlock(&w->lock);
    return DONE_OK;
}

static outcome watch(resource *r)
{
    struct ei_kube_watch *w = r->w;
    char url[4096];
    snprintf(url, sizeof url, "%s%s%swatch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
             w->cfg.server, r->path, strchr(r->path, '?') ? "&" : "?", WATCH_SECONDS, r->rv);
    pthread_mutex_lock(&w->lock);
    w->st.watches++;
    pthread_mutex_unlock(&w->lock);
    long status = get(r, url, true, WATCH_SECONDS + 30);
    if (atomic_load(&w->stop))
        return DONE_STOPPED;
    if (r->event_outcome != DONE_OK)
        return r->event_outcome;
    pthread_mutex_lock(&w->lock);
    if (status == 401 || status == 403)
        w->st.unauthorized++;
    if (status != 200)
        w->st.errors++;
    pthread_mutex_unlock(&w->lock);
    return status == 200 ? DONE_OK : status == 410 ? DONE_GONE : DONE_FAILED;
}

/* Sleeps ms, or less when stopping. */
static void pause_ms(struct ei_kube_watch *w, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (!atomic_load(&w->stop) && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&w->lock);
}

static void *run(void *arg)
{
    resource *r = arg;
    struct ei_kube_watch *w = r->w;
    unsigned backoff = BACKOFF_FIRST_MS;
    bool need_list = true;
    while (!atomic_load(&w->stop)) {
        outcome o = need_list ? list(r) : watch(r);
        if (o == DONE_STOPPED)
            break;
        pthread_mutex_lock(&w->lock);
        if (!need_list && o != DONE_STOPPED)
            w->st.watch_restarts++;
        if (o == DONE_GONE && !need_list)
            w->st.relists++;
        pthread_mutex_unlock(&w->lock);
        if (o == DONE_OK) {
            need_list = false; /* a list done, or a watch that timed out: watch on */
            backoff = BACKOFF_FIRST_MS;
        } else if (o == DONE_GONE) {
            need_list = true; /* too old a version: list afresh, at once */
        } else {
            pause_ms(w, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            if (r->rv[0] == '\0')
                need_list = true;
        }
    }
    return NULL;
}

ei_kube_watch *ei_kube_watch_start(const ei_kube_config *cfg, ei_kube_publish_fn publish, void *ctx,
                                   char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { /* before any thread uses curl */
        snprintf(err, errlen, "libcurl cannot start");
        return NULL;
    }
    struct ei_kube_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = *cfg;
    w->cfg.ca_data = cfg->ca_data != NULL ? strdup(cfg->ca_data) : NULL;
    w->publish = publish;
    w->ctx = ctx;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    atomic_init(&w->stop, false);
    snprintf(w->res[R_PODS].path, sizeof w->res[R_PODS].path,
             "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", cfg->node_name);
    snprintf(w->res[R_NAMESPACES].path, sizeof w->res[R_NAMESPACES].path, "/api/v1/namespaces");
    for (int k = 0; k < R_COUNT; k++) {
        w->res[k].w = w;
        w->res[k].kind = (resource_kind)k;
        w->res[k].store = json_object_new_object();
        if (w->res[k].store == NULL) {
            snprintf(err, errlen, "out of memory");
            ei_kube_watch_stop(w);
            return NULL;
        }
    }
    for (int k = 0; k < R_COUNT; k++) {
        if (pthread_create(&w->res[k].thread, NULL, run, &w->res[k]) != 0) {
            snprintf(err, errlen, "cannot start the watch threads");
            ei_kube_watch_stop(w);
            return NULL;
        }
        w->res[k].started = true;
    }
    return w;
}

void ei_kube_watch_stop(ei_kube_watch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->stop, true);
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    for (int k = 0; k < R_COUNT; k++) {
        if (w->res[k].started)
            pthread_join(w->res[k].thread, NULL);
        json_object_put(w->res[k].store);
        free(w->res[k].buf);
    }
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w->cfg.ca_data);
    free(w);
}

void ei_kube_watch_stats(ei_kube_watch *w, ei_kube_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->st;
    pthread_mutex_unlock(&w->lock);
}
