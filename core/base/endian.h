/* Little-endian load/store helpers (internal). The formats are little-endian; these
 * make every access explicit and alignment-free. */
#ifndef ANNPACK_CORE_ENDIAN_H
#define ANNPACK_CORE_ENDIAN_H

#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "annpack maps f16 vectors in place and needs a little-endian host"
#endif

/* Callers pass pointers into mapped, size-checked buffers. */
static inline uint32_t ap_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4); // NOLINT(clang-analyzer-core.NonNullParamChecker)
    return v;
}

static inline uint64_t ap_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); // NOLINT(clang-analyzer-core.NonNullParamChecker)
    return v;
}

static inline void ap_put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static inline void ap_put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

#endif
