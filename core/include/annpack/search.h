/* annpack — IVF search primitives.
 *
 * Scores are dot products of the f32 query with the stored f16 vectors (converted to
 * f32). Every kernel (AVX-512, AVX2+F16C, portable) sums in the same order — 16 lanes,
 * then a fixed reduction — so all give bit-identical scores and the same top-k. Results
 * are ordered by score descending, ties by ascending id. */
#ifndef ANNPACK_SEARCH_H
#define ANNPACK_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_DEFAULT_K 10u
#define AP_DEFAULT_PROBE 8u
#define AP_MAX_K 1000u

typedef struct ap_hit {
    uint64_t id;
    float score;
    uint32_t layer; /* 0 = base, seq for a delta */
} ap_hit;

/* A bounded top-k collector (min-heap of the k best so far). */
typedef struct ap_topk {
    ap_hit *h;
    uint32_t k, n;
} ap_topk;

/* buf must hold k hits. */
AP_API void ap_topk_init(ap_topk *t, ap_hit *buf, uint32_t k);
AP_API void ap_topk_push(ap_topk *t, uint64_t id, float score, uint32_t layer);
/* Sorts the collected hits best first; returns their number. */
AP_API uint32_t ap_topk_finish(ap_topk *t);

/* The probe best lists for q (score desc, ties by lower index); probe is clamped to
 * n_lists. lists receives min(probe, n_lists) indexes; returns that count. */
AP_API uint32_t ap_probe_lists(const float *centroids, uint32_t n_lists, uint32_t dim,
                               const float *q, uint32_t probe, uint32_t *lists);

/* Scores one stored list against q and pushes its vectors into t. When dead is non-NULL,
 * vector j is skipped if bit (dead_base + j) of dead is set. */
AP_API void ap_scan_list(ap_topk *t, const float *q, uint32_t dim, const ap_annp_list *list,
                         const uint8_t *dead, uint64_t dead_base, uint32_t layer);

/* Dot product of q with one stored f16 vector (the kernel the scans use). */
AP_API float ap_dot_f16(const float *q, const uint8_t *vec, uint32_t dim);

/* Searches one ANNP file: probe lists, scan, top-k. out holds k hits; *n_out is set. */
AP_API ap_status ap_annp_search(const ap_annp *a, const float *q, uint32_t k, uint32_t probe,
                                ap_hit *out, uint32_t *n_out, ap_err *err);

/* Whether the CPU (and OS) support a feature: "avx", "avx2", "f16c", "fma", "avx512f". */
AP_API int ap_cpu_has(const char *feature);

/* The kernel in use: "avx512", "avx2", or "portable"; force_portable for tests. */
AP_API const char *ap_search_kernel(void);
AP_API void ap_search_force_portable(int on);

#ifdef __cplusplus
}
#endif
#endif
