/* Status to errno, by context. A limit is the clearest case for a context: AP_ERR_LIMIT on
 * a name is ENAMETOOLONG (the name is too long), but while computing an answer it is a cap
 * exceeded by the data served (a row nested too deeply, ...), which is EIO like any other
 * data the daemon cannot serve — never a claim about the name the client gave.
 *
 *   status             name          answer        read
 *   AP_OK              0             0             0
 *   AP_ERR_NOTFOUND    ENOENT        ENOENT        EIO
 *   AP_ERR_ARG         ENOENT        EINVAL        EIO
 *   AP_ERR_LIMIT       ENAMETOOLONG  EIO           EIO
 *   AP_ERR_NOMEM       ENOMEM        ENOMEM        ENOMEM
 *   AP_ERR_UNSUPPORTED ENOENT        EOPNOTSUPP    EIO
 *   any other          ENOENT        EIO           EIO
 *
 * A refused name does not exist (ENOENT): nginx's try_files then falls back quietly to the
 * refusal file (examples/nginx.conf), and ENAMETOOLONG is as quiet to it. */
#include <errno.h>
#include <stddef.h>

#include "errno_map.h"

typedef struct row {
    ap_status st;
    int by_ctx[3]; /* fs_errno_ctx order */
} row;

static const row TABLE[] = {
    {AP_OK, {0, 0, 0}},
    {AP_ERR_NOTFOUND, {ENOENT, ENOENT, EIO}},
    {AP_ERR_ARG, {ENOENT, EINVAL, EIO}},
    {AP_ERR_LIMIT, {ENAMETOOLONG, EIO, EIO}},
    {AP_ERR_NOMEM, {ENOMEM, ENOMEM, ENOMEM}},
    {AP_ERR_UNSUPPORTED, {ENOENT, EOPNOTSUPP, EIO}}, /* e.g. a text query on a vectors pack */
};
static const int OTHER[3] = {ENOENT, EIO, EIO};

int fs_errno(ap_status st, fs_errno_ctx ctx)
{
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++)
        if (TABLE[i].st == st) return -TABLE[i].by_ctx[ctx];
    return -OTHER[ctx];
}
