/* The background verifier (verifier.c): with verify=lazy and verify_rate=N, one thread
 * walks the current generation's unchecked lists and frames at about N MB/s, so that a
 * corrupt list is found (health says so) before a query needs it. A new generation starts
 * the walk again. */
#ifndef ANNPACK_FS_VERIFIER_H
#define ANNPACK_FS_VERIFIER_H

/* Starts the thread when configured (no-op otherwise). */
void fs_verifier_start(void);
/* Stops and joins it (no-op when not started). */
void fs_verifier_stop(void);

#endif
