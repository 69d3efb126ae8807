/* `egress-inspector observe`: the decision lines a running daemon logs, as they come,
 * from its control socket; `egress-inspector status`: its counters.
 *
 * observe sends `observe`, reads one line at a time (the daemon's --log-format, json or
 * cloudevents: both are read), keeps the lines the filters match and prints them as
 * they came (--output json) or as rows of a table. It ends, with exit status 0, after
 * --count N matching lines, when the daemon closes the connection, on SIGINT or SIGTERM,
 * or when stdout is closed (a pager quit); with --follow a closed connection is not the
 * end: it reconnects every second (a daemon restarting) and goes on. A socket that is
 * not there or refuses, or an error line from the daemon: exit 1.
 *
 * Names in the lines came from the wire: the table writes their control bytes as '?',
 * so that no line can drive the terminal. */
#include "cli/observe.h"

#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "egress_inspector/common.h"

enum {
    LINE_BYTES = 64 * 1024,    /* the longest line read (the daemon's are at most 4 KiB) */
    STATUS_BYTES = 256 * 1024, /* the longest status answer read */
    RECONNECT_MS = 1000,
    STATUS_TIMEOUT_S = 5,
};

typedef enum { END_CLOSED, END_DONE, END_ERROR } stream_end;

typedef struct {
    const char *path;
    const char *verdict; /* the filters; NULL: any */
    const char *policy;
    const char *name;
    bool has_source;
    ei_addr net;
    unsigned bits;
    bool table, colour, follow;
    uint64_t count;      /* matching lines to print; 0: no limit */
} observe_options;

/* One line's fields, whichever format it came in; NULL when absent. */
typedef struct {
    const char *ts, *verdict, *reason, *policy, *mode, *src, *ns, *pod, *host;
    char dest[320];
    uint64_t count;      /* an aggregate line's repeats */
} record;

static volatile sig_atomic_t stopped;

static void on_signal(int sig)
{
    (void)sig;
    stopped = 1;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read returns, the loop ends */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is EPIPE: the end, exit 0 */
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
    (void)nanosleep(&ts, NULL); /* a signal ends it early: the caller looks */
}

/* ---- the socket ---- */

static int connect_control(const char *path, bool quiet)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "egress-inspector: --control: a socket path is at most %zu bytes\n", sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "egress-inspector: socket: %s\n", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    int why = errno;
    close(fd);
    if (quiet)
        return -1;
    if (why == ENOENT)
        fprintf(stderr, "egress-inspector: no control socket at %s: is the daemon running with "
                "--control %s?\n", path, path);
    else if (why == ECONNREFUSED)
        fprintf(stderr, "egress-inspector: nothing listens on %s (a daemon that did not stop cleanly?)\n", path);
    else if (why == EACCES)
        fprintf(stderr, "egress-inspector: %s: permission denied: the socket is its owner's (0600), "
                "or its group's too with run --control-group\n", path);
    else
        fprintf(stderr, "egress-inspector: %s: %s\n", path, strerror(why));
    return -1;
}

static bool send_all(int fd, const char *text)
{
    size_t n = strlen(text);
    while (n > 0) {
        ssize_t w = send(fd, text, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR && !stopped)
            continue;
        if (w <= 0)
            return false;
        text += w;
        n -= (size_t)w;
    }
    return true;
}

/* The daemon's lines, one at a time. */
typedef struct {
    int fd;
    size_t start, len; /* buf[start, len) is read and not yet taken */
    char buf[LINE_BYTES];
} reader;

/* The next line, newline cut, NUL-terminated. 1: *line; 0: the end of the stream;
 * -1: a signal. A line longer than the buffer is skipped, said on stderr. */
static int next_line(reader *r, char **line)
{
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->len - r->start);
        if (nl != NULL) {
            *nl = '\0';
            *line = r->buf + r->start;
            r->start = (size_t)(nl - r->buf) + 1;
            return 1;
        }
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
        if (r->len == sizeof r->buf) {
            fprintf(stderr, "egress-inspector observe: a line over %d bytes, skipped\n", LINE_BYTES);
            r->len = 0;
        }
        ssize_t got = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
        if (got < 0 && errno == EINTR && !stopped)
            continue;
        if (got < 0 && errno == EINTR)
            return -1;
        if (got <= 0)
            return 0; /* the end, or ECONNRESET: the same to a reader */
        r->len += (size_t)got;
    }
}

/* ---- a line's fields ---- */

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o != NULL && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str_of(json_object *o, const char *key)
{
    json_object *v = member(o, key);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static uint64_t uint_of(json_object *o, const char *key)
{
    json_object *v = member(o, key);
    return v != NULL && json_object_is_type(v, json_type_int) ? (uint64_t)json_object_get_int64(v) : 0;
}

/* CloudEvents (io.portarium.egress.attempt): a verdict is a deny exactly when it has a
 * denyReason (monitor mode's would-denies are "allowed" outcomes with one). */
static void read_cloudevent(json_object *o, record *r)
{
    json_object *data = member(o, "data");
    r->ts = str_of(o, "time");
    r->reason = str_of(data, "denyReason");
    r->verdict = r->reason != NULL ? "deny" : "allow";
    r->policy = str_of(data, "policy");
    r->mode = str_of(data, "enforcementMode");
    r->src = str_of(data, "workloadAddress");
    r->ns = str_of(data, "workloadNamespace");
    r->pod = str_of(data, "workloadPod");
    r->host = str_of(data, "host");
    r->count = uint_of(data, "count");
    const char *dest = str_of(data, "destination");
    snprintf(r->dest, sizeof r->dest, "%s", dest != NULL ? dest : "-");
}

/* A decision line or an aggregate line of --log-format json. */
static void read_json(json_object *o, record *r)
{
    r->ts = str_of(o, "ts");
    r->verdict = str_of(o, "verdict");
    r->reason = str_of(o, "reason");
    r->policy = str_of(o, "policy");
    r->mode = str_of(o, "mode");
    r->src = str_of(o, "src");
    r->ns = str_of(o, "namespace");
    r->pod = str_of(o, "pod");
    r->host = str_of(o, "host");
    r->count = uint_of(o, "count");
    const char *dst = str_of(o, "dst");
    unsigned port = (unsigned)uint_of(o, "dport");
    if (r->host != NULL)
        snprintf(r->dest, sizeof r->dest, "%s:%u", r->host, port);
    else if (dst != NULL && strchr(dst, ':') != NULL)
        snprintf(r->dest, sizeof r->dest, "[%s]:%u", dst, port);
    else if (dst != NULL)
        snprintf(r->dest, sizeof r->dest, "%s:%u", dst, port);
    else
        snprintf(r->dest, sizeof r->dest, "-");
}

/* false: not a line about decisions. */
static bool read_record(json_object *o, record *r)
{
    memset(r, 0, sizeof *r);
    if (member(o, "specversion") != NULL && member(o, "data") != NULL) {
        read_cloudevent(o, r);
        return true;
    }
    const char *event = str_of(o, "event");
    if (event == NULL || (strcmp(event, "decision") != 0 && strcmp(event, "decisions_aggregated") != 0))
        return false;
    read_json(o, r);
    return true;
}

/* NAME is the line's policy, or the policy of its "policy/rule" (ClusterNetworkPolicy). */
static bool policy_matches(const char *want, const char *have)
{
    size_t n = strlen(want);
    return have != NULL && strncmp(have, want, n) == 0 && (have[n] == '\0' || have[n] == '/');
}

static bool matches(const observe_options *o, const record *r)
{
    if (o->verdict != NULL && (r->verdict == NULL || strcmp(r->verdict, o->verdict) != 0))
        return false;
    if (o->policy != NULL && !policy_matches(o->policy, r->policy))
        return false;
    if (o->has_source) {
        ei_addr a;
        if (r->src == NULL || !ei_addr_parse(r->src, &a) || a.family != o->net.family)
            return false;
        ei_addr_clear_host_bits(&a, o->bits);
        if (!ei_addr_equal(&a, &o->net))
            return false;
    }
    return o->name == NULL || (r->host != NULL && fnmatch(o->name, r->host, FNM_CASEFOLD) == 0);
}

/* ---- output ---- */

/* A cell: src (NULL: "-") with every control byte written as '?'. */
static const char *cell(char *out, size_t size, const char *src)
{
    snprintf(out, size, "%s", src != NULL ? src : "-");
    for (char *p = out; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return out;
}

#define ROW "%-12s  %s%-7s%s  %-24s  %-14s  %-28s  %-36s  %s\n"

static void print_header(void)
{
    printf(ROW, "TIME", "", "VERDICT", "", "REASON", "POLICY", "SOURCE", "DESTINATION", "MODE");
}

static void print_row(const observe_options *o, const record *r)
{
    char when[16] = "-", reason[96], policy[96], source[320], dest[320], mode[32], verdict[16];
    if (r->ts != NULL && strlen(r->ts) >= 23 && r->ts[10] == 'T') /* HH:MM:SS.mmm of RFC 3339 */
        snprintf(when, sizeof when, "%.12s", r->ts + 11);
    char text[96];
    if (r->count > 0) { /* an aggregate line: the repeats of one kind */
        snprintf(text, sizeof text, "%s x%llu", r->reason != NULL ? r->reason : "-", (unsigned long long)r->count);
        cell(reason, sizeof reason, text);
    } else {
        cell(reason, sizeof reason, r->reason);
    }
    if (r->ns != NULL && r->pod != NULL) {
        char who[320];
        snprintf(who, sizeof who, "%s/%s", r->ns, r->pod);
        cell(source, sizeof source, who);
    } else {
        cell(source, sizeof source, r->src);
    }
    cell(verdict, sizeof verdict, r->verdict);
    bool deny = r->verdict != NULL && strcmp(r->verdict, "deny") == 0;
    printf(ROW, when, o->colour ? (deny ? "\033[31m" : "\033[32m") : "", verdict, o->colour ? "\033[0m" : "",
           reason, cell(policy, sizeof policy, r->policy), source, cell(dest, sizeof dest, r->dest),
           cell(mode, sizeof mode, r->mode));
}

/* false: stdout is gone. */
static bool emit_line(const char *line)
{
    fputs(line, stdout);
    fputc('\n', stdout);
    return fflush(stdout) == 0;
}

/* One line from the daemon. false: the end (--count reached, stdout gone). */
static bool take_line(const observe_options *o, const char *line, json_object *obj, uint64_t *printed)
{
    if (obj == NULL) {
        fprintf(stderr, "egress-inspector observe: a line that is not JSON, skipped\n");
        return true;
    }
    const char *event = str_of(obj, "event");
    if (event != NULL && strcmp(event, "observe_dropped") == 0) { /* the stream's, not a decision */
        fprintf(stderr, "egress-inspector observe: %llu lines dropped here: this reader was slower "
                "than the daemon\n", (unsigned long long)uint_of(obj, "lines"));
        return o->table || emit_line(line);
    }
    record r;
    if (!read_record(obj, &r) || !matches(o, &r))
        return true;
    if (o->table) {
        print_row(o, &r);
        if (fflush(stdout) != 0)
            return false;
    } else if (!emit_line(line)) {
        return false;
    }
    return o->count == 0 || ++*printed < o->count;
}

/* Observes over one connection, which it closes. */
static stream_end stream(const observe_options *o, int fd, uint64_t *printed)
{
    static reader r;
    r.fd = fd;
    r.start = r.len = 0;
    stream_end end = END_CLOSED;
    bool first = true;
    /* A daemon that turns us away (too many clients) may close before the request is
     * sent: its error line is read all the same. */
    if (!send_all(fd, "observe\n") && stopped) {
        close(fd);
        return END_DONE;
    }
    for (;;) {
        char *line;
        int got = next_line(&r, &line);
        if (got <= 0) {
            end = got == 0 && !stopped ? END_CLOSED : END_DONE;
            break;
        }
        json_object *obj = json_tokener_parse(line);
        const char *error = first ? str_of(obj, "error") : NULL;
        first = false;
        if (error != NULL) {
            fprintf(stderr, "egress-inspector: the daemon at %s says: %s\n", o->path, error);
            json_object_put(obj);
            end = END_ERROR;
            break;
        }
        bool more = take_line(o, line, obj, printed);
        json_object_put(obj);
        if (!more || stopped) {
            end = END_DONE;
            break;
        }
    }
    close(fd);
    return end;
}

static int run_observe(const observe_options *o)
{
    int fd = connect_control(o->path, false);
    if (fd < 0)
        return 1;
    if (o->table) {
        print_header();
        fflush(stdout);
    }
    uint64_t printed = 0;
    for (;;) {
        stream_end end = stream(o, fd, &printed);
        if (end == END_ERROR)
            return 1;
        if (end == END_DONE || !o->follow)
            return 0;
        fprintf(stderr, "egress-inspector observe: the daemon closed the connection; reconnecting\n");
        while (!stopped && (fd = connect_control(o->path, true)) < 0)
            sleep_ms(RECONNECT_MS);
        if (stopped)
            return 0;
        fprintf(stderr, "egress-inspector observe: reconnected\n");
    }
}

/* ---- status ---- */

static int run_status(const char *path)
{
    static char answer[STATUS_BYTES];
    int fd = connect_control(path, false);
    if (fd < 0)
        return 1;
    struct timeval tv = { STATUS_TIMEOUT_S, 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t len = 0;
    (void)send_all(fd, "status\n"); /* failed: a refusal may be waiting all the same */
    ssize_t got;
    while (len < sizeof answer - 1 && (got = read(fd, answer + len, sizeof answer - 1 - len)) > 0)
        len += (size_t)got;
    close(fd);
    answer[len] = '\0';
    json_object *obj = json_tokener_parse(answer);
    const char *error = str_of(obj, "error");
    int status = 0;
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        fprintf(stderr, "egress-inspector: no status from %s%s\n", path, len == 0 ? " (no answer)" : "");
        status = 1;
    } else if (error != NULL) {
        fprintf(stderr, "egress-inspector: the daemon at %s says: %s\n", path, error);
        status = 1;
    } else {
        fputs(answer, stdout);
        if (answer[len - 1] != '\n')
            fputc('\n', stdout);
    }
    json_object_put(obj);
    return status;
}

/* ---- options ---- */

static bool parse_count(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        fprintf(stderr, "egress-inspector observe: --count: '%s' is not a number\n", text);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_source(const char *text, observe_options *o)
{
    if (ei_prefix_parse(text, strlen(text), &o->net, &o->bits) != EI_PREFIX_OK) {
        fprintf(stderr, "egress-inspector observe: --source: '%s' is not a CIDR (ADDR or ADDR/LEN, "
                "no host bits)\n", text);
        return false;
    }
    o->has_source = true;
    return true;
}

static const char observe_usage[] =
    "usage: egress-inspector observe --control PATH [--verdict allow|deny] [--policy NAME]\n"
    "                                [--source CIDR] [--name GLOB] [--output json|table]\n"
    "                                [--count N] [--follow]\n"
    "       egress-inspector status --control PATH\n"
    "observe: the decision lines the daemon (run --control PATH) logs, as they happen.\n"
    "  --verdict; --policy NAME (a policy, or one rule of it: policy/rule); --source CIDR\n"
    "  (the flow's source in it); --name GLOB (fnmatch on the SNI or Host): all match.\n"
    "  --output json: the lines unchanged (the default when stdout is no terminal);\n"
    "  table: aligned columns, coloured on a terminal unless NO_COLOR is set.\n"
    "  Ends (exit 0) after --count N matching lines, when the daemon closes, on SIGINT\n"
    "  or when stdout closes; --follow reconnects each second after a close instead.\n"
    "  Lines the daemon dropped for this reader (it read too slowly) are announced by\n"
    "  {\"event\":\"observe_dropped\",\"lines\":N}.\n"
    "status: the daemon's mode, rules generation, queues and counters, one JSON object.\n"
    "Exit status: 0; 1 no daemon at PATH or an error from it; 2 bad options.\n";

/* 1: parsed; 0: bad (said); -1: --help (printed); for the options both commands take
 * and observe's own. */
static int parse_options(int argc, char **argv, observe_options *o, int *output)
{
    enum { OPT_CONTROL = 256, OPT_VERDICT, OPT_POLICY, OPT_SOURCE, OPT_NAME, OPT_OUTPUT, OPT_COUNT, OPT_FOLLOW };
    static const struct option opts[] = {
        { "control", required_argument, NULL, OPT_CONTROL },
        { "verdict", required_argument, NULL, OPT_VERDICT },
        { "policy", required_argument, NULL, OPT_POLICY },
        { "source", required_argument, NULL, OPT_SOURCE },
        { "name", required_argument, NULL, OPT_NAME },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "count", required_argument, NULL, OPT_COUNT },
        { "follow", no_argument, NULL, OPT_FOLLOW },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONTROL: o->path = optarg; break;
        case OPT_VERDICT:
            if (strcmp(optarg, "allow") != 0 && strcmp(optarg, "deny") != 0) {
                fprintf(stderr, "egress-inspector observe: --verdict: '%s' is neither allow nor deny\n", optarg);
                return 0;
            }
            o->verdict = optarg;
            break;
        case OPT_POLICY: o->policy = optarg; break;
        case OPT_NAME: o->name = optarg; break;
        case OPT_SOURCE:
            if (!parse_source(optarg, o))
                return 0;
            break;
        case OPT_OUTPUT:
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0) {
                fprintf(stderr, "egress-inspector observe: --output: '%s' is neither json nor table\n", optarg);
                return 0;
            }
            *output = strcmp(optarg, "table") == 0;
            break;
        case OPT_COUNT:
            if (!parse_count(optarg, &o->count))
                return 0;
            break;
        case OPT_FOLLOW: o->follow = true; break;
        case 'h': fputs(observe_usage, stdout); return -1;
        default: return 0;
        }
    }
    if (o->path == NULL || optind != argc) {
        fprintf(stderr, "egress-inspector %s: --control PATH is required (the daemon's run --control)\n", argv[0]);
        return 0;
    }
    return 1;
}

int ei_cmd_observe(int argc, char **argv)
{
    bool status = strcmp(argv[0], "status") == 0;
    observe_options o = { 0 };
    int output = -1; /* -1: by stdout, 0 json, 1 table */
    int parsed = parse_options(argc, argv, &o, &output);
    if (parsed <= 0)
        return parsed < 0 ? 0 : 2;
    if (status) {
        if (o.verdict || o.policy || o.name || o.has_source || o.count || o.follow || output == 1) {
            fprintf(stderr, "egress-inspector status: only --control PATH\n");
            return 2;
        }
        return run_status(o.path);
    }
    bool tty = isatty(STDOUT_FILENO) == 1;
    o.table = output < 0 ? tty : output == 1;
    o.colour = o.table && tty && getenv("NO_COLOR") == NULL;
    catch_signals();
    return run_observe(&o);
}
