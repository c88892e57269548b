/* The pack manifest, schema 2 (internal to core; docs/FORMAT.md is the contract). */
#ifndef ANNPACK_CORE_MANIFEST_H
#define ANNPACK_CORE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/sign.h"
#include "annpack/status.h"

typedef struct ap_manifest_file {
    const char *path; /* relative to the pack directory (points into root) */
    uint64_t size;
    const char *sha256;
} ap_manifest_file;

typedef struct ap_pack_manifest {
    uint32_t dim, n_lists, n_vectors;
    const char *annpack; /* shards[0].annpack */
    const char *meta;    /* shards[0].meta */
    const char *idx;     /* "pack.meta.idx" when listed in files, else NULL */
    ap_manifest_file *files;
    size_t nfiles;
    const cJSON *embedder;
    const cJSON *build;
    cJSON *root;
    char *raw;
    size_t raw_len;
} ap_pack_manifest;

/* Reads DIR/pack.manifest.json (at most AP_MAX_MANIFEST_BYTES: AP_ERR_LIMIT naming the
 * cap) into *raw (malloc'd, NUL-terminated, *len bytes); *path receives the file's path
 * (malloc'd, even on failure; NULL when out of memory). */
ap_status ap_manifest_read(const char *dir, char **path, char **raw, size_t *len, ap_err *err);

/* The same beneath dirfd (the manifest opened as every pack file is, ap_src_open; dir for
 * messages, name for the cap's message). */
ap_status ap_manifest_read_at(int dirfd, const char *dir, const char *name, char **raw, size_t *len,
                              ap_err *err);

/* Whether s is 64 lowercase hex digits (a SHA-256 as manifests write it). */
bool ap_is_sha256_hex(const char *s);

/* Reads and validates DIR/pack.manifest.json (strict JSON, schema 2, required fields,
 * safe paths, annpack and meta listed in files). */
ap_status ap_pack_manifest_load(const char *dir, ap_pack_manifest *m, ap_err *err);
void ap_pack_manifest_free(ap_pack_manifest *m);

/* Validates manifest bytes already read (raw: malloc'd, NUL-terminated; ownership passes
 * to m even on failure). name goes in messages. */
ap_status ap_pack_manifest_parse(char *raw, size_t raw_len, const char *name, ap_pack_manifest *m,
                                 ap_err *err);

/* Finds a listed file; NULL when absent. */
const ap_manifest_file *ap_pack_manifest_file(const ap_pack_manifest *m, const char *path);

/* The manifest entry an opened pack lists for name, or NULL (pack.c). */
struct ap_pack;
const ap_manifest_file *ap_pack_listed(const struct ap_pack *p, const char *name);

/* What a schema-2 pack manifest says, for ap_pack_manifest_write. */
typedef struct ap_pack_manifest_spec {
    uint32_t dim, n_lists;
    uint64_t n_vectors;
    const char *meta;              /* shards[0].meta (the shard's annpack is AP_ANNPACK) */
    const ap_manifest_file *files; /* "files", in this order (by name, so it is canonical) */
    size_t nfiles;
    const char *embedder; /* the embedder's description (ap_embedder_describe): JSON */
    const cJSON *build;   /* the "build" block (copied), or NULL */
    const cJSON *packset; /* the "packset" block of a merged view's manifest (copied), or NULL */
} ap_pack_manifest_spec;

/* The one writer of schema-2 pack manifests (builds, and the mount's virtual pack): *text
 * receives the rendered bytes (malloc'd, *len of them; ap_json_render's form), keys in the
 * order schema_version, format, dim, n_lists, n_vectors, metric, shards, files, embedder,
 * build, packset. Fails only when out of memory or when the embedder is not JSON. */
ap_status ap_pack_manifest_write(const ap_pack_manifest_spec *s, char **text, size_t *len,
                                 ap_err *err);

/* Adds {"size","sha256"} for DIR/name to a "files" object (hashing the file). */
ap_status ap_manifest_add_file(cJSON *files, const char *dir, const char *name, ap_err *err);

#endif
