#include "io/rules_load.h"

#include "egress_inspector/cnp.h"
#include "egress_inspector/portarium.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    FILE *err;
} error_ctx;

static void print_error(void *ctx, unsigned line, const char *message)
{
    error_ctx *ec = ctx;
    fprintf(ec->err, "%s:%u: %s\n", ec->path, line, message);
}

char *ei_rules_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= EI_RULES_FILE_MAX) {
            free(buf);
            buf = NULL;
            errno = EFBIG;
            break;
        }
        char *bigger = realloc(buf, cap * 2 + 1);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            errno = ENOMEM;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf != NULL && ferror(f)) {
        int saved = errno;
        free(buf);
        buf = NULL;
        errno = saved;
    }
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    *len = n;
    return buf;
}

ei_policy_set *ei_rules_load(const char *path, FILE *err, unsigned *errors)
{
    size_t len = 0;
    char *text = ei_rules_read(path, &len);
    if (text == NULL) {
        fprintf(err, "%s: cannot read rules: %s\n", path, strerror(errno));
        if (errors != NULL)
            *errors = 1;
        return NULL;
    }
    error_ctx ec = { path, err };
    unsigned n = 0;
    /* ClusterNetworkPolicy first: its JSON starts as Portarium's does. */
    ei_policy_set *set = ei_cnp_sniff(text, len)           ? ei_cnp_parse(path, text, len, err, &n)
                         : ei_policy_json_sniff(text, len) ? ei_policy_json_parse(path, text, len, err, &n)
                                                           : ei_rules_parse(text, len, print_error, &ec, &n);
    free(text);
    if (errors != NULL)
        *errors = n;
    return set;
}
