/* The mount table: see mounts.h. */
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>

#include "mounts.h"
#include "relay.h"

int mounts_has(const char *mnt)
{
    FILE *f = setmntent("/proc/self/mounts", "re");
    if (!f) return 0;
    struct mntent ent;
    char buf[PATH_MAX * 2 + 1024];
    int found = 0;
    while (!found && getmntent_r(f, &ent, buf, sizeof buf))
        found = !strcmp(ent.mnt_dir, mnt);
    endmntent(f);
    return found;
}

int mounts_detach(const char *mnt)
{
    if (!mounts_has(mnt)) return 0;
    char prog[] = "fusermount3", u[] = "-u", z[] = "-z", path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s", mnt);
    char *argv[] = {prog, u, z, path, NULL};
    relay_run("fusermount3", argv);
    return mounts_has(mnt);
}
