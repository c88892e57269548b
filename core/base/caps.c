/* Security caps: see include/annpack/caps.h. The variables are parsed in env.c. */
#include "annpack/caps.h"
#include "env.h"

const ap_caps *ap_caps_get(void)
{
    return &ap_env_get()->caps;
}

ap_status ap_caps_reload(ap_err *err)
{
    return ap_env_reload(err);
}
