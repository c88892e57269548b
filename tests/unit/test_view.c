/* The view's accessors through the stable API only (no AP_EXPERIMENTAL): what a program
 * outside the library sees. ap_view_base_dir names the base pack wherever the root
 * manifest puts it (a packset's base need not be DIR/base), and DIR itself for a pack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annpack/annpack.h"
#include "check.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf) buf[*len] = '\0';
    return buf;
}

/* Writes text with every "from" replaced by "to" to path. */
static int write_replaced(const char *path, const char *text, const char *from, const char *to)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(from);
    for (const char *p = text; *p;) {
        const char *q = strstr(p, from);
        size_t run = q ? (size_t)(q - p) : strlen(p);
        fwrite(p, 1, run, f);
        if (!q) break;
        fputs(to, f);
        p = q + n;
    }
    return fclose(f);
}

int main(void)
{
    ap_err err = {0};
    char dir[] = "/tmp/annpack-view-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char csv[64], pack[64], ps[64], base[128], moved[128], root[128], want[128];
    snprintf(csv, sizeof csv, "%s/docs.csv", dir);
    snprintf(pack, sizeof pack, "%s/pack", dir);
    snprintf(ps, sizeof ps, "%s/ps", dir);
    FILE *f = fopen(csv, "w");
    CHECK(f != NULL);
    fputs("id,text\n1,espresso coffee\n2,green tea\n3,sourdough bread\n4,kombucha tea\n", f);
    fclose(f);

    /* A single pack: the base is the directory itself. */
    ap_build_opts o = {.input_csv = csv, .text_col = "text", .id_col = "id", .lists = 2};
    o.output_dir = pack;
    CHECK_OK(ap_pack_build(&o, NULL, &err), &err);
    ap_view *v = NULL;
    CHECK_OK(ap_view_open(pack, &v, &err), &err);
    CHECK(v && !strcmp(ap_view_base_dir(v), pack));
    CHECK(v && ap_embedder_dim(ap_view_embedder(v)) == ap_view_dim(v));
    CHECK(v && !strcmp(ap_embedder_name(ap_view_embedder(v)), "hash"));
    ap_view_close(v);

    /* A packset whose root manifest puts its base at "layer0", not "base". */
    o.output_dir = ps;
    CHECK_OK(ap_packset_build_base(&o, NULL, &err), &err);
    snprintf(base, sizeof base, "%s/base", ps);
    snprintf(moved, sizeof moved, "%s/layer0", ps);
    snprintf(root, sizeof root, "%s/pack.manifest.json", ps);
    CHECK(rename(base, moved) == 0);
    size_t len = 0;
    char *text = slurp(root, &len);
    CHECK(text && strstr(text, "\"base/pack.annpack\""));
    /* The "path": "base" value and the "base/..." file paths; not the "base" key. */
    CHECK(text && write_replaced(root, text, ":\t\"base", ":\t\"layer0") == 0);
    free(text);
    v = NULL;
    CHECK_OK(ap_view_open(ps, &v, &err), &err);
    snprintf(want, sizeof want, "%s/layer0", ps);
    CHECK(v && !strcmp(ap_view_base_dir(v), want));
    CHECK(v && ap_view_live_count(v) == 4 && ap_view_n_deltas(v) == 0);
    ap_view_close(v);

    /* What the library returns is released with ap_free (NULL included). */
    ap_free(NULL);
    v = NULL;
    CHECK_OK(ap_view_open(ps, &v, &err), &err);
    char *row = NULL;
    size_t rlen = 0;
    if (v) CHECK_OK(ap_view_get_row(v, 2, &row, &rlen, NULL, &err), &err);
    CHECK(row && strstr(row, "green tea") && rlen == strlen(row));
    ap_free(row);
    ap_view_close(v);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return check_done();
}
