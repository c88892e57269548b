/* Embedders that depend on their corpus (internal to core): "hash" version 2 weights each
 * feature by its inverse document frequency, so a build first shows it every text (fit),
 * the pack stores the table it learnt in a sidecar file listed in the manifest, and every
 * reader loads that file before embedding (docs/FORMAT.md "pack.idf"). Deltas, rebases and
 * queries use the base's table: the embedder object that carries it is passed along. */
#ifndef ANNPACK_CORE_EMBED_CORPUS_H
#define ANNPACK_CORE_EMBED_CORPUS_H

#include <stdbool.h>
#include <stddef.h>

#include "annpack/embed.h"

/* The sidecar file of "hash" version 2. */
#define AP_IDF "pack.idf"
/* The largest sidecar a reader accepts (pack.idf: 32 + 4 * 2^24 bytes). */
#define AP_EMBED_TABLE_MAX (32u + (4u << 24))

typedef struct ap_embedder_corpus_ops {
    /* The sidecar's file name (static storage). */
    const char *file;
    /* Whether the table is missing (a new build must fit it; a reader must load it). */
    bool (*missing)(const ap_embedder *e);
    ap_status (*fit)(ap_embedder *e, char *const *texts, const size_t *lens, size_t n, ap_err *err);
    /* Loads the sidecar's bytes (checked against the block's sha256); name for messages. */
    ap_status (*load)(ap_embedder *e, const void *bytes, size_t len, const char *name, ap_err *err);
    /* The sidecar's bytes (owned by e), when the table is there. */
    void (*bytes)(const ap_embedder *e, const void **bytes, size_t *len);
} ap_embedder_corpus_ops;

/* The sidecar file e needs (static storage), or NULL when it needs none. */
const char *ap_embedder_sidecar(const ap_embedder *e);

/* Whether e needs its corpus table and does not have it yet. */
bool ap_embedder_needs_table(const ap_embedder *e);

/* Learns the table from every text of a build (single-threaded, before any embed). */
ap_status ap_embedder_fit(ap_embedder *e, char *const *texts, const size_t *lens, size_t n,
                          ap_err *err);

/* Loads the sidecar a pack stores (before any embed). */
ap_status ap_embedder_load_table(ap_embedder *e, const void *bytes, size_t len, const char *name,
                                 ap_err *err);

#endif
