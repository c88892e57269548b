/* Fault-injection hooks: see faults.h. Compiled only with -Dtest_hooks=true. */
#include <signal.h>
#include <string.h>

#include "env.h"
#include "faults.h"

#if !AP_TEST_HOOKS
#error "faults.c is built only with -Dtest_hooks=true"
#endif

void ap_crash_point(const char *step)
{
    const char *at = ap_env_get()->crash_at;
    if (at[0] && strcmp(at, step) == 0) raise(SIGKILL);
}
