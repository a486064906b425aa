/*
 * VAR_LOOKUP frames (docs/protocol.md, "Variable lookups"): mod_ssl.var_lookup(name) in a daemon asks
 * the Apache child, which answers with ap_ssl_var_lookup() for the request and its connection.
 *
 * A lookup may come at any time while a hook or a request over SSL runs: before the response, among
 * its frames (wsgi_response.c answers those), and while the child is still streaming the request body
 * to the daemon. In that last case the child must not sit in a blocking write or a blocking client read
 * while the application waits on its answer, so requests over SSL stream their body through the two
 * functions below: they poll the daemon connection for reading as well, and answer every VAR_LOOKUP at
 * the front of what it sent until the first response frame (left buffered for the relay). The daemon,
 * for its part, keeps reading the connection while it waits for an answer, so that neither side ever
 * waits on the other. Requests over plain HTTP never get a lookup and take none of these paths.
 *
 * A round trip per lookup costs more than mod_ssl's answer, so the names asked for are remembered per
 * group (a few, in this child) and their values sent ahead with the group's next requests over SSL and
 * hooks: only what applications ask for is shipped, and they usually ask for the same few.
 */
#include "wsgi_forward.h"

#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_ssl.h"
#include "util_filter.h"
#include "apr_strings.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

/* Remembers a name looked up, for wsgi_lookup_prefetch. */
static void learn(wsgi_conn_pool *pool, const char *name)
{
    size_t n = strlen(name);
    int i;

    if (n >= WSGI_LEARN_NAME)
        return;
    apr_thread_mutex_lock(pool->mutex);
    for (i = 0; i < pool->nlearned && strcmp(pool->learned[i], name); ++i)
        ;
    if (i == pool->nlearned && i < WSGI_LEARN_MAX) {
        memcpy(pool->learned[i], name, n + 1);
        pool->nlearned++;
    }
    apr_thread_mutex_unlock(pool->mutex);
}

int wsgi_lookup_prefetch(request_rec *r, wsgi_group *g, const char **names, const char **values)
{
    wsgi_conn_pool *pool = g->rt ? g->rt->conns : NULL;
    char learned[WSGI_LEARN_MAX][WSGI_LEARN_NAME];
    int i, n, out = 0;

    if (!pool)
        return 0;
    apr_thread_mutex_lock(pool->mutex);
    n = pool->nlearned;
    if (n)
        memcpy(learned, pool->learned, (size_t)n * sizeof(learned[0]));
    apr_thread_mutex_unlock(pool->mutex);
    for (i = 0; i < n; ++i) {
        const char *value = ap_ssl_var_lookup(r->pool, r->server, r->connection, r, learned[i]);
        if (!value || strlen(value) > WSGI_LEARN_VALUE)
            continue;   /* asked for over the wire, as before */
        names[out] = apr_pstrcat(r->pool, "mod_ssl.var:", learned[i], NULL);
        values[out++] = value;
    }
    return out;
}

apr_status_t wsgi_lookup_answer(request_rec *r, wsgi_conn *c, apr_size_t len)
{
    unsigned char hdr[WSGI_WIRE_HEADER_SIZE + 8];
    struct iovec iov[2];
    wsgi_reader rd;
    const char *name, *value;
    apr_size_t vlen;
    uint32_t nlen;
    apr_pool_t *p;
    apr_status_t rv;

    wsgi_reader_init(&rd, c->buf + c->rpos + WSGI_WIRE_HEADER_SIZE, len);
    wsgi_read_string(&rd, &name, &nlen);
    if (!rd.ok || rd.left || !nlen || nlen > WSGI_LIMIT_VAR_NAME || memchr(name, '\0', nlen)) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01300)
                      "Malformed variable lookup from daemon process; connection dropped");
        return APR_EGENERAL;
    }
    /* The values of one request's lookups are not kept: a pool per answer. */
    if (apr_pool_create(&p, r->pool) != APR_SUCCESS)
        return APR_ENOMEM;
    name = apr_pstrmemdup(p, name, nlen);
    c->rpos += WSGI_WIRE_HEADER_SIZE + len;
    value = ap_ssl_var_lookup(p, r->server, r->connection, r, name);
    vlen = value ? strlen(value) : 0;
    if (vlen > WSGI_LIMIT_VAR_VALUE - 8) {
        wsgi_rlog(APLOG_WARNING, 0, r, WSGILOGNO(01301)
                      "Value of variable '%s' is longer than %u bytes; the daemon is told it is not set",
                      name, WSGI_LIMIT_VAR_VALUE - 8);
        value = NULL;
        vlen = 0;
    }
    wsgi_rlog(APLOG_TRACE2, 0, r, WSGILOGNO(01303) "Variable lookup '%s' from daemon "
                  "process '%s': %s", name, c->pool->group->name, value ? "set" : "not set");
    if (value && vlen <= WSGI_LEARN_VALUE)
        learn(c->pool, name);
    wsgi_frame_header_pack(hdr, WSGI_FRAME_VAR_VALUE, 0, (uint32_t)(8 + vlen));
    wsgi_put_u32(hdr + WSGI_WIRE_HEADER_SIZE, value ? 1 : 0);
    wsgi_put_u32(hdr + WSGI_WIRE_HEADER_SIZE + 4, (uint32_t)vlen);
    iov[0].iov_base = hdr;
    iov[0].iov_len = sizeof(hdr);
    iov[1].iov_base = (void *)value;
    iov[1].iov_len = vlen;
    /* A blocking write is safe: the daemon reads the connection while it waits for this answer. */
    rv = wsgi_conn_writev(c, iov, vlen ? 2 : 1);
    apr_pool_destroy(p);
    return rv;
}

/* Answers every complete VAR_LOOKUP at the front of what the daemon sent; stops for good at the first
 * frame of another kind (the response began: it stays buffered for wsgi_response_relay). */
static apr_status_t serve_buffered(wsgi_req *q, wsgi_conn *c)
{
    wsgi_frame_header h;
    apr_status_t rv;

    while (!q->response_seen && wsgi_conn_avail(c) >= WSGI_WIRE_HEADER_SIZE) {
        wsgi_frame_header_unpack(c->buf + c->rpos, &h);
        if (h.version != WSGI_WIRE_VERSION || h.type != WSGI_FRAME_VAR_LOOKUP ||
            h.length > WSGI_LIMIT_VAR_LOOKUP) {
            q->response_seen = 1;   /* the relay reads it, and rejects it if it is malformed */
            break;
        }
        if (wsgi_conn_avail(c) < WSGI_WIRE_HEADER_SIZE + h.length)
            break;                  /* the rest comes later */
        if ((rv = wsgi_lookup_answer(q->r, c, h.length)) != APR_SUCCESS)
            return rv;
    }
    return APR_SUCCESS;
}

/* Takes what the daemon sent without waiting and answers the lookups in it. A daemon that closed the
 * connection is left to the body writes and the relay, which report it. */
static apr_status_t poll_daemon(wsgi_req *q, wsgi_conn *c)
{
    apr_size_t got;
    apr_status_t rv;

    if (q->response_seen)
        return APR_SUCCESS;
    rv = wsgi_conn_read_ready(c, &got);
    if (rv != APR_SUCCESS) {
        q->response_seen = 1;
        return APR_SUCCESS;
    }
    return serve_buffered(q, c);
}

static int timeout_ms(apr_interval_time_t t)
{
    if (t <= 0)
        return -1;
    if (apr_time_as_msec(t) > INT_MAX)
        return INT_MAX;
    return (int)apr_time_as_msec(t);
}

apr_status_t wsgi_lookup_writev(wsgi_req *q, wsgi_conn *c, struct iovec *iov, int n)
{
    struct msghdr mh;
    struct pollfd pfd;
    apr_status_t rv;
    int rc;

    memset(&mh, 0, sizeof(mh));
    while (n > 0) {
        ssize_t done;

        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)(n > IOV_MAX ? IOV_MAX : n);
        done = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return APR_FROM_OS_ERROR(errno);
            /* The daemon takes no more for now: wait for room, answering its lookups meanwhile. */
            pfd.fd = c->fd;
            pfd.events = POLLOUT | (q->response_seen ? 0 : POLLIN);
            pfd.revents = 0;
            rc = poll(&pfd, 1, timeout_ms(q->group->socket_timeout_us));
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc < 0)
                return APR_FROM_OS_ERROR(errno);
            if (rc == 0)
                return APR_TIMEUP;
            if ((pfd.revents & POLLIN) && (rv = poll_daemon(q, c)) != APR_SUCCESS)
                return rv;
            continue;
        }
        while (n > 0 && (size_t)done >= iov->iov_len) {
            done -= (ssize_t)iov->iov_len;
            ++iov;
            --n;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= (size_t)done;
        }
    }
    /* A lookup that came while we wrote is answered now, not after the whole body. */
    return poll_daemon(q, c);
}

apr_status_t wsgi_lookup_get_body(wsgi_req *q, wsgi_conn *c, apr_bucket_brigade *bb, apr_off_t max)
{
    request_rec *r = q->r;
    struct pollfd pfd[2];
    apr_os_sock_t cfd;
    apr_status_t rv;
    int rc;

    for (;;) {
        /* HTTP/2 streams share their connection's socket: poll cannot tell whose data it is. */
        if (q->response_seen || r->connection->master ||
            apr_os_sock_get(&cfd, ap_get_conn_socket(r->connection)) != APR_SUCCESS)
            return ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ, max);
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_NONBLOCK_READ, max);
        if (rv == APR_SUCCESS && !APR_BRIGADE_EMPTY(bb))
            return rv;
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv))
            return rv;
        apr_brigade_cleanup(bb);
        /* Nothing from the client yet: wait for it, or for a lookup from the daemon. */
        pfd[0].fd = cfd;
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        pfd[1].fd = c->fd;
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        rc = poll(pfd, 2, timeout_ms(r->server->timeout));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return APR_FROM_OS_ERROR(errno);
        if (rc == 0)
            return APR_TIMEUP;
        if (pfd[1].revents && (rv = poll_daemon(q, c)) != APR_SUCCESS)
            return rv;
    }
}
