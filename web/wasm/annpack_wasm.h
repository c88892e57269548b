/* The exports of the WebAssembly core (annpack_wasm.c; web/client/wasm.js calls them). */
#ifndef ANNPACK_WASM_H
#define ANNPACK_WASM_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/search.h"
#include "liveness.h"

typedef struct apw_topk apw_topk;

void *apw_malloc(size_t n);
void apw_free(void *p);
const char *apw_error(void);
const char *apw_kernel(void);
int apw_header(const uint8_t *buf, size_t len, uint64_t file_size, const char *name, uint8_t *out);
int64_t apw_list_count(const uint8_t *p, uint64_t len, uint32_t dim, uint32_t i, const char *name);
int apw_embed_hash(uint32_t dim, uint64_t seed, const char *text, size_t len, float *out);
uint32_t apw_probe(const float *centroids, uint32_t n_lists, uint32_t dim, const float *q,
                   uint32_t probe, uint32_t *lists);
apw_topk *apw_topk_new(uint32_t k);
void apw_scan(apw_topk *t, const float *q, uint32_t dim, const uint8_t *list, uint32_t count,
              const uint8_t *dead, uint64_t dead_base, uint32_t layer);
uint32_t apw_topk_finish(apw_topk *t);
const ap_hit *apw_topk_hits(const apw_topk *t);
void apw_topk_free(apw_topk *t);
uint32_t apw_mentions_resolve(ap_mention *m, uint32_t n);
uint32_t apw_dead_bits(const ap_mention *m, uint32_t n, const uint8_t *list, uint32_t count,
                       uint32_t layer, uint8_t *dead);
int apw_assign(const float *centroids, uint32_t n_lists, uint32_t dim, const uint8_t *vecs,
               uint32_t n, uint32_t *out);

#endif
