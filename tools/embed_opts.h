/* The HTTP embedder options shared by build, packset build-base/build-delta and search
 * (docs/EMBEDDERS.md, "Options"): the embedder and model of a build, and the endpoint
 * (host configuration) of builds and queries. */
#ifndef ANNPACK_TOOLS_EMBED_OPTS_H
#define ANNPACK_TOOLS_EMBED_OPTS_H

#include <getopt.h>

#include "annpack/annpack.h"

typedef struct cli_embed {
    const char *embedder; /* --embedder (NULL: the command's default) */
    ap_embed_model model;
    ap_embed_endpoint ep;
    int model_given; /* any of --model, --doc-prefix, --query-prefix, --embed-dim, --embed-batch */
} cli_embed;

/* getopt_long values of the options (above any short option). */
enum {
    CLI_EO_EMBEDDER = 0x300,
    CLI_EO_MODEL,
    CLI_EO_DOC_PREFIX,
    CLI_EO_QUERY_PREFIX,
    CLI_EO_DIM,
    CLI_EO_BATCH,
    CLI_EO_URL,
    CLI_EO_KEY_FILE,
    CLI_EO_CA_FILE,
    CLI_EO_CERT,
    CLI_EO_CERT_KEY,
    CLI_EO_TIMEOUT,
};

/* The entries of a struct option table: the endpoint's, and the model's too. */
#define CLI_ENDPOINT_LONGOPTS                                                                      \
    {"embed-url", required_argument, 0, CLI_EO_URL},                                               \
        {"embed-key-file", required_argument, 0, CLI_EO_KEY_FILE},                                 \
        {"embed-ca-file", required_argument, 0, CLI_EO_CA_FILE},                                   \
        {"embed-cert", required_argument, 0, CLI_EO_CERT},                                         \
        {"embed-cert-key", required_argument, 0, CLI_EO_CERT_KEY},                                 \
    {                                                                                              \
        "embed-timeout", required_argument, 0, CLI_EO_TIMEOUT                                      \
    }
#define CLI_EMBED_LONGOPTS                                                                         \
    CLI_ENDPOINT_LONGOPTS, {"embedder", required_argument, 0, CLI_EO_EMBEDDER},                    \
        {"model", required_argument, 0, CLI_EO_MODEL},                                             \
        {"doc-prefix", required_argument, 0, CLI_EO_DOC_PREFIX},                                   \
        {"query-prefix", required_argument, 0, CLI_EO_QUERY_PREFIX},                               \
        {"embed-dim", required_argument, 0, CLI_EO_DIM},                                           \
    {                                                                                              \
        "embed-batch", required_argument, 0, CLI_EO_BATCH                                          \
    }

/* Handles option c (getopt_long's value) when it is one of these: 1 handled, 0 not one of
 * them, -1 a bad value (a usage error was printed). */
int cli_embed_opt(const char *cmd, int c, const char *arg, cli_embed *e);

/* Checks the combination (a model option needs an HTTP --embedder) and sets the process's
 * endpoint from the options and the environment; returns an exit status. */
int cli_embed_apply(const char *cmd, cli_embed *e);

/* True for "openai", "tei" and "ollama". */
int cli_embed_is_http(const char *name);

/* --help text of the options. */
extern const char cli_embed_help_build[];
extern const char cli_embed_help_endpoint[];

#endif
