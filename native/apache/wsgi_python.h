/*
 * The CPython of each process group, checked at configuration time (wsgi_python.c), and the
 * directives of mod_wsgi 6 about the GIL: WSGIPerInterpreterGIL (a state flag) and WSGISwitchInterval.
 */
#ifndef WSGI_PYTHON_H
#define WSGI_PYTHON_H

#include "wsgi_config.h"

/* sys.setswitchinterval() values accepted (seconds); src/config/daemon-config.ts has the same bounds. */
#define WSGI_SWITCH_INTERVAL_MIN 0.000001
#define WSGI_SWITCH_INTERVAL_MAX 60.0

/* check_config, after wsgi_config_check: every group's Python can be embedded (one line per group that
 * cannot, naming the Python and what to install or run); warns about WSGIPerInterpreterGIL on Pythons
 * before 3.12. OK or HTTP_INTERNAL_SERVER_ERROR. */
int wsgi_python_check(apr_pool_t *pconf, server_rec *main_server);

/* A switch interval in seconds; NULL, or what is allowed (for the caller's message). */
const char *wsgi_parse_switch_interval(apr_pool_t *p, const char *value, double *out);

/* WSGISwitchInterval seconds (global). */
const char *wsgi_cmd_switch_interval(cmd_parms *cmd, void *dconf, const char *arg);

#endif /* WSGI_PYTHON_H */
