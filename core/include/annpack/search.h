/* annpack — IVF search primitives.
 *
 * Scores are dot products of the f32 query with the stored f16 vectors (converted to
 * f32). Every f16 kernel (AVX-512, AVX2+F16C, portable) sums in the same order — 32 lane
 * accumulators of products (multiply, then add: no fused multiply-add), folded to 16
 * lanes, a last 16-chunk, a fixed pairwise reduction, then the tail dims added in order
 * (exactly as in core/kernel_f16.c) — so all give bit-identical scores and the same
 * top-k. Results are ordered by score descending, ties by ascending id.
 *
 * With an int8 sidecar (sq8.h), a search can scan the 1-byte codes instead of the 2-byte
 * vectors, keep the best `rerank` candidates by their integer score, and re-score those
 * exactly with the f16 kernel: the returned scores are always exact f16 scores. */
#ifndef ANNPACK_SEARCH_H
#define ANNPACK_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "format.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_DEFAULT_K 10u
#define AP_DEFAULT_PROBE 8u
#define AP_MAX_K 1000u
#define AP_MAX_RERANK 100000u

typedef struct ap_hit {
    uint64_t id;
    float score;
    uint32_t layer; /* 0 = base, seq for a delta */
} ap_hit;

/* How a search scans its lists. */
typedef enum ap_scan_mode {
    AP_SCAN_AUTO = 0, /* the int8 sidecar when the pack has one, else f16 (measured fastest
                         at the calibrated recall; bits is never chosen by auto) */
    AP_SCAN_F16 = 1,  /* exact: every probed vector scored from its f16 copy */
    AP_SCAN_SQ8 = 2,  /* int8 codes first, exact f16 re-ranking (needs the sidecar) */
    AP_SCAN_BITS = 3  /* 1-bit codes first, exact f16 re-ranking within the error bound
                         (needs pack.bits, annpack/bits.h) */
} ap_scan_mode;

/* Parses "auto", "f16", "sq8" or "bits" (the CLI's --scan and the mount's scan=) into *out.
 * AP_ERR_ARG naming the accepted values otherwise (*out untouched). */
AP_API ap_status ap_scan_mode_parse(const char *s, ap_scan_mode *out, ap_err *err);

typedef struct ap_search_params {
    uint32_t k;     /* results, 1..AP_MAX_K */
    uint32_t probe; /* lists scanned, >= 1 (clamped to n_lists) */
    ap_scan_mode scan;
    uint32_t rerank; /* sq8: candidates re-scored exactly; 0 = ap_default_rerank(k) (bits:
                        not used, the error bound chooses) */
} ap_search_params;

/* The default number of sq8 candidates re-ranked for k results. */
static inline uint32_t ap_default_rerank(uint32_t k)
{
    return k * 8 < 64 ? 64 : k * 8;
}

/* What one search did (optional out-parameter; fields are added to, so a caller can sum
 * several searches). Times are wall-clock nanoseconds. */
typedef struct ap_search_stats {
    uint64_t searches;
    uint64_t lists;     /* lists scanned */
    uint64_t vectors;   /* vectors scored in the scan */
    uint64_t bytes;     /* list bytes streamed by the scan (f16 vectors or int8 codes) */
    uint64_t reranked;  /* sq8 or bits candidates re-scored */
    uint64_t ns_probe;  /* centroid scoring and list selection */
    uint64_t ns_scan;   /* scanning lists */
    uint64_t ns_total;  /* the whole call */
    const char *kernel; /* the kernel used for the scan (static storage) */
} ap_search_stats;

/* The f16 kernel in use: "avx512", "avx2", or "portable"; the int8 one: "avx512vnni",
 * "avx512bw", "avx2" or "portable". Static storage. */
AP_API const char *ap_search_kernel(void);
AP_API const char *ap_search_kernel_sq8(void);
/* The 1-bit code kernel (pack.bits): "avx512vpopcntdq", "avx2", "popcnt" or "portable". */
AP_API const char *ap_search_kernel_bits(void);

/* The search limits and defaults above, for bindings that cannot read the macros
 * (Python): AP_MAX_K, AP_DEFAULT_K and AP_DEFAULT_PROBE. */
AP_API uint32_t ap_max_k(void);
AP_API uint32_t ap_default_k(void);
AP_API uint32_t ap_default_probe(void);

/* Fetches the metadata row of a hit into *row (malloc'd; ap_results_json frees it). ud is
 * the user data given to ap_results_json (for ap_view_row_of, the view). */
typedef ap_status (*ap_row_fn)(void *ud, uint64_t id, uint32_t layer, char **row, ap_err *err);

/* Renders search results as the JSON object of the CLI and the mount:
 * {"query","k","probe",["generation",]"took_ms","results":[{"id","score","layer","meta"}]}
 * generation < 0 omits it; row_of NULL gives "meta": null. query is the caller's text
 * (NUL-terminated), hits the n hits to render. Returns malloc'd text of *len bytes (len
 * may be NULL; the caller frees it with ap_free), or NULL with err set when a row cannot
 * be fetched (never a result without its row). */
AP_API char *ap_results_json(const char *query, uint32_t k, uint32_t probe, long long generation,
                             double took_ms, const ap_hit *hits, uint32_t n, ap_row_fn row_of,
                             void *ud, size_t *len, ap_err *err);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_SEARCH_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
