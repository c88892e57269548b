/* annpack diagnose */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <sodium.h>
#include <zstd.h>

#include "cli.h"

extern char *openblas_get_config(void);
extern int openblas_get_num_threads(void);

/* SHA-256 throughput of this machine through libannpack (what mount and verify hash at):
 * the best of five passes over 64 MiB in memory, in GB/s (10^9 bytes); 0 when out of memory. */
static double sha256_gbps(void)
{
    size_t n = (size_t)64 << 20;
    unsigned char *buf = malloc(n);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 2654435761u >> 24);
    double best = 0;
    for (int pass = 0; pass < 5; pass++) {
        struct timespec a, b;
        char hex[AP_SHA256_HEX];
        clock_gettime(CLOCK_MONOTONIC, &a);
        ap_sha256_hex(buf, n, hex);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        if (s > 0 && (double)n / s / 1e9 > best) best = (double)n / s / 1e9;
    }
    free(buf);
    return best;
}

int cmd_diagnose(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: annpack diagnose\n\nPrints the versions of the linked libraries, the CPU "
             "features and the search kernel in use, the SHA-256 library and its measured "
             "throughput (GB/s), whether the library has its test hooks, and "
             "the caps in force, as JSON.");
        return EXIT_OK;
    }
    if (argc != 1) return cli_usage_error("diagnose", "takes no arguments");
    const ap_caps *c = ap_caps_get();
    printf("{\n  \"annpack\": \"%s\",\n  \"libsodium\": \"%s\",\n  \"zstd\": \"%s\",\n"
           "  \"cjson\": \"%s\",\n  \"openblas\": \"%s\",\n  \"openblas_threads\": %d,\n",
           ap_version(), sodium_version_string(), ZSTD_versionString(), cJSON_Version(),
           openblas_get_config(), openblas_get_num_threads());
    static const char *const feats[] = {"avx2",     "f16c",       "fma",    "avx512f",
                                        "avx512bw", "avx512vnni", "popcnt", "avx512vpopcntdq"};
    printf("  \"cpu\": {");
    for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++)
        printf("%s\"%s\": %s", i ? ", " : "", feats[i], ap_cpu_has(feats[i]) ? "true" : "false");
    printf("},\n");
    printf("  \"search_kernel\": \"%s\",\n  \"search_kernel_sq8\": \"%s\",\n"
           "  \"search_kernel_bits\": \"%s\",\n",
           ap_search_kernel(), ap_search_kernel_sq8(), ap_search_kernel_bits());
    printf("  \"sha256\": {\"library\": \"%s\", \"gb_per_s\": %.2f},\n",
           OpenSSL_version(OPENSSL_VERSION), sha256_gbps());
    printf("  \"test_hooks\": %s,\n", ap_test_hooks() ? "true" : "false");
    printf("  \"caps\": {\"ANNPACK_MAX_DIM\": %u, \"ANNPACK_MAX_LISTS\": %u, "
           "\"ANNPACK_MAX_LIST_BYTES\": %llu, \"ANNPACK_MAX_META_BYTES\": %llu, "
           "\"ANNPACK_META_MAX_LINE\": %llu, \"ANNPACK_ALLOW_LARGE_META\": %s}\n}\n",
           c->max_dim, c->max_lists, (unsigned long long)c->max_list_bytes,
           (unsigned long long)c->max_meta_bytes, (unsigned long long)c->meta_max_line,
           c->allow_large_meta ? "true" : "false");
    return EXIT_OK;
}
