/* Internal invariants are assert()ed in core and the asserts are compiled in (meson's
 * default b_ndebug=false leaves NDEBUG undefined in every buildtype): a broken documented
 * precondition aborts in the library instead of reading out of bounds. Each case runs in a
 * child process, which must die of SIGABRT. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "annpack/format.h"
#include "annpack/search.h"
#include "check.h"
#include "fp16.h"
#include "fsops.h"

/* Runs fn(arg) in a child; whether it died of SIGABRT. */
static int aborts(void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        /* Quiet: the assertion message is expected. */
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        fn(arg);
        _exit(0);
    }
    int ws;
    if (waitpid(pid, &ws, 0) != pid) return 0;
    return WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT;
}

static void list_past_the_end(void *arg)
{
    ap_annp_list l;
    ap_annp_list_get(arg, ap_annp_get_header(arg)->n_lists, &l); /* i < n_lists broken */
}

static void list_start_past_the_end(void *arg)
{
    (void)ap_annp_list_start(arg, ap_annp_get_header(arg)->n_lists + 1);
}

static void topk_overfull(void *arg)
{
    (void)arg;
    ap_hit buf[2];
    ap_topk t;
    ap_topk_init(&t, buf, 2);
    t.n = 3; /* more hits than the heap holds */
    ap_topk_push(&t, 1, 1.0f, 0);
}

static void topk_without_buffer(void *arg)
{
    (void)arg;
    ap_topk t;
    ap_topk_init(&t, NULL, 4);
}

int main(void)
{
#ifdef NDEBUG
    printf("NDEBUG is defined in this build: core's asserts are compiled out\n");
    return 77; /* meson: skipped */
#endif
    ap_err err;
    char dir[] = "/tmp/annpack-invariants-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char *path = ap_path_join(dir, "pack.annpack");
    const uint32_t dim = 4, counts[2] = {1, 1};
    const float cent[8] = {1, 0, 0, 0, 0, 1, 0, 0};
    const uint64_t ids[2] = {5, 6};
    uint16_t vecs[8];
    ap_f32_to_f16_n(vecs, cent, 8);
    CHECK_OK(ap_annp_write(path, dim, 2, cent, counts, ids, vecs, &err), &err);
    ap_annp *a = NULL;
    CHECK_OK(ap_annp_open(path, &a, &err), &err);
    if (a) {
        /* In range: fine; one past: the precondition aborts. */
        ap_annp_list l;
        ap_annp_list_get(a, 1, &l);
        CHECK(l.count == 1 && ap_annp_list_id(&l, 0) == 6 && ap_annp_list_start(a, 2) == 2);
        CHECK(aborts(list_past_the_end, a));
        CHECK(aborts(list_start_past_the_end, a));
        ap_annp_close(a);
    }
    CHECK(aborts(topk_overfull, NULL));
    CHECK(aborts(topk_without_buffer, NULL));
    ap_rmtree(dir);
    free(path);
    return check_done();
}
