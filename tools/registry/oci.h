/* An OCI distribution client (libcurl + cJSON): the requests annpack needs to push and
 * pull packs as OCI artifacts (docs/DISTRIBUTION.md), with the registry's authentication:
 * a static Bearer token, or user:password sent as Basic auth or traded for a Bearer token
 * through the 401 challenge (realm, service, scope) of the distribution spec. */
#ifndef ANNPACK_TOOLS_OCI_H
#define ANNPACK_TOOLS_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "annpack/status.h"

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_EMPTY "application/vnd.oci.empty.v1+json"
#define OCI_EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define OCI_DIGEST_LEN 80 /* "sha256:" + 64 hex + NUL, with room */
#define OCI_MAX_MANIFEST (4u << 20)

/* Where the registry is and how to authenticate. Pointers are the caller's. */
typedef struct oci_opts {
    const char *url;        /* http(s)://host[:port] (no path); NULL: $ANNPACK_REGISTRY_URL */
    const char *token_file; /* a file holding a Bearer token */
    const char *auth_file;  /* user:password (first line), or a Docker auth.json */
    const char *cacert;     /* CA bundle for TLS (libcurl's CURLOPT_CAINFO) */
    bool insecure;          /* do not check the TLS certificate */
} oci_opts;

typedef struct oci_client oci_client;

/* Opens a client for repository repo ("org/project"). Credentials: $ANNPACK_REGISTRY_TOKEN,
 * else token_file, else auth_file. The client is the caller's (oci_close). */
ap_status oci_open(const oci_opts *o, const char *repo, oci_client **out, ap_err *err);
void oci_close(oci_client *c);
const char *oci_repo(const oci_client *c);
const char *oci_url(const oci_client *c);

/* Blobs. exists: AP_OK (*size set), AP_ERR_NOTFOUND, or another error. */
ap_status oci_blob_exists(oci_client *c, const char *digest, uint64_t *size, ap_err *err);
/* Monolithic upload (POST, then PUT ?digest=) of a file or of memory; skipped when the
 * registry already has the blob. */
ap_status oci_blob_push_file(oci_client *c, const char *path, const char *digest, uint64_t size,
                             ap_err *err);
ap_status oci_blob_push_mem(oci_client *c, const void *data, size_t len, const char *digest,
                            ap_err *err);
/* Streams the blob into f starting at byte offset (a Range request when offset > 0; a
 * registry that answers 200 instead makes f truncated and written from 0), stopping with
 * AP_ERR_VERIFY past max bytes in all (the descriptor's size). *written receives the bytes
 * appended; *restarted is set when the registry ignored the Range. */
ap_status oci_blob_fetch(oci_client *c, const char *digest, FILE *f, uint64_t offset, uint64_t max,
                         uint64_t *written, bool *restarted, ap_err *err);
/* A small blob into memory (at most max bytes), checked against its digest. */
ap_status oci_blob_fetch_mem(oci_client *c, const char *digest, size_t max, char **out, size_t *len,
                             ap_err *err);

/* Manifests by tag or digest. get: body malloc'd (the caller's), its digest and media type
 * (either may be NULL); AP_ERR_NOTFOUND when absent. */
ap_status oci_manifest_get(oci_client *c, const char *ref, char **body, size_t *len,
                           char digest[OCI_DIGEST_LEN], char *media_type, size_t mt_len,
                           ap_err *err);
ap_status oci_manifest_head(oci_client *c, const char *ref, char digest[OCI_DIGEST_LEN],
                            ap_err *err);
ap_status oci_manifest_put(oci_client *c, const char *ref, const char *media_type, const char *body,
                           size_t len, ap_err *err);
ap_status oci_manifest_delete(oci_client *c, const char *digest, ap_err *err);

/* Every tag of the repository (following Link pages); the array and strings are the
 * caller's (oci_free_strv). AP_ERR_NOTFOUND for an unknown repository. */
ap_status oci_tags(oci_client *c, char ***tags, size_t *n, ap_err *err);
void oci_free_strv(char **v, size_t n);

/* "sha256:<hex>" of memory. */
void oci_digest_mem(const void *data, size_t len, char out[OCI_DIGEST_LEN]);

#endif
