/* The result cache: see cache.h. One lock over a chained hash table and an LRU list. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cache.h"

#define BUCKETS 65536u

typedef struct centry {
    uint64_t gen;
    uint64_t hash; /* fs_cache_hash of name */
    char *name;    /* the canonical key */
    fs_blob *blob;
    size_t bytes;               /* accounted size */
    struct centry *hnext;       /* hash chain */
    struct centry *prev, *next; /* LRU list, most recent at head */
} centry;

static pthread_mutex_t c_lock = PTHREAD_MUTEX_INITIALIZER;
static centry *c_buckets[BUCKETS];
static centry *c_head, *c_tail;
static uint64_t c_bytes, c_max, c_count;
static unsigned char c_key[crypto_shorthash_KEYBYTES];

uint64_t fs_cache_hash(const char *key, size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)key, len, c_key);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v;
}

static uint32_t bucket(uint64_t gen, uint64_t h)
{
    return (uint32_t)((h ^ gen * 0x9e3779b97f4a7c15ull) % BUCKETS);
}

void fs_cache_init(uint64_t max_bytes)
{
    c_max = max_bytes;
    randombytes_buf(c_key, sizeof c_key);
}

static size_t cost(const centry *e)
{
    return e->blob->len + sizeof *e->blob + strlen(e->name) + 1 + sizeof *e;
}

static void lru_unlink(centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(centry *e)
{
    e->next = c_head;
    e->prev = NULL;
    if (c_head) c_head->prev = e;
    c_head = e;
    if (!c_tail) c_tail = e;
}

static void remove_entry(centry *e)
{
    centry **pp = &c_buckets[bucket(e->gen, e->hash)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    lru_unlink(e);
    c_bytes -= e->bytes;
    c_count--;
    fs_blob_unref(e->blob);
    free(e->name);
    free(e);
}

fs_blob *fs_cache_get(uint64_t gen, const char *name, uint64_t h)
{
    pthread_mutex_lock(&c_lock);
    fs_blob *b = NULL;
    for (centry *e = c_buckets[bucket(gen, h)]; e; e = e->hnext)
        if (e->gen == gen && e->hash == h && strcmp(e->name, name) == 0) {
            lru_unlink(e);
            lru_push_front(e);
            b = e->blob;
            fs_blob_ref(b);
            break;
        }
    pthread_mutex_unlock(&c_lock);
    return b;
}

void fs_cache_put(uint64_t gen, const char *name, uint64_t hash, fs_blob *b)
{
    centry *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name))) {
        free(e);
        return;
    }
    e->gen = gen;
    e->hash = hash;
    e->blob = b;
    fs_blob_ref(b);
    e->bytes = cost(e);
    pthread_mutex_lock(&c_lock);
    /* Another thread may have computed the same name meanwhile: keep the first. */
    uint32_t h = bucket(gen, hash);
    int dup = 0;
    for (centry *x = c_buckets[h]; x && !dup; x = x->hnext)
        dup = x->gen == gen && x->hash == hash && !strcmp(x->name, name);
    if (dup || e->bytes > c_max) { /* an entry larger than the whole cache is not kept */
        pthread_mutex_unlock(&c_lock);
        fs_blob_unref(e->blob);
        free(e->name);
        free(e);
        return;
    }
    e->hnext = c_buckets[h];
    c_buckets[h] = e;
    lru_push_front(e);
    c_bytes += e->bytes;
    c_count++;
    while (c_bytes > c_max && c_tail && c_tail != e)
        remove_entry(c_tail);
    pthread_mutex_unlock(&c_lock);
}

void fs_cache_drop_others(uint64_t keep)
{
    pthread_mutex_lock(&c_lock);
    for (centry *e = c_head; e;) {
        centry *next = e->next;
        if (e->gen != keep) remove_entry(e);
        e = next;
    }
    pthread_mutex_unlock(&c_lock);
}

void fs_cache_usage(uint64_t *entries, uint64_t *bytes)
{
    pthread_mutex_lock(&c_lock);
    *entries = c_count;
    *bytes = c_bytes;
    pthread_mutex_unlock(&c_lock);
}
