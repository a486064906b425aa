/*
 * The response side of forwarding: HEAD, then BODY/FILE frames, then END — or a single ERROR, or
 * GOAWAY — read from the daemon connection and passed down Apache's output filters (so mod_deflate and
 * the rest apply). VAR_LOOKUP frames may come among them (mod_ssl.var_lookup() over SSL): each is
 * answered on the spot (wsgi_lookup.c).
 *
 * Body bytes go down as transient buckets that point into the connection's read buffer: no copy when
 * the core output filter writes them at once (filters that keep them copy them). So the brigade is
 * always passed before the buffer is refilled. A FLUSH is added only when the daemon has nothing more
 * to read right now: a streamed response reaches the client piece by piece, a bulk one is not flushed
 * per frame.
 */
#include "wsgi_forward.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_date.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include <sys/stat.h>
#include <unistd.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

/* A HEAD frame may exceed header-buffer-size (a limit per header line) by this much in all. */
#define WSGI_HEAD_EXTRA (1024 * 1024)

typedef struct {
    wsgi_req *q;
    request_rec *r;
    wsgi_conn *c;
    apr_bucket_brigade *bb;
    int sent;                   /* something went down the filters: the headers are out */
    int unflushed;              /* data went down without a FLUSH */
    int discard;                /* reading to END only to reuse the connection */
} relay;

enum { NEED_OK, NEED_CLIENT_GONE, NEED_DAEMON_ERROR };

/* Passes what is pending; with a FLUSH when asked. Returns the filters' status. */
static apr_status_t pass_pending(relay *x, int flush)
{
    apr_status_t rv;

    if (flush)
        APR_BRIGADE_INSERT_TAIL(x->bb, apr_bucket_flush_create(x->r->connection->bucket_alloc));
    rv = ap_pass_brigade(x->r->output_filters, x->bb);
    apr_brigade_cleanup(x->bb);
    x->sent = 1;
    x->unflushed = !flush;
    return rv;
}

/* Makes n bytes of the daemon's output available in the buffer (passing pending buckets first). */
static int need(relay *x, apr_size_t n, apr_status_t *rv)
{
    if (wsgi_conn_avail(x->c) >= n)
        return NEED_OK;
    if (!APR_BRIGADE_EMPTY(x->bb) || x->unflushed) {
        if (pass_pending(x, !wsgi_conn_readable(x->c)) != APR_SUCCESS || x->r->connection->aborted)
            return NEED_CLIENT_GONE;
    }
    *rv = wsgi_conn_fill(x->c, n);
    return *rv == APR_SUCCESS ? NEED_OK : NEED_DAEMON_ERROR;
}

/* Ends the client response so that the client can tell it is incomplete (as mod_proxy does). */
static int abort_client(relay *x)
{
    conn_rec *cc = x->r->connection;

    x->r->no_cache = 1;
    /* What the application produced goes out first, with its headers: the client sees the start of
     * the response, then no proper end (no last chunk, or fewer bytes than Content-Length). The
     * connection is closed only afterwards so that the headers still choose chunked encoding. */
    if (!x->sent || !APR_BRIGADE_EMPTY(x->bb)) {
        if (pass_pending(x, 1) != APR_SUCCESS || cc->aborted) {
            apr_brigade_cleanup(x->bb);
            return OK;
        }
    }
    APR_BRIGADE_INSERT_TAIL(x->bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, x->r->pool,
                                                          cc->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(x->bb, apr_bucket_eos_create(cc->bucket_alloc));
    pass_pending(x, 0);
    cc->keepalive = AP_CONN_CLOSE;
    return OK;
}

static int client_gone(relay *x)
{
    wsgi_conn_close(x->c);
    x->c = NULL;
    apr_brigade_cleanup(x->bb);
    return x->r->connection->aborted ? OK : AP_FILTER_ERROR;
}

/*
 * The daemon side failed: before any output, an error status; after, an aborted response. Body
 * buckets still pending point into the connection's buffer: they go down the filters (or are dropped)
 * before the connection, buffer and all, is freed, never after (that would send freed memory).
 */
static int daemon_failed(relay *x, int status)
{
    int rc = status;

    if (!x->discard && x->sent) {
        rc = abort_client(x);
    }
    else {
        apr_brigade_cleanup(x->bb);
        if (!x->discard)
            x->r->status_line = NULL;
    }
    wsgi_conn_close(x->c);
    x->c = NULL;
    return rc;
}

static int malformed(relay *x, const char *what)
{
    wsgi_rlog(APLOG_ERR, 0, x->r, WSGILOGNO(01220)
                  "Malformed response from daemon process '%s': %s; connection dropped",
                  x->q->group->name, what);
    return daemon_failed(x, HTTP_BAD_GATEWAY);
}

/* A HEAD frame over the configured size, or with a header line over header-buffer-size: mod_wsgi's
 * well-known words, then `detail`. */
static int oversized_head(relay *x, const char *detail)
{
    wsgi_rlog(APLOG_ERR, 0, x->r, WSGILOGNO(01229)
                  "Truncated or oversized response headers received from daemon process '%s': %s%s",
                  x->q->group->name, x->r->filename, detail);
    apr_table_clear(x->r->headers_out);
    apr_table_clear(x->r->err_headers_out);
    return daemon_failed(x, HTTP_INTERNAL_SERVER_ERROR);
}

/* The client hung up while we waited for the daemon (wsgi_conn.c): the request is abandoned (the
 * daemon sees its connection close) and nothing more is sent to the client. */
static int client_left(relay *x)
{
    wsgi_rlog(APLOG_INFO, 0, x->r, WSGILOGNO(01500)
                  "Client closed the connection while daemon process '%s' was preparing the "
                  "response; request abandoned", x->q->group->name);
    x->r->connection->aborted = 1;
    return client_gone(x);
}

static int read_failed(relay *x, apr_status_t rv)
{
    const char *death;

    if (rv == APR_ECONNABORTED)
        return client_left(x);
    if (APR_STATUS_IS_TIMEUP(rv)) {
        wsgi_rlog(APLOG_ERR, rv, x->r, WSGILOGNO(01221)
                      "Timeout when reading response from daemon process '%s' (socket-timeout %d s): %s",
                      x->q->group->name, (int)apr_time_sec(x->q->group->socket_timeout_us), x->r->filename);
        return daemon_failed(x, HTTP_GATEWAY_TIME_OUT);
    }
    /* Mid-response: what the parent knows about the process that served it. */
    death = wsgi_daemon_death(x->q);
    wsgi_rlog(APLOG_ERR, rv == APR_EOF ? 0 : rv, x->r, WSGILOGNO(01702)
                  "Daemon process '%s' closed the connection before the response was complete: %s: %s",
                  x->q->group->name, death ? death : "none of its processes ended meanwhile", x->r->filename);
    return daemon_failed(x, HTTP_BAD_GATEWAY);
}

/* A VAR_LOOKUP frame: answered, then the relay goes on (-1); anything else is what the handler returns. */
static int relay_lookup(relay *x, apr_uint32_t len)
{
    apr_status_t rv = APR_SUCCESS;
    int rc;

    if (len < 5 || len > WSGI_LIMIT_VAR_LOOKUP)
        return malformed(x, "VAR_LOOKUP frame of invalid length");
    if ((rc = need(x, WSGI_WIRE_HEADER_SIZE + len, &rv)) != NEED_OK)
        return rc == NEED_CLIENT_GONE ? client_gone(x) : read_failed(x, rv);
    rv = wsgi_lookup_answer(x->r, x->c, len);
    if (rv == APR_EGENERAL)
        return daemon_failed(x, HTTP_BAD_GATEWAY);   /* logged by wsgi_lookup_answer */
    if (rv != APR_SUCCESS) {
        wsgi_rlog(APLOG_ERR, rv, x->r, WSGILOGNO(01302)
                      "Unable to send a variable to daemon process '%s'", x->q->group->name);
        return daemon_failed(x, APR_STATUS_IS_TIMEUP(rv) ? HTTP_GATEWAY_TIME_OUT : HTTP_BAD_GATEWAY);
    }
    return -1;
}

/* A FILE frame: `count` bytes at `offset` of the descriptor that came with it, as a file bucket. */
static int add_file(relay *x, apr_uint64_t offset, apr_uint64_t count)
{
    request_rec *r = x->r;
    apr_file_t *tmp, *f;
    struct stat sb;
    apr_uint64_t avail;
    apr_status_t rv;
    int fd = wsgi_conn_take_fd(x->c);

    if (fd < 0)
        return 0;
    if (x->discard) {
        close(fd);
        return 1;
    }
    /* Never more than the file holds: a count past its end would only make buckets for nothing
     * (apr_brigade_insert_file makes one per GiB, so a count near 2^64 would never end). */
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return 0;
    }
    avail = (apr_uint64_t)sb.st_size > offset ? (apr_uint64_t)sb.st_size - offset : 0;
    if (count == WSGI_FILE_TO_EOF || count > avail)
        count = avail;
    /* apr_file_dup gives the file APR's own cleanup, so that the core output filter can set it
     * aside beyond this request (write completion) and it is still closed exactly once. */
    apr_os_file_put(&tmp, &fd, APR_FOPEN_READ | (x->q->enable_sendfile ? APR_FOPEN_SENDFILE_ENABLED : 0),
                    r->pool);
    f = NULL;
    rv = apr_file_dup(&f, tmp, r->pool);
    close(fd);
    if (rv != APR_SUCCESS)
        return 0;
    if (count)
        apr_brigade_insert_file(x->bb, f, (apr_off_t)offset, (apr_off_t)count, r->pool);
    return 1;
}

/* BODY/FILE frames up to END; returns what the handler returns. */
static int relay_body(relay *x)
{
    conn_rec *cc = x->r->connection;
    apr_status_t rv = APR_SUCCESS;
    wsgi_frame_header h;
    apr_uint32_t outcome;
    int rc;

    for (;;) {
        if ((rc = need(x, WSGI_WIRE_HEADER_SIZE, &rv)) != NEED_OK)
            return rc == NEED_CLIENT_GONE ? client_gone(x) : read_failed(x, rv);
        wsgi_frame_header_unpack(x->c->buf + x->c->rpos, &h);
        if (h.version != WSGI_WIRE_VERSION)
            return malformed(x, "unknown protocol version (stale daemon?)");

        if (h.type == WSGI_FRAME_RBODY) {
            apr_size_t remaining = h.length;
            if (h.length == 0 || h.length > WSGI_LIMIT_RBODY)
                return malformed(x, "BODY frame of invalid length");
            x->c->rpos += WSGI_WIRE_HEADER_SIZE;
            while (remaining) {
                apr_size_t take;
                if ((rc = need(x, 1, &rv)) != NEED_OK)
                    return rc == NEED_CLIENT_GONE ? client_gone(x) : read_failed(x, rv);
                take = wsgi_conn_avail(x->c) < remaining ? wsgi_conn_avail(x->c) : remaining;
                if (!x->discard)
                    APR_BRIGADE_INSERT_TAIL(x->bb, apr_bucket_transient_create(
                        (const char *)x->c->buf + x->c->rpos, take, cc->bucket_alloc));
                x->c->rpos += take;
                remaining -= take;
            }
        }
        else if (h.type == WSGI_FRAME_FILE) {
            apr_uint64_t offset, count;
            if (h.length != WSGI_LIMIT_FILE)
                return malformed(x, "FILE frame of invalid length");
            if ((rc = need(x, WSGI_WIRE_HEADER_SIZE + WSGI_LIMIT_FILE, &rv)) != NEED_OK)
                return rc == NEED_CLIENT_GONE ? client_gone(x) : read_failed(x, rv);
            offset = wsgi_get_u64(x->c->buf + x->c->rpos + WSGI_WIRE_HEADER_SIZE);
            count = wsgi_get_u64(x->c->buf + x->c->rpos + WSGI_WIRE_HEADER_SIZE + 8);
            x->c->rpos += WSGI_WIRE_HEADER_SIZE + WSGI_LIMIT_FILE;
            if (!add_file(x, offset, count))
                return malformed(x, "FILE frame without a usable file descriptor");
        }
        else if (h.type == WSGI_FRAME_VAR_LOOKUP) {
            if ((rc = relay_lookup(x, h.length)) != -1)
                return rc;
        }
        else if (h.type == WSGI_FRAME_END) {
            if (h.length != WSGI_LIMIT_END)
                return malformed(x, "END frame of invalid length");
            if ((rc = need(x, WSGI_WIRE_HEADER_SIZE + WSGI_LIMIT_END, &rv)) != NEED_OK)
                return rc == NEED_CLIENT_GONE ? client_gone(x) : read_failed(x, rv);
            outcome = wsgi_get_u32(x->c->buf + x->c->rpos + WSGI_WIRE_HEADER_SIZE);
            x->c->rpos += WSGI_WIRE_HEADER_SIZE + WSGI_LIMIT_END;
            if (outcome > WSGI_END_INCOMPLETE)
                return malformed(x, "END frame with an unknown outcome");
            break;
        }
        else {
            return malformed(x, apr_psprintf(x->r->pool, "frame type 0x%02x not allowed in a "
                                             "response body", h.type));
        }
    }

    if (x->discard) {
        wsgi_conn_release(x->c);
        x->c = NULL;
        return OK;
    }
    if (outcome == WSGI_END_INCOMPLETE) {
        wsgi_rlog(APLOG_INFO, 0, x->r, WSGILOGNO(01223)
                      "Response from daemon process '%s' is incomplete (the application failed "
                      "after starting it); aborting the client connection", x->q->group->name);
        abort_client(x);
    }
    else {
        /* EOS then FLUSH: the response reaches the client before the handler returns, so that when
         * Apache then looks for a pipelined request the client has often sent its next one already,
         * and the worker serves it at once instead of handing the connection back to the listener
         * (two epoll_ctl, a wake-up and a thread switch per request). As mod_wsgi does. */
        APR_BRIGADE_INSERT_TAIL(x->bb, apr_bucket_eos_create(cc->bucket_alloc));
        if (pass_pending(x, 1) != APR_SUCCESS)
            return client_gone(x);
    }
    wsgi_conn_release(x->c);
    x->c = NULL;
    return OK;
}

static int token_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

enum { HEAD_MALFORMED = 0, HEAD_OK = 1, HEAD_OVERSIZED = 2 };

/*
 * Applies a HEAD payload to r: HEAD_OK, HEAD_MALFORMED (the caller drops the connection), or
 * HEAD_OVERSIZED when a header line ("Name: value" and its CRLF) does not fit header-buffer-size —
 * mod_wsgi's limit is per header line, the buffer each line of the daemon's answer is read into.
 */
static int apply_head(relay *x, const unsigned char *p, apr_size_t len)
{
    request_rec *r = x->r;
    wsgi_reader rd;
    const char *line, *name, *value;
    uint32_t status, line_len, count, name_len, value_len, i, k;

    wsgi_reader_init(&rd, p, len);
    status = wsgi_read_u32(&rd);
    wsgi_read_string(&rd, &line, &line_len);
    count = wsgi_read_u32(&rd);
    if (!rd.ok || status < 100 || status > 999)
        return HEAD_MALFORMED;
    for (i = 0; i < count; ++i) {
        char *n, *v;
        wsgi_read_string(&rd, &name, &name_len);
        wsgi_read_string(&rd, &value, &value_len);
        if (!rd.ok || !name_len)
            return HEAD_MALFORMED;
        for (k = 0; k < name_len; ++k) {
            if (!token_char((unsigned char)name[k]))
                return HEAD_MALFORMED;
        }
        /* A CR or LF in a value would let an application forge headers or responses. */
        if (memchr(value, '\r', value_len) || memchr(value, '\n', value_len) ||
            memchr(value, '\0', value_len))
            return HEAD_MALFORMED;
        if ((apr_size_t)name_len + value_len + 4 > (apr_size_t)x->q->group->header_buffer_size)
            return HEAD_OVERSIZED;
        n = apr_pstrmemdup(r->pool, name, name_len);
        v = apr_pstrmemdup(r->pool, value, value_len);
        if (!strcasecmp(n, "Content-Type")) {
            ap_content_type_tolower(v);
            ap_set_content_type(r, v);
        }
        else if (!strcasecmp(n, "Last-Modified")) {
            /* As mod_cgi/mod_wsgi: Apache keeps the value sane (never in the future). */
            ap_update_mtime(r, apr_date_parse_http(v));
            ap_set_last_modified(r);
        }
        else if (!strcasecmp(n, "WWW-Authenticate")) {
            apr_table_addn(r->err_headers_out, n, v);
        }
        else if (!strcasecmp(n, "Transfer-Encoding") || !strcasecmp(n, "Connection") ||
                 !strcasecmp(n, "Keep-Alive")) {
            /* Hop-by-hop headers are Apache's to set (PEP 3333). */
            continue;
        }
        else {
            apr_table_addn(r->headers_out, n, v);
        }
    }
    if (rd.left)
        return HEAD_MALFORMED;
    r->status = (int)status;
    r->status_line = line_len ? apr_pstrmemdup(r->pool, line, line_len) : NULL;
    return HEAD_OK;
}

/* Reads the whole HEAD payload (length len, header still unconsumed) and applies it. */
static int read_head(relay *x, apr_size_t len, apr_status_t *rv)
{
    wsgi_conn *c = x->c;
    unsigned char *p;
    apr_size_t have, got;

    if (WSGI_WIRE_HEADER_SIZE + len <= sizeof(c->buf)) {
        if ((*rv = wsgi_conn_fill(c, WSGI_WIRE_HEADER_SIZE + len)) != APR_SUCCESS)
            return -1;
        p = c->buf + c->rpos + WSGI_WIRE_HEADER_SIZE;
        c->rpos += WSGI_WIRE_HEADER_SIZE + len;
        return apply_head(x, p, len);
    }
    /* Larger than the buffer (header-buffer-size above 64 KiB): read into the request pool. */
    p = apr_palloc(x->r->pool, len);
    c->rpos += WSGI_WIRE_HEADER_SIZE;
    have = wsgi_conn_avail(c) < len ? wsgi_conn_avail(c) : len;
    memcpy(p, c->buf + c->rpos, have);
    c->rpos += have;
    while (have < len) {
        if ((*rv = wsgi_conn_read_into(c, p + have, len - have, &got)) != APR_SUCCESS)
            return -1;
        have += got;
    }
    return apply_head(x, p, len);
}

static int read_error_frame(relay *x, apr_size_t len, apr_uint16_t flags)
{
    wsgi_reader rd;
    const char *msg;
    uint32_t status, msg_len;
    apr_status_t rv;

    if (len < 8 || len > WSGI_LIMIT_ERROR)
        return malformed(x, "ERROR frame of invalid length");
    if ((rv = wsgi_conn_fill(x->c, WSGI_WIRE_HEADER_SIZE + len)) != APR_SUCCESS)
        return read_failed(x, rv);
    wsgi_reader_init(&rd, x->c->buf + x->c->rpos + WSGI_WIRE_HEADER_SIZE, len);
    status = wsgi_read_u32(&rd);
    wsgi_read_string(&rd, &msg, &msg_len);
    if (!rd.ok || rd.left)
        return malformed(x, "ERROR frame payload");
    /* The daemon logged the cause already, naming the request (WSGI_ERROR_F_LOGGED): one line at error
     * per failure, this one at info. */
    wsgi_rlog((flags & WSGI_ERROR_F_LOGGED) ? APLOG_INFO : APLOG_ERR, 0, x->r, WSGILOGNO(01224)
                  "Daemon process '%s' failed the request with status %u: %.*s",
                  x->q->group->name, status, (int)msg_len, msg);
    x->c->rpos += WSGI_WIRE_HEADER_SIZE + len;
    wsgi_conn_release(x->c);
    x->c = NULL;
    return status >= 400 && status <= 599 ? (int)status : HTTP_INTERNAL_SERVER_ERROR;
}

int wsgi_response_relay(wsgi_req *q, wsgi_conn *c, int *retry)
{
    request_rec *r = q->r;
    relay x;
    wsgi_frame_header h;
    apr_status_t rv;
    const char *location;
    int status, looked_up = 0;

    memset(&x, 0, sizeof(x));
    x.q = q;
    x.r = r;
    x.c = c;
    x.bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    *retry = 0;
    if (!r->connection->master) {
        /* While it waits for the daemon, the relay also watches the client's socket for its hang-up.
         * Not for a stream of an HTTP/2 connection (a secondary connection, whose socket is not the
         * client's): mod_http2 tells of a reset stream when the response is written. */
        apr_socket_t *csd = ap_get_conn_socket(r->connection);
        apr_os_sock_t cfd;
        c->client_fd = csd && apr_os_sock_get(&cfd, csd) == APR_SUCCESS ? cfd : -1;
    }

next_frame:
    if ((rv = wsgi_conn_fill(c, WSGI_WIRE_HEADER_SIZE)) != APR_SUCCESS) {
        if (rv == APR_ECONNABORTED)
            return client_left(&x);
        /* Nothing at all came back. A reset means the daemon closed with our request unread (a
         * pooled connection it closed as we took it, or a connection left in the backlog of a
         * listener closed during a graceful restart): it did not process it. A clean end of file
         * means it read the request and then died: sending it again could run it twice. */
        if (!wsgi_conn_avail(c) && !q->body_started && !looked_up && APR_STATUS_IS_ECONNRESET(rv)) {
            wsgi_conn_close(c);
            *retry = 1;
            return OK;
        }
        if (APR_STATUS_IS_TIMEUP(rv)) {
            wsgi_rlog(APLOG_ERR, rv, r, WSGILOGNO(01225)
                          "Timeout when reading response headers from daemon process '%s' (socket-timeout "
                          "%d s): %s", q->group->name, (int)apr_time_sec(q->group->socket_timeout_us),
                          r->filename);
            return daemon_failed(&x, HTTP_GATEWAY_TIME_OUT);
        }
        /* It read the request and the connection ended: as mod_wsgi 6, a 502, and what the parent knows
         * of the process (it died: which signal), instead of "truncated or oversized headers". */
        {
            const char *death = wsgi_daemon_death(q);
            wsgi_rlog(APLOG_ERR, rv == APR_EOF ? 0 : rv, r, WSGILOGNO(01701)
                          "Daemon process '%s' closed connection before sending complete response headers: "
                          "%s: %s", q->group->name, death ? death : "none of its processes ended meanwhile",
                          r->filename);
        }
        return daemon_failed(&x, HTTP_BAD_GATEWAY);
    }

    wsgi_frame_header_unpack(c->buf + c->rpos, &h);
    if (h.version != WSGI_WIRE_VERSION)
        return malformed(&x, "unknown protocol version (stale daemon?)");

    switch (h.type) {
    case WSGI_FRAME_VAR_LOOKUP:
        /* The application runs and asks for a variable before its response begins. */
        if ((status = relay_lookup(&x, h.length)) != -1)
            return status;
        looked_up = 1;
        goto next_frame;

    case WSGI_FRAME_GOAWAY:
        wsgi_conn_close(c);
        if (h.length != 0) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01227)
                          "Malformed response from daemon process '%s': GOAWAY with a payload",
                          q->group->name);
            return HTTP_BAD_GATEWAY;
        }
        if (!q->body_started) {
            *retry = 1;
            return OK;
        }
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01228)
                      "Daemon process '%s' went away without processing the request, whose body "
                      "was already sent and cannot be sent again", q->group->name);
        return HTTP_SERVICE_UNAVAILABLE;

    case WSGI_FRAME_ERROR:
        return read_error_frame(&x, h.length, h.flags);

    case WSGI_FRAME_HEAD:
        /* Lines are limited one by one (apply_head); the whole head by this bound on memory. */
        if (h.length > (apr_uint32_t)q->group->header_buffer_size + WSGI_HEAD_EXTRA)
            return oversized_head(&x, "");
        wsgi_asgi_note(q, (h.flags & WSGI_HEAD_ASGI) != 0);
        status = read_head(&x, h.length, &rv);
        if (status < 0)
            return read_failed(&x, rv);
        if (status == HEAD_OVERSIZED)
            return oversized_head(&x, apr_psprintf(r->pool, " (a header line is longer than "
                                                   "header-buffer-size, %d bytes)",
                                                   q->group->header_buffer_size));
        if (status == HEAD_MALFORMED)
            return malformed(&x, "invalid HEAD frame (status, header name or value)");
        /* 101 only as the accept of a WebSocket upgrade we asked for: then the connection is a tunnel. */
        if ((h.flags & WSGI_HEAD_UPGRADE) || r->status == HTTP_SWITCHING_PROTOCOLS) {
            if (!(h.flags & WSGI_HEAD_UPGRADE) || r->status != HTTP_SWITCHING_PROTOCOLS || !q->upgrade)
                return malformed(&x, "a 101 response, or a WebSocket accept, to a request that is not a "
                                 "WebSocket upgrade");
            x.c = NULL;
            return wsgi_tunnel_run(q, c);
        }
        break;

    default:
        return malformed(&x, apr_psprintf(r->pool, "frame type 0x%02x where a response was "
                                          "expected", h.type));
    }

    /* As mod_cgi and mod_wsgi: a local Location with status 200 is an internal redirect. */
    location = apr_table_get(r->headers_out, "Location");
    if (location && location[0] == '/' && r->status == HTTP_OK) {
        x.discard = 1;
        if ((status = relay_body(&x)) != OK)
            return status;
        r->method = "GET";
        r->method_number = M_GET;
        apr_table_unset(r->headers_in, "Content-Length");
        ap_internal_redirect_handler(location, r);
        return OK;
    }

    /* WSGIErrorOverride: Apache's own error page (ErrorDocument) instead of the application's. */
    if (q->error_override && ap_is_HTTP_ERROR(r->status)) {
        status = r->status;
        x.discard = 1;
        relay_body(&x);
        r->status = HTTP_OK;
        r->status_line = NULL;
        return status;
    }

    return relay_body(&x);
}
