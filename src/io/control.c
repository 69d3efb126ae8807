/* The control socket: one thread, one epoll loop, at most EI_CONTROL_MAX_CLIENTS
 * clients. See control.h.
 *
 * Each client slot has two halves. The control thread alone owns the socket, the request
 * being read and the bytes being written (`out`). The observer's buffer (`buf`, a byte
 * ring of whole lines) and its counters are shared with ei_control_put, under `lock`,
 * which either side holds only to copy bytes in or out: the socket is written outside
 * it, non-blocking, and a client that reads nothing only fills its own buffer. */
#include "io/control.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/clock.h"

enum {
    CHUNK = 64 * 1024, /* bytes an observer's writes take out of its buffer at once */
    ANSWER_MS = 1000,  /* how long a client may take to read its answer */
    DRAIN_MS = 1000,   /* at stop: how long observers' last lines may take */
    TAG_LISTEN = EI_CONTROL_MAX_CLIENTS, /* epoll tags: a client's slot, or these */
    TAG_WAKE,
};

typedef enum { SLOT_FREE = 0, SLOT_REQUEST, SLOT_OBSERVE, SLOT_ANSWER } slot_state;

typedef struct {
    /* the control thread's */
    int fd;
    slot_state state;
    uint64_t deadline_ns;   /* SLOT_REQUEST: of the request; SLOT_ANSWER: of its reading */
    bool reading;           /* EPOLLIN is asked for (not after the client's end of stream) */
    bool writing;           /* EPOLLOUT is asked for (the socket took no more) */
    char req[EI_CONTROL_REQUEST_MAX + 1];
    size_t req_len;
    char *out;              /* bytes being written: a chunk of buf, or an answer */
    size_t out_len, out_off;
    /* shared with ei_control_put, under lock */
    bool observing;
    char *buf;              /* EI_CONTROL_CLIENT_BUFFER bytes; [head, head + used) queued */
    size_t head, used;
    uint64_t dropping;      /* lines dropped since the last one that fit */
} slot;

struct ei_control {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;              /* the socket file made: removed at stop only if still ours */
    ino_t ino;
    int lfd, efd, epfd;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool wake_pending; /* the eventfd was written and not read yet */
    atomic_uint observers;    /* what put reads first: zero clients cost one load */
    pthread_mutex_t lock;     /* the slots' shared halves, st */
    slot slots[EI_CONTROL_MAX_CLIENTS];
    ei_control_stats st;
    pthread_mutex_t source_lock; /* src, held while a status is written */
    ei_control_source src;
    bool has_src;
};

/* ---- the observers' buffers (under lock) ---- */

static void ring_put(slot *s, const char *p, size_t n)
{
    size_t tail = (s->head + s->used) % EI_CONTROL_CLIENT_BUFFER;
    size_t run = EI_CONTROL_CLIENT_BUFFER - tail < n ? EI_CONTROL_CLIENT_BUFFER - tail : n;
    memcpy(s->buf + tail, p, run);
    memcpy(s->buf, p + run, n - run);
    s->used += n;
}

/* Queues one line for one observer, preceded by the news of the lines it missed. true
 * when its buffer was empty: the control thread may not know there is work. */
static bool offer(ei_control *c, slot *s, const char *line, size_t len)
{
    char note[80];
    size_t nlen = 0;
    if (s->dropping > 0) {
        int n = snprintf(note, sizeof note, "{\"event\":\"observe_dropped\",\"lines\":%llu}\n",
                         (unsigned long long)s->dropping);
        nlen = n > 0 ? (size_t)n : 0;
    }
    if (len + nlen > EI_CONTROL_CLIENT_BUFFER - s->used) {
        s->dropping++;
        c->st.lines_dropped++;
        return false;
    }
    bool was_empty = s->used == 0;
    ring_put(s, note, nlen);
    ring_put(s, line, len);
    s->dropping = 0;
    c->st.lines++;
    return was_empty;
}

/* Moves up to CHUNK queued bytes into out, which is empty. Returns how many. */
static size_t take_chunk(ei_control *c, slot *s)
{
    pthread_mutex_lock(&c->lock);
    size_t n = s->used < CHUNK ? s->used : CHUNK;
    for (size_t i = 0, at = s->head; i < n;) { /* at most two runs: to the end, from 0 */
        size_t run = EI_CONTROL_CLIENT_BUFFER - at < n - i ? EI_CONTROL_CLIENT_BUFFER - at : n - i;
        memcpy(s->out + i, s->buf + at, run);
        i += run;
        at = 0;
    }
    s->head = (s->head + n) % EI_CONTROL_CLIENT_BUFFER;
    s->used -= n;
    pthread_mutex_unlock(&c->lock);
    s->out_off = 0;
    s->out_len = n;
    return n;
}

void ei_control_put(ei_control *c, const char *line, size_t len)
{
    if (c == NULL || atomic_load_explicit(&c->observers, memory_order_relaxed) == 0)
        return;
    bool news = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < EI_CONTROL_MAX_CLIENTS; i++)
        if (c->slots[i].observing && offer(c, &c->slots[i], line, len))
            news = true;
    pthread_mutex_unlock(&c->lock);
    /* A buffer that held bytes already is the control thread's to empty: it writes until
     * the socket takes no more (then EPOLLOUT wakes it) or the buffer is empty. */
    if (news && !atomic_exchange(&c->wake_pending, true)) {
        uint64_t one = 1;
        ssize_t n = write(c->efd, &one, sizeof one); /* non-blocking */
        (void)n; /* a full eventfd is awake already */
    }
}

/* ---- clients (the control thread) ---- */

static void watch(ei_control *c, slot *s)
{
    struct epoll_event ev = { .events = (s->reading ? EPOLLIN | EPOLLRDHUP : 0u) | (s->writing ? EPOLLOUT : 0u),
                              .data.u32 = (uint32_t)(s - c->slots) };
    (void)epoll_ctl(c->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

static void close_slot(ei_control *c, slot *s)
{
    (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    /* what the client sent and we did not read: taken, so that it reads our last line
     * and then the end, not ECONNRESET */
    char sink[512];
    for (int i = 0; i < 8 && recv(s->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    close(s->fd);
    pthread_mutex_lock(&c->lock);
    if (s->observing) {
        s->observing = false;
        atomic_fetch_sub(&c->observers, 1);
        c->st.observers--;
    }
    char *buf = s->buf, *out = s->out;
    memset(s, 0, sizeof *s); /* under the lock: the shared half too */
    s->fd = -1;
    c->st.clients--;
    pthread_mutex_unlock(&c->lock);
    free(buf);
    free(out);
}

/* Writes what the slot has waiting until the socket takes no more. false: the slot is
 * done (an answer written whole) or gone (the client hung up): close it. */
static bool flush_slot(ei_control *c, slot *s)
{
    for (;;) {
        if (s->out_off == s->out_len && (s->state != SLOT_OBSERVE || take_chunk(c, s) == 0))
            break;
        ssize_t w = send(s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            s->out_off += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!s->writing) {
                s->writing = true;
                watch(c, s);
            }
            return true;
        } else if (w < 0 && errno != EINTR) {
            return false;
        }
    }
    if (s->writing) {
        s->writing = false;
        watch(c, s);
    }
    return s->state != SLOT_ANSWER;
}

/* Gives the slot one line to write, then closes it. */
static void answer(ei_control *c, slot *s, const char *text, size_t len)
{
    free(s->out);
    s->out = NULL;
    if (len == 0 || (s->out = malloc(len)) == NULL) {
        close_slot(c, s);
        return;
    }
    memcpy(s->out, text, len);
    s->out_len = len;
    s->out_off = 0;
    s->state = SLOT_ANSWER;
    s->deadline_ns = ei_mono_ns() + ANSWER_MS * 1000000ull;
    if (!flush_slot(c, s))
        close_slot(c, s);
}

static void answer_error(ei_control *c, slot *s, const char *what)
{
    char line[160];
    int n = snprintf(line, sizeof line, "{\"error\":\"%s\"}\n", what);
    pthread_mutex_lock(&c->lock);
    c->st.bad_requests++;
    pthread_mutex_unlock(&c->lock);
    answer(c, s, line, n > 0 ? (size_t)n : 0);
}

static void start_observing(ei_control *c, slot *s)
{
    char *buf = malloc(EI_CONTROL_CLIENT_BUFFER);
    s->out = malloc(CHUNK);
    if (buf == NULL || s->out == NULL) {
        free(buf);
        answer_error(c, s, "out of memory");
        return;
    }
    s->state = SLOT_OBSERVE;
    s->out_len = s->out_off = 0;
    pthread_mutex_lock(&c->lock);
    s->buf = buf;
    s->head = s->used = 0;
    s->dropping = 0;
    s->observing = true;
    c->st.observers++;
    atomic_fetch_add(&c->observers, 1);
    pthread_mutex_unlock(&c->lock);
}

static void answer_status(ei_control *c, slot *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        answer_error(c, s, "out of memory");
        return;
    }
    pthread_mutex_lock(&c->source_lock);
    bool has = c->has_src;
    if (has)
        c->src.status(c->src.ctx, f);
    pthread_mutex_unlock(&c->source_lock);
    fputc('\n', f);
    fclose(f);
    if (has && text != NULL)
        answer(c, s, text, len);
    else
        answer_error(c, s, "no status: the daemon is starting or stopping");
    free(text);
}

static void handle_request(ei_control *c, slot *s, size_t len)
{
    if (len > 0 && s->req[len - 1] == '\r')
        len--;
    s->req[len] = '\0';
    if (strcmp(s->req, "observe") == 0)
        start_observing(c, s);
    else if (strcmp(s->req, "status") == 0)
        answer_status(c, s);
    else
        answer_error(c, s, "unknown request: send observe or status, one line");
}

/* Reads the request line; a request cut by the client's end of stream counts too. */
static void read_request(ei_control *c, slot *s)
{
    ssize_t r = recv(s->fd, s->req + s->req_len, sizeof s->req - s->req_len, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        s->reading = false;
        watch(c, s);
        if (r < 0 || s->req_len == 0)
            close_slot(c, s);
        else
            handle_request(c, s, s->req_len);
        return;
    }
    char *nl = memchr(s->req + s->req_len, '\n', (size_t)r);
    s->req_len += (size_t)r;
    if (nl != NULL)
        handle_request(c, s, (size_t)(nl - s->req));
    else if (s->req_len == sizeof s->req)
        answer_error(c, s, "request longer than 256 bytes");
}

/* After the request: what the client sends is read and thrown away, its end of stream
 * noted (it may still read), a hang-up or an error closes it. */
static void client_event(ei_control *c, slot *s, uint32_t events)
{
    if ((events & EPOLLOUT) && !flush_slot(c, s)) {
        close_slot(c, s);
        return;
    }
    if (events & (EPOLLHUP | EPOLLERR)) {
        if (s->state != SLOT_REQUEST || !(events & EPOLLIN)) {
            close_slot(c, s);
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
        return;
    if (s->state == SLOT_REQUEST) {
        read_request(c, s);
        return;
    }
    char sink[4096];
    ssize_t r = recv(s->fd, sink, sizeof sink, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        s->reading = false;
        watch(c, s);
    }
}

static void refuse(ei_control *c, int fd)
{
    static const char line[] = "{\"error\":\"too many clients (at most 16)\"}\n";
    pthread_mutex_lock(&c->lock); /* counted first: whoever reads the line sees the count */
    c->st.refused++;
    pthread_mutex_unlock(&c->lock);
    ssize_t n = send(fd, line, sizeof line - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n; /* a new socket's buffer is empty: it fits */
    char sink[512];
    (void)recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    close(fd);
}

static void accept_clients(ei_control *c)
{
    for (;;) {
        int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a client gone before we took it */
        slot *s = NULL;
        for (size_t i = 0; i < EI_CONTROL_MAX_CLIENTS && s == NULL; i++)
            if (c->slots[i].state == SLOT_FREE)
                s = &c->slots[i];
        if (s == NULL) {
            refuse(c, fd);
            continue;
        }
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)(s - c->slots) };
        if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            continue;
        }
        s->fd = fd;
        s->state = SLOT_REQUEST;
        s->reading = true;
        s->deadline_ns = ei_mono_ns() + EI_CONTROL_REQUEST_MS * 1000000ull;
        pthread_mutex_lock(&c->lock);
        c->st.clients++;
        pthread_mutex_unlock(&c->lock);
    }
}

/* ---- the loop ---- */

/* Writes every observer's waiting lines that its socket takes. */
static void flush_observers(ei_control *c)
{
    for (size_t i = 0; i < EI_CONTROL_MAX_CLIENTS; i++) {
        slot *s = &c->slots[i];
        if (s->state == SLOT_OBSERVE && !s->writing && !flush_slot(c, s))
            close_slot(c, s);
    }
}

/* Closes the clients past their deadline; returns ms until the next one (at most 1000). */
static int expire(ei_control *c, uint64_t now)
{
    uint64_t next = now + 1000000000ull;
    for (size_t i = 0; i < EI_CONTROL_MAX_CLIENTS; i++) {
        slot *s = &c->slots[i];
        if (s->state == SLOT_REQUEST && now >= s->deadline_ns)
            answer_error(c, s, "no request within 5 s");
        if (s->state == SLOT_ANSWER && now >= s->deadline_ns)
            close_slot(c, s);
        if ((s->state == SLOT_REQUEST || s->state == SLOT_ANSWER) && s->deadline_ns < next)
            next = s->deadline_ns;
    }
    return (int)((next - now) / 1000000u) + 1;
}

/* Stopping: nothing left to write to anyone. */
static bool drained(ei_control *c)
{
    bool empty = true;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < EI_CONTROL_MAX_CLIENTS; i++) {
        const slot *s = &c->slots[i];
        if (s->state == SLOT_ANSWER || (s->state == SLOT_OBSERVE && (s->used > 0 || s->out_off < s->out_len)))
            empty = false;
    }
    pthread_mutex_unlock(&c->lock);
    return empty;
}

static void begin_stop(ei_control *c)
{
    (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->lfd, NULL);
    for (size_t i = 0; i < EI_CONTROL_MAX_CLIENTS; i++)
        if (c->slots[i].state == SLOT_REQUEST)
            close_slot(c, &c->slots[i]);
}

static void *control_main(void *arg)
{
    ei_control *c = arg;
    uint64_t drain_until = 0;
    for (;;) {
        uint64_t now = ei_mono_ns();
        int timeout = expire(c, now);
        if (drain_until == 0 && atomic_load(&c->stop)) {
            begin_stop(c);
            drain_until = now + DRAIN_MS * 1000000ull;
        }
        if (drain_until != 0 && (drained(c) || now >= drain_until))
            break;
        if (drain_until != 0 && timeout > 10)
            timeout = 10;
        struct epoll_event evs[EI_CONTROL_MAX_CLIENTS + 2];
        int n = epoll_wait(c->epfd, evs, EI_CONTROL_MAX_CLIENTS + 2, timeout);
        for (int i = 0; i < n; i++) {
            uint32_t tag = evs[i].data.u32;
            if (tag == TAG_LISTEN) {
                accept_clients(c);
            } else if (tag == TAG_WAKE) {
                uint64_t count;
                ssize_t r = read(c->efd, &count, sizeof count);
                (void)r;
                atomic_store(&c->wake_pending, false); /* before the buffers are looked at */
            } else if (tag < EI_CONTROL_MAX_CLIENTS && c->slots[tag].state != SLOT_FREE) {
                client_event(c, &c->slots[tag], evs[i].events);
            }
        }
        flush_observers(c);
    }
    for (size_t i = 0; i < EI_CONTROL_MAX_CLIENTS; i++)
        if (c->slots[i].state != SLOT_FREE)
            close_slot(c, &c->slots[i]);
    return NULL;
}

/* ---- start and stop ---- */

/* PATH exists: replaced when it is a socket nothing listens on. */
static bool replace_stale(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT; /* gone meanwhile */
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "--control: %s exists and is not a socket", path);
        return false;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        snprintf(err, errlen, "--control: socket: %s", strerror(errno));
        return false;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int rc = connect(probe, (struct sockaddr *)&sa, sizeof sa);
    int why = errno;
    close(probe);
    if (rc == 0 || why == EAGAIN) {
        snprintf(err, errlen, "--control: something listens on %s already (another daemon?)", path);
        return false;
    }
    if (why != ECONNREFUSED && why != ENOENT) {
        snprintf(err, errlen, "--control: %s: %s", path, strerror(why));
        return false;
    }
    return unlink(path) == 0 || errno == ENOENT;
}

static bool group_id(const char *group, gid_t *gid, char *err, size_t errlen)
{
    struct group gr, *found = NULL;
    char buf[4096];
    if (getgrnam_r(group, &gr, buf, sizeof buf, &found) != 0 || found == NULL) {
        snprintf(err, errlen, "--control-group: no group '%s'", group);
        return false;
    }
    *gid = gr.gr_gid;
    return true;
}

/* Binds, sets the file's owner group and mode, and only then listens: no client can
 * connect before the mode is final. */
static bool listen_at(ei_control *c, const char *path, const char *group, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    gid_t gid = 0;
    if (strlen(path) == 0 || strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "--control: a socket path is 1 to %zu bytes", sizeof sa.sun_path - 1);
        return false;
    }
    if (group != NULL && !group_id(group, &gid, err, errlen))
        return false;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->lfd < 0) {
        snprintf(err, errlen, "--control: socket: %s", strerror(errno));
        return false;
    }
    int rc = bind(c->lfd, (struct sockaddr *)&sa, sizeof sa);
    if (rc != 0 && errno == EADDRINUSE) {
        if (!replace_stale(path, err, errlen))
            return false;
        rc = bind(c->lfd, (struct sockaddr *)&sa, sizeof sa);
    }
    if (rc != 0) {
        snprintf(err, errlen, "--control: cannot bind %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if ((group != NULL && chown(path, (uid_t)-1, gid) != 0) || chmod(path, group != NULL ? 0660 : 0600) != 0 ||
        stat(path, &st) != 0 || listen(c->lfd, EI_CONTROL_MAX_CLIENTS) != 0) {
        snprintf(err, errlen, "--control: %s: %s", path, strerror(errno));
        (void)unlink(path);
        return false;
    }
    memcpy(c->path, path, strlen(path) + 1);
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    return true;
}

/* Removes the socket file if it is still the one we made. */
static void remove_file(ei_control *c)
{
    struct stat st;
    if (c->path[0] != '\0' && stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        (void)unlink(c->path);
    c->path[0] = '\0';
}

static void free_control(ei_control *c)
{
    remove_file(c);
    if (c->lfd >= 0)
        close(c->lfd);
    if (c->efd >= 0)
        close(c->efd);
    if (c->epfd >= 0)
        close(c->epfd);
    pthread_mutex_destroy(&c->source_lock);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

ei_control *ei_control_start(const char *path, const char *group, char *err, size_t errlen)
{
    ei_control *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "control: out of memory");
        return NULL;
    }
    c->lfd = c->efd = c->epfd = -1;
    for (size_t i = 0; i < EI_CONTROL_MAX_CLIENTS; i++)
        c->slots[i].fd = -1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->source_lock, NULL);
    atomic_init(&c->stop, false);
    atomic_init(&c->wake_pending, false);
    atomic_init(&c->observers, 0);
    if (!listen_at(c, path, group, err, errlen)) {
        free_control(c);
        return NULL;
    }
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = { .events = EPOLLIN, .data.u32 = TAG_LISTEN };
    struct epoll_event wev = { .events = EPOLLIN, .data.u32 = TAG_WAKE };
    if (c->efd < 0 || c->epfd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->lfd, &lev) != 0 ||
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->efd, &wev) != 0) {
        snprintf(err, errlen, "control: %s", strerror(errno));
        free_control(c);
        return NULL;
    }
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        snprintf(err, errlen, "control: cannot start its thread");
        free_control(c);
        return NULL;
    }
    return c;
}

void ei_control_set_source(ei_control *c, const ei_control_source *src)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->source_lock);
    c->has_src = src != NULL;
    if (src != NULL)
        c->src = *src;
    pthread_mutex_unlock(&c->source_lock);
}

void ei_control_get_stats(ei_control *c, ei_control_stats *out)
{
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    pthread_mutex_unlock(&c->lock);
}

void ei_control_stop(ei_control *c)
{
    if (c == NULL)
        return;
    remove_file(c); /* no new client finds it */
    atomic_store(&c->stop, true);
    uint64_t one = 1;
    ssize_t n = write(c->efd, &one, sizeof one);
    (void)n;
    pthread_join(c->thread, NULL);
    free_control(c);
}
