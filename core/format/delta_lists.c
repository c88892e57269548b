/* delta.lists: see delta_lists.h. Layout (little-endian), docs/FORMAT.md:
 *   "ANNPDLS1", u32 base_lists, u32 reserved (0), u64 n,
 *   n x u32 base list, one per vector of the delta's ANNP file in file order. */
#include <stdlib.h>
#include <string.h>

#include "delta_lists.h"
#include "endian.h"

ap_status ap_delta_lists_parse(const uint8_t *bytes, size_t len, const char *name,
                               uint64_t n_vectors, uint32_t *base_lists, const uint8_t **lists,
                               ap_err *err)
{
    if (len < AP_DELTA_LISTS_HEADER || memcmp(bytes, AP_DELTA_LISTS_MAGIC, 8) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: not a delta.lists file (magic %s)", name,
                          AP_DELTA_LISTS_MAGIC);
    uint32_t nl = ap_le32(bytes + 8), reserved = ap_le32(bytes + 12);
    uint64_t n = ap_le64(bytes + 16);
    if (reserved != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: reserved field is %u, not 0", name, reserved);
    if (nl == 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: grouped under 0 base lists", name);
    if (n != n_vectors)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: holds %llu entries, the delta has %llu vectors",
                          name, (unsigned long long)n, (unsigned long long)n_vectors);
    if ((len - AP_DELTA_LISTS_HEADER) / 4 != n || (len - AP_DELTA_LISTS_HEADER) % 4 != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %zu bytes, %llu entries need %llu", name, len,
                          (unsigned long long)n,
                          (unsigned long long)(AP_DELTA_LISTS_HEADER + 4 * n));
    const uint8_t *at = bytes + AP_DELTA_LISTS_HEADER;
    for (uint64_t i = 0; i < n; i++)
        if (ap_le32(at + 4 * i) >= nl)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: vector %llu is grouped under list %u of %u base lists", name,
                              (unsigned long long)i, ap_le32(at + 4 * i), nl);
    *base_lists = nl;
    *lists = at;
    return AP_OK;
}

uint32_t ap_delta_lists_at(const uint8_t *lists, uint64_t i)
{
    return ap_le32(lists + 4 * i);
}

uint8_t *ap_delta_lists_encode(const uint32_t *lists, uint64_t n, uint32_t base_lists, size_t *len)
{
    *len = AP_DELTA_LISTS_HEADER + 4 * (size_t)n;
    uint8_t *b = malloc(*len);
    if (!b) return NULL;
    memcpy(b, AP_DELTA_LISTS_MAGIC, 8);
    ap_put32(b + 8, base_lists);
    ap_put32(b + 12, 0);
    ap_put64(b + 16, n);
    for (uint64_t i = 0; i < n; i++)
        ap_put32(b + AP_DELTA_LISTS_HEADER + 4 * i, lists[i]);
    return b;
}
