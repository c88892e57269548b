/* The default probe of a view: the calibrated one (docs/FORMAT.md "build.calibration") of
 * the newest delta that has one, else of the base, else ap_default_probe(). */
#include "annpack/packset.h"
#include "annpack/search.h"
#include "json.h"
#include "pack_open.h"
#include "view.h"

uint32_t ap_calibrated_probe(const cJSON *holder)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(holder, "calibration");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "default_probe");
    if (cJSON_IsNumber(p) && p->valuedouble >= 1 && p->valuedouble <= 4294967295.0 &&
        p->valuedouble == (double)(uint32_t)p->valuedouble)
        return (uint32_t)p->valuedouble;
    return 0;
}

/* The layer whose calibration the view uses, or -1 (none usable). */
static int64_t calibrated_layer(const ap_view *v)
{
    uint32_t lists = ap_view_n_lists(v);
    /* A value that is not a probe the base has is ignored, not trusted. */
    for (uint32_t l = v->nlayers; l-- > 1;)
        if (v->layers[l].default_probe && v->layers[l].default_probe <= lists) return l;
    uint32_t p = ap_calibrated_probe(ap_pack_manifest_of(v->layers[0].pack)->build);
    return p && p <= lists ? 0 : -1;
}

uint32_t ap_view_default_probe(const ap_view *v)
{
    int64_t l = calibrated_layer(v);
    if (l > 0) return v->layers[l].default_probe;
    return l == 0 ? ap_calibrated_probe(ap_pack_manifest_of(v->layers[0].pack)->build)
                  : ap_default_probe();
}

const cJSON *ap_view_calibration(const ap_view *v)
{
    int64_t l = calibrated_layer(v);
    if (l > 0) return v->layers[l].calibration;
    return l == 0 ? cJSON_GetObjectItemCaseSensitive(ap_pack_manifest_of(v->layers[0].pack)->build,
                                                     "calibration")
                  : NULL;
}
