/* Fuzz target: the delta-manifest checks of packset verification. Once per process a small
 * valid packset (a base and one appended delta) is built in a scratch directory; each
 * input replaces deltas/0001.delta/delta.manifest.json, and the root manifest's
 * sha256_delta_manifest is rewritten to the input's hash so that verification gets past
 * the root's hash check and reaches the delta manifest's own checks. Then ap_verify_dir.
 * Invariants: the report is JSON whose "ok" matches the status; a packset that verifies
 * has a delta manifest that is strict JSON naming this base and listing only files of the
 * delta whose hashes match. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/pack.h"
#include "annpack/packset.h"
#include "fixture.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *ps, *dm_path, *root_path, *root_raw;
static size_t root_len, hash_at;
static char base_hash[AP_SHA256_HEX];

static void init(void)
{
    const char *dir = fx_scratch("delta");
    char *csv = fx_path(dir, "base.csv"), *add = fx_path(dir, "add.csv");
    ps = fx_path(dir, "ps");
    fx_csv(csv, fx_range(0, 12), 12, 0);
    fx_csv(add, fx_range(10, 4), 4, 5); /* updates 10, 11; adds 12, 13 */
    fx_build(csv, ps, 1, 8, 1, 2, 0, AP_META_ZSTD);
    char *base = fx_path(ps, "base"), *delta = fx_path(ps, "deltas/0001.delta");
    uint64_t del[] = {0, 3};
    fx_delta(base, delta, add, del, 2, AP_META_ZSTD);
    ap_err err = {0};
    if (ap_packset_append_delta(ps, delta, 1, NULL, &err)) fx_die("append", &err);
    dm_path = fx_path(delta, AP_DELTA_MANIFEST);
    root_path = fx_path(ps, AP_MANIFEST);
    char *bann = fx_path(base, AP_ANNPACK);
    uint64_t sz;
    if (ap_sha256_file(bann, base_hash, &sz, &err)) fx_die(bann, &err);
    /* Where the root manifest holds the delta manifest's hash (exactly once). */
    char hex[AP_SHA256_HEX];
    if (ap_sha256_file(dm_path, hex, &sz, &err)) fx_die(dm_path, &err);
    if (ap_read_file(root_path, 1u << 20, &root_raw, &root_len, &err)) fx_die(root_path, &err);
    char *at = strstr(root_raw, hex);
    if (!at || strstr(at + 1, hex)) fx_die("delta manifest hash not found once in the root", NULL);
    hash_at = (size_t)(at - root_raw);
    char *orig = fx_path(dir, "original-" AP_DELTA_MANIFEST); /* a seed, for the corpus */
    if (ap_copy_file(dm_path, orig, &err)) fx_die(orig, &err);
    free(orig);
    ap_verify_opts vo = {0};
    if (ap_verify_dir(ps, &vo, NULL, &err)) fx_die("the fixture does not verify", &err);
    free(csv);
    free(add);
    free(base);
    free(delta);
    free(bann);
}

/* Whether a verified delta manifest is what verification promises (see top). */
static int consistent(const uint8_t *data, size_t size)
{
    cJSON *j = NULL;
    if (ap_json_parse_strict((const char *)data, size, "fuzz", &j, NULL)) return 0;
    const cJSON *bh = cJSON_GetObjectItemCaseSensitive(j, "base_sha256_annpack");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(j, "files"), *f;
    int ok = cJSON_IsString(bh) && strcmp(bh->valuestring, base_hash) == 0 && cJSON_IsObject(files);
    if (!ok) files = NULL;
    cJSON_ArrayForEach(f, files)
    {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(f, "sha256");
        char rel[1200], hex[AP_SHA256_HEX];
        uint64_t sz;
        snprintf(rel, sizeof rel, "%s/deltas/0001.delta/%s", ps, f->string);
        ok = cJSON_IsString(h) && !strstr(f->string, "..") && f->string[0] != '/' &&
             ap_sha256_file(rel, hex, &sz, NULL) == AP_OK && strcmp(hex, h->valuestring) == 0;
        if (!ok) break;
    }
    cJSON_Delete(j);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    if (size > (1u << 20)) return 0;
    char hex[AP_SHA256_HEX];
    ap_sha256_hex(data, size, hex);
    memcpy(root_raw + hash_at, hex, 64);
    if (fx_put(dm_path, data, size) || fx_put(root_path, root_raw, root_len)) __builtin_trap();
    ap_verify_opts vo = {0};
    ap_err err = {0};
    char *report = NULL;
    ap_status st = ap_verify_dir(ps, &vo, &report, &err);
    cJSON *r = report ? cJSON_Parse(report) : NULL;
    const cJSON *ok = r ? cJSON_GetObjectItemCaseSensitive(r, "ok") : NULL;
    if (!cJSON_IsBool(ok) || cJSON_IsTrue(ok) != (st == AP_OK)) __builtin_trap();
    if (st != AP_OK && !err.msg[0]) __builtin_trap();
    if (st == AP_OK && !consistent(data, size)) __builtin_trap();
    cJSON_Delete(r);
    free(report);
    return 0;
}
