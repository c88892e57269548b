/* The ABI of what bindings mirror (after libfuse's test/test_abi.c): prints sizeof and
 * offsetof of every field of every public struct that python/annpack/_lib.py declares as
 * a ctypes.Structure, the size of the enums it passes as int, and the values of the
 * constants it copies. tests/test_abi.py runs this program and compares each line with
 * the ctypes definitions (and the field names with the headers), so a struct, enum or
 * status value that changes on one side only fails there. Uses the stable API only.
 *
 * Output, one item per line:
 *   struct NAME SIZE          field NAME MEMBER OFFSET SIZE
 *   enum NAME SIZE            const NAME VALUE
 * Run alone (as a meson test) it also checks that each struct's fields are listed in
 * declaration order, do not overlap and fit the struct, and that every enum is an int. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "annpack/annpack.h"

static int failures;

typedef struct field {
    const char *name;
    size_t offset, size;
} field;

static void print_struct(const char *name, size_t size, const field *f, size_t n)
{
    printf("struct %s %zu\n", name, size);
    size_t end = 0;
    for (size_t i = 0; i < n; i++) {
        printf("field %s %s %zu %zu\n", name, f[i].name, f[i].offset, f[i].size);
        if (f[i].offset < end || f[i].offset + f[i].size > size) {
            fprintf(stderr, "%s.%s: offset %zu size %zu: out of order or outside the struct\n",
                    name, f[i].name, f[i].offset, f[i].size);
            failures++;
        }
        end = f[i].offset + f[i].size;
    }
}

#define F(T, m)                                                                                    \
    {                                                                                              \
#m, offsetof(T, m), sizeof(((T *)0)->m)                                                    \
    }
#define STRUCT(T, ...)                                                                             \
    do {                                                                                           \
        static const field fields_[] = {__VA_ARGS__};                                              \
        print_struct(#T, sizeof(T), fields_, sizeof fields_ / sizeof fields_[0]);                  \
    } while (0)

static void print_enum(const char *name, size_t size)
{
    printf("enum %s %zu\n", name, size);
    if (size != sizeof(int)) {
        fprintf(stderr, "enum %s has size %zu, not that of int (%zu)\n", name, size, sizeof(int));
        failures++;
    }
}

#define CONST(c) printf("const %s %lld\n", #c, (long long)(c))

int main(void)
{
    STRUCT(ap_err, F(ap_err, status), F(ap_err, msg));
    STRUCT(ap_build_opts, F(ap_build_opts, input_csv), F(ap_build_opts, text_col),
           F(ap_build_opts, id_col), F(ap_build_opts, output_dir), F(ap_build_opts, lists),
           F(ap_build_opts, seed), F(ap_build_opts, dim), F(ap_build_opts, max_rows),
           F(ap_build_opts, meta_codec), F(ap_build_opts, force), F(ap_build_opts, embedder),
           F(ap_build_opts, embedder_json), F(ap_build_opts, progress),
           F(ap_build_opts, progress_ud), F(ap_build_opts, vectors), F(ap_build_opts, kmeans_iters),
           F(ap_build_opts, sq8), F(ap_build_opts, bits), F(ap_build_opts, http),
           F(ap_build_opts, target_recall), F(ap_build_opts, filter_cols));
    STRUCT(ap_embed_model, F(ap_embed_model, model), F(ap_embed_model, doc_prefix),
           F(ap_embed_model, query_prefix), F(ap_embed_model, dim), F(ap_embed_model, batch));
    STRUCT(ap_embed_endpoint, F(ap_embed_endpoint, url), F(ap_embed_endpoint, api_key),
           F(ap_embed_endpoint, key_file), F(ap_embed_endpoint, ca_file),
           F(ap_embed_endpoint, client_cert), F(ap_embed_endpoint, client_key),
           F(ap_embed_endpoint, timeout_ms), F(ap_embed_endpoint, attempts));
    STRUCT(ap_build_report, F(ap_build_report, rows), F(ap_build_report, rows_skipped),
           F(ap_build_report, lists_requested), F(ap_build_report, lists_effective),
           F(ap_build_report, dim), F(ap_build_report, seconds_total),
           F(ap_build_report, seconds_embed), F(ap_build_report, seconds_kmeans),
           F(ap_build_report, seconds_write), F(ap_build_report, train_rows),
           F(ap_build_report, kmeans_passes), F(ap_build_report, threads),
           F(ap_build_report, seconds_assign), F(ap_build_report, seconds_sq8));
    STRUCT(ap_delta_opts, F(ap_delta_opts, base_dir), F(ap_delta_opts, add_csv),
           F(ap_delta_opts, text_col), F(ap_delta_opts, id_col), F(ap_delta_opts, delete_ids),
           F(ap_delta_opts, n_delete), F(ap_delta_opts, out_dir), F(ap_delta_opts, lists),
           F(ap_delta_opts, seed), F(ap_delta_opts, meta_codec), F(ap_delta_opts, progress),
           F(ap_delta_opts, progress_ud), F(ap_delta_opts, force));
    STRUCT(ap_verify_opts, F(ap_verify_opts, deep), F(ap_verify_opts, pubkeys),
           F(ap_verify_opts, npubkeys), F(ap_verify_opts, sig_path),
           F(ap_verify_opts, allow_expired), F(ap_verify_opts, progress),
           F(ap_verify_opts, progress_ud));
    STRUCT(ap_change_opts, F(ap_change_opts, pubkeys), F(ap_change_opts, npubkeys),
           F(ap_change_opts, force));
    STRUCT(ap_pubkey, F(ap_pubkey, raw), F(ap_pubkey, keyid));
    STRUCT(ap_hit, F(ap_hit, id), F(ap_hit, score), F(ap_hit, layer));
    STRUCT(ap_search_params, F(ap_search_params, k), F(ap_search_params, probe),
           F(ap_search_params, scan), F(ap_search_params, rerank));
    STRUCT(ap_where, F(ap_where, col), F(ap_where, value));

    print_enum("ap_status", sizeof(ap_status));
    print_enum("ap_meta_codec", sizeof(ap_meta_codec));

    CONST(AP_OK);
    CONST(AP_ERR_ARG);
    CONST(AP_ERR_IO);
    CONST(AP_ERR_NOMEM);
    CONST(AP_ERR_FORMAT);
    CONST(AP_ERR_LIMIT);
    CONST(AP_ERR_NOTFOUND);
    CONST(AP_ERR_EXISTS);
    CONST(AP_ERR_VERIFY);
    CONST(AP_ERR_UNSUPPORTED);
    CONST(AP_ERR_INTERNAL);
    CONST(AP_ERR_MSG_MAX);
    CONST(AP_META_ZSTD);
    CONST(AP_META_NONE);
    CONST(AP_PUBKEY_BYTES);
    CONST(AP_KEYID_HEX);
    CONST(AP_MAX_PUBKEYS);
    if (failures) fprintf(stderr, "%d ABI table errors\n", failures);
    return failures ? 1 : 0;
}
