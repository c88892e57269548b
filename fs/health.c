/* The health file and the manifest's provenance: see health.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "json_write.h"

char *fs_health_json(const fs_gen *g, const char *status, size_t *len)
{
    const ap_view *v = g->view;
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "status", status) &&
              fs_json_add_u64(o, "generation", g->number) &&
              fs_json_add_u64(o, "version", g->version) &&
              fs_json_add_u64(o, "n_vectors", ap_view_live_count(v)) &&
              fs_json_add_u64(o, "dim", ap_view_dim(v)) &&
              fs_json_add_u64(o, "n_lists", ap_view_n_lists(v)) &&
              fs_json_add_u64(o, "deltas", ap_view_n_deltas(v)) &&
              cJSON_AddStringToObject(o, "embedder", ap_embedder_name(ap_view_embedder(v))) &&
              cJSON_AddBoolToObject(o, "sq8", ap_view_has_sq8(v)) &&
              cJSON_AddBoolToObject(o, "bits", ap_view_has_bits(v)) &&
              cJSON_AddStringToObject(o, "signature", g->signature) &&
              fs_json_add_text(o, "key_id", g->keyid) &&
              fs_json_add_text(o, "expires", g->has_expires ? g->expires_text : NULL) &&
              cJSON_AddStringToObject(o, "verify",
                                      !g_cfg.verify_full  ? "none"
                                      : g_cfg.verify_lazy ? "lazy"
                                                          : "full");
    char *s = ok ? fs_json_print(o, 0, len) : NULL;
    cJSON_Delete(o);
    return s;
}

bool fs_known_corruption(ap_status st, const ap_err *err)
{
    return st == AP_ERR_VERIFY && strstr(err->msg, " does not match pack.digests ") != NULL;
}

char *fs_health_corrupt_json(const fs_gen *g, const ap_view_verify *vi, size_t *len)
{
    size_t n = 0;
    char *base = fs_health_json(g, "corrupt", &n);
    cJSON *o = base ? cJSON_Parse(base) : NULL;
    free(base);
    bool ok = o && fs_json_add_u64(o, "bad_ranges", vi->ranges_bad) &&
              cJSON_AddStringToObject(o, "first_bad", vi->first_bad);
    char *s = ok ? fs_json_print(o, 0, len) : NULL;
    cJSON_Delete(o);
    return s;
}

char *fs_provenance_json(const fs_gen *g)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && fs_json_add_u64(o, "generation", g->number) &&
              cJSON_AddStringToObject(o, "signature", g->signature) &&
              fs_json_add_text(o, "key_id", g->keyid);
    char *s = ok ? fs_json_print(o, 1, NULL) : NULL;
    cJSON_Delete(o);
    return s;
}
