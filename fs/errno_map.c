/* Status to errno, by context:
 *   status             name          answer        read
 *   AP_OK              0             0             0
 *   AP_ERR_NOTFOUND    ENOENT        ENOENT        EIO
 *   AP_ERR_ARG         ENOENT        EINVAL        EIO
 *   AP_ERR_LIMIT       ENAMETOOLONG  ENAMETOOLONG  EIO
 *   AP_ERR_NOMEM       ENOMEM        ENOMEM        EIO
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
    {AP_ERR_LIMIT, {ENAMETOOLONG, ENAMETOOLONG, EIO}},
    {AP_ERR_NOMEM, {ENOMEM, ENOMEM, EIO}},
    {AP_ERR_UNSUPPORTED, {ENOENT, EOPNOTSUPP, EIO}}, /* e.g. a text query on a vectors pack */
};
static const int OTHER[3] = {ENOENT, EIO, EIO};

int fs_errno(ap_status st, fs_errno_ctx ctx)
{
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++)
        if (TABLE[i].st == st) return -TABLE[i].by_ctx[ctx];
    return -OTHER[ctx];
}
