/* Reloads and the file watcher. See reload.h. */
#include "io/reload.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "io/clock.h"
#include "io/jsonw.h"
#include "io/log.h"
#include "io/rules_load.h"

typedef struct {
    const char **names;
    size_t n, cap;
} name_list;

static void collect_name(void *ctx, const char *name)
{
    name_list *l = ctx;
    const char **names = ei_grow(l->names, sizeof *names, l->n, &l->cap, 16);
    if (names == NULL)
        return; /* the names left out are looked up when a flow needs them */
    l->names = names;
    l->names[l->n++] = name;
}

void ei_reload_keep_resolved(ei_daemon_shared *sh, const ei_policy_set *set)
{
    name_list l = { NULL, 0, 0 };
    ei_policy_set_each_tcp_name(set, collect_name, &l);
    ei_resolver_keep(sh->resolver, l.names, l.n);
    free(l.names);
}

/* Waits (up to 5 s) until every worker runs generation gen. */
static bool all_adopted(const ei_worker *ws, size_t n, uint64_t gen)
{
    for (int tries = 0; tries < 500; tries++) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += atomic_load(&ws[i].adopted) >= gen;
        if (done == n)
            return true;
        struct timespec ms = { 0, 10000000L }; /* 10 ms */
        nanosleep(&ms, NULL);
    }
    return false;
}

void ei_reload(ei_daemon_shared *sh, ei_worker *ws, size_t n, const char *path, const char *trigger)
{
    unsigned errors = 0;
    ei_policy_set *set = ei_rules_load(path, stderr, &errors);
    const char *why = NULL;
    if (set != NULL && ei_policy_set_selects(set) && atomic_load(&sh->view) == NULL) {
        fprintf(stderr, "egress-inspector: %s: policy '%s' selects pods by labels, and the daemon "
                "runs without a pod view (--kube or --pods)\n", path, ei_policy_set_first_selecting(set));
        ei_policy_set_free(set);
        set = NULL;
        errors++;
        why = "selects pods without a pod view";
    }
    ei_jsonw w;
    ei_log_begin_event(&w, "reload", ei_wall_ns());
    ei_jsonw_str(&w, "rules", path);
    ei_jsonw_lit(&w, "trigger", trigger);
    if (set == NULL) {
        uint64_t failures = atomic_fetch_add(&sh->reload_failures, 1) + 1;
        ei_jsonw_lit(&w, "result", "rejected");
        ei_jsonw_uint(&w, "errors", errors);
        if (why != NULL)
            ei_jsonw_lit(&w, "why", why);
        ei_jsonw_uint(&w, "reload_failures", failures);
        ei_jsonw_lit(&w, "kept", "previous rules");
        ei_jsonw_end(&w);
        (void)ei_logring_put(sh->log, w.buf, w.len); /* a dropped line is counted */
        return;
    }
    ei_reload_keep_resolved(sh, set);
    ei_policy_set *old = atomic_exchange(&sh->policy, set);
    uint64_t gen = atomic_fetch_add(&sh->generation, 1) + 1;
    ei_workers_wake(ws, n);
    bool freed = all_adopted(ws, n, gen);
    if (freed)
        ei_policy_set_free(old);
    ei_jsonw_lit(&w, "result", "applied");
    ei_jsonw_uint(&w, "generation", gen);
    ei_jsonw_uint(&w, "policies", ei_policy_set_policies(set));
    ei_jsonw_uint(&w, "entries", ei_policy_set_entries(set));
    if (!freed) /* a worker is stuck: keep the old set rather than free it under it */
        ei_jsonw_bool(&w, "old_rules_leaked", true);
    ei_jsonw_end(&w);
    (void)ei_logring_put(sh->log, w.buf, w.len);
}

void ei_rules_watch_open(ei_rules_watch *rw, const char *path)
{
    char dir_buf[4096], base_buf[4096];
    snprintf(dir_buf, sizeof dir_buf, "%s", path);
    snprintf(base_buf, sizeof base_buf, "%s", path);
    snprintf(rw->base, sizeof rw->base, "%s", basename(base_buf));
    rw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (rw->fd >= 0 && inotify_add_watch(rw->fd, dirname(dir_buf), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
        close(rw->fd);
        rw->fd = -1;
    }
}

bool ei_rules_watch_changed(ei_rules_watch *rw)
{
    bool ours = false;
    for (int round = 0; round < 2; round++) {
        char ev_buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t len;
        while ((len = read(rw->fd, ev_buf, sizeof ev_buf)) > 0)
            for (char *e = ev_buf; e < ev_buf + len;) {
                struct inotify_event ev;
                memcpy(&ev, e, sizeof ev);
                const char *name = e + sizeof ev;
                if (ev.len > 0 && (strcmp(name, rw->base) == 0 || strcmp(name, "..data") == 0))
                    ours = true;
                e += sizeof ev + ev.len;
            }
        if (round == 0) { /* several events come with one change: let them settle */
            struct timespec settle = { 0, 100000000L }; /* 100 ms */
            nanosleep(&settle, NULL);
        }
    }
    return ours;
}

void ei_rules_watch_close(ei_rules_watch *rw)
{
    if (rw->fd >= 0)
        close(rw->fd);
    rw->fd = -1;
}
