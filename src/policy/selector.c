/* Kubernetes label selectors (see selector.h). A lexer of the same tokens as apimachinery's
 * (identifiers are runs of anything but the operators, parentheses, commas and spaces;
 * "in" and "notin" are words), then the requirements, each checked against the label
 * grammar. */
#include "egress_inspector/selector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_KEY = 253 + 1 + 63, MAX_VALUE = 63 };

typedef enum { OP_EXISTS, OP_NOT_EXISTS, OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_GT, OP_LT } op_kind;

typedef struct {
    op_kind op;
    char key[MAX_KEY + 1];
    size_t nvalues;
    char (*values)[MAX_VALUE + 1];
    long long number; /* OP_GT, OP_LT */
} requirement;

struct ei_selector {
    size_t n;
    requirement *reqs;
};

typedef struct {
    const char *s;
    size_t len, at;
    char *err;
    size_t errlen;
    bool failed;
} lexer;

static void fail(lexer *lx, const char *what)
{
    if (!lx->failed)
        snprintf(lx->err, lx->errlen, "at %zu: %s", lx->at + 1, what);
    lx->failed = true;
}

static bool special(char c)
{
    return c == '!' || c == '=' || c == ',' || c == '(' || c == ')' || c == '<' || c == '>' ||
           c == ' ' || c == '\t';
}

static void skip_space(lexer *lx)
{
    while (lx->at < lx->len && (lx->s[lx->at] == ' ' || lx->s[lx->at] == '\t'))
        lx->at++;
}

static char peek(lexer *lx)
{
    skip_space(lx);
    return lx->at < lx->len ? lx->s[lx->at] : '\0';
}

/* The next identifier (a run of non-special characters), possibly empty. */
static ei_view word(lexer *lx)
{
    skip_space(lx);
    size_t start = lx->at;
    while (lx->at < lx->len && !special(lx->s[lx->at]))
        lx->at++;
    return (ei_view){ (const uint8_t *)lx->s + start, lx->at - start };
}

static bool is_word(ei_view v, const char *w)
{
    return v.len == strlen(w) && memcmp(v.ptr, w, v.len) == 0;
}

/* A decimal integer, as '>' and '<' compare them. */
static bool number(ei_view v, long long *out)
{
    char num[24];
    char *end;
    if (v.len == 0 || v.len >= sizeof num)
        return false;
    memcpy(num, v.ptr, v.len);
    num[v.len] = '\0';
    *out = strtoll(num, &end, 10);
    return *end == '\0';
}

static bool alnum(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label name or value: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends. */
static bool name_ok(ei_view v, bool empty_ok)
{
    if (v.len == 0)
        return empty_ok;
    if (v.len > 63 || !alnum(v.ptr[0]) || !alnum(v.ptr[v.len - 1]))
        return false;
    for (size_t i = 0; i < v.len; i++)
        if (!alnum(v.ptr[i]) && v.ptr[i] != '-' && v.ptr[i] != '_' && v.ptr[i] != '.')
            return false;
    return true;
}

/* A DNS subdomain (RFC 1123): lower-case labels of [a-z0-9-], dot-separated, 253 at most. */
static bool prefix_ok(ei_view v)
{
    if (v.len == 0 || v.len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= v.len; i++) {
        uint8_t c = i < v.len ? v.ptr[i] : '.';
        if (c == '.') {
            if (label == 0 || v.ptr[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

static bool key_ok(ei_view k)
{
    const uint8_t *slash = memchr(k.ptr, '/', k.len);
    if (slash == NULL)
        return name_ok(k, false);
    size_t plen = (size_t)(slash - k.ptr);
    return prefix_ok((ei_view){ k.ptr, plen }) && name_ok((ei_view){ slash + 1, k.len - plen - 1 }, false);
}

static bool add_value(lexer *lx, requirement *r, ei_view v)
{
    if (!name_ok(v, true)) {
        fail(lx, "a value is at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends");
        return false;
    }
    char (*grown)[MAX_VALUE + 1] = realloc(r->values, (r->nvalues + 1) * sizeof *r->values);
    if (grown == NULL) {
        fail(lx, "out of memory");
        return false;
    }
    r->values = grown;
    memcpy(r->values[r->nvalues], v.ptr, v.len);
    r->values[r->nvalues++][v.len] = '\0';
    return true;
}

/* ( value [, value]... ) */
static void value_set(lexer *lx, requirement *r)
{
    if (peek(lx) != '(') {
        fail(lx, "'in' and 'notin' take a parenthesized list of values");
        return;
    }
    lx->at++;
    for (;;) {
        ei_view v = word(lx);
        if (v.len == 0) {
            fail(lx, "for 'in' and 'notin', the set of values can't be empty, nor a value");
            return;
        }
        if (!add_value(lx, r, v))
            return;
        char c = peek(lx);
        lx->at++;
        if (c == ')')
            return;
        if (c != ',') {
            fail(lx, "expected ',' or ')' in the list of values");
            return;
        }
    }
}

static void parse_requirement(lexer *lx, requirement *r)
{
    memset(r, 0, sizeof *r);
    bool negated = peek(lx) == '!';
    if (negated)
        lx->at++;
    ei_view key = word(lx);
    if (is_word(key, "in") || is_word(key, "notin")) {
        fail(lx, "'in' and 'notin' follow a key");
        return;
    }
    if (!key_ok(key)) {
        fail(lx, "a key is [prefix/]name: name 1-63 characters of [A-Za-z0-9_.-] beginning and "
                 "ending alphanumeric, prefix a lower-case DNS subdomain");
        return;
    }
    memcpy(r->key, key.ptr, key.len);
    char c = peek(lx);
    if (negated || c == ',' || c == '\0') {
        r->op = negated ? OP_NOT_EXISTS : OP_EXISTS;
        if (negated && c != ',' && c != '\0')
            fail(lx, "'!key' takes no operator");
        return;
    }
    if (c == '=' || c == '!') {
        lx->at++;
        if (c == '!' && (lx->at >= lx->len || lx->s[lx->at] != '=')) {
            fail(lx, "expected '!='");
            return;
        }
        if (c == '!' || (lx->at < lx->len && lx->s[lx->at] == '='))
            lx->at++; /* != or == */
        r->op = c == '!' ? OP_NE : OP_EQ;
        (void)add_value(lx, r, word(lx));
        return;
    }
    if (c == '>' || c == '<') {
        lx->at++;
        if (!number(word(lx), &r->number))
            fail(lx, "'>' and '<' take an integer");
        r->op = c == '>' ? OP_GT : OP_LT;
        return;
    }
    ei_view w = word(lx);
    if (is_word(w, "in") || is_word(w, "notin")) {
        r->op = is_word(w, "in") ? OP_IN : OP_NOTIN;
        value_set(lx, r);
        return;
    }
    fail(lx, "expected '=', '==', '!=', 'in', 'notin', '>', '<', ',' or the end");
}

void ei_selector_free(ei_selector *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->reqs[i].values);
    free(s->reqs);
    free(s);
}

ei_selector *ei_selector_parse(const char *text, size_t len, char *err, size_t errlen)
{
    lexer lx = { text, len, 0, err, errlen, false };
    ei_selector *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (peek(&lx) == '\0')
        return s; /* the empty selector: everything */
    for (;;) {
        requirement *grown = realloc(s->reqs, (s->n + 1) * sizeof *s->reqs);
        if (grown == NULL) {
            fail(&lx, "out of memory");
            break;
        }
        s->reqs = grown;
        parse_requirement(&lx, &s->reqs[s->n++]);
        if (lx.failed)
            break;
        char c = peek(&lx);
        if (c == '\0')
            return s;
        if (c != ',') {
            fail(&lx, "expected ',' between requirements");
            break;
        }
        lx.at++;
    }
    ei_selector_free(s);
    return NULL;
}

size_t ei_selector_requirements(const ei_selector *s)
{
    return s->n;
}

static const ei_label *find(const char *key, const ei_label *labels, size_t n)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (labels[i].key.len == klen && memcmp(labels[i].key.ptr, key, klen) == 0)
            return &labels[i];
    return NULL;
}

static bool in_set(const requirement *r, ei_view v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strlen(r->values[i]) == v.len && memcmp(r->values[i], v.ptr, v.len) == 0)
            return true;
    return false;
}

bool ei_selector_matches(const ei_selector *s, const ei_label *labels, size_t n)
{
    for (size_t i = 0; i < s->n; i++) {
        const requirement *r = &s->reqs[i];
        const ei_label *l = find(r->key, labels, n);
        long long v;
        bool ok;
        switch (r->op) {
        case OP_EXISTS: ok = l != NULL; break;
        case OP_NOT_EXISTS: ok = l == NULL; break;
        case OP_EQ:
        case OP_IN: ok = l != NULL && in_set(r, l->value); break;
        case OP_NE:
        case OP_NOTIN: ok = l == NULL || !in_set(r, l->value); break;
        case OP_GT: ok = l != NULL && number(l->value, &v) && v > r->number; break;
        case OP_LT: ok = l != NULL && number(l->value, &v) && v < r->number; break;
        default: ok = false; break;
        }
        if (!ok)
            return false;
    }
    return true;
}
