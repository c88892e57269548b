/* Answers (answer.c): the bytes of a query, vector query or doc file, computed from the
 * generation's view by core (search + results JSON, or one row). */
#ifndef ANNPACK_FS_ANSWER_H
#define ANNPACK_FS_ANSWER_H

#include "blob.h"
#include "generation.h"
#include "route.h"

/* Computes the answer r names (kind, k, probe, id; its text at key + r->text_off) into
 * *out (one reference). took_ms < 0: a new answer, timed and counted in stats; else the
 * recomputation of one looked up with that took_ms, which gives the same bytes. Reads of
 * the mapped source files are guarded (guard.h), and the source is checked unchanged
 * after reading (generation.h). Returns 0 or a negative errno (errno_map.h, "answer"),
 * after an ERROR line for anything but an absent doc. */
int fs_answer(fs_gen *g, const fs_route *r, const char *key, double took_ms, fs_blob **out);

#endif
