/* ei_rules_parse on the input as a rules file, and ei_name_normalize on the input (and on
 * the last word of each line, so names that the rules mention are looked up).
 *
 * Checks what policy.h promises: errors are reported once each, in line order, and a file
 * with any error gives no set; a set always has its "default" policy; a normalized name is
 * in the grammar, lower-case, without a trailing dot, and normalizes to itself; a refusal
 * leaves an empty string. Every name that normalizes is looked up in the set (ports 443,
 * 80 and one from the input), and so are a few source and destination addresses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress_inspector/policy.h"
#include "fuzz.h"


enum { MAX_LINES_LOOKED_UP = 64 };

typedef struct {
    unsigned count;
    unsigned last_line;
    unsigned lines; /* lines in the file */
} errors_seen;

static void on_error(void *ctx, unsigned line, const char *message)
{
    errors_seen *e = ctx;
    CHECK(message != NULL && message[0] != '\0');
    CHECK(strlen(message) < 1024);
    CHECK(line >= 1 && line <= e->lines);
    CHECK(line >= e->last_line);
    e->last_line = line;
    e->count++;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Normalizes bytes and checks the result; returns true with out filled when it is a name. */
static bool normalize(const uint8_t *p, size_t n, char out[EI_NAME_MAX + 1], size_t *out_len)
{
    ei_reason r = ei_name_normalize(p, n, out, out_len);
    if (r != EI_REASON_NONE) {
        CHECK(r == EI_REASON_EMPTY_NAME || r == EI_REASON_INVALID_NAME);
        CHECK(out[0] == '\0' && *out_len == 0);
        return false;
    }
    CHECK(*out_len >= 1 && *out_len <= EI_NAME_MAX);
    CHECK(strlen(out) == *out_len);
    CHECK(out[0] != '.' && out[*out_len - 1] != '.');
    size_t label = 0;
    for (size_t i = 0; i < *out_len; i++) {
        if (out[i] == '.') {
            CHECK(label > 0);
            label = 0;
        } else {
            CHECK(name_char(out[i]));
            label++;
            CHECK(label <= 63);
        }
    }
    char again[EI_NAME_MAX + 1];
    size_t again_len = 0;
    CHECK(ei_name_normalize((const uint8_t *)out, *out_len, again, &again_len) == EI_REASON_NONE);
    CHECK(again_len == *out_len && memcmp(again, out, again_len) == 0);
    return true;
}

static void check_match(ei_match m, unsigned lines)
{
    if (m.rule == NULL)
        return;
    CHECK(m.line >= 1 && m.line <= lines);
    CHECK(strlen(m.rule) <= 4096);
}

static void lookups(const ei_policy_set *set, const char *name, size_t len, uint16_t port,
                    unsigned lines)
{
    static const char *const sources[] = { "10.244.0.10", "10.244.7.10", "fd00:10:244::10",
                                           "fd00:10:244:7::10", "0.0.0.0", "::" };
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        ei_addr src;
        CHECK(ei_addr_parse(sources[i], &src));
        const ei_policy *pol = ei_policy_for_source(set, &src);
        CHECK(pol != NULL && ei_policy_name(pol) != NULL);
        check_match(ei_policy_match_name(pol, name, len, 443), lines);
        check_match(ei_policy_match_name(pol, name, len, 80), lines);
        check_match(ei_policy_match_name(pol, name, len, port), lines);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    errors_seen e = { 0, 0, 0 };
    for (size_t i = 0; i < size; i++)
        if (data[i] == '\n')
            e.lines++;
    if (size > 0 && data[size - 1] != '\n')
        e.lines++;

    unsigned nerrors = 12345;
    ei_policy_set *set = ei_rules_parse(text, size, on_error, &e, &nerrors);
    CHECK(nerrors == e.count);
    CHECK((set == NULL) == (nerrors > 0));

    char name[EI_NAME_MAX + 1];
    size_t name_len = 0;
    uint16_t port = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 443;
    if (normalize(data, size, name, &name_len) && set != NULL)
        lookups(set, name, name_len, port, e.lines);

    if (set == NULL)
        return 0;
    CHECK(ei_policy_set_policies(set) >= 1);
    ei_addr any;
    CHECK(ei_addr_parse("10.244.0.10", &any));
    const ei_policy *def = ei_policy_for_source(set, &any);
    CHECK(def != NULL);

    /* The last word of every line (an allow entry's argument, usually). */
    size_t pos = 0;
    for (unsigned line = 0; line < MAX_LINES_LOOKED_UP && pos < size; line++) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : size;
        size_t start = end;
        while (start > pos && data[start - 1] != ' ' && data[start - 1] != '\t')
            start--;
        size_t n = end - start;
        if (n > 0 && data[start + n - 1] == '\r')
            n--;
        /* "*.example.com" as a name: look up what it stands for below. */
        if (n > 2 && data[start] == '*' && data[start + 1] == '.') {
            start += 2;
            n -= 2;
        }
        if (normalize(data + start, n, name, &name_len))
            lookups(set, name, name_len, port, e.lines);
        pos = end + 1;
    }

    static const char *const dsts[] = { "203.0.113.250", "203.0.113.10", "2001:db8::250",
                                        "0.0.0.0", "255.255.255.255", "::", "ffff::ffff" };
    for (size_t i = 0; i < sizeof dsts / sizeof dsts[0]; i++) {
        ei_addr dst;
        CHECK(ei_addr_parse(dsts[i], &dst));
        check_match(ei_policy_match_address(def, &dst, 22), e.lines);
        check_match(ei_policy_match_address(def, &dst, port), e.lines);
    }
    ei_policy_set_free(set);
    return 0;
}
