/* annpack — CPU features (base layer). */
#ifndef ANNPACK_CPU_H
#define ANNPACK_CPU_H

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether the CPU (and OS) support a feature: 1 or 0. feature is one of "avx", "avx2",
 * "f16c", "fma", "popcnt", "avx512f", "avx512bw", "avx512vnni", "avx512vpopcntdq"; unknown
 * names: 0. */
AP_API int ap_cpu_has(const char *feature);

/* Makes every later BLAS call (OpenBLAS) run on the calling thread alone, as
 * OPENBLAS_NUM_THREADS=1 at start would: for a server whose concurrent requests are its
 * parallelism (annpackfs in the foreground). The library's own multi-threaded phases
 * (k-means) still set their thread count around their calls and restore this one. */
AP_API void ap_blas_single_thread(void);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_CPU_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
