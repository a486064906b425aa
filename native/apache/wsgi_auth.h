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

/* register_hooks: the access checker and the two providers. */
void wsgi_auth_register_hooks(apr_pool_t *p);

#endif /* WSGI_AUTH_H */
