/*
 * How many connections wait in a daemon group's listening socket (wsgi_status.h): the requests no daemon
 * process has accepted yet. Apache's children do not hold the socket, so they ask the kernel by the
 * socket's inode through sock_diag (NETLINK_SOCK_DIAG, as `ss -xl` does): for a listening UNIX socket,
 * UNIX_DIAG_RQLEN's rqueue is its accept queue. Needs no privilege.
 */
#include "wsgi_status.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TCP_LISTEN
#define TCP_LISTEN 10
#endif

long wsgi_backlog_of(unsigned long ino)
{
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg;
    struct sockaddr_nl kernel;
    union {
        struct nlmsghdr align;
        char buf[1024];
    } reply;
    struct pollfd pfd;
    struct nlmsghdr *h;
    ssize_t n;
    long result = -1;
    int fd;

    if (!ino || ino > 0xffffffffUL)
        return -1;
    fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    memset(&msg, 0, sizeof(msg));
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = 1u << TCP_LISTEN;
    msg.req.udiag_ino = (unsigned int)ino;
    msg.req.udiag_show = UDIAG_SHOW_RQLEN;
    msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0u;
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)sizeof(msg))
        goto done;
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 100) <= 0)
        goto done;
    n = recv(fd, reply.buf, sizeof(reply.buf), 0);
    for (h = &reply.align; n > 0 && NLMSG_OK(h, (unsigned int)n); h = NLMSG_NEXT(h, n)) {
        struct unix_diag_msg *m;
        struct rtattr *a;
        int len;
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
            break;
        m = NLMSG_DATA(h);
        if (m->udiag_ino != (unsigned int)ino)
            continue;
        len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
        for (a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                result = (long)((struct unix_diag_rqlen *)RTA_DATA(a))->udiag_rqueue;
                goto done;
            }
        }
    }
done:
    close(fd);
    return result;
}
