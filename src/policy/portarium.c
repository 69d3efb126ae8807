/* Portarium MachineExecutionPolicy documents as policy input.
 *
 * Accepted: one document, a JSON list of them, or {"items": [...]}. Each document names
 * its policy (metadata.name or name), the workloads it applies to (spec.sources or
 * sources: CIDRs; none means the default policy) and spec.egressAllowlist (or
 * egressAllowlist): a non-empty list of https:// URLs, and optionally
 * spec.enforcementMode ("enforce" or "monitor": the rules file's `mode`). The documents are translated into
 * the rules file's lines and parsed by the same parser, so validation and reload behave
 * exactly as for a rules file; each error names the JSON path it came from. */
#include "egress_inspector/portarium.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *text;
    size_t len;
    FILE *out;              /* the generated rules text */
    unsigned line;
    char (*paths)[96];      /* JSON path of each generated line (1-based) */
    unsigned cap;
    unsigned errors;
    const char *file;
    FILE *err;
} builder;

/* One generated rules line: KEYWORD VALUE, remembered with the JSON path it came from. */
static void emit(builder *b, const char *path, const char *keyword, const char *value)
{
    size_t cap = b->cap;
    char (*paths)[96] = ei_grow(b->paths, sizeof *paths, b->line + 1, &cap, 64);
    if (paths == NULL) {
        b->errors++;
        return;
    }
    b->paths = paths;
    b->cap = (unsigned)cap;
    b->line++;
    snprintf(b->paths[b->line], sizeof b->paths[0], "%s", path);
    fprintf(b->out, "%s %s\n", keyword, value);
}

static void fail(builder *b, const char *path, const char *message)
{
    b->errors++;
    fprintf(b->err, "%s: %s: %s\n", b->file, path, message);
}

json_object *ei_policy_json_field(json_object *doc, const char *key)
{
    json_object *v = NULL, *spec = NULL;
    if (json_object_object_get_ex(doc, key, &v))
        return v;
    if (json_object_object_get_ex(doc, "spec", &spec) && json_object_object_get_ex(spec, key, &v))
        return v;
    return NULL;
}

/* Pass 0 writes the default policy (the document without sources: its lines come first,
 * before any policy line, as the rules file wants), pass 1 every other one. */
static void add_document(builder *b, json_object *doc, const char *where, int pass,
                         bool *have_default)
{
    char path[96];
    if (!json_object_is_type(doc, json_type_object)) {
        if (pass == 0)
            fail(b, where, "a MachineExecutionPolicy must be an object");
        return;
    }
    json_object *meta = NULL, *name = NULL;
    if (json_object_object_get_ex(doc, "metadata", &meta))
        json_object_object_get_ex(meta, "name", &name);
    if (name == NULL)
        json_object_object_get_ex(doc, "name", &name);
    json_object *sources = ei_policy_json_field(doc, "sources");
    json_object *allow = ei_policy_json_field(doc, "egressAllowlist");
    bool is_default = sources == NULL ||
                      (json_object_is_type(sources, json_type_array) && json_object_array_length(sources) == 0);
    if (is_default != (pass == 0))
        return;
    if (is_default) {
        if (*have_default) {
            fail(b, where, "a second policy without sources (only one may be the default)");
            return;
        }
        *have_default = true;
    } else {
        if (name == NULL || !json_object_is_type(name, json_type_string)) {
            fail(b, where, "a policy with sources needs metadata.name");
            return;
        }
        emit(b, where, "policy", json_object_get_string(name));
        if (!json_object_is_type(sources, json_type_array)) {
            snprintf(path, sizeof path, "%s.sources", where);
            fail(b, path, "sources must be a list of CIDRs");
            return;
        }
        for (size_t i = 0; i < json_object_array_length(sources); i++) {
            json_object *s = json_object_array_get_idx(sources, i);
            snprintf(path, sizeof path, "%s.sources[%zu]", where, i);
            if (!json_object_is_type(s, json_type_string))
                fail(b, path, "not a string");
            else
                emit(b, path, "source", json_object_get_string(s));
        }
    }
    json_object *mode = ei_policy_json_field(doc, "enforcementMode");
    if (mode != NULL) {
        snprintf(path, sizeof path, "%s.enforcementMode", where);
        const char *m = json_object_is_type(mode, json_type_string) ? json_object_get_string(mode) : "";
        if (strcasecmp(m, "enforce") == 0 || strcasecmp(m, "monitor") == 0)
            emit(b, path, "mode", strcasecmp(m, "enforce") == 0 ? "enforce" : "monitor");
        else
            fail(b, path, "enforcementMode must be \"enforce\" or \"monitor\"");
    }
    snprintf(path, sizeof path, "%s.egressAllowlist", where);
    if (allow == NULL || !json_object_is_type(allow, json_type_array) ||
        json_object_array_length(allow) == 0) {
        fail(b, path, "egressAllowlist must be a non-empty list of https:// URLs");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(allow); i++) {
        json_object *u = json_object_array_get_idx(allow, i);
        snprintf(path, sizeof path, "%s.egressAllowlist[%zu]", where, i);
        const char *url = json_object_is_type(u, json_type_string) ? json_object_get_string(u) : NULL;
        if (url == NULL || strncmp(url, "https://", 8) != 0 || strpbrk(url, " \t\r\n#") != NULL)
            fail(b, path, "not an https:// URL");
        else
            emit(b, path, "allow", url);
    }
}

typedef struct {
    builder *b;
} error_map;

static void map_error(void *ctx, unsigned line, const char *message)
{
    builder *b = ((error_map *)ctx)->b;
    fprintf(b->err, "%s: %s: %s\n", b->file, line <= b->line ? b->paths[line] : "?", message);
}

bool ei_policy_json_sniff(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')
            continue;
        return text[i] == '{' || text[i] == '[';
    }
    return false;
}

ei_policy_set *ei_policy_json_parse(const char *file, const char *text, size_t len, FILE *err,
                                    unsigned *errors)
{
    builder b = { .file = file, .err = err };
    json_tokener *tok = json_tokener_new();
    json_object *root = tok ? json_tokener_parse_ex(tok, text, (int)(len > 0x7fffffff ? 0x7fffffff : len)) : NULL;
    if (root == NULL) {
        if (tok == NULL) {
            fprintf(err, "%s: out of memory\n", file);
        } else {
            enum json_tokener_error je = json_tokener_get_error(tok);
            fprintf(err, "%s: not valid JSON: %s\n", file,
                    je == json_tokener_continue ? "the document ends too early" : json_tokener_error_desc(je));
        }
        if (tok)
            json_tokener_free(tok);
        *errors = 1;
        return NULL;
    }
    json_tokener_free(tok);
    b.out = open_memstream(&b.text, &b.len);
    if (b.out == NULL) {
        json_object_put(root);
        *errors = 1;
        return NULL;
    }
    json_object *items = NULL, *list = root;
    if (json_object_is_type(root, json_type_object) && json_object_object_get_ex(root, "items", &items) &&
        json_object_is_type(items, json_type_array))
        list = items; /* borrowed from root */
    bool have_default = false;
    for (int pass = 0; pass < 2; pass++) {
        if (!json_object_is_type(list, json_type_array)) {
            add_document(&b, list, "$", pass, &have_default);
            continue;
        }
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            char where[32];
            snprintf(where, sizeof where, "[%zu]", i);
            add_document(&b, json_object_array_get_idx(list, i), where, pass, &have_default);
        }
    }
    fclose(b.out);
    /* The lines that translated are parsed even when others did not, so that every error
     * is reported in one go. */
    error_map em = { &b };
    unsigned n = 0;
    ei_policy_set *set = b.text != NULL ? ei_rules_parse(b.text, b.len, map_error, &em, &n) : NULL;
    b.errors += n;
    if (b.errors > 0) {
        ei_policy_set_free(set);
        set = NULL;
    }
    json_object_put(root);
    free(b.text);
    free(b.paths);
    *errors = b.errors;
    return set;
}
