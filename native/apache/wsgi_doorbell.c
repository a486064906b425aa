/*
 * The doorbell: how a daemon gets the Apache parent's attention without waiting for its main loop's
 * once-a-second round. Daemons run as another user and cannot signal the parent, and the parent's loop
 * waits on nothing but its children. So a small process of the parent's own (a fork, no exec) waits for
 * a byte on a pipe whose other end every daemon holds (fd 5), and exits when one comes: the parent is
 * woken by SIGCHLD (wsgi_daemon.c installs a handler that interrupts its sleep), reaps it, and the
 * callback looks at the board (a successor to start, a newer pool ready) and starts a new watcher.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "wsgi_daemon.h"

#include "http_log.h"
#include "mod_unixd.h"
#include "unixd.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

typedef struct {
    wsgi_doorbell *bell;
    void (*rang)(void *);
    void *data;
} bell_callback;

int wsgi_doorbell_init(wsgi_doorbell *bell, server_rec *s)
{
    int fds[2];

    if (bell->write_fd > 0)
        return 1;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, WSGILOGNO(01114)
                     "cannot create the pipe through which daemon processes reach the Apache parent");
        return 0;
    }
    bell->read_fd = fds[0];
    bell->write_fd = fds[1];
    return 1;
}

/* The watcher, in the forked child: never returns. */
static void watch(int fd)
{
    struct pollfd pfd;
    char buf[256];

    wsgi_reset_signals();
    /* It dies with the parent, and holds nothing of Apache's. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (fd != 3 && dup2(fd, 3) < 0)
        _exit(1);
    close(0);
    close(1);
    close(2);
    close_range(4, ~0U, 0);
    prctl(PR_SET_NAME, "wsgi-doorbell");
    /* It needs no privilege: the pipe is open already. Apache's User, as Apache's children. Should that
     * fail it waits all the same (exiting would only be forked again), holding nothing but the pipe. */
    if (geteuid() == 0 && setgroups(0, NULL) == 0 && setgid(ap_unixd_config.group_id) == 0)
        (void)!setuid(ap_unixd_config.user_id);
    pfd.fd = 3;
    pfd.events = POLLIN;
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
        ;
    /* Every ring that came meanwhile is answered by this one wake-up of the parent. */
    while (read(3, buf, sizeof(buf)) > 0)
        ;
    _exit(0);
}

static void bell_maintenance(int reason, void *data, int status)
{
    bell_callback *cb = data;
    wsgi_doorbell *bell = cb->bell;

    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(cb);
        bell->registered = 0;
        bell->proc.pid = 0;
        cb->rang(cb->data);
        break;
    case APR_OC_REASON_RESTART:
    case APR_OC_REASON_UNREGISTER:
        bell->registered = 0;
        break;
    default:
        break;
    }
}

void wsgi_doorbell_arm(wsgi_doorbell *bell, apr_pool_t *pconf, server_rec *s, void (*rang)(void *), void *data)
{
    bell_callback *cb;

    if (bell->read_fd <= 0)
        return;
    if (bell->proc.pid <= 0) {
        pid_t pid = fork();
        if (pid == 0)
            watch(bell->read_fd);
        if (pid < 0) {
            ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, WSGILOGNO(01115)
                         "cannot fork the process that waits for daemon processes' calls; "
                         "successors start only when the parent's loop next looks");
            return;
        }
        memset(&bell->proc, 0, sizeof(bell->proc));
        bell->proc.pid = pid;
    }
    if (bell->registered)
        return;
    cb = apr_pcalloc(pconf, sizeof(*cb));
    cb->bell = bell;
    cb->rang = rang;
    cb->data = data;
    apr_proc_other_child_register(&bell->proc, bell_maintenance, cb, NULL, pconf);
    bell->registered = 1;
}

void wsgi_doorbell_stop(wsgi_doorbell *bell)
{
    if (bell->proc.pid > 0) {
        kill(bell->proc.pid, SIGKILL);
        bell->proc.pid = 0;
    }
}
