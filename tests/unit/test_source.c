/* Source files opened beneath a directory (core/base/source.c): the openat2 beneath rule
 * (.. and absolute paths, escaping symlinks, magic links refused; a symlink that stays
 * inside allowed), what is not a regular file, the read cap, and the change detection a
 * verified view relies on (ap_src_unchanged, a file shorter than when opened). Every
 * refusal with its status and message. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fsops.h"
#include "source.h"

static char root[64];

static void put(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    unlink(p);
    ap_err err;
    CHECK_OK(ap_write_file(p, text, strlen(text), &err), &err);
}

static void link_(const char *target, const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    CHECK(symlink(target, p) == 0);
}

int main(void)
{
    ap_err err;
    snprintf(root, sizeof root, "/tmp/annpack-source-XXXXXX");
    if (!mkdtemp(root)) return 1;
    char p[256];
    snprintf(p, sizeof p, "%s/pack", root);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/pack/sub", root);
    CHECK(mkdir(p, 0755) == 0);
    put("outside.txt", "secret\n");
    put("pack/a.txt", "hello\n");
    put("pack/sub/b.txt", "inner\n");
    link_("../outside.txt", "pack/up");     /* relative, leaves pack/ */
    link_("/etc/hostname", "pack/abs");     /* absolute */
    link_("sub/b.txt", "pack/inside");      /* stays inside pack/ */
    link_("/proc/self/fd/0", "pack/magic"); /* a magic link */
    link_("..", "pack/parent");             /* a directory above */
    snprintf(p, sizeof p, "%s/pack", root);

    int dfd = -1;
    CHECK_ERR(ap_dir_open_path("/nonexistent/annpack", &dfd, &err), AP_ERR_NOTFOUND, &err,
              "/nonexistent/annpack");
    CHECK_OK(ap_dir_open_path(p, &dfd, &err), &err);

    /* A regular file beneath: opened, snapshotted, read whole. */
    ap_src s;
    CHECK_OK(ap_src_open(dfd, "a.txt", "PACK", &s, &err), &err);
    CHECK(s.fd >= 0 && s.size == 6 && !strcmp(s.name, "PACK/a.txt"));
    char *buf = NULL;
    size_t len = 0;
    CHECK_OK(ap_src_read(&s, 6, &buf, &len, &err), &err);
    CHECK(buf && len == 6 && !strcmp(buf, "hello\n"));
    free(buf);
    CHECK_ERR(ap_src_read(&s, 5, &buf, &len, &err), AP_ERR_LIMIT, &err,
              "PACK/a.txt: 6 bytes exceeds the cap of 5 bytes");
    CHECK(buf == NULL);
    char two[2];
    CHECK_OK(ap_src_read_at(&s, 4, two, 2, &err), &err);
    CHECK(two[0] == 'o' && two[1] == '\n');
    CHECK_ERR(ap_src_read_at(&s, 5, two, 2, &err), AP_ERR_VERIFY, &err,
              "PACK/a.txt: shorter than when opened (changed?)");
    CHECK_OK(ap_src_unchanged(&s, &err), &err);

    /* Changed in place after it was opened: every kind of change is seen. */
    snprintf(p, sizeof p, "%s/pack/a.txt", root);
    int w = open(p, O_WRONLY | O_APPEND);
    CHECK(w >= 0 && write(w, "x", 1) == 1);
    close(w);
    CHECK_ERR(ap_src_unchanged(&s, &err), AP_ERR_VERIFY, &err,
              "PACK/a.txt changed since it was verified");
    /* A read takes the size of the snapshot: the bytes appended are not read. */
    CHECK_OK(ap_src_read(&s, 100, &buf, &len, &err), &err);
    CHECK(buf && len == 6 && !strcmp(buf, "hello\n"));
    free(buf);
    ap_src_close(&s);
    CHECK(s.fd == -1 && s.name == NULL);
    ap_src_close(&s); /* twice: a no-op */

    /* Truncated after it was opened: reads past the new end fail. */
    CHECK_OK(ap_src_open(dfd, "a.txt", "PACK", &s, &err), &err);
    CHECK(s.size == 7);
    CHECK(truncate(p, 3) == 0);
    CHECK_ERR(ap_src_read(&s, 100, &buf, &len, &err), AP_ERR_VERIFY, &err,
              "PACK/a.txt: shorter than when opened (changed?)");
    CHECK(buf == NULL);
    CHECK_ERR(ap_src_unchanged(&s, &err), AP_ERR_VERIFY, &err,
              "PACK/a.txt changed since it was verified");
    ap_src_close(&s);
    put("pack/a.txt", "hello\n");

    /* Same size, new bytes (mtime and ctime move). */
    CHECK_OK(ap_src_open(dfd, "a.txt", "PACK", &s, &err), &err);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    w = open(p, O_WRONLY);
    CHECK(w >= 0 && pwrite(w, "J", 1, 0) == 1);
    close(w);
    CHECK_ERR(ap_src_unchanged(&s, &err), AP_ERR_VERIFY, &err, "changed since it was verified");
    ap_src_close(&s);

    /* Replaced by another file under the same name: the descriptor still holds the old
     * file (the bytes verified), and unlinking it moved its ctime, so it reads as changed. */
    CHECK_OK(ap_src_open(dfd, "a.txt", "PACK", &s, &err), &err);
    CHECK_OK(ap_src_unchanged(&s, &err), &err);
    put("pack/a.txt.new", "other\n");
    char q[256];
    snprintf(q, sizeof q, "%s/pack/a.txt.new", root);
    CHECK(rename(q, p) == 0);
    CHECK_ERR(ap_src_unchanged(&s, &err), AP_ERR_VERIFY, &err,
              "PACK/a.txt changed since it was verified");
    CHECK_OK(ap_src_read(&s, 100, &buf, &len, &err), &err);
    CHECK(buf && !strcmp(buf, "Jello\n")); /* the old bytes */
    free(buf);
    ap_src_close(&s);

    /* The beneath rule. */
    CHECK_ERR(ap_src_open(dfd, "../outside.txt", "PACK", &s, &err), AP_ERR_VERIFY, &err,
              "PACK/../outside.txt: the path leaves the directory (a symlink or a path escape)");
    CHECK(s.fd == -1 && s.name == NULL);
    CHECK_ERR(ap_src_open(dfd, "up", "PACK", &s, &err), AP_ERR_VERIFY, &err,
              "PACK/up: the path leaves the directory");
    CHECK_ERR(ap_src_open(dfd, "abs", "PACK", &s, &err), AP_ERR_VERIFY, &err,
              "PACK/abs: the path leaves the directory");
    CHECK_ERR(ap_src_open(dfd, "/etc/hostname", "PACK", &s, &err), AP_ERR_VERIFY, &err,
              "PACK//etc/hostname: the path leaves the directory");
    CHECK_ERR(ap_src_open(dfd, "sub/../../outside.txt", "PACK", &s, &err), AP_ERR_VERIFY, &err,
              "the path leaves the directory");
    CHECK_ERR(ap_src_open(dfd, "parent/outside.txt", "PACK", &s, &err), AP_ERR_VERIFY, &err,
              "PACK/parent/outside.txt: the path leaves the directory");
    CHECK(ap_src_open(dfd, "magic", "PACK", &s, &err) != AP_OK);
    /* A symlink that stays beneath is what openat2 RESOLVE_BENEATH allows. */
    CHECK_OK(ap_src_open(dfd, "inside", "PACK", &s, &err), &err);
    CHECK(s.size == 6);
    ap_src_close(&s);
    CHECK_OK(ap_src_open(dfd, "sub/b.txt", "PACK", &s, &err), &err);
    ap_src_close(&s);

    /* Missing, and not a regular file. */
    CHECK_ERR(ap_src_open(dfd, "nope.txt", "PACK", &s, &err), AP_ERR_NOTFOUND, &err,
              "PACK/nope.txt");
    CHECK_ERR(ap_src_open(dfd, "sub", "PACK", &s, &err), AP_ERR_FORMAT, &err,
              "PACK/sub: not a regular file");
    CHECK(s.fd == -1);

    /* Directories beneath. */
    int sfd = -1;
    CHECK_OK(ap_dir_open_beneath(dfd, "sub", "PACK", &sfd, &err), &err);
    CHECK_OK(ap_src_open(sfd, "b.txt", "PACK/sub", &s, &err), &err);
    CHECK(!strcmp(s.name, "PACK/sub/b.txt"));
    ap_src_close(&s);
    CHECK_ERR(ap_src_open(sfd, "../a.txt", "PACK/sub", &s, &err), AP_ERR_VERIFY, &err,
              "PACK/sub/../a.txt: the path leaves the directory");
    close(sfd);
    CHECK_OK(ap_dir_open_beneath(dfd, NULL, "PACK", &sfd, &err), &err);
    CHECK(sfd >= 0 && sfd != dfd);
    close(sfd);
    CHECK_OK(ap_dir_open_beneath(dfd, ".", "PACK", &sfd, &err), &err);
    close(sfd);
    CHECK_ERR(ap_dir_open_beneath(dfd, "..", "PACK", &sfd, &err), AP_ERR_VERIFY, &err,
              "PACK/..: the path leaves the directory");
    CHECK_ERR(ap_dir_open_beneath(dfd, "parent", "PACK", &sfd, &err), AP_ERR_VERIFY, &err,
              "PACK/parent: the path leaves the directory");
    CHECK_ERR(ap_dir_open_beneath(dfd, "missing", "PACK", &sfd, &err), AP_ERR_NOTFOUND, &err,
              "PACK/missing");
    CHECK_ERR(ap_dir_open_beneath(dfd, "a.txt", "PACK", &sfd, &err), AP_ERR_IO, &err, "PACK/a.txt");

    close(dfd);
    ap_rmtree(root);
    return check_done();
}
