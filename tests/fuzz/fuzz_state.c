/* Fuzz target: annpackfs's state file parser (fs/state.c, fs_state_parse). Whatever it
 * accepts is exactly what fs_state_save writes for that version (one canonical form,
 * nothing else), and it never reads past the bytes given. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so ASan sees any read past the end. */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    uint64_t v = 0;
    ap_err err = {0};
    if (fs_state_parse(buf, size, &v, &err) == AP_OK) {
        char want[80];
        int n = snprintf(want, sizeof want, "{\"version\":%llu}\n", (unsigned long long)v);
        int same = (size_t)n == size || (size_t)n - 1 == size;
        if (!same || memcmp(buf, want, size) != 0 || v >= (1ull << 53)) __builtin_trap();
    } else if (!err.msg[0]) {
        __builtin_trap(); /* every refusal says why */
    }
    free(buf);
    return 0;
}
