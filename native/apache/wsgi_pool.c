/*
 * Pools (wsgi_daemon.h): a group's listening socket and board segment, which its daemons share. A pool
 * lives as long as a daemon uses it, across graceful restarts when the group's configuration did not
 * change. A group whose configuration changed gets a new pool bound under a temporary name; its socket is
 * renamed over the stable path once its daemons are ready, so that a connecting Apache child always
 * finds a listening socket with a live process behind it.
 */
#include "wsgi_daemon.h"

#include "http_core.h"
#include "http_log.h"
#include "mod_unixd.h"
#include "unixd.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

/* Can uid (primary gid, its supplementary groups) search every directory down to dir? */
static int searchable_by(const char *dir, const char *user, uid_t uid, gid_t gid, apr_pool_t *p)
{
    gid_t groups[256];
    int ngroups = 256, i;
    char *path = apr_pstrdup(p, dir), *slash;

    if (getgrouplist(user, gid, groups, &ngroups) < 0)
        ngroups = 0;
    for (slash = path;;) {
        struct stat sb;
        char saved;
        int ok;

        slash = strchr(slash + 1, '/');
        saved = slash ? *slash : '\0';
        if (slash)
            *slash = '\0';
        if (stat(*path ? path : "/", &sb) < 0 || !S_ISDIR(sb.st_mode))
            return 0;
        ok = uid == 0 || (sb.st_uid == uid ? (sb.st_mode & S_IXUSR) : 0);
        if (!ok && sb.st_uid != uid) {
            int in_group = sb.st_gid == gid;
            for (i = 0; !in_group && i < ngroups; ++i)
                in_group = sb.st_gid == groups[i];
            ok = in_group ? (sb.st_mode & S_IXGRP) : (sb.st_mode & S_IXOTH);
        }
        if (!ok)
            return 0;
        if (!slash)
            return 1;
        *slash = saved;
    }
}

/*
 * Only root (and the owner) may replace what is in the socket directory. In a directory any user can
 * write to, without the sticky bit (as /tmp has), a local user could rename a daemon socket away and
 * put their own in its place: Apache's children would send them the requests, credentials included.
 */
static int safe_socket_dir(server_rec *s, const char *prefix, const char *dir)
{
    struct stat sb;

    if (stat(dir, &sb) == 0 && (sb.st_mode & S_IWOTH) && !(sb.st_mode & S_ISVTX)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, WSGILOGNO(01160)
                     "WSGISocketPrefix %s: the directory '%s' is writable by every user and has no "
                     "sticky bit, so any local user could replace the daemon sockets and receive the "
                     "requests: choose a directory only root can write to (chmod o-w), or set its "
                     "sticky bit (chmod +t)", prefix, dir);
        return 0;
    }
    return 1;
}

int wsgi_pool_check_dir(server_rec *s, const char *prefix, apr_pool_t *ptemp)
{
    const char *dir = ap_make_dirstr_parent(ptemp, prefix);

    if (!searchable_by(dir, ap_unixd_config.user_name, ap_unixd_config.user_id, ap_unixd_config.group_id,
                       ptemp)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, WSGILOGNO(01111)
                     "WSGISocketPrefix %s: the directory '%s' does not exist or cannot be "
                     "searched by user '%s' (Apache's User), so Apache's children could not "
                     "reach the daemon sockets", prefix, dir, ap_unixd_config.user_name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return safe_socket_dir(s, prefix, dir) ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/* The stable socket path of a group: prefix.PID.NAME-HASH.sock (NAME shortened, made file-safe). */
const char *wsgi_pool_socket_path(apr_pool_t *p, const char *prefix, const char *name)
{
    apr_uint32_t hash = 2166136261u;
    char safe[25];
    const char *c;
    int n = 0;

    for (c = name; *c; ++c)
        hash = (hash ^ (unsigned char)*c) * 16777619u;
    for (c = name; *c && n < (int)sizeof(safe) - 1; ++c)
        safe[n++] = apr_isalnum(*c) || *c == '-' || *c == '_' ? *c : '_';
    safe[n] = '\0';
    return apr_psprintf(p, "%s.%ld.%s-%08x.sock", prefix, (long)getpid(), n ? safe : "default", hash);
}

/* Binds and listens on tmp_path; owner Apache's child User, mode 0600. Returns the fd or -1. */
static int create_socket(server_rec *s, const wsgi_group *g, const char *tmp_path)
{
    struct sockaddr_un addr;
    mode_t old_umask;
    int fd, rc;

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    apr_cpystrn(addr.sun_path, tmp_path, sizeof(addr.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, WSGILOGNO(01105)
                     "cannot create the socket of process group '%s'", g->name);
        return -1;
    }
    unlink(tmp_path);
    old_umask = umask(0177);
    rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old_umask);
    /* Only root can give the socket away; otherwise the children run as this user already. */
    if (rc < 0 || listen(fd, g->listen_backlog) < 0 ||
        (geteuid() == 0 && chown(tmp_path, ap_unixd_config.user_id, (gid_t)-1) < 0) ||
        chmod(tmp_path, 0600) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, WSGILOGNO(01106)
                     "cannot bind, listen on or set the owner of socket '%s' of process group '%s' "
                     "(see WSGISocketPrefix)", tmp_path, g->name);
        close(fd);
        unlink(tmp_path);
        return -1;
    }
    return fd;
}

/* Slots on a pool's segment: each process, and a successor for each while it starts. */
static int slots_for(const wsgi_group *g)
{
    return 2 * g->processes + 1;
}

wsgi_pool *wsgi_pool_create(server_rec *s, wsgi_group *g, const char *socket_path, int pending, int generation,
                            const char *fingerprint)
{
    wsgi_pool *pool = calloc(1, sizeof(*pool));
    char *tmp;

    if (!pool)
        return NULL;
    pool->listen_fd = -1;
    pool->processes = g->processes;
    pool->generation = generation;
    pool->name = strdup(g->name);
    pool->fingerprint = strdup(fingerprint);
    pool->socket_path = strdup(socket_path);
    tmp = malloc(strlen(socket_path) + 32);
    if (!pool->name || !pool->fingerprint || !pool->socket_path || !tmp) {
        free(tmp);
        wsgi_pool_destroy(pool, 0);
        return NULL;
    }
    /* Bound under a name of its own, then renamed into place: now, or once its daemons are ready. */
    sprintf(tmp, "%s.%d.new", socket_path, generation);
    if (strlen(tmp) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, WSGILOGNO(01109)
                     "socket path '%s' of process group '%s' is too long for a UNIX socket: "
                     "choose a shorter WSGISocketPrefix", tmp, g->name);
        free(tmp);
        wsgi_pool_destroy(pool, 0);
        return NULL;
    }
    pool->pending_path = tmp;
    pool->listen_fd = create_socket(s, g, tmp);
    if (pool->listen_fd < 0) {
        wsgi_pool_destroy(pool, 0);
        return NULL;
    }
    {
        struct stat sb;
        pool->listen_ino = fstat(pool->listen_fd, &sb) == 0 ? (unsigned long)sb.st_ino : 0;
    }
    pool->seg = wsgi_segment_create(g->name, slots_for(g), g->processes, g->threads, generation);
    if (!pool->seg) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, WSGILOGNO(01113)
                     "cannot create the shared memory segment of process group '%s'", g->name);
        wsgi_pool_destroy(pool, 0);
        return NULL;
    }
    if (!pending && !wsgi_pool_activate(s, pool)) {
        wsgi_pool_destroy(pool, 0);
        return NULL;
    }
    return pool;
}

int wsgi_pool_activate(server_rec *s, wsgi_pool *pool)
{
    if (!pool->pending_path)
        return 1;
    if (rename(pool->pending_path, pool->socket_path) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, WSGILOGNO(01110)
                     "cannot rename socket '%s' to '%s'", pool->pending_path, pool->socket_path);
        return 0;
    }
    free(pool->pending_path);
    pool->pending_path = NULL;
    return 1;
}

void wsgi_pool_destroy(wsgi_pool *pool, int unlink_path)
{
    if (pool->listen_fd >= 0)
        close(pool->listen_fd);
    if (pool->pending_path)
        unlink(pool->pending_path);
    else if (unlink_path && pool->socket_path)
        unlink(pool->socket_path);
    wsgi_segment_destroy(pool->seg);
    free(pool->pending_path);
    free(pool->socket_path);
    free(pool->fingerprint);
    free(pool->name);
    free(pool);
}
