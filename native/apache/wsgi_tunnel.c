/*
 * WebSocket through the Apache child (docs/protocol.md, "WebSocket"). A WebSocket upgrade the child can
 * carry goes to the daemon as a REQUEST with the UPGRADE flag; when the ASGI application accepts, its
 * HEAD (status 101, flag UPGRADE) comes back and from then on the daemon connection carries the client's
 * raw bytes both ways. The framing is the daemon's (src/daemon/websocket/): this file only answers the
 * handshake (Sec-WebSocket-Accept is a hash of the client's key) and relays bytes:
 *
 *   client --(connection input filters: TLS)--> up buffer  --send()--> daemon
 *   client <--(connection output filters)------ recv() <------------- daemon
 *
 * both ways with poll() on the client's socket and the daemon connection, never blocking on either:
 * while the daemon does not take what the client sent, the client is not read (TCP pushes back on it);
 * while the client does not take what the daemon sent (the core output filter holds it), the daemon is
 * not read (its connection pushes back on the daemon, which stops reading the application's messages).
 * Apache's Timeout and mod_reqtimeout do not apply: a WebSocket may be idle for hours. The daemon finds
 * dead peers (pings) and ends idle ones (its options); the tunnel ends when either side closes.
 *
 * One worker thread is held per open WebSocket, as with mod_proxy_wstunnel (README, "WebSocket").
 */
#include "wsgi_forward.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_filter.h"
#include "apr_base64.h"
#include "apr_sha1.h"
#include "apr_strings.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

/* Client bytes read and not yet taken by the daemon, at most. */
#define TUNNEL_UP_BUF       65536
/* After the daemon closed: how long what it sent last may take to reach a slow client. */
#define TUNNEL_LINGER_MS    5000

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---------------------------------------------------------------------------------------------- */
/* Which requests are WebSocket upgrades we carry                                                 */

int wsgi_tunnel_wanted(request_rec *r)
{
    const char *v;
    char key[32];

    /* HTTP/1.1 only: an HTTP/2 stream (a secondary connection) has no socket of its own to relay. */
    if (r->main || r->connection->master || r->proto_num < HTTP_VERSION(1, 1) || r->method_number != M_GET)
        return 0;
    if (!(v = apr_table_get(r->headers_in, "Upgrade")) || !ap_find_token(r->pool, v, "websocket"))
        return 0;
    if (!(v = apr_table_get(r->headers_in, "Connection")) || !ap_find_token(r->pool, v, "upgrade"))
        return 0;
    if (!(v = apr_table_get(r->headers_in, "Sec-WebSocket-Version")) || strcmp(v, "13"))
        return 0;
    /* RFC 6455 4.2.1: a base64-encoded 16-byte value. */
    if (!(v = apr_table_get(r->headers_in, "Sec-WebSocket-Key")) || strlen(v) != 24 ||
        apr_base64_decode_len(v) > (int)sizeof(key) || apr_base64_decode(key, v) != 16)
        return 0;
    if (apr_table_get(r->headers_in, "Transfer-Encoding") ||
        ((v = apr_table_get(r->headers_in, "Content-Length")) && strcmp(v, "0")))
        return 0;
    return 1;
}

/* Sec-WebSocket-Accept: base64(SHA-1(key + the RFC's GUID)). */
static const char *accept_value(request_rec *r)
{
    const char *key = apr_table_get(r->headers_in, "Sec-WebSocket-Key");
    unsigned char digest[APR_SHA1_DIGESTSIZE];
    apr_sha1_ctx_t sha;
    char *out = apr_palloc(r->pool, apr_base64_encode_len(APR_SHA1_DIGESTSIZE));

    apr_sha1_init(&sha);
    apr_sha1_update(&sha, key, (unsigned int)strlen(key));
    apr_sha1_update(&sha, ws_guid, (unsigned int)strlen(ws_guid));
    apr_sha1_final(digest, &sha);
    apr_base64_encode(out, (const char *)digest, APR_SHA1_DIGESTSIZE);
    return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* The relay                                                                                      */

typedef struct {
    wsgi_req *q;
    request_rec *r;
    conn_rec *cc;
    wsgi_conn *c;
    int cfd;                        /* the client's socket, for poll() only */
    int ssl;                        /* TLS: its filter may hold client bytes the socket no longer shows */
    apr_bucket_brigade *bb;
    ap_filter_t *core_out;          /* the last output filter: called with NULL to write what it holds */
    unsigned char *up;              /* client -> daemon */
    apr_size_t up_pos, up_len;
    int client_eof;                 /* the client sent its last byte (or left) */
    int client_failed;              /* reading or writing the client failed: nothing more goes to it */
    int daemon_eof;
    int daemon_failed;
    int up_shut;                    /* our write side of the daemon connection is shut down */
    int out_pending;                /* the client's output filters hold data not yet written */
    apr_off_t up_bytes, down_bytes;
    /* Frames from the daemon to the client, followed only to know how the daemon ended: at a frame
     * boundary after a close frame (its close handshake), or not. Server frames are never masked. */
    unsigned char fh[10];
    int fh_have, fh_need;
    apr_uint64_t f_left;
    int close_seen;
} tunnel;

/* Follows n bytes the daemon sent to the client. */
static void track_frames(tunnel *t, const unsigned char *p, apr_size_t n)
{
    while (n) {
        if (t->f_left) {
            apr_size_t k = t->f_left < n ? (apr_size_t)t->f_left : n;
            t->f_left -= k;
            p += k;
            n -= k;
            continue;
        }
        t->fh[t->fh_have++] = *p++;
        n--;
        if (t->fh_have == 2) {
            unsigned len = t->fh[1] & 0x7f;
            t->fh_need = 2 + (len == 126 ? 2 : len == 127 ? 8 : 0);
        }
        if (t->fh_have >= 2 && t->fh_have == t->fh_need) {
            unsigned len = t->fh[1] & 0x7f;
            apr_uint64_t plen = len;
            int i;
            if (len == 126)
                plen = ((apr_uint64_t)t->fh[2] << 8) | t->fh[3];
            else if (len == 127)
                for (plen = 0, i = 2; i < 10; ++i)
                    plen = (plen << 8) | t->fh[i];
            t->close_seen = (t->fh[0] & 0x0f) == 0x08;
            t->f_left = plen;
            t->fh_have = 0;
        }
    }
}

static int at_frame_boundary(const tunnel *t)
{
    return t->fh_have == 0 && t->f_left == 0;
}

/* Writes what the output filters hold, without blocking; sets out_pending. APR_SUCCESS or the error. */
static apr_status_t flush_client(tunnel *t)
{
    apr_status_t rv = APR_SUCCESS;

    if (t->cc->data_in_output_filters)
        rv = t->core_out->frec->filter_func.out_func(t->core_out, NULL);
    t->out_pending = rv == APR_SUCCESS && t->cc->data_in_output_filters;
    return rv;
}

/* Passes n bytes to the client (the filters set aside what the socket does not take now). */
static apr_status_t to_client(tunnel *t, const unsigned char *p, apr_size_t n)
{
    apr_status_t rv;

    track_frames(t, p, n);
    APR_BRIGADE_INSERT_TAIL(t->bb, apr_bucket_transient_create((const char *)p, n, t->cc->bucket_alloc));
    rv = ap_pass_brigade(t->cc->output_filters, t->bb);
    apr_brigade_cleanup(t->bb);
    if (rv == APR_SUCCESS)
        rv = flush_client(t);
    t->down_bytes += (apr_off_t)n;
    return rv;
}

/* Reads what the daemon has sent (once), and passes it on. */
static void from_daemon(tunnel *t)
{
    wsgi_conn *c = t->c;
    ssize_t n;

    do {
        n = recv(c->fd, c->buf, sizeof(c->buf), MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
        t->daemon_eof = 1;
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            t->daemon_eof = t->daemon_failed = 1;
            if (errno != ECONNRESET)
                ap_log_rerror(APLOG_MARK, APLOG_ERR, APR_FROM_OS_ERROR(errno), t->r, WSGILOGNO(01803)
                              "Error reading the WebSocket of daemon process '%s'", t->q->group->name);
        }
        return;
    }
    if (to_client(t, c->buf, (apr_size_t)n) != APR_SUCCESS)
        t->client_failed = 1;
}

/* Sends what the client sent to the daemon, as much as it takes now. */
static void to_daemon(tunnel *t)
{
    while (t->up_pos < t->up_len) {
        ssize_t n = send(t->c->fd, t->up + t->up_pos, t->up_len - t->up_pos, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                /* The daemon closed its end: what it still sent is read until its end of file. */
                t->up_pos = t->up_len = 0;
                t->client_eof = 1;
            }
            return;
        }
        t->up_pos += (apr_size_t)n;
        t->up_bytes += n;
    }
    t->up_pos = t->up_len = 0;
}

/* Reads what the client has sent, until nothing more comes now (0) or the buffer is full (1: the filters
 * may hold more that poll() cannot see). */
static int from_client(tunnel *t)
{
    while (!t->client_eof && t->up_len < TUNNEL_UP_BUF) {
        apr_size_t room = TUNNEL_UP_BUF - t->up_len, got = room;
        apr_status_t rv = ap_get_brigade(t->cc->input_filters, t->bb, AP_MODE_READBYTES, APR_NONBLOCK_READ,
                                         (apr_off_t)room);
        if (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(t->bb))
            return 0;  /* nothing now (a first end of file shows as this; the next read says EOF) */
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(t->bb);
            if (APR_STATUS_IS_EAGAIN(rv))
                return 0;
            t->client_eof = 1;
            if (!APR_STATUS_IS_EOF(rv)) {
                t->client_failed = 1;
                ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, t->r, WSGILOGNO(01802)
                              "WebSocket client connection failed; closing its tunnel to daemon process '%s'",
                              t->q->group->name);
            }
            return 0;
        }
        if (APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(t->bb)))
            t->client_eof = 1;
        rv = apr_brigade_flatten(t->bb, (char *)t->up + t->up_len, &got);
        apr_brigade_cleanup(t->bb);
        if (rv != APR_SUCCESS) {
            t->client_eof = t->client_failed = 1;
            return 0;
        }
        t->up_len += got;
        /* Plain TCP: less than asked for means the core found the socket empty (it reads greedily). */
        if (!t->ssl && got < room)
            return 0;
    }
    return !t->client_eof;
}

/* Client to daemon, as far as both let it go now. */
static void pump_up(tunnel *t)
{
    while (from_client(t)) {
        to_daemon(t);
        if (t->up_len)
            return;     /* the daemon is full: POLLOUT, then more */
    }
    to_daemon(t);
}

/* The daemon went away without its close handshake while the client was still there: a crash, a kill,
 * or a bug. At a frame boundary the client still gets a close frame, 1011 (internal error). */
static void daemon_lost(tunnel *t)
{
    static const unsigned char close_1011[] = { 0x88, 0x02, 0x03, 0xf3 };

    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, t->r, WSGILOGNO(01801)
                  "Daemon process '%s' closed an open WebSocket without a close frame (it crashed, was "
                  "killed, or failed: see its log lines); closing the client connection%s",
                  t->q->group->name, at_frame_boundary(t) ? " with 1011" : "");
    if (at_frame_boundary(t) && !t->client_failed && to_client(t, close_1011, sizeof(close_1011)) != APR_SUCCESS)
        t->client_failed = 1;
}

static void run(tunnel *t)
{
    apr_time_t linger_until = 0;

    /* What came before the tunnel: the daemon's first frames may follow its HEAD in the buffer, and the
     * client's first frames may be read already (poll() would not tell of either). */
    if (wsgi_conn_avail(t->c)) {
        unsigned char *p = t->c->buf + t->c->rpos;
        apr_size_t n = wsgi_conn_avail(t->c);
        t->c->rpos = t->c->rlen = 0;
        if (to_client(t, p, n) != APR_SUCCESS)
            t->client_failed = 1;
    }
    pump_up(t);

    for (;;) {
        struct pollfd pfd[2];
        int rc, timeout = -1;

        if (t->client_failed || (t->daemon_eof && !t->out_pending))
            break;
        if (t->client_eof && !t->up_len && !t->up_shut) {
            /* The client is done sending: so are we; the daemon ends the WebSocket when it reads our EOF. */
            shutdown(t->c->fd, SHUT_WR);
            t->up_shut = 1;
        }
        pfd[0].events = (short)((!t->client_eof && !t->up_len ? POLLIN : 0) |
                                (t->out_pending ? POLLOUT : 0));
        pfd[1].events = (short)((!t->daemon_eof && !t->out_pending ? POLLIN : 0) | (t->up_len ? POLLOUT : 0));
        /* A side with nothing to wait for is left out: its hang-up would wake poll() again and again. */
        pfd[0].fd = pfd[0].events ? t->cfd : -1;
        pfd[1].fd = pfd[1].events ? t->c->fd : -1;
        if (t->daemon_eof) {
            /* Only what the daemon sent last is still going out: not for ever. */
            apr_time_t now = apr_time_now();
            if (!linger_until)
                linger_until = now + apr_time_from_msec(TUNNEL_LINGER_MS);
            if (now >= linger_until)
                break;
            timeout = (int)apr_time_as_msec(linger_until - now) + 1;
        }
        pfd[0].revents = pfd[1].revents = 0;
        rc = poll(pfd, 2, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            ap_log_rerror(APLOG_MARK, APLOG_ERR, APR_FROM_OS_ERROR(errno), t->r, WSGILOGNO(01804)
                          "poll() failed in the WebSocket tunnel to daemon process '%s'", t->q->group->name);
            break;
        }
        if (pfd[0].revents & POLLOUT || (t->out_pending && pfd[0].revents & (POLLERR | POLLHUP))) {
            if (flush_client(t) != APR_SUCCESS) {
                t->client_failed = 1;
                break;
            }
        }
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR) && !t->daemon_eof && !t->out_pending)
            from_daemon(t);
        if (pfd[1].revents & (POLLOUT | POLLERR | POLLHUP) && t->up_len) {
            to_daemon(t);
            if (!t->up_len)
                pump_up(t);       /* the filters (TLS) may hold client bytes poll() cannot see */
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR) && !t->client_eof && !t->up_len)
            pump_up(t);
        if (t->daemon_eof && !t->client_eof && !t->client_failed &&
            (t->daemon_failed || !t->close_seen || !at_frame_boundary(t))) {
            daemon_lost(t);
            t->client_eof = 1;   /* nothing more to say to the daemon; only the close frame goes out */
        }
    }
}

int wsgi_tunnel_run(wsgi_req *q, wsgi_conn *c)
{
    request_rec *r = q->r;
    conn_rec *cc = r->connection;
    apr_socket_t *csd = ap_get_conn_socket(cc);
    apr_os_sock_t cfd = -1;
    ap_filter_t *f;
    tunnel t;

    memset(&t, 0, sizeof(t));
    t.q = q;
    t.r = r;
    t.cc = cc;
    t.c = c;
    if (!csd || apr_os_sock_get(&cfd, csd) != APR_SUCCESS || cfd < 0 ||
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01805)
                      "Unable to set up the WebSocket tunnel to daemon process '%s'", q->group->name);
        wsgi_conn_close(c);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    t.cfd = cfd;
    t.ssl = ap_ssl_conn_is_ssl(cc);

    /* The handshake's answer: the application's headers (apply_head), ours over them. */
    apr_table_setn(r->headers_out, "Upgrade", "websocket");
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    apr_table_setn(r->headers_out, "Sec-WebSocket-Accept", accept_value(r));
    apr_table_unset(r->headers_out, "Content-Length");
    apr_table_unset(r->headers_out, "Transfer-Encoding");

    /* From here on the connection carries WebSocket frames, not HTTP: only the connection's filters
     * (TLS, the core), no coalescing of small writes, no mod_reqtimeout, never kept alive. */
    ap_remove_output_filter_byhandle(cc->output_filters, "SSL/TLS Coalescing Filter");
    ap_remove_input_filter_byhandle(cc->input_filters, "reqtimeout");
    r->input_filters = r->proto_input_filters = cc->input_filters;
    r->output_filters = r->proto_output_filters = cc->output_filters;
    cc->keepalive = AP_CONN_CLOSE;

    r->status = HTTP_SWITCHING_PROTOCOLS;
    ap_send_interim_response(r, 1);
    if (cc->aborted) {
        wsgi_conn_close(c);
        return DONE;
    }
    apr_socket_opt_set(csd, APR_SO_NONBLOCK, 1);
    for (f = cc->output_filters; f->next; f = f->next)
        ;
    t.core_out = f;
    t.bb = apr_brigade_create(r->pool, cc->bucket_alloc);
    t.up = apr_palloc(r->pool, TUNNEL_UP_BUF);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, WSGILOGNO(01800)
                  "WebSocket accepted by daemon process '%s': relaying", q->group->name);

    run(&t);

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, WSGILOGNO(01806)
                  "WebSocket to daemon process '%s' closed (%" APR_OFF_T_FMT " bytes from the client, %"
                  APR_OFF_T_FMT " to it)", q->group->name, t.up_bytes, t.down_bytes);
    wsgi_conn_close(c);
    return DONE;
}
