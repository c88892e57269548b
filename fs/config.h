/* The mount's configuration (config.c): the -o options as fuse_opt parsed them (fs_opts,
 * filled by main.c) and as validated (fs_config), held in the one global g_cfg that every
 * other file reads and none writes after start-up. */
#ifndef ANNPACK_FS_CONFIG_H
#define ANNPACK_FS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/annpack.h"

/* The options as given: strings malloc'd by fuse_opt_parse (freed by fs_opts_free),
 * numbers preset to their defaults by main.c. */
typedef struct fs_opts {
    char *pubkey, *state, *log, *verify, *scan, *on_expiry, *embed_url, *embed_key_file;
    unsigned k, probe, cache_mb, rerank, embed_cache_mb, verify_rate;
    int watch, help, version, state_init, allow_expired, single_thread;
} fs_opts;

typedef struct fs_config {
    char *source; /* realpath of the packset or pack (malloc'd by main.c, which frees it) */
    char *pubkey; /* pubkey= (borrowed from fs_opts) */
    char *state;  /* state= file persisting the highest accepted version (borrowed) */
    uint32_t k, probe;
    ap_scan_mode scan;    /* scan= */
    uint32_t rerank;      /* rerank= (0: the default for k) */
    int verify_full;      /* verify=full or lazy (default): hash against the manifests */
    int verify_lazy;      /* verify=lazy: lists and frames on first use (pack.digests) */
    uint32_t verify_rate; /* verify_rate= MB/s of the background verifier (0: none) */
    int single_thread;    /* single_thread: libfuse's single-threaded loop (session.c) */
    uint64_t cache_mb;
    int watch;
    int state_init;    /* state_init: a missing state= file is created (the first mount) */
    int allow_expired; /* allow_expired: accept a manifest whose "expires" has passed */
    int expiry_refuse; /* on_expiry=refuse: answers stop once "expires" passes */
    ap_pubkey keys[AP_MAX_PUBKEYS]; /* loaded from pubkey= by fs_config_load_keys */
    size_t nkeys;
} fs_config;

extern fs_config g_cfg;

/* Checks o and fills g_cfg from it (g_cfg.source is already set). Returns 0, or 2 after one
 * line on stderr naming the bad option (a usage error). */
int fs_config_set(const fs_opts *o);

/* Loads the keys of pubkey= (when given) into g_cfg. */
ap_status fs_config_load_keys(ap_err *err);

/* Frees the strings of o (g_cfg borrows some of them: call at exit only). */
void fs_opts_free(fs_opts *o);

#endif
