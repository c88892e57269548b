/* CPU feature detection with cpuid/xgetbv (clang's __builtin_cpu_supports lacks "f16c"). */
#include <string.h>

#include "annpack/cpu.h"

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

int ap_cpu_has(const char *feature)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int avx_os = (xcr0 & 0x6) == 0x6;                /* XMM and YMM state enabled */
    int avx512_os = avx_os && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    int avx = ((c >> 28) & 1) && avx_os;
    if (!strcmp(feature, "avx")) return avx;
    if (!strcmp(feature, "f16c")) return avx && ((c >> 29) & 1);
    if (!strcmp(feature, "fma")) return avx && ((c >> 12) & 1);
    if (!strcmp(feature, "popcnt")) return (c >> 23) & 1;
    unsigned int b7 = 0, c7 = 0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        unsigned int a7, d7;
        __cpuid_count(7, 0, a7, b7, c7, d7);
        (void)a7;
        (void)d7;
    }
    if (!strcmp(feature, "avx2")) return avx && ((b7 >> 5) & 1);
    if (!strcmp(feature, "avx512f")) return avx512_os && ((b7 >> 16) & 1);
    if (!strcmp(feature, "avx512bw")) return avx512_os && ((b7 >> 16) & 1) && ((b7 >> 30) & 1);
    if (!strcmp(feature, "avx512vnni")) return avx512_os && ((b7 >> 16) & 1) && ((c7 >> 11) & 1);
    if (!strcmp(feature, "avx512vpopcntdq"))
        return avx512_os && ((b7 >> 16) & 1) && ((c7 >> 14) & 1);
    return 0;
}
#else
int ap_cpu_has(const char *feature)
{
    (void)feature;
    return 0;
}
#endif

/* OpenBLAS's own entry point (no header declares it in Debian's cblas.h). */
extern void openblas_set_num_threads(int num_threads);

void ap_blas_single_thread(void)
{
    openblas_set_num_threads(1);
}
