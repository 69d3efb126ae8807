#include "io/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct ei_metrics {
    struct MHD_Daemon *mhd;
    ei_metrics_source src;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rv = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rv;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    ei_metrics *m = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9);
    if (strcmp(url, "/metrics") == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (f == NULL)
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n", 14);
        m->src.render(m->src.ctx, f);
        fclose(f);
        enum MHD_Result rv = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", text, len);
        free(text);
        return rv;
    }
    if (strcmp(url, "/healthz") == 0) {
        bool ok = m->src.healthy(m->src.ctx);
        return reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                     ok ? "ok\n" : "event loop stalled\n", ok ? 3 : 19);
    }
    if (strcmp(url, "/readyz") == 0) {
        bool ok = m->src.ready(m->src.ctx);
        return reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                     ok ? "ready\n" : "not ready\n", ok ? 6 : 10);
    }
    return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
}

/* "ADDR:PORT" or "[ADDR6]:PORT" -> a socket address. */
static bool parse_listen(const char *text, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof host)
        return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port == 0 || port > 65535)
        return false;
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host + 1, &s6->sin6_addr) == 1;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &s4->sin_addr) == 1;
}

ei_metrics *ei_metrics_start(const char *listen, const ei_metrics_source *src, char *err,
                             size_t errlen)
{
    struct sockaddr_storage ss;
    if (!parse_listen(listen, &ss)) {
        snprintf(err, errlen, "--metrics: '%s' is not ADDR:PORT", listen);
        return NULL;
    }
    ei_metrics *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->src = *src;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    m->mhd = MHD_start_daemon(flags, port, NULL, NULL, handle, m,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5,
                              MHD_OPTION_END);
    if (m->mhd == NULL) {
        snprintf(err, errlen, "--metrics: cannot listen on %s", listen);
        free(m);
        return NULL;
    }
    return m;
}

void ei_metrics_stop(ei_metrics *m)
{
    if (m == NULL)
        return;
    MHD_stop_daemon(m->mhd);
    free(m);
}
