/*
 * Connections from an Apache child to daemon processes. Connections are kept per child process and
 * group in a mutex-protected stack of idle ones: a request takes one, checks it without blocking
 * (an idle connection the daemon closed, or on which it sent GOAWAY, shows as end-of-file or a pending
 * byte), and gives it back after a clean END or ERROR.
 *
 * Every write is bounded by the group's socket-timeout, set once per connection with SO_SNDTIMEO.
 * A read that has to wait waits in poll() for POLLIN, bounded by socket-timeout, then reads without
 * blocking: a thread blocked in recvmsg() on a UNIX socket is also woken each time the daemon reads
 * what we sent (the kernel wakes writers' and readers' waits alike when it frees send space), which
 * cost a spurious wake-up and two thread switches per request; poll() is woken for POLLIN only.
 * Every read is a recvmsg() with a control buffer: a FILE frame's descriptor may arrive with any read.
 */
#include "wsgi_conn.h"

#include "http_log.h"
#include "ap_mpm.h"
#include "apr_strings.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

static apr_status_t pool_cleanup(void *data)
{
    wsgi_conn_pool *pool = data;
    wsgi_conn *c, *next;

    for (c = pool->idle; c; c = next) {
        next = c->next;
        close(c->fd);
        free(c);
    }
    pool->idle = NULL;
    pool->nidle = 0;
    return APR_SUCCESS;
}

void wsgi_conn_child_init(apr_pool_t *pchild, server_rec *s)
{
    wsgi_state *st = wsgi_state_get(s->process->pconf);
    wsgi_group **groups = (wsgi_group **)st->groups->elts;
    int i, threads = 1;

    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    for (i = 0; i < st->groups->nelts; ++i) {
        wsgi_group *g = groups[i];
        wsgi_conn_pool *pool = apr_pcalloc(pchild, sizeof(*pool));

        pool->group = g;
        pool->max_idle = threads > 0 ? threads : 1;
        apr_thread_mutex_create(&pool->mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
        pool->addr.sun_family = AF_UNIX;
        if (!g->rt)
            continue;
        apr_cpystrn(pool->addr.sun_path, g->rt->socket_path, sizeof(pool->addr.sun_path));
        pool->addrlen = (socklen_t)sizeof(pool->addr);
        apr_pool_cleanup_register(pchild, pool, pool_cleanup, apr_pool_cleanup_null);
        g->rt->conns = pool;
    }
}

static void close_fds(wsgi_conn *c)
{
    while (c->nfds > 0)
        close(c->fds[--c->nfds]);
}

void wsgi_conn_close(wsgi_conn *c)
{
    if (!c)
        return;
    close_fds(c);
    close(c->fd);
    free(c);
}

void wsgi_conn_release(wsgi_conn *c)
{
    wsgi_conn_pool *pool = c->pool;

    /* Leftover bytes or descriptors mean the daemon sent more than one response: not reusable. */
    if (wsgi_conn_avail(c) || c->nfds || c->fds_lost) {
        wsgi_conn_close(c);
        return;
    }
    c->rpos = c->rlen = 0;
    c->client_fd = -1;
    apr_thread_mutex_lock(pool->mutex);
    if (pool->nidle < pool->max_idle) {
        c->next = pool->idle;
        pool->idle = c;
        pool->nidle++;
        c = NULL;
    }
    apr_thread_mutex_unlock(pool->mutex);
    if (c)
        wsgi_conn_close(c);
}

/* An idle connection is usable if reading it would block: EOF or any byte (GOAWAY) means closed. */
static int still_usable(wsgi_conn *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int connect_new(request_rec *r, wsgi_group *g, wsgi_conn_pool *pool, int *out)
{
    apr_time_t deadline = apr_time_now() + g->connect_timeout_us;
    apr_interval_time_t delay = apr_time_from_msec(10);
    struct timeval tv;
    int fd, err, attempts = 0;

    for (;;) {
        ++attempts;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            wsgi_rlog(APLOG_ERR, errno, r, WSGILOGNO(01200)
                          "Unable to create socket to connect to WSGI daemon process '%s'", g->name);
            return HTTP_SERVICE_UNAVAILABLE;
        }
        /* Non-blocking: a full listen backlog gives EAGAIN at once instead of hanging here. */
        if (connect(fd, (struct sockaddr *)&pool->addr, pool->addrlen) == 0)
            break;
        err = errno;
        close(fd);
        if ((err == ECONNREFUSED || err == EAGAIN || err == ENOENT || err == EINTR) &&
            apr_time_now() + delay < deadline) {
            apr_sleep(delay);
            if (delay < apr_time_from_msec(500))
                delay *= 2;
            continue;
        }
        wsgi_rlog(APLOG_ERR, err, r, WSGILOGNO(01201)
                      "Unable to connect to WSGI daemon process '%s' on '%s' after %d attempt(s) "
                      "within connect-timeout %d s (listen backlog full, daemon not started, or "
                      "socket missing)", g->name, g->rt->socket_path, attempts, g->connect_timeout);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    /* Blocking from now on, each read and write bounded by socket-timeout. On a UNIX stream socket the
     * sender's SO_SNDBUF bounds the data in flight: receive-buffer-size (data the daemon receives) is
     * this end's send buffer, send-buffer-size (data the daemon sends) its receive buffer; the daemon
     * sets the converse on its end. */
    tv.tv_sec = (time_t)apr_time_sec(g->socket_timeout_us);
    tv.tv_usec = (suseconds_t)apr_time_usec(g->socket_timeout_us);
    if (fcntl(fd, F_SETFL, O_RDWR) < 0 ||
        (g->receive_buffer_size &&
         setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &g->receive_buffer_size, sizeof(int)) < 0) ||
        (g->send_buffer_size &&
         setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &g->send_buffer_size, sizeof(int)) < 0) ||
        (g->socket_timeout_us && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
                                  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0))) {
        wsgi_rlog(APLOG_ERR, errno, r, WSGILOGNO(01202)
                      "Unable to set up the connection to WSGI daemon process '%s'", g->name);
        close(fd);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    *out = fd;
    return OK;
}

int wsgi_conn_acquire(request_rec *r, wsgi_group *g, int fresh, wsgi_conn **out)
{
    wsgi_conn_pool *pool = g->rt->conns;
    wsgi_conn *c;
    int fd, status;

    while (!fresh) {
        apr_thread_mutex_lock(pool->mutex);
        c = pool->idle;
        if (c) {
            pool->idle = c->next;
            pool->nidle--;
        }
        apr_thread_mutex_unlock(pool->mutex);
        if (!c)
            break;
        if (still_usable(c)) {
            c->reused = 1;
            c->client_fd = -1;
            *out = c;
            return OK;
        }
        wsgi_conn_close(c);
    }

    if ((status = connect_new(r, g, pool, &fd)) != OK)
        return status;
    c = malloc(sizeof(*c));
    if (!c) {
        close(fd);
        wsgi_rlog(APLOG_ERR, APR_ENOMEM, r, WSGILOGNO(01203)
                      "Out of memory for a connection to WSGI daemon process '%s'", g->name);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    c->next = NULL;
    c->pool = pool;
    c->fd = fd;
    c->reused = 0;
    c->sent = 0;
    c->rpos = c->rlen = 0;
    c->nfds = 0;
    c->fds_lost = 0;
    c->client_fd = -1;
    *out = c;
    return OK;
}

static apr_status_t os_error(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK ? APR_TIMEUP : APR_FROM_OS_ERROR(err);
}

apr_status_t wsgi_conn_writev(wsgi_conn *c, struct iovec *iov, int n)
{
    struct msghdr mh;

    memset(&mh, 0, sizeof(mh));
    while (n > 0) {
        ssize_t done;

        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)(n > IOV_MAX ? IOV_MAX : n);
        done = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return os_error(errno);
        }
        c->sent = 1;
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
    return APR_SUCCESS;
}

/* One recvmsg(); descriptors that come with the bytes are kept for FILE frames. */
static apr_status_t recv_once(wsgi_conn *c, void *dst, apr_size_t n, apr_size_t *got, int flags)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * WSGI_CONN_MAXFDS)];
    } control;
    struct iovec iov;
    struct msghdr mh;
    struct cmsghdr *cm;
    ssize_t rc;

    iov.iov_base = dst;
    iov.iov_len = n;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.buf;
    mh.msg_controllen = sizeof(control.buf);
    do {
        rc = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | flags);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return os_error(errno);
    for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int *fds = (int *)CMSG_DATA(cm);
            size_t i, count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (i = 0; i < count; ++i) {
                if (c->nfds < WSGI_CONN_MAXFDS)
                    c->fds[c->nfds++] = fds[i];
                else {
                    close(fds[i]);
                    c->fds_lost = 1;
                }
            }
        }
    }
    if (mh.msg_flags & MSG_CTRUNC)
        c->fds_lost = 1;
    if (rc == 0)
        return APR_EOF;
    *got = (apr_size_t)rc;
    return APR_SUCCESS;
}

/* Waits until the daemon's bytes (or end of file) can be read, for at most socket-timeout. With a
 * client_fd, also for the client's hang-up (a FIN or a reset), not for its data (pipelined requests
 * may wait there): then APR_ECONNABORTED, and the request is abandoned now, while the application is
 * still waiting (an ASGI application learns it from http.disconnect), not when its answer finds
 * nobody. */
static apr_status_t wait_readable(wsgi_conn *c)
{
    apr_interval_time_t t = c->pool->group->socket_timeout_us;
    struct pollfd pfd[2];
    int rc, n = 1;

    pfd[0].fd = c->fd;
    pfd[0].events = POLLIN;
    if (c->client_fd >= 0) {
        pfd[1].fd = c->client_fd;
        pfd[1].events = POLLRDHUP;
        n = 2;
    }
    do {
        pfd[0].revents = pfd[1].revents = 0;
        rc = poll(pfd, (nfds_t)n, t > 0 ? (int)((t + 999) / 1000) : -1);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return APR_FROM_OS_ERROR(errno);
    if (rc == 0)
        return APR_TIMEUP;
    return pfd[0].revents ? APR_SUCCESS : APR_ECONNABORTED;
}

/* Reads what is there, or waits for it (flags 0) or not (MSG_DONTWAIT: APR_TIMEUP when nothing is). */
static apr_status_t recv_some(wsgi_conn *c, void *dst, apr_size_t n, apr_size_t *got, int flags)
{
    apr_status_t rv;

    if (flags & MSG_DONTWAIT)
        return recv_once(c, dst, n, got, flags);
    for (;;) {
        /* Right after a write the answer cannot be there yet: straight to poll(). */
        if (!c->sent) {
            rv = recv_once(c, dst, n, got, MSG_DONTWAIT);
            if (!APR_STATUS_IS_TIMEUP(rv))
                return rv;
        }
        c->sent = 0;
        if ((rv = wait_readable(c)) != APR_SUCCESS)
            return rv;
    }
}

apr_status_t wsgi_conn_fill(wsgi_conn *c, apr_size_t need)
{
    apr_status_t rv;
    apr_size_t got;

    if (wsgi_conn_avail(c) >= need)
        return APR_SUCCESS;
    if (c->rpos + need > sizeof(c->buf)) {
        memmove(c->buf, c->buf + c->rpos, wsgi_conn_avail(c));
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    else if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    }
    while (wsgi_conn_avail(c) < need) {
        rv = recv_some(c, c->buf + c->rlen, sizeof(c->buf) - c->rlen, &got, 0);
        if (rv != APR_SUCCESS)
            return rv;
        c->rlen += got;
    }
    return APR_SUCCESS;
}

apr_status_t wsgi_conn_read_into(wsgi_conn *c, void *dst, apr_size_t n, apr_size_t *got)
{
    return recv_some(c, dst, n, got, 0);
}

apr_status_t wsgi_conn_read_ready(wsgi_conn *c, apr_size_t *got)
{
    apr_status_t rv;

    *got = 0;
    if (c->rpos == c->rlen) {
        c->rpos = c->rlen = 0;
    }
    else if (c->rlen == sizeof(c->buf) && c->rpos) {
        memmove(c->buf, c->buf + c->rpos, wsgi_conn_avail(c));
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == sizeof(c->buf))
        return APR_SUCCESS;
    rv = recv_some(c, c->buf + c->rlen, sizeof(c->buf) - c->rlen, got, MSG_DONTWAIT);
    if (rv == APR_SUCCESS)
        c->rlen += *got;
    else if (APR_STATUS_IS_TIMEUP(rv))
        rv = APR_SUCCESS;   /* nothing there yet */
    return rv;
}

int wsgi_conn_readable(wsgi_conn *c)
{
    struct pollfd pfd;

    pfd.fd = c->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    return poll(&pfd, 1, 0) > 0;
}

int wsgi_conn_take_fd(wsgi_conn *c)
{
    int fd;

    if (!c->nfds)
        return -1;
    fd = c->fds[0];
    memmove(c->fds, c->fds + 1, (size_t)(c->nfds - 1) * sizeof(int));
    c->nfds--;
    return fd;
}
