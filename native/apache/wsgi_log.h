/*
 * Log message numbers of the Apache module. Every message mod_wsgi.so logs starts with its own code,
 * WSGI01nnn (docs/logging.md), so users and tests can match it: WSGILOGNO(01005) "text".
 * A code never changes meaning; a new message takes the next free number of its file's block:
 *   01000-01099 configuration (mod_wsgi.c, wsgi_config.c, wsgi_options.c, wsgi_check.c)
 *   01100-01199 daemon supervision (wsgi_daemon.c, wsgi_spawn.c)
 *   01200-01299 forwarding (wsgi_forward.c, wsgi_request.c, wsgi_response.c, wsgi_conn.c)
 *   01300-01399 hooks and variable lookups (wsgi_auth.c, wsgi_auth_call.c, wsgi_lookup.c)
 *   01400-01449 the CPython of each group, and the GIL directives (wsgi_python.c)
 *   01600-01649 containers and scaling out (wsgi_daemon.c: Apache's graceful stop)
 */
#ifndef WSGI_LOG_H
#define WSGI_LOG_H

#define WSGILOGNO(n) "WSGI" #n ": "

#endif /* WSGI_LOG_H */
