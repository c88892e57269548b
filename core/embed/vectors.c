/* The "vectors" embedder: the pack was built from given vectors (annpack build --vectors),
 * so there is no way to turn text into a query. It exists so such packs have an embedder
 * block like every other pack (name and dim) and text queries fail with a clear message
 * instead of searching with a meaningless vector. */
#include <stdio.h>
#include <stdlib.h>

#include "builtin.h"

static ap_status vectors_embed(const ap_embedder *e, const char *text, size_t len, float *out,
                               ap_err *err)
{
    (void)e;
    (void)text;
    (void)len;
    (void)out;
    return ap_err_set(err, AP_ERR_UNSUPPORTED,
                      "this pack was built from vectors (embedder \"vectors\"): it cannot embed "
                      "text; query it with vectors (annpack search --queries FILE.fvecs, or the "
                      "mount's /vquery/)");
}

static char *vectors_describe(const ap_embedder *e)
{
    char *s = malloc(96);
    if (s) snprintf(s, 96, "{\"name\":\"vectors\",\"dim\":%u,\"seed\":0}", e->dim);
    return s;
}

static void vectors_destroy(ap_embedder *e)
{
    free(e);
}

static const ap_embedder_ops vectors_ops = {.name = "vectors",
                                            .embed = vectors_embed,
                                            .describe = vectors_describe,
                                            .destroy = vectors_destroy};

ap_status ap_embed_vectors_create(uint32_t dim, ap_embedder **out, ap_err *err)
{
    ap_embedder *e = calloc(1, sizeof *e);
    if (!e) return ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
    e->ops = &vectors_ops;
    e->dim = dim;
    *out = e;
    return AP_OK;
}
