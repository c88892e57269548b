/* The daemon's process (process.c; docs/MOUNT.md, "Process hygiene"): what is set up once
 * at start before any option is looked at, and where log lines go. */
#ifndef ANNPACK_FS_PROCESS_H
#define ANNPACK_FS_PROCESS_H

#include <stdbool.h>

/* Checks the ANNPACK_* environment, re-executes once with one BLAS thread, maps large
 * buffers with their contents and raises the soft descriptor limit to the hard one.
 * Returns 0, or 2 after one line on stderr (a bad ANNPACK_* value: a usage error). */
int fs_process_init(char **argv);

/* Appends log lines to path from now on (log=FILE); 1 after a line on stderr if it cannot
 * be opened. fs_log_close closes it at exit. */
int fs_log_open(const char *path);
void fs_log_close(void);
/* Whether lines go to a log= file (not stderr). */
bool fs_log_to_file(void);

#endif
