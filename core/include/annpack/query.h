/* annpack — query file names of the mount: "<percent-encoded text>[?k=N&probe=N]".
 *
 * The name is split at its first literal '?'; the text part is percent-decoded (so '/'
 * and '?' travel as %2F and %3F) and must be valid UTF-8 without NUL, not empty or only
 * whitespace (ap_query_text_check), at most AP_QUERY_NAME_MAX bytes once decoded; the
 * parameters are k and probe, each at most once, decimal, within bounds. Untrusted input:
 * every malformed name is refused with a status the mount maps to an errno. */
#ifndef ANNPACK_QUERY_H
#define ANNPACK_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_QUERY_NAME_MAX 1024u /* decoded text bytes; longer: AP_ERR_LIMIT (ENAMETOOLONG) */
#define AP_QUERY_RAW_MAX 4096u  /* raw name bytes (a %-encoded text at most triples) */
#define AP_MAX_PROBE 65536u

typedef struct ap_query {
    char *text; /* decoded, NUL-terminated, malloc'd: freed by ap_query_free */
    size_t len;
    uint32_t k, probe;
} ap_query;

/* Parses name[0..len) into the caller's *out (release it with ap_query_free). k and probe
 * default to def_k and def_probe. On failure out->text is NULL. Errors:
 * AP_ERR_LIMIT when len > AP_QUERY_RAW_MAX or the decoded text is longer than
 * AP_QUERY_NAME_MAX; AP_ERR_ARG for a bad escape, text that ap_query_text_check refuses,
 * an unknown/duplicate parameter, or k outside [1, AP_MAX_K] / probe outside
 * [1, AP_MAX_PROBE]. */
AP_API ap_status ap_query_parse(const char *name, size_t len, uint32_t def_k, uint32_t def_probe,
                                ap_query *out, ap_err *err);
/* Frees q->text and sets it to NULL (q itself stays the caller's; q must not be NULL). */
AP_API void ap_query_free(ap_query *q);

/* Checks a (decoded) query text the way every front end does — the CLI's `search`, the
 * mount and Python alike: AP_ERR_ARG "query text is not valid UTF-8" (or it holds a NUL),
 * or "query text is empty or only whitespace" (Unicode White_Space only). */
AP_API ap_status ap_query_text_check(const char *text, size_t len, ap_err *err);

/* Parses the parameter part "k=N&probe=N" (either, both, in any order, each at most once;
 * empty segments ignored) of s[0..len), setting *k and *probe for those present. Same
 * errors as ap_query_parse. */
AP_API ap_status ap_query_params(const char *s, size_t len, uint32_t *k, uint32_t *probe,
                                 ap_err *err);

/* Vector queries (the mount's /vquery/<vector>[?k=N&probe=N]): the text part of the name
 * is base64url without padding (RFC 4648 section 5) of dim little-endian float16 values
 * (2 * dim bytes) or float32 values (4 * dim bytes). Decodes it into out (dim floats),
 * L2-normalised (ap_l2_normalize). Errors (AP_ERR_ARG): not base64url, a length that is neither, a
 * value that is not finite, the zero vector. */
AP_API ap_status ap_query_vector_decode(const char *b64, size_t len, uint32_t dim, float *out,
                                        ap_err *err);

/* Length of the float16 encoding of a dim-vector (without a terminating NUL). */
static inline size_t ap_query_vector_len(uint32_t dim)
{
    return (2 * (size_t)dim * 4 + 2) / 3;
}

/* Encodes v (dim floats) as the float16 base64url text into the caller's out
 * (ap_query_vector_len(dim) + 1 bytes, NUL-terminated). */
AP_API void ap_query_vector_encode(const float *v, uint32_t dim, char *out);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_QUERY_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
