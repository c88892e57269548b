/* The calibrated default probe of a build (internal to core; docs/FORMAT.md "calibration").
 *
 * Held-out self-queries: a spread sample of the pack's own vectors, each searched for its
 * exact top 10 among the other vectors. A neighbour is found at probe p when its list is
 * among the query's p best lists (by centroid score, ties by lowest index, as the search
 * picks them), so one pass gives the recall at every probe. The default probe is the
 * smallest that reaches the target recall, or every list when scanning all is cheap. */
#ifndef ANNPACK_CORE_CALIBRATE_H
#define ANNPACK_CORE_CALIBRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/status.h"

#define AP_CALIB_QUERIES 256u     /* sampled queries (fewer when the pack has fewer rows) */
#define AP_CALIB_K 10u            /* neighbours per query */
#define AP_CALIB_TARGET 0.95      /* the default --target-recall */
#define AP_CALIB_SMALL (1u << 22) /* n * dim at most this: every list is cheap */
#define AP_CALIB_POINTS 40u

typedef struct ap_calibration {
    double target;
    uint32_t queries, n_lists, default_probe;
    uint32_t target_probe; /* the smallest probe reaching the target */
    bool small;            /* default_probe = n_lists because scanning all is cheap */
    double recall_at_default;
    uint32_t n_points;
    uint32_t probe[AP_CALIB_POINTS];
    double recall[AP_CALIB_POINTS]; /* rounded to 4 decimals */
} ap_calibration;

/* Calibrates: x (n x dim, unit rows) assigned to k lists (assign), centroids k x dim. */
ap_status ap_calibrate(const float *x, size_t n, uint32_t dim, const float *centroids, uint32_t k,
                       const uint32_t *assign, double target, ap_calibration *out, ap_err *err);

/* The manifest's "calibration" object (in the "build" block); NULL when out of memory. */
cJSON *ap_calibration_json(const ap_calibration *c);

/* The target recall a manifest's build block records (its "calibration"), or 0 if none. */
double ap_calibration_target_of(const cJSON *build);

#endif
