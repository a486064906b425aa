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

/*
 * The `name=value` options of the directives that name a script (WSGIScriptAlias, WSGIImportScript,
 * WSGIHandlerScript, the hook scripts), described by a table: each option's kind and the offset of its
 * field in the directive's struct. One parser serves them all, with one wording for every error.
 */
typedef enum {
    WSGI_OPT_PROCESS_GROUP,     /* const char *: %{GLOBAL} is "", a literal name is checked later */
    WSGI_OPT_GROUP_NAME,        /* const char *: as above, not remembered (.htaccess: no generation) */
    WSGI_OPT_APPLICATION_GROUP, /* const char *: %{GLOBAL} is "" */
    WSGI_OPT_STRING,            /* const char *: any non-empty value */
    WSGI_OPT_APPLICATION_TYPE,  /* const char *: auto (NULL), asgi or wsgi */
    WSGI_OPT_ON_OFF             /* int: On or Off */
} wsgi_opt_kind;

typedef struct {
    const char *name;
    wsgi_opt_kind kind;
    size_t offset;
} wsgi_script_option;

/* Parses every option of `args` into `target` by `table` (ended by a NULL name). NULL or the message. */
const char *wsgi_parse_script_options(cmd_parms *cmd, const char *args, const wsgi_script_option *table,
                                      void *target);

#endif /* WSGI_OPTIONS_H */
