/* Embedders that depend on their corpus: see corpus.h. */
#include "corpus.h"
#include "embedder.h"

const char *ap_embedder_sidecar(const ap_embedder *e)
{
    return e->ops->corpus ? e->ops->corpus->file : NULL;
}

bool ap_embedder_needs_table(const ap_embedder *e)
{
    return e->ops->corpus && e->ops->corpus->missing(e);
}

ap_status ap_embedder_fit(ap_embedder *e, char *const *texts, const size_t *lens, size_t n,
                          ap_err *err)
{
    if (!e->ops->corpus) return AP_OK;
    return e->ops->corpus->fit(e, texts, lens, n, err);
}

ap_status ap_embedder_load_table(ap_embedder *e, const void *bytes, size_t len, const char *name,
                                 ap_err *err)
{
    if (!e->ops->corpus) return AP_OK;
    return e->ops->corpus->load(e, bytes, len, name, err);
}

void ap_embedder_table_bytes(const ap_embedder *e, const void **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    if (e->ops->corpus && !e->ops->corpus->missing(e)) e->ops->corpus->bytes(e, bytes, len);
}
