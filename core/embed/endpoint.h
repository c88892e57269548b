/* The process's embedding endpoint (internal): ap_embed_set_endpoint keeps it,
 * ap_embed_endpoint_client makes a client of it for a new HTTP embedder. */
#ifndef ANNPACK_CORE_EMBED_ENDPOINT_H
#define ANNPACK_CORE_EMBED_ENDPOINT_H

#include "http_client.h"

/* A client for the current endpoint (the caller's: ap_http_free). Errors: no URL set and
 * no ANNPACK_EMBED_URL (AP_ERR_ARG). */
ap_status ap_embed_endpoint_client(ap_http **out, ap_err *err);

#endif
