/* annpack — the builder/operator CLI. One file per command group; this file dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"build", cmd_build, "build a pack directory from a CSV"},
    {"search", cmd_search, "search a pack with a text query (JSON)"},
    {"eval", cmd_eval, "measure search quality against judged queries (JSON)"},
    {"canary", cmd_canary, "compare two packsets' results before promoting one (exit 1 if apart)"},
    {"embed", cmd_embed, "print the query vector a pack would search with (JSON)"},
    {"inspect", cmd_inspect, "print a pack's facts (JSON)"},
    {"verify", cmd_verify, "check a pack's hashes (and structure with --deep)"},
    {"packset", cmd_packset, "manage packsets: build-base, build-delta, promote, revert, rebase"},
    {"keygen", cmd_keygen, "generate an Ed25519 key pair (OpenSSL-compatible PEM)"},
    {"sign", cmd_sign, "sign a verified pack or packset manifest"},
    {"mount", cmd_mount, "mount a packset with annpackfs (verified, read-only)"},
    {"umount", cmd_umount, "unmount an annpackfs mount"},
    {"serve", cmd_serve, "serve a pack over HTTP: annpackfs + nginx + the search page"},
    {"smoke", cmd_smoke, "serve a pack on a free port and check every URL, then stop"},
    {"registry", cmd_registry, "push and list packs in an OCI registry; aliases"},
    {"pull", cmd_pull, "fetch, verify and switch a pack from an OCI registry (--follow)"},
    {"diagnose", cmd_diagnose, "print library versions and CPU features in use"},
    {"init", cmd_init, "write a starter project from a template (see 'annpack templates')"},
    {"templates", cmd_templates, "list the starter projects 'annpack init' writes"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: annpack [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'annpack COMMAND --help' describes one command. Environment: see docs/CLI.md.\n");
}

int main(int argc, char **argv)
{
    ap_log_set_program("annpack");
    int rc = cli_check_env();
    if (rc) return rc;
    if (argc < 2) {
        if (ap_log_json()) {
            cli_msg(NULL, AP_LOG_ERROR, "no command given (see 'annpack --help')");
            return EXIT_USAGE;
        }
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("annpack %s\n", ap_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    if (ap_log_json()) {
        cli_msg(NULL, AP_LOG_ERROR, "unknown command '%s' (see 'annpack --help')", argv[1]);
        return EXIT_USAGE;
    }
    fprintf(stderr, "annpack: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
