/* Guarded reads of memory-mapped source files (guard.c). If a source file is truncated
 * while mounted, touching the vanished pages raises SIGBUS; inside a guarded call that
 * becomes an EIO for the one request (and a log line) instead of the end of the daemon. */
#ifndef ANNPACK_FS_GUARD_H
#define ANNPACK_FS_GUARD_H

/* Installs the SIGBUS handler behind fs_guarded (once, before serving). */
int fs_guard_install(void);

/* Runs fn(arg) and returns what it returns; if it touches a vanished page of a mapped
 * source file, returns -EIO (logging `what`) instead of crashing. */
int fs_guarded(int (*fn)(void *), void *arg, const char *what);

#endif
