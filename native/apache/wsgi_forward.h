/*
 * Forwarding a request to a daemon process and relaying its response (docs/protocol.md):
 * wsgi_forward.c maps URLs (translate_name) and runs the handler, wsgi_request.c builds and sends the
 * REQUEST and the body, wsgi_response.c reads the response frames and passes them down the filters.
 */
#ifndef WSGI_FORWARD_H
#define WSGI_FORWARD_H

#include "httpd.h"

#include "wsgi_config.h"
#include "wsgi_conn.h"

/* Bodies up to this size are read before connecting and sent with the REQUEST in one write; such a
 * request can be sent again when a daemon answers GOAWAY. Larger ones are streamed. */
#define WSGI_BUFFERED_BODY  65536

/* Everything about one forwarded request (r->pool). */
typedef struct wsgi_req {
    request_rec *r;
    wsgi_group *group;
    const char *process_group;
    const char *application_group;
    const char *callable_object;
    const char *application_type;   /* NULL (auto), "asgi" or "wsgi": mod_wsgi.application_type */
    const char *handler_script;
    int pass_authorization;
    int script_reloading;
    int error_override;
    int enable_sendfile;

    /* The REQUEST frame, followed by BODY + BODY_END when the body was buffered. */
    unsigned char *head;
    apr_size_t head_len;
    int body_follows;           /* the body is streamed after head, from the client */
    int body_started;           /* streaming began: the request can no longer be sent again */
    int ssl;                    /* client connection is SSL: the daemon may send VAR_LOOKUP */
    int response_seen;          /* while streaming the body, a response frame is buffered: no more
                                   lookups are looked for until the relay reads it */
    apr_time_t sent_at;         /* when the request went to the daemon (the last attempt) */
    int upgrade;                /* a WebSocket upgrade the child can carry (REQUEST flag UPGRADE) */
} wsgi_req;

/*
 * wsgi_asgi.c: whether q's script is known to be an ASGI application (application-type=asgi, or its
 * responses said so), and noting what a response said (its HEAD frame's WSGI_HEAD_ASGI flag).
 */
int wsgi_asgi_known(const wsgi_req *q);
void wsgi_asgi_note(const wsgi_req *q, int asgi);

/*
 * wsgi_died.c: the daemon closed the connection in the middle of the request. Whether one of the group's
 * processes ended meanwhile, as the Apache parent recorded it (the ledger): "pid N was killed by signal 9
 * (SIGKILL)" and so on, or NULL when none did (within a short wait for the parent to notice).
 */
const char *wsgi_daemon_death(wsgi_req *q);

/*
 * wsgi_tunnel.c: whether r is a WebSocket upgrade the child can carry (HTTP/1.1 GET, Upgrade: websocket,
 * Connection: upgrade, Sec-WebSocket-Version 13 and a key, no body); and, once the daemon accepted it
 * (HEAD with WSGI_HEAD_UPGRADE, applied to r), the 101 to the client and the relay of both directions
 * until either side closes. Takes ownership of c; returns DONE (or an HTTP status if it could not start).
 */
int wsgi_tunnel_wanted(request_rec *r);
int wsgi_tunnel_run(wsgi_req *q, wsgi_conn *c);

/* translate_name: WSGIScriptAlias and WSGIScriptAliasMatch. */
int wsgi_translate_name(request_rec *r);

/* The content handler. */
int wsgi_handler(request_rec *r);

/*
 * wsgi_request.c: builds q->head from the request's variables (and reads a small body).
 * Returns OK or an HTTP status (client body errors).
 */
int wsgi_request_build(wsgi_req *q);

/* Streams the client body as BODY frames then BODY_END. OK, or an HTTP status after logging. */
int wsgi_request_stream_body(wsgi_req *q, wsgi_conn *c);

/*
 * wsgi_response.c: reads the daemon's answer on c and relays it. Takes ownership of c (released or
 * closed). Sets *retry when the daemon did not process the request (GOAWAY, or a connection closed
 * before any answer) and it may be sent again; otherwise returns what the handler returns.
 */
int wsgi_response_relay(wsgi_req *q, wsgi_conn *c, int *retry);

/*
 * wsgi_forward.c, for the hooks (wsgi_auth.c): the process group the handler would choose for r from
 * what is known before the handler runs (WSGIScriptAlias option, WSGIProcessGroup), and the expansion
 * of %{GLOBAL}, %{SERVER}, %{HOST}, %{RESOURCE}, %{ENV:name} in a group name.
 */
const char *wsgi_request_process_group(request_rec *r);
const char *wsgi_expand_group(request_rec *r, const char *s, int dflt_resource);

/*
 * wsgi_lookup.c: VAR_LOOKUP frames (mod_ssl.var_lookup() in the daemon), answered with ap_ssl_var_lookup().
 * wsgi_lookup_answer answers the one whose header is at the front of c's buffer (payload of `len` bytes
 * buffered) and consumes it: APR_SUCCESS, APR_EGENERAL when malformed (logged), or the write's error.
 */
apr_status_t wsgi_lookup_answer(request_rec *r, wsgi_conn *c, apr_size_t len);

/*
 * The SSL variables this group's applications looked up before, as `mod_ssl.var:NAME` variables to send
 * ahead with a request or hook (var_lookup(NAME) then needs no VAR_LOOKUP). Fills at most WSGI_LEARN_MAX
 * names and values; returns how many.
 */
int wsgi_lookup_prefetch(request_rec *r, wsgi_group *g, const char **names, const char **values);

/* As wsgi_conn_writev, but answering the lookups the daemon sends meanwhile (requests over SSL). */
apr_status_t wsgi_lookup_writev(wsgi_req *q, wsgi_conn *c, struct iovec *iov, int n);

/* As ap_get_brigade(APR_BLOCK_READ), but answering the daemon's lookups while the client sends nothing. */
apr_status_t wsgi_lookup_get_body(wsgi_req *q, wsgi_conn *c, apr_bucket_brigade *bb, apr_off_t max);

#endif /* WSGI_FORWARD_H */
