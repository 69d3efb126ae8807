/* --kubeconfig FILE: the current context's cluster and user, read with libyaml. What is
 * taken: clusters[].cluster.server, certificate-authority, certificate-authority-data,
 * (insecure-skip-tls-verify is refused); users[].user.token and tokenFile. A user that authenticates
 * otherwise (client certificates, exec plugins, auth providers) is refused by name: the
 * daemon would otherwise watch nothing and say so only as errors. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "kube/watch.h"

/* The value of key in mapping node m (NULL: none). */
static yaml_node_t *lookup(yaml_document_t *doc, yaml_node_t *m, const char *key)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && strlen(key) == k->data.scalar.length &&
            memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

static const char *scalar(yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The `key` mapping (cluster, user, context) of the item of list `list` named name. */
static yaml_node_t *named(yaml_document_t *doc, yaml_node_t *root, const char *list, const char *name,
                          const char *key)
{
    yaml_node_t *seq = lookup(doc, root, list);
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE || name == NULL)
        return NULL;
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
        yaml_node_t *item = yaml_document_get_node(doc, *i);
        const char *n = scalar(lookup(doc, item, "name"));
        if (n != NULL && strcmp(n, name) == 0)
            return lookup(doc, item, key);
    }
    return NULL;
}

static bool copy(char *out, size_t size, const char *in)
{
    if (in == NULL || strlen(in) >= size)
        return false;
    snprintf(out, size, "%s", in);
    return true;
}

static bool from_document(ei_kube_config *cfg, yaml_document_t *doc, char *err, size_t errlen)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    const char *current = scalar(lookup(doc, root, "current-context"));
    yaml_node_t *ctx = named(doc, root, "contexts", current, "context");
    if (ctx == NULL) {
        snprintf(err, errlen, "no current-context, or it names no context");
        return false;
    }
    yaml_node_t *cluster = named(doc, root, "clusters", scalar(lookup(doc, ctx, "cluster")), "cluster");
    yaml_node_t *user = named(doc, root, "users", scalar(lookup(doc, ctx, "user")), "user");
    if (cluster == NULL || user == NULL) {
        snprintf(err, errlen, "the current context's cluster or user is not in the file");
        return false;
    }
    const char *server = scalar(lookup(doc, cluster, "server"));
    if (server == NULL || strncmp(server, "https://", 8) != 0 || !copy(cfg->server, sizeof cfg->server, server)) {
        snprintf(err, errlen, "the cluster's server must be an https:// URL");
        return false;
    }
    size_t n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/')
        cfg->server[--n] = '\0';
    const char *ca = scalar(lookup(doc, cluster, "certificate-authority"));
    const char *ca_data = scalar(lookup(doc, cluster, "certificate-authority-data"));
    const char *insecure = scalar(lookup(doc, cluster, "insecure-skip-tls-verify"));
    if (insecure != NULL && strcmp(insecure, "true") == 0) {
        snprintf(err, errlen, "insecure-skip-tls-verify is refused: the pod view decides policies, "
                 "so the API server must be verified (certificate-authority)");
        return false;
    }
    if (ca != NULL && !copy(cfg->ca_file, sizeof cfg->ca_file, ca)) {
        snprintf(err, errlen, "certificate-authority: path too long");
        return false;
    }
    if (ca_data != NULL) {
        size_t len = strlen(ca_data);
        cfg->ca_data = calloc(len / 4 * 3 + 4, 1);
        if (cfg->ca_data == NULL) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        if (EVP_DecodeBlock((unsigned char *)cfg->ca_data, (const unsigned char *)ca_data, (int)len) < 0) {
            snprintf(err, errlen, "certificate-authority-data is not base64");
            return false;
        }
    }
    const char *token = scalar(lookup(doc, user, "token"));
    const char *token_file = scalar(lookup(doc, user, "tokenFile"));
    if ((token == NULL || !copy(cfg->token, sizeof cfg->token, token)) &&
        (token_file == NULL || !copy(cfg->token_file, sizeof cfg->token_file, token_file))) {
        snprintf(err, errlen, "the user has no token or tokenFile (client certificates and exec "
                 "plugins are not supported: give the daemon a service account token)");
        return false;
    }
    return true;
}

bool ei_kube_config_file(ei_kube_config *cfg, const char *path, const char *node, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "--kubeconfig %s: cannot open it", path);
        return false;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    bool ok = false;
    char why[400] = "not valid YAML";
    if (yaml_parser_initialize(&parser)) {
        yaml_parser_set_input_file(&parser, f);
        if (yaml_parser_load(&parser, &doc)) {
            ok = from_document(cfg, &doc, why, sizeof why);
            yaml_document_delete(&doc);
        } else if (parser.problem != NULL) {
            snprintf(why, sizeof why, "line %zu: %s", parser.problem_mark.line + 1, parser.problem);
        }
        yaml_parser_delete(&parser);
    }
    fclose(f);
    if (!ok) {
        ei_kube_config_clear(cfg);
        snprintf(err, errlen, "--kubeconfig %s: %s", path, why);
        return false;
    }
    if (!ei_kube_config_node(cfg, node, err, errlen)) {
        ei_kube_config_clear(cfg);
        return false;
    }
    return true;
}
