/* The command line that `annpack serve` and `annpack smoke` share. */
#ifndef ANNPACK_TOOLS_SERVE_CMD_SERVE_H
#define ANNPACK_TOOLS_SERVE_CMD_SERVE_H

#include "server.h"

/* Parses DIR and --port, --host, --pubkey into o (which holds the defaults); returns -1
 * for --help, else an exit status (EXIT_OK to go on; a usage error is printed). */
int serve_parse_opts(const char *cmd, int argc, char **argv, serve_opts *o);

#endif
