/* JSON output helpers: see json_write.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_write.h"

cJSON *fs_json_add_u64(cJSON *obj, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_AddRawToObject(obj, key, buf);
}

cJSON *fs_json_add_text(cJSON *obj, const char *key, const char *s)
{
    return s && s[0] ? cJSON_AddStringToObject(obj, key, s) : cJSON_AddNullToObject(obj, key);
}

char *fs_json_print(const cJSON *obj, int no_newline, size_t *len)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    if (!s) return NULL;
    size_t n = strlen(s);
    if (!no_newline) {
        char *line = realloc(s, n + 2);
        if (!line) {
            free(s);
            return NULL;
        }
        s = line;
        s[n++] = '\n';
        s[n] = '\0';
    }
    if (len) *len = n;
    return s;
}
