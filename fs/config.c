/* Option validation: the -o values (fs_opts) become the mount's configuration (g_cfg). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

fs_config g_cfg;

/* Whether v is a or b, or not given (its default). */
static int one_of(const char *v, const char *a, const char *b)
{
    return !v || !strcmp(v, a) || !strcmp(v, b);
}

/* Returns 0 or 2 (usage) after one line naming the option. */
static int check_opts(const fs_opts *o)
{
    /* probe 0 (the default): each generation's calibrated default probe. */
    if (o->k < 1 || o->k > AP_MAX_K || o->probe > AP_MAX_PROBE || o->cache_mb < 1) {
        fprintf(stderr, "annpackfs: k must be in [1, %u], probe in [0, %u], cache_mb >= 1\n",
                AP_MAX_K, AP_MAX_PROBE);
        return 2;
    }
    if (!one_of(o->verify, "lazy", "full") && !one_of(o->verify, "none", "none")) {
        fprintf(stderr, "annpackfs: verify must be lazy, full or none, not '%s'\n", o->verify);
        return 2;
    }
    ap_err err = {0};
    if (o->scan && ap_scan_mode_parse(o->scan, &g_cfg.scan, &err)) {
        fprintf(stderr, "annpackfs: %s\n", err.msg);
        return 2;
    }
    if (o->rerank > AP_MAX_RERANK) {
        fprintf(stderr, "annpackfs: rerank must be at most %u\n", AP_MAX_RERANK);
        return 2;
    }
    if (!one_of(o->on_expiry, "serve", "refuse")) {
        fprintf(stderr, "annpackfs: on_expiry must be serve or refuse, not '%s'\n", o->on_expiry);
        return 2;
    }
    if (o->state_init && !o->state) {
        fprintf(stderr, "annpackfs: state_init needs state=FILE\n");
        return 2;
    }
    return 0;
}

int fs_config_set(const fs_opts *o)
{
    int rc = check_opts(o);
    if (rc) return rc;
    if (!o->scan) g_cfg.scan = AP_SCAN_AUTO;
    g_cfg.rerank = o->rerank;
    g_cfg.k = o->k;
    g_cfg.probe = o->probe;
    g_cfg.cache_mb = o->cache_mb;
    g_cfg.watch = o->watch;
    g_cfg.verify_full = !o->verify || strcmp(o->verify, "none") != 0;
    g_cfg.verify_lazy = !o->verify || !strcmp(o->verify, "lazy");
    g_cfg.verify_rate = o->verify_rate;
    g_cfg.single_thread = o->single_thread;
    g_cfg.state = o->state;
    g_cfg.state_init = o->state_init;
    g_cfg.allow_expired = o->allow_expired;
    g_cfg.expiry_refuse = o->on_expiry && !strcmp(o->on_expiry, "refuse");
    g_cfg.pubkey = o->pubkey;
    return 0;
}

ap_status fs_config_load_keys(ap_err *err)
{
    if (!g_cfg.pubkey) return AP_OK;
    return ap_pubkeys_load(g_cfg.pubkey, g_cfg.keys, &g_cfg.nkeys, err);
}

void fs_opts_free(fs_opts *o)
{
    free(o->pubkey);
    free(o->state);
    free(o->log);
    free(o->verify);
    free(o->scan);
    free(o->on_expiry);
    free(o->embed_url);
    free(o->embed_key_file);
}
