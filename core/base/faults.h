/* Fault-injection hooks for the crash-safety tests (internal to core).
 *
 * Only a build configured with -Dtest_hooks=true (tools/setup.sh configures build/ so)
 * compiles them (faults.c); in every other build they are empty inlines, so the production
 * library holds no code that kills its process. `annpack diagnose` reports which it is
 * ("test_hooks", from ap_test_hooks in annpack/caps.h). docs/ROBUSTNESS.md lists them. */
#ifndef ANNPACK_CORE_FAULTS_H
#define ANNPACK_CORE_FAULTS_H

#ifndef AP_TEST_HOOKS
#error "AP_TEST_HOOKS is defined (0 or 1) by core/meson.build from -Dtest_hooks"
#endif

#if AP_TEST_HOOKS
/* SIGKILLs the process when ANNPACK_TEST_CRASH_AT (read once, env.c) names step, so a
 * test can check what a crash at that instant leaves behind. */
void ap_crash_point(const char *step);
#else
static inline void ap_crash_point(const char *step)
{
    (void)step;
}
#endif

#endif
