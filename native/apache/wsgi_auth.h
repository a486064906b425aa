/*
 * Access, authentication and group hooks written in Python (wsgi_auth.c): WSGIAccessScript (an access
 * checker), WSGIAuthUserScript (the authn provider "wsgi": Basic and Digest) and WSGIAuthGroupScript
 * (the authz provider "wsgi-group", for `Require wsgi-group NAME...`). Each hook runs in a daemon
 * process through an AUTH frame (docs/protocol.md, "Hooks").
 */
#ifndef WSGI_AUTH_H
#define WSGI_AUTH_H

#include "wsgi_config.h"

/* WSGIAccessScript / WSGIAuthUserScript / WSGIAuthGroupScript path [process-group=G] [application-group=A]
 * (cmd->info: offset of the field in wsgi_dir_conf). */
const char *wsgi_cmd_auth_script(cmd_parms *cmd, void *dconf, const char *args);

/* check_config: may a hook script run in the implicit default group (no process group applies)? */
int wsgi_auth_needs_default_group(wsgi_state *st);

/* What a hook answered (wsgi_auth_call.c). */
typedef struct {
    int outcome;                        /* WSGI_AUTH_*: ERROR when the hook or the daemon failed */
    apr_array_header_t *values;         /* const char *: user name, realm hash or groups */
} wsgi_auth_result;

/* Runs `hook` (WSGI_AUTH_*) of script s for r in a daemon; res->outcome is WSGI_AUTH_ERROR (logged)
 * whenever it could not run. */
void wsgi_auth_run(request_rec *r, const wsgi_auth_script *s, int hook, const char *arg1,
                   const char *arg2, wsgi_auth_result *res);

/* register_hooks: the access checker and the two providers. */
void wsgi_auth_register_hooks(apr_pool_t *p);

#endif /* WSGI_AUTH_H */
