/* Refused names: see refusal.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "annpack/annpack.h"
#include "json_write.h"
#include "refusal.h"
#include "stats.h"

void fs_printable(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f) *p = '?';
}

fs_blob *fs_refusal_blob(const char *why)
{
    char clean[AP_ERR_MSG_MAX];
    snprintf(clean, sizeof clean, "%s", why);
    fs_printable(clean);
    cJSON *o = cJSON_CreateObject();
    size_t n = 0;
    char *s = o && cJSON_AddStringToObject(o, "error", clean) ? fs_json_print(o, 0, &n) : NULL;
    cJSON_Delete(o);
    fs_blob *b = s ? fs_blob_new(s, n) : NULL;
    free(s);
    return b;
}

/* Whether this refusal gets a log line (the first in a second); *unlogged is how many
 * were not logged since the last line. */
static bool log_this_one(uint64_t *unlogged)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct timespec last;
    static uint64_t skipped;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&lock);
    bool log =
        last.tv_sec == 0 ||
        (now.tv_sec - last.tv_sec) * 1000000000ll + (now.tv_nsec - last.tv_nsec) >= 1000000000ll;
    *unlogged = skipped;
    if (log) {
        last = now;
        skipped = 0;
    } else {
        skipped++;
    }
    pthread_mutex_unlock(&lock);
    return log;
}

void fs_note_refusal(const char *component, size_t name_len, const char *msg)
{
    atomic_fetch_add(&g_stats.refused, 1);
    atomic_fetch_add(&g_stats.errors, 1);
    uint64_t before;
    if (!log_this_one(&before)) return;
    char clean[AP_ERR_MSG_MAX];
    snprintf(clean, sizeof clean, "%s", msg);
    fs_printable(clean); /* a refusal may echo part of the name: no control bytes in the log */
    if (before)
        ap_log(AP_LOG_WARN, component,
               "refused name (%zu bytes): %s (%llu more refused since the "
               "last line, not logged)",
               name_len, clean, (unsigned long long)before);
    else
        ap_log(AP_LOG_WARN, component, "refused name (%zu bytes): %s", name_len, clean);
}
