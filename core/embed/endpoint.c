/* The process's embedding endpoint (ap_embed_set_endpoint, annpack/embed.h): one copy
 * under a lock, from which every HTTP embedder takes its own ap_http when it is created. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "endpoint.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ap_embed_endpoint g_ep;
static char *g_strs[6]; /* what g_ep's strings point to */

/* The token in path: owner-only mode, not empty, at most 4 KiB; trailing newlines cut. */
static ap_status read_key_file(const char *path, char **out, ap_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ap_err_errno(err, AP_ERR_ARG, errno, "embed key file %s", path);
    struct stat sb;
    ap_status st = AP_OK;
    char buf[4097];
    ssize_t n = 0;
    if (fstat(fd, &sb) != 0)
        st = ap_err_errno(err, AP_ERR_IO, errno, "embed key file %s", path);
    else if (!S_ISREG(sb.st_mode))
        st = ap_err_set(err, AP_ERR_ARG, "embed key file %s is not a regular file", path);
    else if (sb.st_mode & 077)
        st = ap_err_set(err, AP_ERR_ARG,
                        "embed key file %s has mode %04o: group and others must not read it "
                        "(chmod 600)",
                        path, (unsigned)(sb.st_mode & 07777));
    else if ((n = read(fd, buf, sizeof buf - 1)) < 0)
        st = ap_err_errno(err, AP_ERR_IO, errno, "embed key file %s", path);
    else if (n == (ssize_t)sizeof buf - 1)
        st = ap_err_set(err, AP_ERR_LIMIT, "embed key file %s is longer than 4096 bytes", path);
    close(fd);
    if (st) return st;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (n == 0 || memchr(buf, '\n', (size_t)n) || strlen(buf) != (size_t)n) {
        sodium_memzero(buf, sizeof buf);
        return ap_err_set(err, AP_ERR_ARG, "embed key file %s: expected one line with the token",
                          path);
    }
    *out = strdup(buf);
    sodium_memzero(buf, sizeof buf);
    return *out ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
}

static void clear_locked(void)
{
    for (size_t i = 0; i < 6; i++) {
        if (i == 1 && g_strs[1]) sodium_memzero(g_strs[1], strlen(g_strs[1]));
        free(g_strs[i]);
        g_strs[i] = NULL;
    }
    memset(&g_ep, 0, sizeof g_ep);
}

ap_status ap_embed_set_endpoint(const ap_embed_endpoint *ep, ap_err *err)
{
    char *s[6] = {0};
    ap_status st = AP_OK;
    if (ep && ep->url && *ep->url && strncmp(ep->url, "http://", 7) != 0 &&
        strncmp(ep->url, "https://", 8) != 0)
        return ap_err_set(err, AP_ERR_ARG, "embed URL \"%.200s\" is not http:// or https://",
                          ep->url);
    if (ep && ep->key_file && !(ep->api_key && *ep->api_key)) {
        if ((st = read_key_file(ep->key_file, &s[1], err))) return st;
    } else if (ep && ep->api_key && *ep->api_key && !(s[1] = strdup(ep->api_key))) {
        st = AP_ERR_NOMEM;
    }
    const char *src[6] = {
        ep ? ep->url : NULL,       NULL, NULL, ep ? ep->ca_file : NULL, ep ? ep->client_cert : NULL,
        ep ? ep->client_key : NULL};
    for (size_t i = 0; i < 6 && !st; i++)
        if (src[i] && *src[i] && !(s[i] = strdup(src[i]))) st = AP_ERR_NOMEM;
    if (st) {
        for (size_t i = 0; i < 6; i++)
            free(s[i]);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&g_mu);
    clear_locked();
    memcpy(g_strs, s, sizeof s);
    g_ep = (ap_embed_endpoint){.url = s[0],
                               .api_key = s[1],
                               .ca_file = s[3],
                               .client_cert = s[4],
                               .client_key = s[5],
                               .timeout_ms = ep ? ep->timeout_ms : 0,
                               .attempts = ep ? ep->attempts : 0};
    pthread_mutex_unlock(&g_mu);
    return AP_OK;
}

ap_status ap_embed_endpoint_client(ap_http **out, ap_err *err)
{
    pthread_mutex_lock(&g_mu);
    ap_status st = ap_http_new(&g_ep, out, err);
    pthread_mutex_unlock(&g_mu);
    return st;
}
