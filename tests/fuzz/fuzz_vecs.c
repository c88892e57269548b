/* Fuzz target: the .fvecs/.ivecs readers; what they accept must be whole rows of the
 * reported dim, and (fvecs) finite. */
#include <math.h>
#include <stdint.h>

#include "annpack/vecs.h"
#include "memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = memfile(data, size, path);
    if (fd < 0) return 0;
    for (int kind = 0; kind < 2; kind++) {
        ap_vecs *v = NULL;
        if (ap_vecs_open(path, kind ? AP_VECS_I32 : AP_VECS_F32, &v, NULL) != AP_OK) continue;
        size_t n = ap_vecs_count(v);
        uint32_t dim = ap_vecs_dim(v);
        if (n == 0 || dim == 0 || n * (4 + 4 * (size_t)dim) != size) __builtin_trap();
        for (size_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < dim; j++)
                if (!kind && !isfinite(ap_vecs_f32(v, i)[j])) __builtin_trap();
        ap_vecs_close(v);
    }
    close(fd);
    return 0;
}
