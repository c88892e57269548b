/* Generations (generation.c): each load verifies the source and builds one immutable
 * generation — the view, its virtual pack, the manifest and health files' bytes. One is
 * current; every inode and answer holds a reference to the generation it came from, so a
 * reload never changes what an open file reads. */
#ifndef ANNPACK_FS_GENERATION_H
#define ANNPACK_FS_GENERATION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "annpack/annpack.h"
#include "config.h"

/* The static files whose bytes a generation holds or maps, one inode each per generation
 * (inode.h numbers its node kinds the same way). */
#define FS_GEN_FILES 8 /* manifest, annpack, meta, sq8, idf, health, once expired, once changed */

typedef struct fs_gen {
    atomic_int refs;
    uint64_t number; /* 1 at mount, + 1 per reload */
    uint64_t version;
    ap_view *view;
    ap_vpack *vpack; /* the virtual pack files of view, built on first use (fs_gen_vpack) */
    char *manifest;  /* the virtual pack manifest (with the provenance of health.h), built on
                        first use (fs_gen_manifest): hashing merged files reads all of them */
    size_t manifest_len;
    char *provenance;            /* what the manifest's "packset" block adds (health.h) */
    pthread_mutex_t manifest_mu; /* guards vpack, vpack_rc, manifest, manifest_len, manifest_rc */
    int vpack_rc;                /* 1: not built yet; 0: built; -errno: failed */
    int manifest_rc;             /* 1: not built yet; 0: built; -errno: failed */
    char *health;                /* the health file (health.h) */
    size_t health_len;
    char *health_expired; /* the health file once "expires" has passed (NULL: no expiry) */
    size_t health_expired_len;
    char *health_changed; /* the health file once a source file changed in place */
    size_t health_changed_len;
    atomic_int changed; /* a mapped source file changed since it was verified */
    int has_expires;
    long long expires; /* Unix seconds */
    char expires_text[64];
    atomic_int expiry_logged;
    char no_text[AP_ERR_MSG_MAX]; /* why text queries are refused ("" when they are not) */
    struct timespec mtime;        /* load time: every file's mtime */
    char keyid[AP_KEYID_HEX];     /* "" when no signature was checked */
    const char *signature;        /* "verified", "unchecked" */
    void *files[FS_GEN_FILES];    /* inode.c's nodes of the static files (weak references) */
} fs_gen;

/* Loads and verifies generation number of cfg->source; refuses versions below min_version
 * (or equal, when strict). *out holds one reference. */
ap_status fs_gen_load(const fs_config *cfg, uint64_t number, uint64_t min_version, int strict,
                      fs_gen **out, ap_err *err);
/* The first generation: the floor read from state= (failing closed: a missing file only
 * with state_init), generation 1 loaded above it, and its version persisted before it is
 * served. *out holds one reference. */
ap_status fs_gen_load_first(const fs_config *cfg, fs_gen **out, ap_err *err);

fs_gen *fs_gen_current(void);   /* referenced (NULL before the first install) */
void fs_gen_unref(fs_gen *g);   /* NULL is fine */
void fs_gen_install(fs_gen *g); /* takes over g's reference; the old one is released */

/* The virtual pack (g's), built on the first call: its merged tables read every list of a
 * packset's base, which a lazily verified mount checks only then. 0, or -EIO (logged
 * once). */
int fs_gen_vpack(fs_gen *g, const ap_vpack **out);

/* The virtual manifest's bytes (g's), built on the first call: 0, or -EIO when a file it
 * hashes cannot be read or fails verification (logged once). */
int fs_gen_manifest(fs_gen *g, const char **data, size_t *len);

/* Whether g's "expires" has passed (logging it once per generation). */
int fs_gen_expired(fs_gen *g);
/* Whether g's answers are refused: on_expiry=refuse and "expires" passed (EKEYEXPIRED). */
int fs_gen_refusing(fs_gen *g);
/* 0 while every file g serves from is still the one verified; once one has changed in
 * place, -EIO from then on for g (logged once, and a re-verifying reload requested). Called
 * after every answer that read source bytes (before one, g->changed is enough). */
int fs_gen_check_source(fs_gen *g);

#endif
