/* Guarded reads of mapped source files: see guard.h. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

#include "annpack/annpack.h"
#include "guard.h"
#include "stats.h"

static __thread sigjmp_buf *t_guard;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    (void)uc;
    if (t_guard) siglongjmp(*t_guard, 1);
    /* Not inside a guarded call: a real bug; die as the default action would. */
    signal(sig, SIG_DFL);
    raise(sig);
}

int fs_guard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGBUS, &sa, NULL);
}

int fs_guarded(int (*fn)(void *), void *arg, const char *what)
{
    sigjmp_buf jb, *prev = t_guard;
    if (sigsetjmp(jb, 1)) {
        t_guard = prev;
        atomic_fetch_add(&g_stats.errors, 1);
        ap_log(AP_LOG_ERROR, "read",
               "%s: a source file changed under the mount (SIGBUS); "
               "returning EIO",
               what);
        return -EIO;
    }
    t_guard = &jb;
    int rc = fn(arg);
    t_guard = prev;
    return rc;
}
