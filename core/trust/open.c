/* Opening a directory under a trust policy: see include/annpack/trust.h. */
#include <string.h>

#include "annpack/trust.h"
#include "view.h"

ap_status ap_view_open_trusted(const char *dir, const ap_trust_policy *policy, ap_view **out,
                               ap_trust_result *res, ap_err *err)
{
    *out = NULL;
    static const ap_trust_policy none;
    const ap_trust_policy *p = policy ? policy : &none;
    ap_view_open_opts o = {.keys = p->keys,
                           .nkeys = p->nkeys,
                           .sig_path = p->sig_path,
                           .allow_expired = p->allow_expired,
                           .checks = {.hash = p->hash_files, .lazy = p->lazy}};
    ap_view_trust t;
    ap_view *v = NULL;
    ap_status st = ap_view_open_ex(dir, &o, &v, &t, err);
    if (st) return st;
    uint64_t version = ap_view_version(v);
    if (version < p->min_version || (p->strict_version && version == p->min_version)) {
        ap_view_close(v);
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: version %llu is not newer than %llu (replay of an older packset?)",
                          dir, (unsigned long long)version, (unsigned long long)p->min_version);
    }
    if (res) {
        memset(res, 0, sizeof *res);
        res->signature_present = t.sig_present;
        res->signature_checked = t.sig_checked;
        memcpy(res->key_id, t.key_id, sizeof res->key_id);
        res->version = version;
        res->expires = t.expires;
    }
    *out = v;
    return AP_OK;
}
