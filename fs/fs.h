/* annpackfs internals: configuration, generations, the result cache, statistics.
 * The daemon maps paths to core calls and nothing else (DESIGN.md, "The mount"). */
#ifndef ANNPACK_FS_H
#define ANNPACK_FS_H

#define FUSE_USE_VERSION 312

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <fuse_lowlevel.h>

#include "annpack/annpack.h"
#include "state.h"

typedef struct fs_config {
    char *source; /* realpath of the packset or pack */
    char *pubkey; /* pubkey= */
    char *state;  /* state= file persisting the highest accepted version */
    char *log;    /* log= file */
    uint32_t k, probe;
    ap_scan_mode scan; /* scan= */
    uint32_t rerank;   /* rerank= (0: the default for k) */
    int verify_full;   /* verify=full (default) or none */
    uint64_t cache_mb;
    int watch;
    int state_init;    /* state_init: a missing state= file is created (the first mount) */
    int allow_expired; /* allow_expired: accept a manifest whose "expires" has passed */
    int expiry_refuse; /* on_expiry=refuse: answers stop once "expires" passes */
    ap_pubkey keys[AP_MAX_PUBKEYS];
    size_t nkeys;
} fs_config;

/* One verified, immutable view of the source; readers hold references. */
#define FS_GEN_FILES 7 /* manifest, annpack, meta, sq8, health, once expired, once changed */

typedef struct fs_gen {
    atomic_int refs;
    uint64_t number;
    uint64_t version;
    ap_view *view;
    ap_vpack *vpack; /* the virtual pack files of view */
    char *manifest;  /* the virtual pack manifest */
    size_t manifest_len;
    char *health;
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
    struct timespec mtime;
    char keyid[AP_KEYID_HEX];
    const char *signature;     /* "verified", "unchecked" */
    void *files[FS_GEN_FILES]; /* ops.c's inodes of the static files (weak references) */
} fs_gen;

/* Loads and verifies a generation; refuses versions below min_version (or equal, when
 * strict). */
ap_status fs_gen_load(const fs_config *cfg, uint64_t number, uint64_t min_version, int strict,
                      fs_gen **out, ap_err *err);
fs_gen *fs_gen_current(void); /* referenced; release with fs_gen_unref */
/* Whether g's "expires" has passed (logging it once per generation). */
int fs_gen_expired(fs_gen *g);
/* 0 while every file g serves from is still the one verified; once one has changed in
 * place, -EIO from then on for g (logged once, and a re-verifying reload requested). Called
 * after every answer that read source bytes (before one, g->changed is enough). */
int fs_gen_check_source(fs_gen *g);
void fs_gen_unref(fs_gen *g);
void fs_gen_install(fs_gen *g); /* becomes current; the old one is released */

/* A computed file body (query result, doc row), shared by the cache and readers. */
typedef struct fs_blob {
    atomic_int refs;
    size_t len;
    double took_ms; /* the time written into a query result */
    uint64_t hash;  /* of the bytes: a recomputed result must be the same */
    char data[];
} fs_blob;

fs_blob *fs_blob_new(const char *data, size_t len);
void fs_blob_unref(fs_blob *b);

/* Bounded LRU of computed files keyed by (generation, canonical key): the only place their
 * bytes live beyond a request. */
void fs_cache_init(uint64_t max_bytes);
fs_blob *fs_cache_get(uint64_t gen, const char *key); /* referenced or NULL */
void fs_cache_put(uint64_t gen, const char *key, fs_blob *b);
/* Drops the entries of generations other than keep. */
void fs_cache_drop_others(uint64_t keep);
void fs_cache_usage(uint64_t *entries, uint64_t *bytes);

/* Counters for /stats. */
typedef struct fs_stats {
    atomic_uint_fast64_t queries, cache_hits, errors, reloads, reload_failures, reloads_noop, reads,
        docs, refused, recomputed, trims;
    atomic_uint_fast64_t nodes, node_bytes; /* live inodes of computed files, their bytes */
    atomic_uint_fast64_t latency[12];       /* query latency histogram, see stats.c */
} fs_stats;

extern fs_stats g_stats;
extern fs_config g_cfg;
extern struct fuse_session *g_se;

void fs_stats_record_latency(double us);
char *fs_stats_json(size_t *len);

/* Counts a refused name and logs it at WARN — at most one line a second, the next line
 * saying how many were not logged (anonymous clients must not be able to flood the log). */
void fs_note_refusal(const char *component, size_t name_len, const char *msg);
/* Replaces every byte outside printable ASCII with '?' (messages that echo a name). */
void fs_printable(char *s);

/* FUSE operations (low-level API). */
extern const struct fuse_lowlevel_ops fs_ops;

/* Tells the kernel to forget every name it caches under the mount (after a reload): the
 * static files and the query, vquery, doc and refusal directories with all names below. */
void fs_invalidate_generation(struct fuse_session *se);
/* The same for the computed files only (their inodes went over budget, ops.c). */
void fs_invalidate_results(struct fuse_session *se);

/* The reload thread: reload requests (from a signal handler: async-signal-safe) and
 * requests to make the kernel forget computed files (never from a request handler). */
void fs_reload_request(void);
void fs_trim_request(void);
int fs_reload_start(void);
void fs_reload_stop(void);

/* Installs the SIGBUS handler behind fs_guarded. */
int fs_guard_install(void);

/* Runs fn(arg); if it touches a vanished page of a mapped source file, returns -EIO
 * (logging `what`) instead of crashing. */
int fs_guarded(int (*fn)(void *), void *arg, const char *what);

/* Maps a core status to a negative errno. */
int fs_errno(ap_status st);

#endif
