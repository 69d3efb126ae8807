/* The /metrics text, pinned: a snapshot with a distinct value in every counter renders
 * exactly the golden file (tests/golden/metrics.prom), so a renamed metric, a lost label
 * or a counter wired to the wrong field fails here. EI_GOLDEN_UPDATE=1 rewrites the file
 * (then read the diff before committing it). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/prom.h"
#include "unit.h"

static const char *golden_path;

/* Every uint64_t of the struct gets base + its index, so that no two are equal. */
static void fill(void *p, size_t size, uint64_t base)
{
    uint64_t *v = p;
    for (size_t i = 0; i < size / sizeof *v; i++)
        v[i] = base + i;
}

static char *render(size_t *len)
{
    ei_prom_queue queues[2] = { { .queue = 0 }, { .queue = 1 } };
    fill(&queues[0].nfq, sizeof queues[0].nfq, 100);
    fill(&queues[1].nfq, sizeof queues[1].nfq, 200);
    queues[0].kernel_known = true;
    queues[0].kernel_queue_dropped = 7;
    queues[0].kernel_user_dropped = 8;
    ei_prom_snapshot s = { .queues = queues, .nqueues = 2, .has_resolver = true,
                           .mode = EI_MODE_MONITOR, .generation = 3, .reload_failures = 2 };
    fill(&s.sum, sizeof s.sum, 1000);
    fill(&s.cache, sizeof s.cache, 5000);
    fill(&s.resolver, sizeof s.resolver, 6000);
    fill(&s.log, sizeof s.log, 7000);
    fill(&s.resets, sizeof s.resets, 8000);
    s.has_view = s.has_watch = true;
    fill(&s.view, sizeof s.view, 9000);
    s.watch.synced = true;
    fill(&s.watch.pods, sizeof s.watch - offsetof(ei_kube_stats, pods), 9100);
    fill(&s.control, sizeof s.control, 9200);
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (out == NULL)
        return NULL;
    ei_prom_render(&s, out);
    fclose(out);
    return text;
}

static void test_matches_golden(void)
{
    size_t len = 0;
    char *text = render(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    if (getenv("EI_GOLDEN_UPDATE") != NULL) {
        FILE *f = fopen(golden_path, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fwrite(text, 1, len, f);
        fclose(f);
    }
    FILE *f = fopen(golden_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char *want = calloc(1, len + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    size_t got = fread(want, 1, len + 1, f);
    fclose(f);
    CU_ASSERT_EQUAL(got, len);
    if (got == len && memcmp(want, text, len) != 0) {
        /* say where, so the failure is readable */
        size_t i = 0, line = 1;
        for (; i < len && want[i] == text[i]; i++)
            line += text[i] == '\n';
        fprintf(stderr, "metrics text differs from %s at line %zu\n", golden_path, line);
        CU_FAIL("metrics text differs from the golden file");
    }
    free(want);
    free(text);
}

/* Every sample line is NAME{LABELS} VALUE or NAME VALUE, and every metric has a TYPE. */
static void test_well_formed(void)
{
    size_t len = 0;
    char *text = render(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    char *save = NULL;
    unsigned samples = 0;
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            CU_ASSERT(strncmp(line, "# HELP egress_inspector_", 24) == 0 ||
                      strncmp(line, "# TYPE egress_inspector_", 24) == 0);
            continue;
        }
        CU_ASSERT(strncmp(line, "egress_inspector_", 17) == 0);
        char *space = strrchr(line, ' ');
        CU_ASSERT_PTR_NOT_NULL_FATAL(space);
        char *end;
        (void)strtod(space + 1, &end);
        CU_ASSERT(*end == '\0');
        samples++;
    }
    CU_ASSERT(samples > 100);
    free(text);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_prom GOLDEN_FILE\n");
        return 2;
    }
    golden_path = argv[1];
    static const ei_unit_case cases[] = {
        EI_CASE(test_matches_golden),
        EI_CASE(test_well_formed),
    };
    EI_SUITE("prom", cases);
    return ei_unit_run();
}
