/* The FUSE callbacks (callbacks.c, libfuse's low-level API): lookup, forget, getattr,
 * open, read, opendir, readdir, init and destroy over the tree of docs/MOUNT.md. They route
 * names (route.h), find or make nodes (inode.h) and take answers from the cache (cache.h)
 * or compute them (answer.h); nothing else. (Not "ops.h": core has an internal header of
 * that name, and tools/check_layers.py keeps fs/ from including any.) */
#ifndef ANNPACK_FS_CALLBACKS_H
#define ANNPACK_FS_CALLBACKS_H

#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops fs_ops;

#endif
