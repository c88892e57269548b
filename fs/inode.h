/* The node table (inode.c): every inode the kernel knows. Directories have fixed inode
 * numbers; every other inode is the address of an fs_node, bound to one generation and
 * immutable (docs/MOUNT.md, "How results are served"):
 *
 *   - a static file of a generation (manifest, pack files, health): one node per
 *     generation, shared by every lookup of it in that generation;
 *   - a computed file (query, vector query, doc): a new node per lookup that keeps only
 *     what recomputes its bytes (the canonical key, size, took_ms and hash);
 *   - small bytes (stats, a refusal file) held by the node;
 *   - a parameter directory (vquery/k=N&probe=N/, and the same under refusal/).
 *
 * A node lives while the kernel holds a lookup count on it (fs_node_forget), or until
 * op_destroy frees those it never forgot (fs_node_free_all). The nodes of computed files
 * are kept under a budget (a quarter of cache_mb, at least 4 MiB): past it the kernel is
 * asked to forget the computed names (fs_invalidate_results). */
#ifndef ANNPACK_FS_INODE_H
#define ANNPACK_FS_INODE_H

#include <stddef.h>
#include <stdint.h>

#include <fuse_lowlevel.h>

#include "blob.h"
#include "generation.h"

/* The fixed inodes of the directories (FUSE_ROOT_ID is 1). */
enum {
    FS_INO_QUERY = 2,
    FS_INO_VQUERY,
    FS_INO_DOC,
    FS_INO_REFUSAL,
    FS_INO_REFUSAL_QUERY,
    FS_INO_REFUSAL_VQUERY,
    FS_INO_LAST_DIR = FS_INO_REFUSAL_VQUERY
};

/* What a node is. The first FS_GEN_FILES are a generation's static files, in the order of
 * route.h's fs_file for the first four. */
typedef enum fs_node_kind {
    FS_NODE_MANIFEST,
    FS_NODE_ANNPACK,
    FS_NODE_META,
    FS_NODE_SQ8,
    FS_NODE_IDF,
    FS_NODE_HEALTH,
    FS_NODE_HEALTH_EXPIRED,
    FS_NODE_HEALTH_CHANGED, /* = FS_GEN_FILES - 1 */
    FS_NODE_STATS,
    FS_NODE_REFUSAL, /* small bytes held by the node */
    FS_NODE_QUERY,
    FS_NODE_VQUERY,
    FS_NODE_DOC,     /* recomputable answers */
    FS_NODE_VPARAM,  /* vquery/<params>/ */
    FS_NODE_RVPARAM, /* refusal/vquery/<params>/ */
} fs_node_kind;

typedef struct fs_node {
    uint64_t nlookup; /* the kernel's lookup count (inode.c's lock) */
    fs_node_kind k;
    fs_gen *gen;   /* referenced */
    fs_blob *blob; /* STATS, REFUSAL; RVPARAM: why its own name is refused, or NULL */
    char *key;     /* QUERY, VQUERY, DOC: the canonical key (route.h), malloc'd */
    size_t key_len;
    uint64_t key_hash;           /* fs_cache_hash of key */
    uint64_t size, hash;         /* QUERY, VQUERY, DOC: of the bytes computed at lookup */
    double took_ms;              /* QUERY, VQUERY: written into them */
    uint32_t k_res, probe;       /* parameter directories */
    size_t cost;                 /* bytes counted against the budget (0: not counted) */
    struct fs_node *prev, *next; /* every live node (inode.c's list) */
} fs_node;

fs_node *fs_node_of(fuse_ino_t ino); /* for an inode that is not a directory's */
int fs_ino_is_dir(fuse_ino_t ino);   /* the root or a fixed directory */
int fs_node_is_param_dir(const fs_node *n);

/* A new node of kind k with lookup count 1, taking over the caller's reference to g; NULL
 * when out of memory (g is then released). */
fs_node *fs_node_new(fs_node_kind k, fs_gen *g);
/* The same holding b (both taken over; NULL when b is NULL or out of memory), counted
 * against the budget. */
fs_node *fs_node_with_blob(fs_node_kind k, fs_gen *g, fs_blob *b);
/* The node of g's static file k (k < FS_GEN_FILES), shared by every lookup of it in g;
 * takes over the caller's reference to g. */
fs_node *fs_node_gen_file(fs_gen *g, fs_node_kind k);
/* Counts a computed file's node against the budget (once its key and blob are set). */
void fs_node_account(fs_node *n);
/* Drops count lookups of ino (directories: nothing); the last frees the node. */
void fs_node_forget(fuse_ino_t ino, uint64_t count);
/* Frees every node the kernel never forgot (after the session loop). */
void fs_node_free_all(void);
/* The st_size of a node's file (0 for a directory). */
uint64_t fs_node_size(const fs_node *n);
/* Whether n's bytes are held in memory by its generation or by n (the manifest, the health
 * files, stats): then 1 and *data and *len are set; -1 when they are but cannot be built
 * (the manifest, fs_gen_manifest: EIO). */
int fs_node_held_bytes(const fs_node *n, const char **data, uint64_t *len);

/* Tells the kernel to forget every name it caches under the mount (after a reload): the
 * static files and the query, vquery, doc and refusal directories with all names below. */
void fs_invalidate_generation(struct fuse_session *se);
/* The same for the computed files only (their nodes went over budget). */
void fs_invalidate_results(struct fuse_session *se);

#endif
