/*
 * Daemon process supervision in the Apache parent: each process group's listening socket, its daemon
 * processes, restarts of daemons that die, the hand-over to a new generation on a graceful restart and
 * the stop of everything when Apache stops.
 *
 * Graceful restart without failed requests: a group's socket path stays the same across generations
 * (it is derived from the parent pid and the group name). The new generation's socket is bound under a
 * temporary name, its daemons are started, and rename() then puts it in place atomically; only after
 * that are the old daemons told to drain (SIGUSR1). An old Apache child connecting at any moment finds
 * a listening socket, and connections queue in the backlog until the new daemons accept them.
 */
#include "wsgi_daemon.h"

#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "ap_mpm.h"
#include "mod_unixd.h"
#include "unixd.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

#ifndef MOD_WSGI_NODE
#define MOD_WSGI_NODE "/usr/bin/node"
#endif
#ifndef MOD_WSGI_DAEMON_MAIN
#define MOD_WSGI_DAEMON_MAIN "/usr/lib/mod_wsgi/lib/daemon/main.js"
#endif

#define SUPERVISOR_KEY  "mod_wsgi_supervisor"
/* A daemon that dies this soon after starting is restarted with a growing delay. Apache's main loop
 * notices deaths up to a second late, so "within a second" reads as up to two. */
#define QUICK_EXIT      apr_time_from_sec(2)
#define MAX_BACKOFF     30                      /* seconds */
#define KILL_GRACE      5                       /* seconds past its own timeout, in the monitor */

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */

static wsgi_supervisor *supervisor_get(apr_pool_t *process_pool)
{
    void *data = NULL;

    apr_pool_userdata_get(&data, SUPERVISOR_KEY, process_pool);
    if (!data) {
        data = apr_pcalloc(process_pool, sizeof(wsgi_supervisor));
        /* _set, not _setn: the key must not point into this module, which a restart may unload. */
        apr_pool_userdata_set(data, SUPERVISOR_KEY, NULL, process_pool);
    }
    return data;
}

static void unlink_daemon(wsgi_supervisor *sup, wsgi_daemon *d)
{
    wsgi_daemon **pp;

    for (pp = &sup->daemons; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    free(d->group);
    free(d);
}

static void send_stop(wsgi_daemon *d, int sig)
{
    if (d->killed || (d->stop_sent && d->stop_signal == sig))
        return;
    if (kill(d->proc.pid, sig) < 0 && errno == ESRCH)
        return;
    if (!d->stop_sent || sig == SIGTERM)
        d->stop_sent = apr_time_now();
    d->stop_signal = sig;
    d->stop_timeout = sig == SIGUSR1 && d->graceful_timeout ? d->graceful_timeout
                                                            : d->shutdown_timeout;
}

/*
 * Apache's main loop hands other-child callbacks APR's decoded exit code (the exit status, or the
 * number of the signal that ended the process) without saying which; ap_reclaim_child_processes hands
 * a raw wait status. Say what is known.
 */
static const char *describe_exit(apr_pool_t *p, int status)
{
    if (status == -1)
        return "an unknown status (reaped elsewhere)";
    if (status > 255) {
        if (WIFEXITED(status))
            return apr_psprintf(p, "exit status %d", WEXITSTATUS(status));
        return apr_psprintf(p, "wait status %d", status);
    }
    if (status == 0)
        return "exit status 0";
    return apr_psprintf(p, "code %d (its exit status, or the signal that ended it)", status);
}

static int apache_stopping(void)
{
    int state = AP_MPMQ_RUNNING;

    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_RUN_MPM)
        return 1;
    ap_mpm_query(AP_MPMQ_MPM_STATE, &state);
    return state == AP_MPMQ_STOPPING;
}

static void maintenance(int reason, void *data, int status);

static apr_status_t start_daemon(wsgi_supervisor *sup, wsgi_group *g, int index, int quick_exits)
{
    wsgi_runtime *rt = sup->current;
    int delay = quick_exits ? (quick_exits > 5 ? MAX_BACKOFF : 1 << (quick_exits - 1)) : 0;
    wsgi_daemon *d;
    apr_status_t rv;

    d = calloc(1, sizeof(*d));
    if (!d || !(d->group = strdup(g->name))) {
        free(d);
        return APR_ENOMEM;
    }
    rv = wsgi_spawn(rt, g, index, delay, &d->proc);
    if (rv != APR_SUCCESS) {
        free(d->group);
        free(d);
        return rv;
    }
    d->sup = sup;
    d->index = index;
    d->generation = rt->generation;
    d->started = apr_time_now() + apr_time_from_sec(delay);
    d->shutdown_timeout = g->shutdown_timeout;
    d->graceful_timeout = g->graceful_timeout;
    d->quick_exits = quick_exits;
    d->next = sup->daemons;
    sup->daemons = d;
    apr_proc_other_child_register(&d->proc, maintenance, d, NULL, rt->pconf);
    d->registered = 1;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, rt->server, WSGILOGNO(01102)
                 "started daemon process %d of process group '%s' (pid %ld)%s", index, g->name,
                 (long)d->proc.pid,
                 delay ? apr_psprintf(rt->pconf, " after a delay of %d s", delay) : "");
    return APR_SUCCESS;
}

/* A daemon has been reaped: log it, and replace it if it still belongs to the running generation. */
static void daemon_exited(wsgi_daemon *d, int status)
{
    wsgi_supervisor *sup = d->sup;
    wsgi_runtime *rt = sup->current;
    server_rec *s = rt ? rt->server : ap_server_conf;
    apr_pool_t *p = rt ? rt->pconf : s->process->pool;
    wsgi_group *g = NULL;
    int quick, index = d->index;

    if (rt && d->generation == rt->generation && !d->stop_sent && !apache_stopping())
        g = wsgi_group_find(rt->state, d->group);

    if (!g) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, WSGILOGNO(01103)
                     "daemon process %d of process group '%s' (pid %ld) stopped with %s",
                     d->index, d->group, (long)d->proc.pid, describe_exit(p, status));
        unlink_daemon(sup, d);
        return;
    }

    quick = apr_time_now() - d->started < QUICK_EXIT ? d->quick_exits + 1 : 0;
    ap_log_error(APLOG_MARK,
                 quick ? APLOG_ERR : APLOG_NOTICE, 0, s,
                 WSGILOGNO(01104) "daemon process %d of process group '%s' (pid %ld) exited with %s"
                 "%s; starting a new one", d->index, d->group, (long)d->proc.pid,
                 describe_exit(p, status),
                 quick ? apr_psprintf(p, " %d time(s) in a row soon after starting", quick) : "");
    unlink_daemon(sup, d);
    start_daemon(sup, g, index, quick);
}

/* apr_proc_other_child callback, from the parent's main loop. */
static void maintenance(int reason, void *data, int status)
{
    wsgi_daemon *d = data;

    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(d);
        daemon_exited(d, reason == APR_OC_REASON_DEATH ? status : -1);
        break;
    case APR_OC_REASON_RESTART:
        /* ap_reclaim_child_processes: Apache stops or restarts ungracefully. Stopping early saves
         * time; a new generation, if any, starts its own daemons. */
        send_stop(d, SIGTERM);
        break;
    case APR_OC_REASON_UNREGISTER:
        d->registered = 0;
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Sockets                                                                                        */

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

/* The stable socket path of a group: prefix.PID.NAME-HASH.sock (NAME shortened, made file-safe). */
static const char *socket_path(apr_pool_t *p, const char *prefix, const char *name)
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
static int create_socket(server_rec *s, wsgi_group *g, const char *tmp_path)
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

/* Replaces the supervisor's list of socket files, unlinking those no longer used. */
static void replace_socket_list(wsgi_supervisor *sup, wsgi_state *st)
{
    wsgi_group **groups = (wsgi_group **)st->groups->elts;
    char **paths = calloc((size_t)st->groups->nelts + 1, sizeof(char *));
    int i, j, n = 0;

    for (i = 0; paths && i < st->groups->nelts; ++i) {
        if (groups[i]->socket_path && (paths[n] = strdup(groups[i]->socket_path)) != NULL)
            ++n;
    }
    for (i = 0; i < sup->socket_count; ++i) {
        for (j = 0; j < n && strcmp(paths[j], sup->socket_paths[i]); ++j)
            ;
        if (j == n)
            unlink(sup->socket_paths[i]);
        free(sup->socket_paths[i]);
    }
    free(sup->socket_paths);
    sup->socket_paths = paths;
    sup->socket_count = paths ? n : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Generations                                                                                    */

/* pconf cleanup: this generation's configuration is going away (restart or stop). */
static apr_status_t generation_end(void *data)
{
    wsgi_supervisor *sup = data;
    wsgi_runtime *rt = sup->current;
    wsgi_group **groups;
    int i;

    if (!rt)
        return APR_SUCCESS;
    groups = (wsgi_group **)rt->state->groups->elts;
    for (i = 0; i < rt->state->groups->nelts; ++i) {
        if (groups[i]->listen_fd >= 0)
            close(groups[i]->listen_fd);
        groups[i]->listen_fd = -1;
    }
    sup->current = NULL;
    return APR_SUCCESS;
}

/* The pool whose destruction at exit stops every daemon, and how to find it again. */
typedef struct {
    wsgi_supervisor *sup;
    apr_pool_t *pconf;
    apr_pool_t *pool;
} wsgi_exit;

static apr_status_t generation_stop_pool(void *data)
{
    wsgi_exit *ex = data;

    apr_pool_destroy(ex->pool);
    return APR_SUCCESS;
}

/*
 * Cleanup of a pool made in the process pool by post_config. At exit the process pool destroys its
 * newest children first, so this runs while the error logs (older pools) are still open; on a restart
 * generation_stop_pool destroys it early, and then it does nothing.
 */
static apr_status_t stop_all(void *data)
{
    wsgi_exit *ex = data;
    wsgi_supervisor *sup = ex->sup;
    server_rec *s = ap_server_conf;
    apr_interval_time_t wait = apr_time_from_msec(10);
    wsgi_daemon *d, *next;
    int i;

    /* Destroyed by itself (exit): pconf, destroyed later, must not destroy it again. */
    apr_pool_cleanup_kill(ex->pconf, ex, generation_stop_pool);
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING)
        return APR_SUCCESS;

    for (d = sup->daemons; d; d = d->next) {
        if (d->registered)
            apr_proc_other_child_unregister(d);
        send_stop(d, SIGTERM);
    }
    while (sup->daemons) {
        apr_time_t now = apr_time_now();
        for (d = sup->daemons; d; d = next) {
            int status = 0;
            next = d->next;
            if (waitpid(d->proc.pid, &status, WNOHANG) != 0) {
                ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, WSGILOGNO(01107)
                             "daemon process %d of process group '%s' (pid %ld) stopped",
                             d->index, d->group, (long)d->proc.pid);
                unlink_daemon(sup, d);
            }
            else if (!d->killed &&
                     now > d->stop_sent + apr_time_from_sec(d->stop_timeout + 1)) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, WSGILOGNO(01108)
                             "daemon process %d of process group '%s' (pid %ld) did not stop within "
                             "%d s of SIGTERM; sending SIGKILL", d->index, d->group,
                             (long)d->proc.pid, d->stop_timeout + 1);
                kill(d->proc.pid, SIGKILL);
                d->killed = 1;
            }
        }
        apr_sleep(wait);
        if (wait < apr_time_from_msec(100))
            wait *= 2;
    }
    for (i = 0; i < sup->socket_count; ++i) {
        unlink(sup->socket_paths[i]);
        free(sup->socket_paths[i]);
    }
    free(sup->socket_paths);
    sup->socket_paths = NULL;
    sup->socket_count = 0;
    return APR_SUCCESS;
}

static int start_group(wsgi_supervisor *sup, wsgi_group *g, const char *prefix)
{
    wsgi_runtime *rt = sup->current;
    const char *tmp;
    int i;

    g->socket_path = socket_path(rt->pconf, prefix, g->name);
    tmp = apr_pstrcat(rt->pconf, g->socket_path, ".new", NULL);
    if (strlen(tmp) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, rt->server, WSGILOGNO(01109)
                     "socket path '%s' of process group '%s' is too long for a UNIX socket: "
                     "choose a shorter WSGISocketPrefix", g->socket_path, g->name);
        return 0;
    }
    g->listen_fd = create_socket(rt->server, g, tmp);
    if (g->listen_fd < 0)
        return 0;
    for (i = 1; i <= g->processes; ++i)
        start_daemon(sup, g, i, 0);
    if (rename(tmp, g->socket_path) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, rt->server, WSGILOGNO(01110)
                     "cannot rename socket '%s' to '%s'", tmp, g->socket_path);
        return 0;
    }
    return 1;
}

int wsgi_daemons_start(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    wsgi_supervisor *sup = supervisor_get(s->process->pool);
    wsgi_state *st = wsgi_state_get(pconf);
    wsgi_group **groups = (wsgi_group **)st->groups->elts;
    const char *prefix, *env, *dir;
    wsgi_runtime *rt;
    wsgi_exit *ex;
    wsgi_daemon *d;
    int i, ok = 1, generation = 0;

    ap_mpm_query(AP_MPMQ_GENERATION, &generation);
    rt = apr_pcalloc(pconf, sizeof(*rt));
    rt->pconf = pconf;
    rt->server = s;
    rt->state = st;
    rt->generation = generation;
    rt->node = (env = getenv("MOD_WSGI_NODE")) && *env ? env : MOD_WSGI_NODE;
    rt->daemon_main = (env = getenv("MOD_WSGI_DAEMON_MAIN")) && *env ? env : MOD_WSGI_DAEMON_MAIN;
    /* Node's own flags for the daemons, e.g. --cpu-prof for profiling (docs/daemon-config.md). */
    rt->node_flags = NULL;
    if ((env = getenv("MOD_WSGI_NODE_FLAGS")) && *env)
        apr_tokenize_to_argv(env, &rt->node_flags, pconf);

    /* Daemons of earlier generations stay known to Apache until they are reaped. */
    for (d = sup->daemons; d; d = d->next) {
        if (!d->registered) {
            apr_proc_other_child_register(&d->proc, maintenance, d, NULL, pconf);
            d->registered = 1;
        }
    }
    sup->current = rt;
    apr_pool_cleanup_register(pconf, sup, generation_end, apr_pool_cleanup_null);

    /* At exit, stop every daemon while the logs are still open (see stop_all). */
    ex = apr_pcalloc(pconf, sizeof(*ex));
    ex->sup = sup;
    ex->pconf = pconf;
    apr_pool_create(&ex->pool, s->process->pool);
    apr_pool_cleanup_register(ex->pool, ex, stop_all, apr_pool_cleanup_null);
    apr_pool_cleanup_register(pconf, ex, generation_stop_pool, apr_pool_cleanup_null);

    if (st->groups->nelts) {
        prefix = st->socket_prefix ? st->socket_prefix : ap_runtime_dir_relative(pconf, "wsgi");
        dir = ap_make_dirstr_parent(pconf, prefix);
        if (!searchable_by(dir, ap_unixd_config.user_name, ap_unixd_config.user_id,
                           ap_unixd_config.group_id, ptemp)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, WSGILOGNO(01111)
                         "WSGISocketPrefix %s: the directory '%s' does not exist or cannot be "
                         "searched by user '%s' (Apache's User), so Apache's children could not "
                         "reach the daemon sockets", prefix, dir, ap_unixd_config.user_name);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!safe_socket_dir(s, prefix, dir))
            return HTTP_INTERNAL_SERVER_ERROR;
        for (i = 0; ok && i < st->groups->nelts; ++i)
            ok = start_group(sup, groups[i], prefix);
    }
    replace_socket_list(sup, st);

    /* The new sockets are in place: the earlier generations drain and exit. */
    for (d = sup->daemons; d; d = d->next) {
        if (d->generation != generation)
            send_stop(d, SIGUSR1);
    }
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

void wsgi_daemons_child_init(apr_pool_t *pchild, server_rec *s)
{
    wsgi_state *st = wsgi_state_get(s->process->pconf);
    wsgi_group **groups = (wsgi_group **)st->groups->elts;
    int i;

    /* httpd -X: the "child" is the parent itself, which still needs them to restart daemons. */
    if (ap_exists_config_define("ONE_PROCESS"))
        return;

    for (i = 0; i < st->groups->nelts; ++i) {
        if (groups[i]->listen_fd >= 0)
            close(groups[i]->listen_fd);
        groups[i]->listen_fd = -1;
    }
}

/*
 * Apache's graceful stop has begun (wsgi_stop.c): every daemon goes on serving what Apache's children
 * still forward, for at most its group's graceful-timeout, until the SIGTERM that the end of the
 * children brings (maintenance, APR_OC_REASON_RESTART, then stop_all). Daemons already stopping are
 * left as they are.
 */
void wsgi_daemons_apache_stopping(server_rec *s)
{
    wsgi_supervisor *sup = supervisor_get(s->process->pool);
    wsgi_daemon *d;
    int n = 0;

    for (d = sup->daemons; d; d = d->next) {
        if (!d->stop_sent && kill(d->proc.pid, SIGUSR2) == 0)
            ++n;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, WSGILOGNO(01600)
                 "graceful stop: %d daemon process(es) serve on until Apache's children are gone, "
                 "each for at most its graceful-timeout (if set), then stop", n);
}

int wsgi_daemons_monitor(apr_pool_t *p, server_rec *s)
{
    wsgi_supervisor *sup = supervisor_get(s->process->pool);
    apr_time_t now = apr_time_now();
    wsgi_daemon *d;

    for (d = sup->daemons; d; d = d->next) {
        if (d->stop_sent && !d->killed &&
            now > d->stop_sent + apr_time_from_sec(d->stop_timeout + KILL_GRACE)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, WSGILOGNO(01112)
                         "daemon process %d of process group '%s' (pid %ld) did not stop within "
                         "%d s of being asked to; sending SIGKILL", d->index, d->group,
                         (long)d->proc.pid, d->stop_timeout + KILL_GRACE);
            kill(d->proc.pid, SIGKILL);
            d->killed = 1;
        }
    }
    return DECLINED;
}
