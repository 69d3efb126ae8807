/* The control socket: every observer gets every line in order, a client that never
 * reads only loses its own lines (dropped whole, counted, announced) and never slows the
 * producer, status answers through the source, bad requests, a 17th client and a silent
 * one are answered and closed, the socket file is 0600 and removed at stop, and stop is
 * bounded with clients still connected. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/clock.h"
#include "io/control.h"
#include "io/prom.h"
#include "unit.h"

static char dir[64], path[96];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/ei-control-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/control.sock", dir);
}

static void remove_dir(void)
{
    (void)unlink(path);
    (void)rmdir(dir);
}

static ei_control *start(void)
{
    char err[256] = "";
    ei_control *c = ei_control_start(path, NULL, err, sizeof err);
    if (c == NULL)
        fprintf(stderr, "start: %s\n", err);
    return c;
}

static int connect_to(const char *p)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int client(const char *request)
{
    int fd = connect_to(path);
    if (fd >= 0 && request != NULL && send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the end of stream or timeout_ms without a byte; returns the bytes read. */
static size_t read_all(int fd, char *buf, size_t size, int timeout_ms)
{
    size_t n = 0;
    while (n < size - 1) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, timeout_ms) <= 0)
            break;
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

static ei_control_stats stats_of(ei_control *c)
{
    ei_control_stats st;
    ei_control_get_stats(c, &st);
    return st;
}

/* Waits (at most 2 s) until the control thread counts that many observers / clients. */
static bool wait_for(ei_control *c, uint64_t observers, uint64_t clients)
{
    for (int i = 0; i < 400; i++) {
        ei_control_stats st = stats_of(c);
        if (st.observers == observers && st.clients == clients)
            return true;
        usleep(5000);
    }
    return false;
}

static size_t line_of(char *out, size_t size, unsigned i)
{
    int n = snprintf(out, size, "{\"event\":\"decision\",\"n\":%u,\"pad\":\"%0*u\"}\n", i, (int)(i % 97) + 60, i);
    return (size_t)n;
}

static void test_socket_file(void)
{
    make_dir();
    ei_control *c = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT(S_ISSOCK(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    /* a second server on a socket something listens on: refused, the first unharmed */
    char err[256] = "";
    CU_ASSERT_PTR_NULL(ei_control_start(path, NULL, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "listens"));
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    ei_control_stop(c);
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0); /* removed */
    /* a socket file left by a daemon that died: nothing listens, replaced */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    c = start();
    CU_ASSERT_PTR_NOT_NULL(c);
    ei_control_stop(c);
    /* a file that is no socket is never replaced */
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    CU_ASSERT_PTR_NULL(ei_control_start(path, NULL, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a socket"));
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_PTR_NULL(ei_control_start(path, "no-such-group-here", err, sizeof err));
    /* with a group: 0660, that group */
    (void)unlink(path);
    c = ei_control_start(path, "root", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0660);
    CU_ASSERT_EQUAL(st.st_gid, 0);
    ei_control_stop(c);
    remove_dir();
}

static void test_two_observers_get_every_line(void)
{
    make_dir();
    ei_control *c = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ei_control_put(c, "{\"before\":1}\n", 13); /* no observer: costs nothing, goes nowhere */
    int a = client("observe\n"), b = client("observe\r\n");
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    CU_ASSERT_FATAL(wait_for(c, 2, 2));
    enum { N = 2000 };
    static char want[N * 200], got_a[N * 200], got_b[N * 200];
    size_t wlen = 0;
    for (unsigned i = 0; i < N; i++) {
        char line[200];
        size_t n = line_of(line, sizeof line, i);
        ei_control_put(c, line, n);
        memcpy(want + wlen, line, n);
        wlen += n;
    }
    size_t la = read_all(a, got_a, sizeof got_a, 500), lb = read_all(b, got_b, sizeof got_b, 500);
    CU_ASSERT_EQUAL(la, wlen);
    CU_ASSERT_EQUAL(lb, wlen);
    CU_ASSERT(memcmp(got_a, want, wlen) == 0);
    CU_ASSERT(memcmp(got_b, want, wlen) == 0);
    ei_control_stats st = stats_of(c);
    CU_ASSERT_EQUAL(st.lines, 2 * N);
    CU_ASSERT_EQUAL(st.lines_dropped, 0);
    /* one hangs up: the other goes on */
    close(a);
    CU_ASSERT(wait_for(c, 1, 1));
    ei_control_put(c, "{\"after\":1}\n", 12);
    CU_ASSERT_EQUAL(read_all(b, got_b, sizeof got_b, 500), 12);
    close(b);
    ei_control_stop(c);
    remove_dir();
}

/* Sums the observe_dropped notes and counts the other lines of text. */
static void tally(const char *text, uint64_t *dropped, uint64_t *lines, bool *whole)
{
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        if (nl == NULL) {
            *whole = false;
            return;
        }
        unsigned long long n;
        if (sscanf(p, "{\"event\":\"observe_dropped\",\"lines\":%llu}", &n) == 1)
            *dropped += n;
        else if (strncmp(p, "{\"event\":\"decision\",\"n\":", 24) == 0)
            (*lines)++;
        else
            *whole = false;
        p = nl + 1;
    }
}

static void test_stalled_observer_never_blocks_the_producer(void)
{
    make_dir();
    ei_control *c = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int stalled = client("observe\n");
    CU_ASSERT_FATAL(stalled >= 0);
    CU_ASSERT_FATAL(wait_for(c, 1, 1));
    enum { N = 100000 };
    uint64_t t0 = ei_mono_ns();
    for (unsigned i = 0; i < N; i++) { /* ~20 MB into a 1 MiB buffer and a socket nobody reads */
        char line[200];
        size_t n = line_of(line, sizeof line, i);
        ei_control_put(c, line, n);
    }
    double secs = (double)(ei_mono_ns() - t0) / 1e9;
    fprintf(stderr, "  100000 lines with a stalled observer: %.3f s\n", secs);
    CU_ASSERT(secs < 1.0);
    ei_control_stats st = stats_of(c);
    CU_ASSERT(st.lines_dropped > 0);
    CU_ASSERT_EQUAL(st.lines + st.lines_dropped, N);
    /* now it reads: whole lines, and a note for every run it missed */
    static char text[4u << 20];
    size_t len = read_all(stalled, text, sizeof text, 300);
    static const char last[] = "{\"event\":\"decision\",\"n\":-1}\n";
    ei_control_put(c, last, strlen(last)); /* fits now: after the last note */
    len += read_all(stalled, text + len, sizeof text - len, 300);
    uint64_t dropped = 0, lines = 0;
    bool whole = true;
    tally(text, &dropped, &lines, &whole);
    st = stats_of(c);
    CU_ASSERT(whole);
    CU_ASSERT_EQUAL(dropped, st.lines_dropped);
    CU_ASSERT_EQUAL(lines, st.lines);
    CU_ASSERT_EQUAL(lines, N - dropped + 1);
    close(stalled);
    ei_control_stop(c);
    remove_dir();
}

static void write_status(void *ctx, FILE *out)
{
    fprintf(out, "{\"mode\":\"%s\"}", (const char *)ctx);
}

static void test_status(void)
{
    make_dir();
    ei_control *c = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char buf[4096];
    int fd = client("status\n");
    read_all(fd, buf, sizeof buf, 2000);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"error\"")); /* no source yet */
    close(fd);
    ei_control_source src = { write_status, (void *)(uintptr_t)"monitor" };
    ei_control_set_source(c, &src);
    fd = client("status\n");
    shutdown(fd, SHUT_WR); /* a client that is done sending still gets its answer */
    read_all(fd, buf, sizeof buf, 2000);
    CU_ASSERT_STRING_EQUAL(buf, "{\"mode\":\"monitor\"}\n");
    close(fd);
    fd = client("status"); /* a request ended by the end of stream, not a newline */
    shutdown(fd, SHUT_WR);
    read_all(fd, buf, sizeof buf, 2000);
    CU_ASSERT_STRING_EQUAL(buf, "{\"mode\":\"monitor\"}\n");
    close(fd);
    ei_control_set_source(c, NULL);
    fd = client("status\n");
    read_all(fd, buf, sizeof buf, 2000);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"error\""));
    close(fd);
    ei_control_stop(c);
    remove_dir();
}

/* The status object the daemon gives, from a snapshot: JSON, with its fields. */
static void test_status_object(void)
{
    ei_prom_queue queues[2] = { { .queue = 0 }, { .queue = 1 } };
    queues[0].nfq.queued = 10;
    queues[0].nfq.verdicts = 10;
    ei_prom_snapshot s = { .queues = queues, .nqueues = 2, .mode = EI_MODE_ENFORCE, .generation = 3,
                           .has_view = true, .has_watch = true };
    s.sum.decisions[EI_REASON_ALLOWED_NAME] = 4;
    s.sum.decisions[EI_REASON_NAME_NOT_ALLOWED] = 2;
    s.sum.held = 1;
    s.view.pods = 7;
    s.watch.synced = true;
    s.control.clients = 2;
    s.control.lines_dropped = 5;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    ei_prom_status(&s, f);
    fclose(f);
    json_object *o = json_tokener_parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_object *v, *d, *q;
    CU_ASSERT(json_object_object_get_ex(o, "mode", &v) && strcmp(json_object_get_string(v), "enforce") == 0);
    CU_ASSERT(json_object_object_get_ex(o, "rules_generation", &v) && json_object_get_int(v) == 3);
    CU_ASSERT(json_object_object_get_ex(o, "queues", &q) && json_object_array_length(q) == 2);
    CU_ASSERT(json_object_object_get_ex(o, "decisions", &d));
    CU_ASSERT(json_object_object_get_ex(d, "allowed", &v) && json_object_get_int(v) == 4);
    CU_ASSERT(json_object_object_get_ex(d, "denied", &v) && json_object_get_int(v) == 2);
    CU_ASSERT(json_object_object_get_ex(d, "by_reason", &v) && json_object_object_length(v) == 2);
    CU_ASSERT(json_object_object_get_ex(o, "held_packets", &v) && json_object_get_int(v) == 1);
    CU_ASSERT(json_object_object_get_ex(o, "pods", &v) && json_object_get_int(v) == 7);
    CU_ASSERT(json_object_object_get_ex(o, "kube_synced", &v) && json_object_get_boolean(v));
    CU_ASSERT(json_object_object_get_ex(o, "control", &v) && json_object_object_get_ex(v, "lines_dropped", &d) &&
              json_object_get_int(d) == 5);
    json_object_put(o);
    free(text);
}

static void test_bad_requests(void)
{
    make_dir();
    ei_control *c = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char buf[1024], req[400];
    int fd = client("hello\n");
    CU_ASSERT(read_all(fd, buf, sizeof buf, 2000) > 0); /* an error line, then the end */
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "{\"error\":\"unknown request"));
    close(fd);
    memset(req, 'x', 300);
    req[300] = '\0';
    fd = client(req);
    read_all(fd, buf, sizeof buf, 2000);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "longer than 256"));
    close(fd);
    memset(req, 'x', 256); /* 256 bytes and the newline: not too long, just unknown */
    req[256] = '\n';
    req[257] = '\0';
    fd = client(req);
    read_all(fd, buf, sizeof buf, 2000);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "unknown request"));
    close(fd);
    CU_ASSERT(wait_for(c, 0, 0));
    CU_ASSERT_EQUAL(stats_of(c).bad_requests, 3);
    ei_control_stop(c);
    remove_dir();
}

static void test_seventeenth_client_refused_and_silent_one_closed(void)
{
    make_dir();
    ei_control *c = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int fds[EI_CONTROL_MAX_CLIENTS];
    for (int i = 0; i < EI_CONTROL_MAX_CLIENTS; i++) {
        fds[i] = client(NULL); /* connected, saying nothing */
        CU_ASSERT_FATAL(fds[i] >= 0);
    }
    CU_ASSERT_FATAL(wait_for(c, 0, EI_CONTROL_MAX_CLIENTS));
    char buf[1024];
    int extra = client(NULL); /* turned away at once: a request might find it closed */
    CU_ASSERT_FATAL(extra >= 0);
    read_all(extra, buf, sizeof buf, 2000);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "too many clients"));
    close(extra);
    CU_ASSERT_EQUAL(stats_of(c).refused, 1);
    /* the silent ones are told and closed after 5 s */
    uint64_t t0 = ei_mono_ns();
    read_all(fds[0], buf, sizeof buf, 7000);
    double secs = (double)(ei_mono_ns() - t0) / 1e9;
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "no request within 5 s"));
    CU_ASSERT(secs > 3.0 && secs < 6.5);
    for (int i = 0; i < EI_CONTROL_MAX_CLIENTS; i++)
        close(fds[i]);
    CU_ASSERT(wait_for(c, 0, 0));
    ei_control_stop(c);
    remove_dir();
}

static void test_stop_with_clients_connected(void)
{
    make_dir();
    ei_control *c = start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int stalled = client("observe\n"), reader = client("observe\n"), silent = client(NULL);
    CU_ASSERT_FATAL(wait_for(c, 2, 3));
    for (unsigned i = 0; i < 20000; i++) { /* fills the stalled one's socket and buffer */
        char line[200];
        size_t n = line_of(line, sizeof line, i);
        ei_control_put(c, line, n);
    }
    uint64_t t0 = ei_mono_ns();
    ei_control_stop(c); /* bounded: the stalled one is given up on */
    double secs = (double)(ei_mono_ns() - t0) / 1e9;
    CU_ASSERT(secs < 2.0);
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(path, &st), 0);
    static char text[8u << 20];
    read_all(reader, text, sizeof text, 2000); /* it got lines, then the end */
    CU_ASSERT(strlen(text) > 0);
    CU_ASSERT_EQUAL(read(silent, text, 16), 0);
    close(stalled);
    close(reader);
    close(silent);
    CU_ASSERT_EQUAL(connect_to(path), -1);
    remove_dir();
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_socket_file),
        EI_CASE(test_two_observers_get_every_line),
        EI_CASE(test_stalled_observer_never_blocks_the_producer),
        EI_CASE(test_status),
        EI_CASE(test_status_object),
        EI_CASE(test_bad_requests),
        EI_CASE(test_seventeenth_client_refused_and_silent_one_closed),
        EI_CASE(test_stop_with_clients_connected),
    };
    EI_SUITE("control", cases);
    return ei_unit_run();
}
