/* Fuzz target: verify's deep checks over a pack directory (ap_verify_dir, deep). The input
 * is split at each "\n--annpack-fuzz-file--\n" into the files of a pack directory:
 * pack.manifest.json, pack.annpack, the metadata rows (pack.meta.jsonl when the manifest's
 * shards[0].meta says so, else pack.meta.jsonl.zst), pack.meta.idx and pack.sq8 (absent
 * parts: no file). When the manifest is JSON, the harness rewrites the size and sha256 of
 * every file it lists that the input wrote, so verification gets past the hashes to the
 * structure and deep checks.
 *
 * Invariants: the report is JSON whose "ok" matches the status, a failure has a message;
 * a pack that verifies deep opens, and every vector's id fetches a row that is a JSON
 * object with that "id" (one row per vector); a search returns at most k live ids. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "annpack/format.h"
#include "annpack/pack.h"
#include "fixture.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEP "\n--annpack-fuzz-file--\n"
#define NPARTS 5

static char *dir;

static void init(void)
{
    dir = fx_path(fx_scratch("deep"), "pack");
    if (mkdir(dir, 0755) != 0) fx_die(dir, NULL);
}

/* Sets size and sha256 of files[name] (when listed) to the file's. */
static void patch(cJSON *files, const char *name, const uint8_t *d, size_t n)
{
    cJSON *f = cJSON_GetObjectItemCaseSensitive(files, name);
    if (!cJSON_IsObject(f)) return;
    char hex[AP_SHA256_HEX];
    ap_sha256_hex(d, n, hex);
    cJSON_DeleteItemFromObjectCaseSensitive(f, "size");
    cJSON_DeleteItemFromObjectCaseSensitive(f, "sha256");
    cJSON_AddNumberToObject(f, "size", (double)n);
    cJSON_AddStringToObject(f, "sha256", hex);
}

static void check_pack(void)
{
    ap_pack *p = NULL;
    if (ap_pack_open(dir, &p, NULL) != AP_OK) __builtin_trap();
    const ap_annp *a = ap_pack_annp(p);
    const ap_annp_header *h = ap_annp_get_header(a);
    if (ap_meta_count(ap_pack_meta(p)) != h->n_vectors) __builtin_trap();
    for (uint32_t li = 0; li < h->n_lists; li++) {
        ap_annp_list l;
        ap_annp_list_get(a, li, &l);
        for (uint32_t j = 0; j < l.count; j++) {
            uint64_t id = ap_annp_list_id(&l, j), rid = 0;
            char *row = NULL;
            size_t len;
            cJSON *r = NULL;
            if (ap_meta_get(ap_pack_meta(p), id, &row, &len, NULL) != AP_OK ||
                ap_json_parse_strict(row, len, "row", &r, NULL) != AP_OK ||
                ap_json_u64(r, "id", AP_JSON_MAX_SAFE_INT, "row", &rid, NULL) != AP_OK || rid != id)
                __builtin_trap();
            cJSON_Delete(r);
            free(row);
        }
    }
    float *q = calloc(h->dim, sizeof *q);
    if (q) {
        q[0] = 1.0f;
        ap_hit hits[8];
        uint32_t n = 0;
        if (ap_pack_search_vec(p, q, 8, 2, hits, &n, NULL) == AP_OK) {
            if (n > 8) __builtin_trap();
            for (uint32_t i = 0; i < n; i++) {
                char *row = NULL;
                size_t len;
                if (ap_meta_get(ap_pack_meta(p), hits[i].id, &row, &len, NULL) != AP_OK)
                    __builtin_trap();
                free(row);
            }
        }
    }
    free(q);
    ap_pack_close(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    if (size > (4u << 20)) return 0;
    const uint8_t *part[NPARTS];
    size_t len[NPARTS], np = fx_split(data, size, SEP, part, len, NPARTS);
    const char *meta = "pack.meta.jsonl.zst";
    cJSON *m = cJSON_ParseWithLength((const char *)part[0], len[0]);
    const cJSON *sh = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "shards"), 0);
    const cJSON *mv = cJSON_GetObjectItemCaseSensitive(sh, "meta");
    if (cJSON_IsString(mv) && strcmp(mv->valuestring, "pack.meta.jsonl") == 0)
        meta = "pack.meta.jsonl";
    const char *names[NPARTS] = {AP_MANIFEST, AP_ANNPACK, meta, "pack.meta.idx", "pack.sq8"};
    cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
    for (size_t i = 1; i < np; i++)
        patch(files, names[i], part[i], len[i]);
    char *mtext = m ? cJSON_PrintUnformatted(m) : NULL;
    cJSON_Delete(m);
    for (size_t i = 0; i < np; i++) {
        char *p = fx_path(dir, names[i]);
        const void *d = i == 0 && mtext ? (const void *)mtext : part[i];
        size_t n = i == 0 && mtext ? strlen(mtext) : len[i];
        if (fx_put(p, d, n)) __builtin_trap();
        free(p);
    }
    free(mtext);

    ap_verify_opts vo = {.deep = true};
    ap_err err = {0};
    char *report = NULL;
    ap_status st = ap_verify_dir(dir, &vo, &report, &err);
    cJSON *r = report ? cJSON_Parse(report) : NULL;
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(r, "ok");
    if (!cJSON_IsBool(ok) || cJSON_IsTrue(ok) != (st == AP_OK)) __builtin_trap();
    if (st != AP_OK && !err.msg[0]) __builtin_trap();
    cJSON_Delete(r);
    free(report);
    if (st == AP_OK) check_pack();

    for (size_t i = 0; i < np; i++) {
        char *p = fx_path(dir, names[i]);
        unlink(p);
        free(p);
    }
    return 0;
}
