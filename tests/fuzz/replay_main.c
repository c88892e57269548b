/* Replays fuzz corpora as ordinary regression tests (no libFuzzer needed): runs the
 * target on every file given, or every file of every directory given. A path that does not
 * exist, a file that cannot be read and a directory without files are failures (exit 1,
 * naming the path): a corpus must never pass by being skipped. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the target on the whole file; 0 on success, -1 (after a message) when it cannot
 * be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "%s: not a regular file\n", path);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    size_t got = buf ? fread(buf, 1, n, f) : 0;
    int bad = !buf || got != n || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: %s\n", path, buf ? "read error" : "out of memory");
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

/* Runs every file of a directory (names starting with '.' are skipped); the number run,
 * or -1 on any failure. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) {
            fprintf(stderr, "%s/%s: path too long\n", dir, e->d_name);
            count = -1;
            break;
        }
        if (run_file(p) != 0) {
            count = -1;
            break;
        }
        count++;
    }
    closedir(d);
    if (count == 0) fprintf(stderr, "%s: no corpus files\n", dir);
    return count > 0 ? count : -1;
}

int main(int argc, char **argv)
{
    int count = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        int n;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            n = -1;
        } else {
            n = S_ISDIR(sb.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
        }
        if (n < 0) {
            printf("%d passed, 1 failed\n", count);
            return 1;
        }
        count += n;
    }
    printf("%d passed, 0 failed\n", count);
    return 0;
}
