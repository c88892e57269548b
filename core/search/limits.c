/* The search limits and defaults of annpack/search.h as functions, for bindings that
 * cannot read the macros (Python's ctypes). */
#include "annpack/search.h"

uint32_t ap_max_k(void)
{
    return AP_MAX_K;
}

uint32_t ap_default_k(void)
{
    return AP_DEFAULT_K;
}

uint32_t ap_default_probe(void)
{
    return AP_DEFAULT_PROBE;
}
