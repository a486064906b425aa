/*
 * Connections from an Apache child to a process group's daemons (wsgi_conn.c): a pool of idle
 * connections per child and group, connecting with retries, and bounded I/O that collects the file
 * descriptors a daemon passes with FILE frames.
 */
#ifndef WSGI_CONN_H
#define WSGI_CONN_H

#include "httpd.h"
#include "apr_thread_mutex.h"

#include "wsgi_config.h"
#include "wsgi_wire.h"

#include <sys/uio.h>
#include <sys/un.h>

/* Large enough for the biggest frame parsed in place (ERROR) with its header. */
#define WSGI_CONN_BUFSIZE   (WSGI_LIMIT_ERROR + 1024)
#define WSGI_CONN_MAXFDS    8

/* SSL variables sent ahead with requests over SSL (wsgi_lookup.c): at most this many names per group
 * and child, each shorter than WSGI_LEARN_NAME, values up to WSGI_LEARN_VALUE bytes. */
#define WSGI_LEARN_MAX      8
#define WSGI_LEARN_NAME     64
#define WSGI_LEARN_VALUE    16384

/* ASGI applications a child remembers per group (wsgi_asgi.c). */
#define WSGI_ASGI_MAX       32

typedef struct wsgi_conn {
    struct wsgi_conn *next;             /* in the idle stack */
    struct wsgi_conn_pool *pool;
    int fd;
    int reused;                         /* taken from the idle stack: the daemon may have closed it */
    int sent;                           /* written to since the last read: an answer needs a wait */
    apr_size_t rpos;                    /* unread bytes are buf[rpos, rlen) */
    apr_size_t rlen;
    int fds[WSGI_CONN_MAXFDS];          /* descriptors received and not used yet */
    int nfds;
    int fds_lost;                       /* descriptors were dropped (control buffer too small) */
    int client_fd;                      /* while a response is awaited: the client's socket, whose
                                           hang-up ends the wait (APR_ECONNABORTED); -1: none */
    unsigned char buf[WSGI_CONN_BUFSIZE];
} wsgi_conn;

typedef struct wsgi_conn_pool {
    wsgi_group *group;
    apr_thread_mutex_t *mutex;
    wsgi_conn *idle;
    int nidle;
    int max_idle;
    struct sockaddr_un addr;
    socklen_t addrlen;
    /* Names of the SSL variables this group's applications and hooks looked up (under mutex). */
    char learned[WSGI_LEARN_MAX][WSGI_LEARN_NAME];
    int nlearned;
    /* Keys of the scripts whose responses came from ASGI applications (under mutex; wsgi_asgi.c). */
    apr_uint64_t asgi[WSGI_ASGI_MAX];
    int nasgi;
} wsgi_conn_pool;

/* child_init: one pool per process group. */
void wsgi_conn_child_init(apr_pool_t *pchild, server_rec *s);

/*
 * A connection to group g: an idle one that is still usable (unless `fresh`), else a new one,
 * connecting with retries for the group's connect-timeout. Returns OK, or HTTP_SERVICE_UNAVAILABLE
 * after logging why.
 */
int wsgi_conn_acquire(request_rec *r, wsgi_group *g, int fresh, wsgi_conn **out);

/* After a complete response: back to the idle stack if nothing is pending, else closed. */
void wsgi_conn_release(wsgi_conn *c);

/* Abandons the connection (the daemon sees the close as "abandon the request"). */
void wsgi_conn_close(wsgi_conn *c);

/* Writes all of iov or fails: APR_TIMEUP on socket-timeout, an errno value otherwise. */
apr_status_t wsgi_conn_writev(wsgi_conn *c, struct iovec *iov, int n);

/* Bytes buffered and not consumed. */
#define wsgi_conn_avail(c) ((c)->rlen - (c)->rpos)

/*
 * Makes at least `need` (<= WSGI_CONN_BUFSIZE) unread bytes contiguous in buf, reading as needed.
 * Moves unread bytes to the start of buf: no bucket may still point into buf. APR_EOF at end of
 * stream, APR_TIMEUP on socket-timeout.
 */
apr_status_t wsgi_conn_fill(wsgi_conn *c, apr_size_t need);

/* Reads up to n bytes directly into dst (for payloads larger than buf); *got is set. */
apr_status_t wsgi_conn_read_into(wsgi_conn *c, void *dst, apr_size_t n, apr_size_t *got);

/* Appends to buf what the daemon has sent, without waiting (*got may be 0). APR_EOF at end of stream. */
apr_status_t wsgi_conn_read_ready(wsgi_conn *c, apr_size_t *got);

/* Whether the daemon has sent more bytes that can be read without waiting. */
int wsgi_conn_readable(wsgi_conn *c);

/* The next received descriptor (passed with a FILE frame), or -1. The caller owns it. */
int wsgi_conn_take_fd(wsgi_conn *c);

#endif /* WSGI_CONN_H */
