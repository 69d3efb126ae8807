/* egress-inspector suggest on the input as a decision log (json and CloudEvents lines;
 * fuzz/seeds.py makes them from the captures' expectations). The names in such a log
 * came from the wire: a compromised pod chose them.
 *
 * The first byte picks the output (even: a rules file, odd: Portarium JSON); the rest is
 * the log. Whatever it holds, suggest exits 0 and prints a suggestion that the daemon's
 * own parser takes. suggest's stderr (its summary) is silenced; EI_FUZZ_VERBOSE=1 keeps
 * it, to see why an input failed. */
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/suggest.h"
#include "egress_inspector/policy.h"
#include "egress_inspector/portarium.h"
#include "fuzz.h"

/* fd's contents from the start, NUL-terminated; NULL when memory runs out. */
static char *contents(int fd, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    CHECK(end >= 0);
    char *buf = malloc((size_t)end + 1);
    if (buf == NULL)
        return NULL;
    size_t n = 0;
    while (n < (size_t)end) {
        ssize_t r = pread(fd, buf + n, (size_t)end - n, (off_t)n);
        CHECK(r > 0);
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet = -1;
    if (quiet < 0)
        quiet = getenv("EI_FUZZ_VERBOSE") == NULL;
    if (size == 0)
        return 0;
    bool portarium = data[0] & 1;
    int in = memfd_create("log", MFD_CLOEXEC), out = memfd_create("out", MFD_CLOEXEC);
    CHECK(in >= 0 && out >= 0);
    CHECK(write(in, data + 1, size - 1) == (ssize_t)(size - 1));
    char cmd[] = "suggest", opt_from[] = "--from", from[64], opt_format[] = "--format", rules[] = "rules",
         json[] = "portarium";
    snprintf(from, sizeof from, "/proc/self/fd/%d", in);
    char *argv[] = { cmd, opt_from, from, opt_format, portarium ? json : rules, NULL }; /* getopt's: not const */

    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(saved_out >= 0 && saved_err >= 0 && null >= 0);
    CHECK(dup2(out, STDOUT_FILENO) >= 0);
    if (quiet)
        CHECK(dup2(null, STDERR_FILENO) >= 0);
    optind = 0; /* getopt afresh: each input is a new command line */
    int status = ei_cmd_suggest(5, argv);
    fflush(stdout);
    fflush(stderr);
    CHECK(dup2(saved_out, STDOUT_FILENO) >= 0 && dup2(saved_err, STDERR_FILENO) >= 0);
    close(saved_out);
    close(saved_err);
    close(null);
    close(in);

    CHECK(status == 0); /* 1: the suggestion failed its own parse, or memory ran out */
    size_t len = 0;
    char *text = contents(out, &len);
    close(out);
    if (text == NULL)
        return 0;
    CHECK(len > 0);
    unsigned errors = 0;
    FILE *err = fopen("/dev/null", "w");
    CHECK(err != NULL);
    ei_policy_set *set = portarium ? ei_policy_json_parse("suggestion", text, len, err, &errors)
                                   : ei_rules_parse(text, len, NULL, NULL, &errors);
    fclose(err);
    CHECK(set != NULL && errors == 0);
    CHECK(ei_policy_set_policies(set) >= 1);
    ei_policy_set_free(set);
    free(text);
    return 0;
}
