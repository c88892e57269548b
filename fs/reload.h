/* The reload thread (reload.c). It verifies and installs new generations on request —
 * SIGHUP, with -o watch the root manifest or its signature being replaced, or a source
 * file found changed in place — and it is the thread that asks the kernel to forget
 * computed names when their inodes go over budget (notifications must not come from a
 * request handler). */
#ifndef ANNPACK_FS_RELOAD_H
#define ANNPACK_FS_RELOAD_H

/* Requests a reload; async-signal-safe (the SIGHUP handler calls it). */
void fs_reload_request(void);
/* Requests that the kernel forget the computed names (inode.c, over budget). */
void fs_trim_request(void);
/* Starts the thread (after daemonising: fork keeps only the calling thread); 0 or -1. */
int fs_reload_start(void);
/* Stops it and waits for it (after the session loop). */
void fs_reload_stop(void);

#endif
