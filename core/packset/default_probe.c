/* The default probe of a view: the base's calibrated one (docs/FORMAT.md "calibration"). */
#include "annpack/packset.h"
#include "annpack/search.h"
#include "json.h"
#include "pack_open.h"
#include "view.h"

uint32_t ap_view_default_probe(const ap_view *v)
{
    const ap_pack_manifest *m = ap_pack_manifest_of(v->layers[0].pack);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m->build, "calibration");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "default_probe");
    uint32_t lists = ap_view_n_lists(v);
    /* A value that is not a probe the pack has is ignored, not trusted. */
    if (cJSON_IsNumber(p) && p->valuedouble >= 1 && p->valuedouble <= lists &&
        p->valuedouble == (double)(uint32_t)p->valuedouble)
        return (uint32_t)p->valuedouble;
    return ap_default_probe();
}
