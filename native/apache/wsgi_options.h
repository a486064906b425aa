/*
 * Parsing of `name=value` directive options, and of every WSGIDaemonProcess option into a
 * validated, normalised wsgi_group (wsgi_options.c).
 */
#ifndef WSGI_OPTIONS_H
#define WSGI_OPTIONS_H

#include "wsgi_config.h"

/*
 * Takes the next `name=value` option from *line (the value may be quoted). Returns NULL, or a message
 * saying what is wrong with the option text, naming the directive.
 */
const char *wsgi_next_option(cmd_parms *cmd, const char **line, const char **name, const char **value);

/* A group with mod_wsgi's defaults; user, group and socket timeout are filled by check_config. */
wsgi_group *wsgi_group_new(apr_pool_t *p, const char *name, server_rec *s);

/* Parses the options of `WSGIDaemonProcess name options...` into g. Returns NULL or the message. */
const char *wsgi_parse_daemon_options(cmd_parms *cmd, wsgi_group *g, const char *args);

/* Parses "On"/"Off" (any case) into *out; returns NULL or a message naming directive and option. */
const char *wsgi_parse_on_off(cmd_parms *cmd, const char *option, const char *value, int *out);

#endif /* WSGI_OPTIONS_H */
