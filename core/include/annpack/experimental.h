/* annpack — the experimental API: no stability promise.
 *
 * What the library's own tests, fuzzers and benchmarks reach below the public API: the
 * single-pack handle, the file readers and writers (ANNP, int8 sidecar, metadata, CSV),
 * the search primitives and kernels, the quantiser and the raw signature checks. These
 * may change or disappear in any release, and the shared library does not export them
 * (core/libannpack.map): they link only from the static archive of the build tree
 * (libannpack.a, which is not installed), and this header is not installed either.
 * docs/API.md says what is stable.
 *
 * Use: define AP_EXPERIMENTAL before including any annpack header (zstd's
 * ZSTD_STATIC_LINKING_ONLY works the same way):
 *
 *     #define AP_EXPERIMENTAL
 *     #include "annpack/annpack.h"
 *
 * Each public header, when AP_EXPERIMENTAL is defined, ends by defining its
 * ANNPACK_<NAME>_H_COMPLETE marker and including this file; each section below is
 * compiled once, the first time this file is included after the marker of the public
 * header it extends. A section therefore sees its whole header (and everything that
 * header includes) and the include order does not matter. This file has no include
 * guard of its own and includes nothing. */
#ifndef AP_EXPERIMENTAL
#error "annpack/experimental.h has no stability promise: #define AP_EXPERIMENTAL first"
#endif

/* Declared hidden: the shared library never exports these names. */
#ifndef AP_EXPERIMENTAL_API
#if defined(__GNUC__)
#define AP_EXPERIMENTAL_API __attribute__((visibility("hidden")))
#else
#define AP_EXPERIMENTAL_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status.h ------------------------------------------------------------------------ */
#if defined(ANNPACK_STATUS_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_STATUS)
#define ANNPACK_EXPERIMENTAL_STATUS

/* Clears *err to AP_OK with an empty message. */
AP_EXPERIMENTAL_API void ap_err_clear(ap_err *err);

#endif

/* ---- log.h --------------------------------------------------------------------------- */
#if defined(ANNPACK_LOG_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_LOG)
#define ANNPACK_EXPERIMENTAL_LOG

/* True when a message at this level would be emitted (skip expensive formatting). */
AP_EXPERIMENTAL_API int ap_log_enabled(ap_log_level level);

/* Overrides the threshold from the environment. */
AP_EXPERIMENTAL_API void ap_log_set_level(ap_log_level level);

#endif

/* ---- caps.h -------------------------------------------------------------------------- */
#if defined(ANNPACK_CAPS_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_CAPS)
#define ANNPACK_EXPERIMENTAL_CAPS

/* Re-reads the environment (tests and long-running tools that changed it). Not
 * thread-safe against concurrent ap_caps_get. Returns the ap_env_check error of the first
 * bad variable. */
AP_EXPERIMENTAL_API ap_status ap_caps_reload(ap_err *err);

#endif

/* ---- csv.h: the streaming CSV reader --------------------------------------------------- */
#if defined(ANNPACK_CSV_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_CSV)
#define ANNPACK_EXPERIMENTAL_CSV

typedef struct ap_csv ap_csv;

/* One record. Field i is fields[i] with length lens[i]; each field is also
 * NUL-terminated (it may contain NUL bytes only if the input did). Valid until the next
 * call to ap_csv_next or ap_csv_close. */
typedef struct ap_csv_record {
    size_t nfields;
    const char *const *fields;
    const size_t *lens;
    uint64_t line; /* 1-based physical line on which the record starts */
} ap_csv_record;

/* Opens a file for reading. Errors: AP_ERR_NOTFOUND / AP_ERR_IO naming the path. *out is
 * the caller's (ap_csv_close). */
AP_EXPERIMENTAL_API ap_status ap_csv_open(const char *path, ap_csv **out, ap_err *err);

/* Reads from memory (the buffer must outlive the reader); name is used in messages. */
AP_EXPERIMENTAL_API ap_status ap_csv_open_mem(const void *data, size_t len, const char *name,
                                              ap_csv **out, ap_err *err);

/* Reads the next record into *rec. Returns AP_OK and sets *eof = 1 (rec untouched) at
 * the end of input. Blank lines (a record with one empty field from an empty line) are
 * skipped. Errors: AP_ERR_FORMAT "FILE:LINE: unterminated quoted field" (LINE = where
 * the field started), "FILE:LINE: unexpected character after closing quote";
 * AP_ERR_LIMIT when a record exceeds ANNPACK_META_MAX_LINE bytes. */
AP_EXPERIMENTAL_API ap_status ap_csv_next(ap_csv *csv, ap_csv_record *rec, int *eof, ap_err *err);

/* Bytes consumed so far (for progress reporting). */
AP_EXPERIMENTAL_API uint64_t ap_csv_bytes_read(const ap_csv *csv);

/* Closes the reader; NULL is a no-op. */
AP_EXPERIMENTAL_API void ap_csv_close(ap_csv *csv);

#endif

/* ---- embed.h: creating and running embedders ------------------------------------------ */
#if defined(ANNPACK_EMBED_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_EMBED)
#define ANNPACK_EXPERIMENTAL_EMBED

/* Creates a named embedder (the caller's: ap_embedder_free). dim 0 means the default.
 * Errors: unknown name (AP_ERR_UNSUPPORTED, listing the known ones), dim above
 * ANNPACK_MAX_DIM (AP_ERR_LIMIT). */
AP_EXPERIMENTAL_API ap_status ap_embedder_create(const char *name, uint32_t dim, uint64_t seed,
                                                 ap_embedder **out, ap_err *err);

/* Recreates the embedder a manifest's "embedder" block describes (JSON object text). */
AP_EXPERIMENTAL_API ap_status ap_embedder_from_json(const char *json, size_t len, const char *name,
                                                    ap_embedder **out, ap_err *err);

/* Writes dim floats, L2-normalised, for text[0..len) into the caller's out. */
AP_EXPERIMENTAL_API ap_status ap_embedder_embed(const ap_embedder *e, const char *text, size_t len,
                                                float *out, ap_err *err);
/* The manifest block as malloc'd JSON object text with a stable key order (the caller
 * frees it), or NULL when out of memory. */
AP_EXPERIMENTAL_API char *ap_embedder_describe(const ap_embedder *e);
/* NULL is a no-op. */
AP_EXPERIMENTAL_API void ap_embedder_free(ap_embedder *e);

/* Creates an HTTP embedder ("openai", "tei", "ollama") for a build: asks the endpoint for
 * the canaries' vectors (which fixes the dim) and fails as a build would (unreachable,
 * refused, wrong model, wrong dim). The caller's: ap_embedder_free. */
AP_EXPERIMENTAL_API ap_status ap_embedder_create_http(const char *api, const ap_embed_model *m,
                                                      ap_embedder **out, ap_err *err);

/* Embeds n document texts (with the document prefix) into out (n x dim floats),
 * L2-normalised: in requests of the embedder's batch for HTTP embedders, one by one for
 * the others. */
AP_EXPERIMENTAL_API ap_status ap_embedder_embed_docs(const ap_embedder *e, char *const *texts,
                                                     const size_t *lens, size_t n, float *out,
                                                     ap_err *err);

#endif

/* ---- format.h: the ANNP file, field by field ------------------------------------------- */
#if defined(ANNPACK_FORMAT_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_FORMAT)
#define ANNPACK_EXPERIMENTAL_FORMAT

typedef struct ap_annp_header {
    uint32_t dim;
    uint32_t n_lists;
    uint32_t n_vectors;
    uint64_t offset_table_pos;
} ap_annp_header;

/* Encodes a header (magic, version, endian, header_size, metric filled in). */
AP_EXPERIMENTAL_API void ap_annp_header_encode(const ap_annp_header *h,
                                               uint8_t out[AP_ANNP_HEADER_SIZE]);

/* Decodes and checks a header against the caps and the file size (name for messages). */
AP_EXPERIMENTAL_API ap_status ap_annp_header_decode(const uint8_t *buf, size_t len,
                                                    uint64_t file_size, const char *name,
                                                    ap_annp_header *h, ap_err *err);

/* Byte length of a list payload with count vectors. */
static inline uint64_t ap_annp_list_bytes(uint64_t count, uint32_t dim)
{
    return 4 + count * (8 + 2ull * dim);
}

/* One list as stored: count, then ids (u64 LE, possibly unaligned: use ap_annp_list_id)
 * and vectors (f16, row-major, possibly unaligned). Pointers into the mapped file. */
typedef struct ap_annp_list {
    uint32_t count;
    const uint8_t *ids;
    const uint8_t *vecs;
    uint64_t offset; /* file offset of the list (its count field) */
} ap_annp_list;

static inline uint64_t ap_annp_list_id(const ap_annp_list *l, uint32_t j)
{
    const uint8_t *p = l->ids + 8ull * j;
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* As ap_annp_open, from a descriptor of a file of size bytes (the mapping outlives the
 * descriptor, which stays the caller's); name is used in messages. */
AP_EXPERIMENTAL_API ap_status ap_annp_open_fd(int fd, uint64_t size, const char *name,
                                              ap_annp **out, ap_err *err);

/* Same over a caller-owned buffer that must outlive the reader (fuzzing, virtual files). */
AP_EXPERIMENTAL_API ap_status ap_annp_open_mem(const void *data, size_t len, const char *name,
                                               ap_annp **out, ap_err *err);

/* The header, and the path or name given at open; borrowed: valid until ap_annp_close. */
AP_EXPERIMENTAL_API const ap_annp_header *ap_annp_get_header(const ap_annp *a);
AP_EXPERIMENTAL_API const char *ap_annp_path(const ap_annp *a);

/* Centroid matrix (n_lists x dim f32). Our own copy, aligned, for BLAS; valid until
 * ap_annp_close. */
AP_EXPERIMENTAL_API const float *ap_annp_centroids(const ap_annp *a);

/* List i (i < n_lists), into the caller's *out (its pointers are valid until
 * ap_annp_close). */
AP_EXPERIMENTAL_API void ap_annp_list_get(const ap_annp *a, uint32_t i, ap_annp_list *out);

/* Global position of list i's first vector (prefix sum of counts): positions number the
 * vectors 0..n_vectors-1 in list order, used for per-vector bitmaps. */
AP_EXPERIMENTAL_API uint64_t ap_annp_list_start(const ap_annp *a, uint32_t i);

/* Writes an ANNP v1 file in one pass. Vectors are given grouped by list: list l holds
 * counts[l] consecutive entries of ids and vecs (f16, dim each), lists in order.
 * The file is written, fsynced and closed; on failure it is removed. */
AP_EXPERIMENTAL_API ap_status ap_annp_write(const char *path, uint32_t dim, uint32_t n_lists,
                                            const float *centroids, const uint32_t *counts,
                                            const uint64_t *ids, const uint16_t *vecs, ap_err *err);

#endif

/* ---- meta.h: the metadata writer and reader -------------------------------------------- */
#if defined(ANNPACK_META_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_META)
#define ANNPACK_EXPERIMENTAL_META

typedef struct ap_meta_writer ap_meta_writer;

/* Creates the meta files in directory dir (which must exist): AP_META_ZST or
 * AP_META_JSONL per codec, and AP_META_IDX on finish. level is the zstd level (0 =
 * default 3). Output is a pure function of the rows added. *out is the caller's
 * (ap_meta_writer_free). */
AP_EXPERIMENTAL_API ap_status ap_meta_writer_open(const char *dir, ap_meta_codec codec, int level,
                                                  ap_meta_writer **out, ap_err *err);

/* Appends one row (without newline). The row must not contain '\n'. ids must be unique
 * (checked at finish: AP_ERR_FORMAT "duplicate id N"). */
AP_EXPERIMENTAL_API ap_status ap_meta_writer_add(ap_meta_writer *w, uint64_t id, const char *row,
                                                 size_t len, ap_err *err);

/* Flushes the last frame, writes the seek table and the idx file, fsyncs both files. */
AP_EXPERIMENTAL_API ap_status ap_meta_writer_finish(ap_meta_writer *w, ap_err *err);

/* Frees the writer (after finish, or to abandon: files already written are left for the
 * caller's temporary directory to remove). NULL is a no-op. */
AP_EXPERIMENTAL_API void ap_meta_writer_free(ap_meta_writer *w);

typedef struct ap_meta ap_meta;

/* Opens the meta store in dir. Prefers AP_META_ZST, else AP_META_JSONL; uses AP_META_IDX
 * when present (validated: magic, size, sorted unique ids, every entry inside the
 * stream), else scans the rows (each must be a JSON object with an integer "id") and
 * builds the index in memory. *out is the caller's (ap_meta_close). */
AP_EXPERIMENTAL_API ap_status ap_meta_open(const char *dir, ap_meta **out, ap_err *err);

/* Opens explicit files (idx_path may be NULL). The codec is chosen by the file name
 * suffix ".zst". Used by packsets, whose layers may name their files. */
AP_EXPERIMENTAL_API ap_status ap_meta_open_files(const char *rows_path, const char *idx_path,
                                                 ap_meta **out, ap_err *err);

/* An open file for ap_meta_open_fds: descriptor, size and the name used for the codec
 * choice (suffix ".zst") and in messages. The descriptors stay the caller's. */
typedef struct ap_meta_file {
    int fd;
    uint64_t size;
    const char *name;
} ap_meta_file;

/* As ap_meta_open_files, from descriptors (idx may be NULL). */
AP_EXPERIMENTAL_API ap_status ap_meta_open_fds(const ap_meta_file *rows, const ap_meta_file *idx,
                                               ap_meta **out, ap_err *err);

/* Number of rows. */
AP_EXPERIMENTAL_API uint64_t ap_meta_count(const ap_meta *m);

/* Total size of the uncompressed row stream in bytes (rows plus newlines). */
AP_EXPERIMENTAL_API uint64_t ap_meta_stream_size(const ap_meta *m);

/* The i-th entry of the index in ascending id order (i < ap_meta_count). */
AP_EXPERIMENTAL_API void ap_meta_entry(const ap_meta *m, uint64_t i, uint64_t *id, uint64_t *offset,
                                       uint64_t *len);

/* Whether the index holds id (no row is read). */
AP_EXPERIMENTAL_API bool ap_meta_has(const ap_meta *m, uint64_t id);

/* Finds the row of id. Returns AP_ERR_NOTFOUND when absent. On success *row is a
 * malloc'd NUL-terminated copy (caller frees) of *len bytes, without the newline. The
 * row bytes are checked to lie within one line of the stream. */
AP_EXPERIMENTAL_API ap_status ap_meta_get(const ap_meta *m, uint64_t id, char **row, size_t *len,
                                          ap_err *err);

/* Reads len bytes of the uncompressed row stream starting at offset into buf (for
 * presenting the plain JSONL). Returns AP_ERR_ARG when the range is outside the stream. */
AP_EXPERIMENTAL_API ap_status ap_meta_read_stream(const ap_meta *m, uint64_t offset, void *buf,
                                                  size_t len, ap_err *err);

/* Closes the store; NULL is a no-op. */
AP_EXPERIMENTAL_API void ap_meta_close(ap_meta *m);

#endif

/* ---- search.h: the top-k collector, kernels and single-file search --------------------- */
#if defined(ANNPACK_SEARCH_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_SEARCH)
#define ANNPACK_EXPERIMENTAL_SEARCH

/* A bounded top-k collector (min-heap of the k best so far). */
typedef struct ap_topk {
    ap_hit *h;
    uint32_t k, n;
} ap_topk;

/* buf must hold k hits (the caller's, borrowed by t). */
AP_EXPERIMENTAL_API void ap_topk_init(ap_topk *t, ap_hit *buf, uint32_t k);
AP_EXPERIMENTAL_API void ap_topk_push(ap_topk *t, uint64_t id, float score, uint32_t layer);
/* Sorts the collected hits best first; returns their number. */
AP_EXPERIMENTAL_API uint32_t ap_topk_finish(ap_topk *t);
/* The score a new hit must reach to possibly enter (-inf until k hits are held). */
static inline float ap_topk_floor(const ap_topk *t)
{
    return t->n < t->k ? -__builtin_inff() : t->h[0].score;
}

/* The probe best lists for q (score desc, ties by lower index); probe is clamped to
 * n_lists. lists receives min(probe, n_lists) indexes; returns that count. */
AP_EXPERIMENTAL_API uint32_t ap_probe_lists(const float *centroids, uint32_t n_lists, uint32_t dim,
                                            const float *q, uint32_t probe, uint32_t *lists);

/* Scores one stored list against q and pushes its vectors into t. When dead is non-NULL,
 * vector j is skipped if bit (dead_base + j) of dead is set. */
AP_EXPERIMENTAL_API void ap_scan_list(ap_topk *t, const float *q, uint32_t dim,
                                      const ap_annp_list *list, const uint8_t *dead,
                                      uint64_t dead_base, uint32_t layer);

/* Dot product of q with one stored f16 vector (the kernel the scans use). */
AP_EXPERIMENTAL_API float ap_dot_f16(const float *q, const uint8_t *vec, uint32_t dim);

/* Scores n consecutive stored f16 vectors (dim each, stride 2*dim bytes) into out. */
AP_EXPERIMENTAL_API void ap_dot_f16_block(const float *q, const uint8_t *vecs, uint32_t n,
                                          uint32_t dim, float *out);

/* Searches one ANNP file (f16 scan): probe lists, scan, top-k. out holds k hits. */
AP_EXPERIMENTAL_API ap_status ap_annp_search(const ap_annp *a, const float *q, uint32_t k,
                                             uint32_t probe, ap_hit *out, uint32_t *n_out,
                                             ap_err *err);

/* Makes both kernels (f16 and int8) portable (on != 0) or the best the CPU has again. */
AP_EXPERIMENTAL_API void ap_search_force_portable(int on);

#endif

/* ---- sq8.h: the int8 sidecar's reader, writer and quantiser ---------------------------- */
#if defined(ANNPACK_SQ8_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_SQ8)
#define ANNPACK_EXPERIMENTAL_SQ8

typedef struct ap_sq8 ap_sq8;

/* Code stride for dim: dim rounded up to a multiple of 64. */
static inline uint32_t ap_sq8_stride_for(uint32_t dim)
{
    return (dim + 63u) & ~63u;
}

/* Writes DIR/pack.sq8 for a pack whose lists hold counts[l] vectors each (vecs: all f16
 * vectors grouped by list, as written to pack.annpack). The file is created (O_EXCL),
 * written and fsynced. */
AP_EXPERIMENTAL_API ap_status ap_sq8_build(const char *dir, uint32_t dim, uint32_t n_lists,
                                           const uint32_t *counts, const uint16_t *vecs, size_t n,
                                           ap_err *err);

/* Maps path and validates it against the ANNP file it accompanies: header fields, dim,
 * n_lists, n_vectors and every list count equal to a's, finite params with step > 0,
 * exact file size. Errors name the file and field. *out is the caller's (ap_sq8_close;
 * a is only read during the call). */
AP_EXPERIMENTAL_API ap_status ap_sq8_open(const char *path, const ap_annp *a, ap_sq8 **out,
                                          ap_err *err);
/* As ap_sq8_open, from a descriptor (which stays the caller's); name for messages. */
AP_EXPERIMENTAL_API ap_status ap_sq8_open_fd(int fd, uint64_t size, const char *name,
                                             const ap_annp *a, ap_sq8 **out, ap_err *err);
/* Unmaps and frees; NULL is a no-op. */
AP_EXPERIMENTAL_API void ap_sq8_close(ap_sq8 *s);

AP_EXPERIMENTAL_API uint32_t ap_sq8_dim(const ap_sq8 *s);
/* The whole file as mapped (valid until ap_sq8_close). */
AP_EXPERIMENTAL_API const uint8_t *ap_sq8_bytes(const ap_sq8 *s, size_t *size);
AP_EXPERIMENTAL_API uint32_t ap_sq8_stride(const ap_sq8 *s);
/* Codes of list i's first vector (stride bytes per vector); valid until ap_sq8_close. */
AP_EXPERIMENTAL_API const uint8_t *ap_sq8_list_codes(const ap_sq8 *s, uint32_t i);
/* The per-dimension params (dim floats each); valid until ap_sq8_close. */
AP_EXPERIMENTAL_API const float *ap_sq8_vmin(const ap_sq8 *s);
AP_EXPERIMENTAL_API const float *ap_sq8_step(const ap_sq8 *s);

/* Encodes one f16 vector (dim values) into stride codes with the given params. */
AP_EXPERIMENTAL_API void ap_sq8_encode(const float *vmin, const float *step, uint32_t dim,
                                       uint32_t stride, const uint16_t *vec, uint8_t *codes);

/* The integer query weights for q (stride entries, zero past dim). */
AP_EXPERIMENTAL_API void ap_sq8_query(const ap_sq8 *s, const float *q, int8_t *w);

/* The same three steps for any float32 data (the search's coarse centroid codes use them):
 * per-dimension min/step over n rows, codes of one row, and query weights for a step. */
AP_EXPERIMENTAL_API void ap_sq8_train_f32(const float *x, size_t n, uint32_t dim, float *vmin,
                                          float *step);
AP_EXPERIMENTAL_API void ap_sq8_encode_f32(const float *vmin, const float *step, uint32_t dim,
                                           uint32_t stride, const float *x, uint8_t *codes);
AP_EXPERIMENTAL_API void ap_sq8_weights(const float *step, uint32_t dim, uint32_t stride,
                                        const float *q, int8_t *w);

/* Deep check: every code equals the encoding of the matching vector of a. Names the first
 * list and position that differ. */
AP_EXPERIMENTAL_API ap_status ap_sq8_check_codes(const ap_sq8 *s, const ap_annp *a, ap_err *err);

/* Approximate scores of n consecutive code rows (stride bytes each) with weights w. */
AP_EXPERIMENTAL_API void ap_sq8_score_block(const int8_t *w, const uint8_t *codes, uint32_t n,
                                            uint32_t stride, int32_t *out);

#endif

/* ---- bits.h: the 1-bit code sidecar's reader and kernels ------------------------------- */
#if defined(ANNPACK_BITS_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_BITS)
#define ANNPACK_EXPERIMENTAL_BITS

typedef struct ap_bits ap_bits;

/* Maps path and validates it against the ANNP file it accompanies: magic, version, header
 * size, dim, n_lists, n_vectors and every list count equal to a's, dpad for dim, a finite
 * positive eps0, the writer's offsets and the exact file size. Errors name the file and
 * field. *out is the caller's (ap_bits_close; a is only read during the call). */
AP_EXPERIMENTAL_API ap_status ap_bits_open(const char *path, const ap_annp *a, ap_bits **out,
                                           ap_err *err);
/* As ap_bits_open, from a descriptor (which stays the caller's); name for messages. */
AP_EXPERIMENTAL_API ap_status ap_bits_open_fd(int fd, uint64_t size, const char *name,
                                              const ap_annp *a, ap_bits **out, ap_err *err);
/* Unmaps and frees; NULL is a no-op. */
AP_EXPERIMENTAL_API void ap_bits_close(ap_bits *b);
/* The whole file as mapped (valid until ap_bits_close). */
AP_EXPERIMENTAL_API const uint8_t *ap_bits_bytes(const ap_bits *b, size_t *size);
AP_EXPERIMENTAL_API uint32_t ap_bits_dim(const ap_bits *b);
/* Bits per code (dim rounded up to 64). */
AP_EXPERIMENTAL_API uint32_t ap_bits_dpad(const ap_bits *b);
/* The rotation's seed and the re-ranking slack eps0 the header states. */
AP_EXPERIMENTAL_API uint64_t ap_bits_seed(const ap_bits *b);
AP_EXPERIMENTAL_API float ap_bits_eps0(const ap_bits *b);
/* List i: its codes (dpad/8 bytes per vector), then F and G (count f32 each) and its alpha
 * (one f32), little-endian, possibly unaligned; valid until ap_bits_close. */
AP_EXPERIMENTAL_API const uint8_t *ap_bits_list(const ap_bits *b, uint32_t i, uint32_t *count);

/* Deep check: every code and scalar equals the encoding of the matching vector of a (its
 * residual to a's centroid). Names the first list and position that differ. */
AP_EXPERIMENTAL_API ap_status ap_bits_check_codes(const ap_bits *b, const ap_annp *a, ap_err *err);

/* The bits kernel named isa ("avx512vpopcntdq", "avx2", "popcnt" or "portable"; the one in
 * use is ap_search_kernel_bits) as a function, NULL when this CPU lacks it: s[j] = sum over the
 * AP_RBQ_QBITS planes k of 2^k popcount(code_j & plane_k), pop[j] = popcount(code_j), for
 * n consecutive codes of words 64-bit words each; planes holds 4 x words words. */
typedef void (*ap_bits_score_fn)(const uint64_t *planes, const uint8_t *codes, uint32_t n,
                                 uint32_t words, uint32_t *s, uint32_t *pop);
AP_EXPERIMENTAL_API ap_bits_score_fn ap_bits_kernel_for(const char *isa);

#endif

/* ---- pack.h: the single-pack handle ---------------------------------------------------- */
#if defined(ANNPACK_PACK_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_PACK)
#define ANNPACK_EXPERIMENTAL_PACK

typedef struct ap_pack ap_pack;

/* Opens a pack directory: reads the manifest strictly, checks that its paths stay inside
 * the directory and its counts match the ANNP header, maps pack.annpack, opens the
 * metadata and recreates the embedder. Does not hash files (ap_verify_dir does). *out is
 * the caller's (ap_pack_close). */
AP_EXPERIMENTAL_API ap_status ap_pack_open(const char *dir, ap_pack **out, ap_err *err);
/* NULL is a no-op. */
AP_EXPERIMENTAL_API void ap_pack_close(ap_pack *p);

/* The pack's parts, borrowed: valid until ap_pack_close(p). */
AP_EXPERIMENTAL_API const ap_annp *ap_pack_annp(const ap_pack *p);
AP_EXPERIMENTAL_API const ap_meta *ap_pack_meta(const ap_pack *p);
AP_EXPERIMENTAL_API const ap_embedder *ap_pack_embedder(const ap_pack *p);
/* The int8 sidecar (validated against pack.annpack at open), or NULL. */
AP_EXPERIMENTAL_API const ap_sq8 *ap_pack_sq8(const ap_pack *p);
/* The 1-bit code sidecar (validated against pack.annpack at open), or NULL. */
AP_EXPERIMENTAL_API const ap_bits *ap_pack_bits(const ap_pack *p);
/* The manifest bytes exactly as read. */
AP_EXPERIMENTAL_API const char *ap_pack_manifest_raw(const ap_pack *p, size_t *len);
/* The manifest's "embedder" and "build" blocks as compact JSON text (malloc'd). */
AP_EXPERIMENTAL_API char *ap_pack_manifest_block(const ap_pack *p, const char *key);

/* Embeds text with the pack's embedder into q (dim floats). */
AP_EXPERIMENTAL_API ap_status ap_pack_embed(const ap_pack *p, const char *text, size_t len,
                                            float *q, ap_err *err);

/* Vector search: hits holds k entries. */
AP_EXPERIMENTAL_API ap_status ap_pack_search_vec(const ap_pack *p, const float *q, uint32_t k,
                                                 uint32_t probe, ap_hit *hits, uint32_t *n,
                                                 ap_err *err);

/* Pack facts as JSON (the `annpack inspect` report). malloc'd. */
AP_EXPERIMENTAL_API char *ap_pack_inspect_json(const ap_pack *p);

#endif

/* ---- packset.h ----------------------------------------------------------------------- */
#if defined(ANNPACK_PACKSET_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_PACKSET)
#define ANNPACK_EXPERIMENTAL_PACKSET

/* Verifies a pack directory (ap_verify_dir, refusing a packset with AP_ERR_UNSUPPORTED).
 * Same contract as ap_verify_dir. */
AP_EXPERIMENTAL_API ap_status ap_pack_verify(const char *dir, const ap_verify_opts *opts,
                                             char **report, ap_err *err);

/* Whether the view is a packset (schema 3) rather than a single pack; the seq of delta i
 * (i < ap_view_n_deltas). */
AP_EXPERIMENTAL_API bool ap_view_is_packset(const ap_view *v);
AP_EXPERIMENTAL_API uint64_t ap_view_delta_seq(const ap_view *v, uint32_t i);

/* nq queries (row-major, unit length) at once: one sgemm scores every query's centroids,
 * then each query's lists are scanned. hits holds nq * p->k entries (query i's at
 * i * p->k), n receives nq counts. */
AP_EXPERIMENTAL_API ap_status ap_view_search_batch(const ap_view *v, const float *q, size_t nq,
                                                   const ap_search_params *p, ap_hit *hits,
                                                   uint32_t *n, ap_search_stats *stats,
                                                   ap_err *err);

/* Removes a delta directory that was built but not appended (nothing references it). */
AP_EXPERIMENTAL_API void ap_packset_discard_delta(const char *delta_dir);

#endif

/* ---- query.h ------------------------------------------------------------------------- */
#if defined(ANNPACK_QUERY_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_QUERY)
#define ANNPACK_EXPERIMENTAL_QUERY

/* Percent-decodes s[0..len) into out (at least len + 1 bytes); returns the decoded length,
 * or (size_t)-1 on a malformed escape. */
AP_EXPERIMENTAL_API size_t ap_percent_decode(const char *s, size_t len, char *out);

#endif

/* ---- sign.h: raw signatures, PEM text, timestamps -------------------------------------- */
#if defined(ANNPACK_SIGN_H_COMPLETE) && !defined(ANNPACK_EXPERIMENTAL_SIGN)
#define ANNPACK_EXPERIMENTAL_SIGN

/* Initialises libsodium (idempotent, thread-safe). Every function of sign.h calls it. */
AP_EXPERIMENTAL_API ap_status ap_crypto_init(ap_err *err);

/* Parses a PKCS#8 Ed25519 private key PEM from memory (name for messages); the rules of
 * ap_seckey_load. *out is the caller's (ap_seckey_free). */
AP_EXPERIMENTAL_API ap_status ap_seckey_parse_pem(const char *pem, size_t len, const char *name,
                                                  ap_seckey **out, ap_err *err);

/* Signs msg; sig receives the 64 raw signature bytes. */
AP_EXPERIMENTAL_API ap_status ap_sign(const ap_seckey *key, const void *msg, size_t len,
                                      uint8_t sig[AP_SIG_BYTES], ap_err *err);

/* Parses every "PUBLIC KEY" PEM block in text (one or several, for key rotation), at most
 * AP_MAX_PUBKEYS. Returns AP_ERR_FORMAT when there is none or one is malformed. */
AP_EXPERIMENTAL_API ap_status ap_pubkeys_parse_pem(const char *pem, size_t len, const char *name,
                                                   ap_pubkey *keys, size_t *nkeys, ap_err *err);

/* Formats one public key as SPKI PEM into a malloc'd string (NULL when out of memory). */
AP_EXPERIMENTAL_API char *ap_pubkey_to_pem(const ap_pubkey *key);

/* Verifies sig over msg against any of keys; on success *matched is the index of the
 * key that verified. AP_ERR_VERIFY when none does. */
AP_EXPERIMENTAL_API ap_status ap_verify_sig(const ap_pubkey *keys, size_t nkeys, const void *msg,
                                            size_t len, const uint8_t sig[AP_SIG_BYTES],
                                            size_t *matched, ap_err *err);

/* Checks the signature of the manifest bytes against keys. sig_path NULL = the default
 * file beside the manifest. On success keyid receives the id of the key that verified.
 * Errors: AP_ERR_NOTFOUND (no signature file), AP_ERR_FORMAT (not 64 bytes),
 * AP_ERR_VERIFY (no key verifies; the message lists the key ids tried). */
AP_EXPERIMENTAL_API ap_status ap_manifest_check_signature(const char *dir, const char *manifest,
                                                          size_t len, const ap_pubkey *keys,
                                                          size_t nkeys, const char *sig_path,
                                                          char keyid[AP_KEYID_HEX], ap_err *err);

/* Parses an RFC 3339 UTC timestamp "YYYY-MM-DDTHH:MM:SSZ" (fractional seconds allowed)
 * into Unix seconds. */
AP_EXPERIMENTAL_API ap_status ap_parse_rfc3339_utc(const char *s, long long *out, ap_err *err);

/* Formats Unix seconds as "YYYY-MM-DDTHH:MM:SSZ". */
AP_EXPERIMENTAL_API void ap_format_rfc3339_utc(long long t, char out[AP_RFC3339_LEN]);

#endif

#ifdef __cplusplus
}
#endif
