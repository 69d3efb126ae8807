/* Rules reloads without a restart: on SIGHUP and when the rules file changes. A reload
 * that fails keeps the previous rules (and says so); one that succeeds is adopted by every
 * worker at the top of its next loop, and the old set is freed once none can read it. */
#ifndef EI_IO_RELOAD_H
#define EI_IO_RELOAD_H

#include "io/worker.h"

/* Loads path, and on success swaps it in. trigger names the cause in the log line. */
void ei_reload(ei_daemon_shared *sh, ei_worker *ws, size_t n, const char *path, const char *trigger);

/* Keeps the names of a set's tcp:// entries resolved ahead of need. */
void ei_reload_keep_resolved(ei_daemon_shared *sh, const ei_policy_set *set);

/* The rules file's directory, watched with inotify: a ConfigMap update swaps the "..data"
 * symlink beside the file, and editors replace a file by renaming over it. */
typedef struct {
    int fd;              /* < 0: no watch (inotify unavailable); SIGHUP still works */
    char base[256];      /* the file's name in its directory */
} ei_rules_watch;

void ei_rules_watch_open(ei_rules_watch *rw, const char *path);

/* After the fd polled readable: reads the events, lets a burst settle (100 ms), and says
 * whether one of them was about the rules file. */
EI_MUST_USE bool ei_rules_watch_changed(ei_rules_watch *rw);

void ei_rules_watch_close(ei_rules_watch *rw);

#endif
