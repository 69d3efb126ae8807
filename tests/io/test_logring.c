/* The log ring: a stalled reader never blocks the writer of a line, lines are dropped
 * whole and counted when the ring is full, and every line that got in comes out whole,
 * in order. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/logring.h"
#include "unit.h"

static void test_stalled_reader_never_blocks_put(void)
{
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    (void)fcntl(fds[1], F_SETPIPE_SZ, 4096); /* a small pipe nobody reads */
    char err[128];
    ei_logring *r = ei_logring_start(fds[1], 16 * 1024, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    char line[100];
    memset(line, 'x', sizeof line);
    line[sizeof line - 1] = '\n';
    unsigned accepted = 0, refused = 0;
    for (int i = 0; i < 5000; i++) /* 500 kB into a 4 kB pipe and a 16 kB ring */
        ei_logring_put(r, line, sizeof line) ? accepted++ : refused++;
    /* we got here: put never waited for the reader */
    ei_logring_stats st;
    ei_logring_get_stats(r, &st);
    CU_ASSERT(refused > 0);
    CU_ASSERT_EQUAL(st.lines, accepted);
    CU_ASSERT_EQUAL(st.lines_dropped, refused);
    CU_ASSERT_EQUAL(st.bytes_dropped, (uint64_t)refused * sizeof line);
    /* shutdown with the reader still stalled is bounded, and says what was lost */
    size_t left = ei_logring_stop(r, 200);
    CU_ASSERT(left > 0);
    CU_ASSERT_EQUAL(left % sizeof line, 0); /* whole lines */
    close(fds[0]);
    close(fds[1]);
}

static void test_lines_come_out_whole_and_in_order(void)
{
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    char err[128];
    ei_logring *r = ei_logring_start(fds[1], 1000, err, sizeof err); /* wraps often */
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    FILE *in = fdopen(fds[0], "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    unsigned got = 0, next = 0;
    char buf[128];
    for (unsigned i = 0; i < 2000; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "{\"n\":%u,\"pad\":\"%.*s\"}\n", i, (int)(i % 37), "abcdefghijklmnopqrstuvwxyz0123456789");
        while (!ei_logring_put(r, line, (size_t)n)) { /* full: read some, as a reader would */
            CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(buf, sizeof buf, in));
            unsigned v;
            CU_ASSERT_EQUAL(sscanf(buf, "{\"n\":%u,", &v), 1);
            CU_ASSERT_EQUAL(v, next);
            CU_ASSERT(buf[strlen(buf) - 1] == '\n');
            next++;
            got++;
        }
    }
    CU_ASSERT_EQUAL(ei_logring_stop(r, 2000), 0);
    close(fds[1]);
    while (fgets(buf, sizeof buf, in) != NULL) {
        unsigned v;
        CU_ASSERT_EQUAL(sscanf(buf, "{\"n\":%u,", &v), 1);
        CU_ASSERT_EQUAL(v, next);
        next++;
        got++;
    }
    CU_ASSERT_EQUAL(got, 2000);
    fclose(in);
}

static void test_line_longer_than_the_ring_is_refused(void)
{
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    char err[128];
    ei_logring *r = ei_logring_start(fds[1], 64, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    char line[65];
    memset(line, 'y', sizeof line);
    CU_ASSERT_FALSE(ei_logring_put(r, line, sizeof line));
    CU_ASSERT(ei_logring_put(r, line, 64));
    CU_ASSERT_FALSE(ei_logring_put(NULL, line, 1));
    CU_ASSERT_EQUAL(ei_logring_stop(r, 1000), 0);
    char out[128];
    CU_ASSERT_EQUAL(read(fds[0], out, sizeof out), 64);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_stalled_reader_never_blocks_put),
        EI_CASE(test_lines_come_out_whole_and_in_order),
        EI_CASE(test_line_longer_than_the_ring_is_refused),
    };
    EI_SUITE("logring", cases);
    return ei_unit_run();
}
