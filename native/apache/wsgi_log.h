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
 *   01700-01799 status, metrics, health, restart history (wsgi_ledger.c, wsgi_status*.c, wsgi_metrics.c,
 *               wsgi_health.c; the ledger in wsgi_daemon.c) and the causes of failed requests
 */
#ifndef WSGI_LOG_H
#define WSGI_LOG_H

#define WSGILOGNO(n) "WSGI" #n ": "

/*
 * Every line about a request names it: "[request ID] " before the code, as the daemon's lines about the
 * same request do (docs/logging.md). ID is Apache's log id of the request (r->log_id, %L in ErrorLogFormat
 * and LogFormat): UNIQUE_ID when mod_unique_id is loaded, else Apache's own id, made in this child;
 * wsgi_request_id (wsgi_forward.c) makes it if nothing has yet, and sets the request note
 * mod_wsgi.request_id. Use wsgi_rlog(level, status, r, WSGILOGNO(nnnnn) "text", ...) for them.
 */
const char *wsgi_request_id(const request_rec *r);
#define wsgi_rlog(level, status, r, ...) wsgi_rlog_((level), (status), (r), __VA_ARGS__)
#define wsgi_rlog_(level, status, r, fmt, ...) \
    ap_log_rerror(APLOG_MARK, level, status, r, "[request %s] " fmt, wsgi_request_id(r), ##__VA_ARGS__)

#endif /* WSGI_LOG_H */
