/* The logging module: see include/annpack/log.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "annpack/log.h"
#include "env.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static ap_log_level g_level = AP_LOG_WARN;
static int g_json;
static ap_log_sink g_sink;
static void *g_sink_ud;
static char g_program[64] = "annpack";

static const char *level_name(ap_log_level l)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    return (unsigned)l < 4 ? names[l] : "?";
}

/* ANNPACK_LOG_LEVEL and ANNPACK_LOG_JSON, as env.c parsed them. */
static void init(void)
{
    const ap_env *e = ap_env_get();
    g_level = e->log_level;
    g_json = e->log_json;
}

int ap_log_json(void)
{
    pthread_once(&g_once, init);
    return g_json;
}

int ap_log_enabled(ap_log_level level)
{
    pthread_once(&g_once, init);
    return level <= g_level;
}

void ap_log_set_level(ap_log_level level)
{
    pthread_once(&g_once, init);
    g_level = level;
}

void ap_log_set_sink(ap_log_sink sink, void *userdata)
{
    pthread_mutex_lock(&g_lock);
    g_sink = sink;
    g_sink_ud = userdata;
    pthread_mutex_unlock(&g_lock);
}

void ap_log_set_program(const char *name)
{
    pthread_mutex_lock(&g_lock);
    snprintf(g_program, sizeof g_program, "%s", name);
    pthread_mutex_unlock(&g_lock);
}

/* One write(2)-sized line per message so concurrent threads never interleave. */
static void default_sink(ap_log_level level, const char *component, const char *msg)
{
    if (g_json) {
        cJSON *o = cJSON_CreateObject();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char tbuf[40];
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(tbuf + n, sizeof tbuf - n, ".%03ldZ", ts.tv_nsec / 1000000);
        cJSON_AddStringToObject(o, "ts", tbuf);
        cJSON_AddStringToObject(o, "level", level_name(level));
        cJSON_AddStringToObject(o, "program", g_program);
        cJSON_AddStringToObject(o, "component", component);
        cJSON_AddStringToObject(o, "msg", msg);
        char *s = cJSON_PrintUnformatted(o);
        if (s) fprintf(stderr, "%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else {
        fprintf(stderr, "%s: %s: %s: %s\n", g_program, level_name(level), component, msg);
    }
}

void ap_log_emit(ap_log_level level, const char *component, const char *msg)
{
    pthread_once(&g_once, init);
    pthread_mutex_lock(&g_lock);
    if (g_sink)
        g_sink(level, component, msg, g_sink_ud);
    else
        default_sink(level, component, msg);
    pthread_mutex_unlock(&g_lock);
}

void ap_log(ap_log_level level, const char *component, const char *fmt, ...)
{
    if (!ap_log_enabled(level)) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ap_log_emit(level, component, msg);
}
