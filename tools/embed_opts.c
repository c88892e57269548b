/* The HTTP embedder options: see embed_opts.h. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "embed_opts.h"

const char cli_embed_help_endpoint[] =
    "  --embed-url URL        the embedding service (ANNPACK_EMBED_URL); e.g.\n"
    "                         http://127.0.0.1:8080/v1 (openai), http://127.0.0.1:8080 (tei),\n"
    "                         http://127.0.0.1:11434 (ollama)\n"
    "  --embed-key-file FILE  Bearer token in FILE (mode 600; else ANNPACK_EMBED_API_KEY)\n"
    "  --embed-ca-file FILE   TLS: CA bundle to trust for an https:// URL\n"
    "  --embed-cert FILE      TLS client certificate (PEM), with --embed-cert-key FILE\n"
    "  --embed-timeout MS     per request (default 60000)\n";

const char cli_embed_help_build[] =
    "  --embedder NAME        hash (default; offline, lexical) or an embedding service:\n"
    "                         openai (/v1/embeddings: OpenAI, vLLM, llama.cpp, TEI, Ollama),\n"
    "                         tei (text-embeddings-inference /embed), ollama (/api/embed)\n"
    "  --model NAME           the service's model (tei: optional, checked against /info)\n"
    "  --doc-prefix S         prepended to each document text (e.g. \"passage: \")\n"
    "  --query-prefix S       prepended to each query text at search time (\"query: \")\n"
    "  --embed-dim N          ask the model for N dimensions (openai \"dimensions\")\n"
    "  --embed-batch N        inputs per request (default 32; halved on HTTP 413)\n";

int cli_embed_is_http(const char *name)
{
    return name && (!strcmp(name, "openai") || !strcmp(name, "tei") || !strcmp(name, "ollama"));
}

int cli_embed_opt(const char *cmd, int c, const char *arg, cli_embed *e)
{
    uint64_t v;
    switch (c) {
    case CLI_EO_EMBEDDER:
        e->embedder = arg;
        return 1;
    case CLI_EO_MODEL:
        e->model.model = arg;
        break;
    case CLI_EO_DOC_PREFIX:
        e->model.doc_prefix = arg;
        break;
    case CLI_EO_QUERY_PREFIX:
        e->model.query_prefix = arg;
        break;
    case CLI_EO_DIM:
        if (!cli_parse_u64(cmd, "--embed-dim", arg, 1, UINT32_MAX, &v)) return -1;
        e->model.dim = (uint32_t)v;
        break;
    case CLI_EO_BATCH:
        if (!cli_parse_u64(cmd, "--embed-batch", arg, 1, 4096, &v)) return -1;
        e->model.batch = (uint32_t)v;
        break;
    case CLI_EO_URL:
        e->ep.url = arg;
        return 1;
    case CLI_EO_KEY_FILE:
        e->ep.key_file = arg;
        return 1;
    case CLI_EO_CA_FILE:
        e->ep.ca_file = arg;
        return 1;
    case CLI_EO_CERT:
        e->ep.client_cert = arg;
        return 1;
    case CLI_EO_CERT_KEY:
        e->ep.client_key = arg;
        return 1;
    case CLI_EO_TIMEOUT:
        if (!cli_parse_u64(cmd, "--embed-timeout", arg, 1, 3600000, &v)) return -1;
        e->ep.timeout_ms = (uint32_t)v;
        return 1;
    default:
        return 0;
    }
    e->model_given = 1;
    return 1;
}

int cli_embed_apply(const char *cmd, cli_embed *e)
{
    if (e->model_given && !cli_embed_is_http(e->embedder))
        return cli_usage_error(cmd, "--model, --doc-prefix, --query-prefix, --embed-dim and "
                                    "--embed-batch need --embedder openai, tei or ollama");
    if (cli_embed_is_http(e->embedder) && strcmp(e->embedder, "tei") != 0 && !e->model.model)
        return cli_usage_error(cmd, "--embedder %s needs --model NAME", e->embedder);
    if ((e->ep.client_cert != NULL) != (e->ep.client_key != NULL))
        return cli_usage_error(cmd, "--embed-cert and --embed-cert-key go together");
    ap_err err = {0};
    if (ap_embed_set_endpoint(&e->ep, &err)) return cli_fail(cmd, &err);
    return EXIT_OK;
}
