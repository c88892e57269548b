/* Fuzz target: annpackfs's name routing (fs/route.c). The first byte picks the parent
 * directory, the second the pack's dim (1..64) and whether it has pack.sq8 and can embed
 * text; the rest is the name. Checks: every answer is one kind with consistent fields, a
 * refusal says why, a query key parses back to the routed parameters and text, a
 * refusal directory never answers a query, and the same name routes the same way twice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/query.h"
#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(fs_dir dir, const fs_route_ctx *ctx, const char *name, size_t len)
{
    fs_route r, again;
    if (fs_route_name(dir, ctx, name, len, &r) != AP_OK) return;
    int refusal_dir =
        dir == FS_DIR_REFUSAL_QUERY || dir == FS_DIR_REFUSAL_VQUERY || dir == FS_DIR_REFUSAL_VPARAM;
    switch (r.kind) {
    case FS_ROUTE_QUERY:
    case FS_ROUTE_VQUERY:
    case FS_ROUTE_DOC: {
        if (refusal_dir || !r.key || r.key_len != strlen(r.key)) __builtin_trap();
        if (r.text_off + r.text_len != r.key_len) __builtin_trap();
        fs_route p;
        if (fs_route_parse_key(r.key, r.key_len, &p) != AP_OK || p.kind != r.kind ||
            p.text_off != r.text_off || p.text_len != r.text_len || p.where_off != r.where_off ||
            p.where_len != r.where_len)
            __builtin_trap();
        ap_where *w = NULL;
        size_t nw = 0;
        if (r.where_len && (fs_route_where(r.key, &r, &w, &nw) != AP_OK || nw == 0 ||
                            nw > FS_WHERE_MAX || strlen(w[0].col) > FS_WHERE_COL_MAX))
            __builtin_trap();
        free(w);
        if (r.kind == FS_ROUTE_DOC && p.id != r.id) __builtin_trap();
        if (r.kind != FS_ROUTE_DOC && (p.k != r.k || p.probe != r.probe || r.k < 1 || r.k > 1000 ||
                                       r.probe < 1 || r.probe > AP_MAX_PROBE))
            __builtin_trap();
        if (r.kind == FS_ROUTE_QUERY && (ctx->no_text || r.text_len > AP_QUERY_NAME_MAX))
            __builtin_trap();
        if (r.kind == FS_ROUTE_DOC && dir != FS_DIR_DOC) __builtin_trap();
        break;
    }
    case FS_ROUTE_REFUSED:
    case FS_ROUTE_REFUSAL:
        if (!r.err.msg[0] || r.status == AP_OK || r.key) __builtin_trap();
        if ((r.kind == FS_ROUTE_REFUSAL) != refusal_dir) __builtin_trap();
        break;
    case FS_ROUTE_DIR:
        if (r.key) __builtin_trap();
        if ((r.dir == FS_DIR_VPARAM || r.dir == FS_DIR_REFUSAL_VPARAM) &&
            (!memchr(name, '=', len) || memchr(name, '?', len)))
            __builtin_trap();
        if (r.dir == FS_DIR_VPARAM && r.status) __builtin_trap();
        break;
    case FS_ROUTE_FILE:
    case FS_ROUTE_ABSENT:
        if (r.key) __builtin_trap();
        if (r.kind == FS_ROUTE_FILE && (dir != FS_DIR_ROOT || (r.file == FS_FILE_SQ8 && !ctx->sq8)))
            __builtin_trap();
        break;
    }
    if (fs_route_name(dir, ctx, name, len, &again) != AP_OK) __builtin_trap();
    if (again.kind != r.kind || again.status != r.status ||
        (r.key && (again.key_len != r.key_len || memcmp(again.key, r.key, r.key_len))))
        __builtin_trap();
    fs_route_free(&again);
    fs_route_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    fs_dir dir = (fs_dir)(data[0] % (FS_DIR_REFUSAL_VPARAM + 1));
    fs_route_ctx ctx = {.k = 10,
                        .probe = 8,
                        .dim = (uint32_t)(data[1] & 63) + 1,
                        .sq8 = data[1] & 64,
                        .no_text = data[1] & 128 ? "this pack cannot embed text" : NULL};
    if (dir == FS_DIR_VPARAM || dir == FS_DIR_REFUSAL_VPARAM) ctx.k = 5, ctx.probe = 16;
    if (dir == FS_DIR_REFUSAL_VPARAM && (data[0] & 128)) ctx.dir_refused = "k must be an integer";
    /* Names reach the daemon NUL-terminated and without '/' (the kernel splits paths). */
    size_t len = size - 2;
    char *name = malloc(len + 1);
    if (!name) return 0;
    memcpy(name, data + 2, len);
    name[len] = '\0';
    len = strlen(name);
    check(dir, &ctx, name, len);
    free(name);
    return 0;
}
