/* How a pack or packset directory maps onto OCI artifacts (docs/DISTRIBUTION.md, "Layout"):
 * the files of a directory as a tree of members, and the OCI manifests and index that
 * describe it. The same tree is built from a local directory (to push) and from the
 * registry (to pull), so both ends agree on every path, digest and size. */
#ifndef ANNPACK_TOOLS_LAYOUT_H
#define ANNPACK_TOOLS_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oci.h"

#define AT_PACK "application/vnd.annpack.pack.v1"
#define AT_PACKSET "application/vnd.annpack.packset.v1"
#define AT_ROOT "application/vnd.annpack.packset.root.v1"
#define AT_ALIAS "application/vnd.annpack.alias.v1"
#define ANN_TITLE "org.opencontainers.image.title"
#define ANN_PATH "vnd.annpack.path"
#define ANN_VERSION "vnd.annpack.version"
#define ANN_ALIAS "vnd.annpack.alias"
#define ANN_TARGET "vnd.annpack.target"

typedef struct tree_file {
    char *name; /* the layer's title: a path relative to its member's directory */
    char digest[OCI_DIGEST_LEN];
    uint64_t size;
} tree_file;

/* A member: one OCI image manifest. path is "." for a single pack and for a packset's
 * root manifest and signature, else the layer directory ("base", "deltas/0001.delta"). */
typedef struct tree_member {
    char *path;
    const char *artifact_type;
    tree_file *files;
    size_t nfiles;
    char *manifest; /* its OCI manifest (JSON bytes exactly as pushed or fetched) */
    size_t manifest_len;
    char digest[OCI_DIGEST_LEN];
} tree_member;

typedef struct tree {
    bool packset;
    uint64_t version; /* the packset's root manifest version (0 for a pack) */
    tree_member *m;
    size_t n;
    char *top; /* the top-level artifact: the pack's manifest or the packset's index */
    size_t top_len;
    const char *top_media; /* OCI_MANIFEST or OCI_INDEX */
    char top_digest[OCI_DIGEST_LEN];
} tree;

/* The files a directory consists of, from its manifests (never a directory walk: only what
 * the manifests list travels), each hashed, and the OCI manifests that describe them. */
ap_status tree_from_dir(const char *dir, tree *t, ap_err *err);

/* The tree a registry reference (a tag or digest; an alias is followed once) describes.
 * target (may be NULL) receives the alias's target tag, or "" when ref is no alias. */
ap_status tree_from_registry(oci_client *c, const char *ref, tree *t, char *target, size_t tlen,
                             ap_err *err);

void tree_free(tree *t);

/* The path of a file of a member relative to the tree's root, malloc'd. */
char *tree_file_path(const tree_member *m, const tree_file *f);

/* The OCI index of an alias (artifactType AT_ALIAS) pointing at the version tag's artifact
 * (digest, size, media type); malloc'd JSON. */
char *alias_index(const char *alias, const char *version, const char *media, const char *digest,
                  size_t size, const char *artifact_type);

/* Whether s is a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}). */
bool oci_valid_tag(const char *s);

/* Whether a relative path from a manifest or an annotation is safe under a directory:
 * not absolute, no empty, "." or ".." component. */
bool tree_safe_path(const char *p);

#endif
