/* annpack templates, annpack init: the starter projects of templates/ (built into the
 * program by tools/templates_gen.py), written out as a new project directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "templates.h"

#define N_TEMPLATES (sizeof TEMPLATES / sizeof TEMPLATES[0])

static const char templates_usage[] =
    "usage: annpack templates\n"
    "\n"
    "Lists the starter projects `annpack init --template NAME` writes, one per line:\n"
    "NAME, then what it is for.\n";

static const char init_usage[] =
    "usage: annpack init --template NAME --out DIR [--force]\n"
    "\n"
    "Writes a starter project into DIR: sample data (data/*.csv), project.env (the input,\n"
    "its columns, lists, seed, a sample query), build.sh (build the packset ps/, make a key\n"
    "pair in keys/ on the first run, sign, verify), search.sh (mount ps/, query, unmount),\n"
    "README.md and .gitignore. `annpack templates` lists the templates.\n"
    "\n"
    "  --template NAME    docs-search, log-search or text-search\n"
    "  --out DIR          the project directory to create; an existing empty directory is\n"
    "                     filled, anything else is refused unless --force\n"
    "  --force            replace an existing DIR (atomically: the new project is written\n"
    "                     beside it, swapped in, then the old one is removed)\n";

int cmd_templates(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(templates_usage, stdout);
        return EXIT_OK;
    }
    if (argc != 1) return cli_usage_error("templates", "takes no arguments");
    for (size_t i = 0; i < N_TEMPLATES; i++)
        printf("%-12s %s\n", TEMPLATES[i].name, TEMPLATES[i].description);
    return EXIT_OK;
}

static const tmpl *find_template(const char *name)
{
    for (size_t i = 0; i < N_TEMPLATES; i++)
        if (!strcmp(TEMPLATES[i].name, name)) return &TEMPLATES[i];
    return NULL;
}

/* Writes data to path (a new file), fsynced. */
static int write_file(const char *path, const char *data, bool exec, ap_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exec ? 0755 : 0644);
    if (fd < 0) return ap_err_errno(err, AP_ERR_IO, errno, "cannot create %s", path);
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return ap_err_errno(err, AP_ERR_IO, e, "cannot write %s", path);
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        return ap_err_errno(err, AP_ERR_IO, errno, "cannot write %s", path);
    return AP_OK;
}

/* The template's files under dir (which exists), creating their subdirectories. */
static int write_project(const tmpl *t, const char *dir, ap_err *err)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < t->n_files; i++) {
        const tmpl_file *f = &t->files[i];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, f->path) >= sizeof path)
            return ap_err_set(err, AP_ERR_ARG, "%s/%s: path too long", dir, f->path);
        for (char *s = path + strlen(dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
            *s = '\0';
            int rc = mkdir(path, 0755);
            *s = '/';
            if (rc != 0 && errno != EEXIST)
                return ap_err_errno(err, AP_ERR_IO, errno, "cannot create a directory in %s", dir);
        }
        if (write_file(path, f->data, f->exec, err)) return err->status;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    return AP_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void remove_tree(const char *path)
{
    (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* 1 when path is a directory with no entries. */
static int is_empty_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return 0;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
    closedir(d);
    return empty;
}

/* Writes the project beside out, then puts it in place: a rename when out is missing or an
 * empty directory, an exchange (then removal of the old tree) with force. */
static int init_project(const tmpl *t, const char *out, bool force, ap_err *err)
{
    struct stat sb;
    int exists = lstat(out, &sb) == 0;
    if (exists && !(S_ISDIR(sb.st_mode) && is_empty_dir(out)) && !force)
        return ap_err_set(err, AP_ERR_EXISTS,
                          "%s exists and is not an empty directory; refusing to replace it "
                          "(--force replaces it)",
                          out);
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.init-XXXXXX", out) >= sizeof tmp)
        return ap_err_set(err, AP_ERR_ARG, "%s: path too long", out);
    if (!mkdtemp(tmp))
        return ap_err_errno(err, AP_ERR_IO, errno, "cannot create a directory beside %s", out);
    (void)chmod(tmp, 0755);
    if (write_project(t, tmp, err)) {
        remove_tree(tmp);
        return err->status;
    }
    if (!exists || (S_ISDIR(sb.st_mode) && is_empty_dir(out))) {
        if (rename(tmp, out) != 0) {
            int e = errno;
            remove_tree(tmp);
            return ap_err_errno(err, AP_ERR_IO, e, "cannot rename the new project to %s", out);
        }
        return AP_OK;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) != 0) {
        int e = errno;
        remove_tree(tmp);
        return ap_err_errno(err, AP_ERR_IO, e, "cannot swap the new project into %s", out);
    }
    remove_tree(tmp); /* now the old tree */
    return AP_OK;
}

int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {{"template", required_argument, NULL, 't'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *name = NULL, *out = NULL;
    bool force = false;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 't':
            name = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(init_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("init", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
    if (!name || !out) return cli_usage_error("init", "--template and --out are required");
    const tmpl *t = find_template(name);
    if (!t) {
        char names[256] = "";
        for (size_t i = 0; i < N_TEMPLATES; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     TEMPLATES[i].name);
        return cli_usage_error("init", "unknown template '%s' (templates: %s)", name, names);
    }
    ap_err err = {0};
    if (init_project(t, out, force, &err)) return cli_fail("init", &err);
    printf("created %s from the %s template: cd %s && ./build.sh && ./search.sh\n", out, t->name,
           out);
    return EXIT_OK;
}
