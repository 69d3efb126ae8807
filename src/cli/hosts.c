/* The hosts file is read twice: once to check every line, once to pin, so that a file
 * with an error leaves the cache as it was. */
#include "cli/hosts.h"

#include <errno.h>
#include <string.h>

#include "egress_inspector/policy.h"

enum { MAX_LINE = 4096, MAX_NAMES = 1000000 };

/* The next blank-separated word of *rest, NUL-terminated in place; NULL at the end. */
static char *next_word(char **rest)
{
    char *s = *rest + strspn(*rest, " \t");
    if (*s == '\0')
        return NULL;
    size_t n = strcspn(s, " \t");
    *rest = s[n] != '\0' ? s + n + 1 : s + n;
    s[n] = '\0';
    return s;
}

/* Checks (pin == false) or pins (pin == true) every binding in f. Returns the number of
 * names, or -1 after reporting the errors. */
static long each_binding(FILE *f, const char *path, ei_dns_cache *cache, bool pin, FILE *err)
{
    char line[MAX_LINE + 2];
    unsigned lineno = 0, errors = 0;
    long names = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fprintf(err, "%s:%u: line longer than %d bytes\n", path, lineno, MAX_LINE);
            return -1;
        }
        line[strcspn(line, "#\r\n")] = '\0';
        char *rest = line;
        const char *addr_text = next_word(&rest);
        if (addr_text == NULL)
            continue;
        ei_addr addr;
        if (!ei_addr_parse(addr_text, &addr)) {
            fprintf(err, "%s:%u: '%s' is not an IPv4 or IPv6 address\n", path, lineno, addr_text);
            errors++;
            continue;
        }
        unsigned on_line = 0;
        for (const char *name; (name = next_word(&rest)) != NULL; on_line++) {
            char norm[EI_NAME_MAX + 1];
            size_t len;
            if (ei_name_normalize((const uint8_t *)name, strlen(name), norm, &len) != EI_REASON_NONE) {
                fprintf(err, "%s:%u: '%s' is not a hostname\n", path, lineno, name);
                errors++;
                continue;
            }
            if (++names > MAX_NAMES) {
                fprintf(err, "%s:%u: more than %d names\n", path, lineno, MAX_NAMES);
                return -1;
            }
            if (pin && !ei_dns_cache_pin(cache, norm, &addr)) {
                fprintf(err, "%s: out of memory\n", path);
                return -1;
            }
        }
        if (on_line == 0) {
            fprintf(err, "%s:%u: an address without a name\n", path, lineno);
            errors++;
        }
    }
    if (ferror(f)) {
        fprintf(err, "%s: read error: %s\n", path, strerror(errno));
        return -1;
    }
    return errors > 0 ? -1 : names;
}

long ei_hosts_load(const char *path, ei_dns_cache *cache, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(err, "egress-inspector: %s: %s\n", path, strerror(errno));
        return -1;
    }
    long n = each_binding(f, path, cache, false, err);
    if (n >= 0) {
        rewind(f);
        n = each_binding(f, path, cache, true, err);
    }
    fclose(f);
    return n;
}
