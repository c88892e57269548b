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

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_CPU_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
