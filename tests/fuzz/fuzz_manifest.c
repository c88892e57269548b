/* Fuzz target: pack (schema 2) and packset (schema 3) manifest loaders, which validate
 * fields, integers and paths after strict JSON parsing. The input is written as
 * pack.manifest.json in a scratch directory. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/tmp/annpack-fuzz-manifest-%d", (int)getpid());
    snprintf(path, sizeof path, "%s/pack.manifest.json", dir);
    mkdir(dir, 0700);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    ap_pack_manifest m;
    if (ap_pack_manifest_load(dir, &m, NULL) == AP_OK) {
        ap_pack_manifest_file(&m, "pack.annpack");
        ap_pack_manifest_free(&m);
    }
    ap_root_manifest r;
    if (ap_root_manifest_load(dir, &r, NULL) == AP_OK) ap_root_manifest_free(&r);
    unlink(path);
    rmdir(dir);
    return 0;
}
