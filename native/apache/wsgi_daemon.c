/*
 * Configuration generations in the Apache parent (wsgi_daemon.h, docs/restarts.md): each post_config
 * finds or makes the pool of every group (kept when its configuration did not change), installs the
 * SIGCHLD handler that wakes the parent's loop, and arms the doorbell; a restart hands over to the next
 * generation, and the stop of Apache stops every daemon. What happens to daemons within a generation is
 * in wsgi_supervise.c.
 */
#include "wsgi_daemon.h"

#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "ap_mpm.h"
#include "apr_strings.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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

#define KILL_GRACE      5                       /* seconds past its own timeout, in the monitor */

/* SIGCHLD interrupts the parent's once-a-second sleep, so that a dead daemon or the doorbell is seen at
 * once. Nothing to do in the handler itself but, with a ledger, note how each daemon ended (exit status or
 * signal, wsgi_ledger.c), which Apache's main loop does not pass on. */
static void on_sigchld(int sig)
{
    (void)sig;
}

/* ---------------------------------------------------------------------------------------------- */
/* Generations                                                                                    */

/* pconf cleanup: this generation's configuration is going away (restart or stop). The SIGCHLD handler
 * is code of this module, which a restart may unload before the next generation installs its own. */
static apr_status_t generation_end(void *data)
{
    wsgi_supervisor *sup = data;

    signal(SIGCHLD, SIG_DFL);
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
    wsgi_pool *pool;

    /* Destroyed by itself (exit): pconf, destroyed later, must not destroy it again. */
    apr_pool_cleanup_kill(ex->pconf, ex, generation_stop_pool);
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING)
        return APR_SUCCESS;

    wsgi_doorbell_stop(&sup->bell);
    for (d = sup->daemons; d; d = d->next) {
        if (d->registered)
            apr_proc_other_child_unregister(d);
        wsgi_send_stop(d, SIGTERM);
    }
    while (sup->daemons) {
        apr_time_t now = apr_time_now();
        for (d = sup->daemons; d; d = next) {
            int status = 0;
            next = d->next;
            if (waitpid(d->proc.pid, &status, WNOHANG) != 0) {
                ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, WSGILOGNO(01107)
                             "daemon process %d of process group '%s' (pid %ld) stopped",
                             d->index, d->pool->name, (long)d->proc.pid);
                wsgi_unlink_daemon(sup, d);
            }
            else if (!d->killed &&
                     now > d->stop_sent + apr_time_from_sec(d->stop_timeout + 1)) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, WSGILOGNO(01108)
                             "daemon process %d of process group '%s' (pid %ld) did not stop within "
                             "%d s of SIGTERM; sending SIGKILL", d->index, d->pool->name,
                             (long)d->proc.pid, d->stop_timeout + 1);
                kill(d->proc.pid, SIGKILL);
                d->killed = 1;
            }
        }
        apr_sleep(wait);
        if (wait < apr_time_from_msec(100))
            wait *= 2;
    }
    while ((pool = sup->pools) != NULL) {
        sup->pools = pool->next;
        wsgi_pool_destroy(pool, 1);
    }
    return APR_SUCCESS;
}

/* The pool group g uses in this generation: the one it had when its configuration did not change, else
 * a new one (pending while an older pool of the group serves). */
static wsgi_pool *pool_for(wsgi_supervisor *sup, wsgi_group *g, const char *prefix)
{
    wsgi_runtime *rt = sup->current;
    const char *fingerprint = wsgi_spawn_fingerprint(rt->pconf, rt, g);
    const char *path = wsgi_pool_socket_path(rt->pconf, prefix, g->name);
    wsgi_pool *pool, *serving = NULL, *pending = NULL, *keep = NULL;
    wsgi_daemon *d;
    int i;

    /* At most two live pools per group: the one in place, and one whose daemons are still starting. */
    for (pool = sup->pools; pool; pool = pool->next) {
        if (pool->retired || strcmp(pool->name, g->name))
            continue;
        if (pool->pending_path)
            pending = pool;
        else
            serving = pool;
        if (!strcmp(pool->fingerprint, fingerprint) && !strcmp(pool->socket_path, path))
            keep = pool;
    }
    /* A pending pool that is not wanted any more (the configuration changed again) goes. */
    if (pending && pending != keep) {
        pending->retired = 1;
        for (d = sup->daemons; d; d = d->next)
            if (d->pool == pending)
                wsgi_send_stop(d, SIGTERM);
    }
    if (keep) {
        /* Unchanged: the daemons go on serving (or starting), now as part of this generation, and each
         * is replaced start-first, one at a time (so that a graceful restart loads new code, as in
         * mod_wsgi, and loses nothing). A pending pool's daemons are new already: it takes over once they
         * are ready, as planned. */
        keep->generation = rt->generation;
        for (d = sup->daemons; d; d = d->next) {
            if (d->pool != keep)
                continue;
            d->generation = rt->generation;
            if (keep == serving && !d->stop_sent) {
                unsigned char *slot = wsgi_daemon_slot(d);
                wsgi_slot_set_u32(slot, WSGI_SLOT_FLAGS, wsgi_slot_u32(slot, WSGI_SLOT_FLAGS) | WSGI_SLOT_F_REPLACE);
            }
        }
        if (keep == serving)
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, rt->server, WSGILOGNO(01119)
                         "process group '%s': configuration unchanged, its daemon processes are replaced "
                         "one at a time, each once its successor is ready", g->name);
        return keep;
    }
    pool = wsgi_pool_create(rt->server, g, path, serving != NULL, rt->generation, fingerprint);
    if (!pool)
        return NULL;
    pool->next = sup->pools;
    sup->pools = pool;
    for (i = 0; i < g->processes; ++i)
        wsgi_start_daemon(sup, pool, g, (uint32_t)i, i + 1, 0, NULL);
    return pool;
}

int wsgi_daemons_start(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    wsgi_supervisor *sup = wsgi_supervisor_get(s->process->pool);
    wsgi_state *st = wsgi_state_get(pconf);
    wsgi_group **groups = (wsgi_group **)st->groups->elts;
    const char *prefix, *env;
    struct sigaction sa;
    wsgi_runtime *rt;
    wsgi_exit *ex;
    wsgi_daemon *d;
    wsgi_pool *pool;
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
            apr_proc_other_child_register(&d->proc, wsgi_daemon_maintenance, d, NULL, pconf);
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

    memset(&sa, 0, sizeof(sa));
    sup->ledger = wsgi_ledger_get(s->process->pool);
    if (!sup->ledger)
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, WSGILOGNO(01700)
                     "cannot map the ledger of the daemon processes: the restart history, the health "
                     "endpoint and counters of replaced processes are not available");
    if (sup->ledger) {
        sa.sa_sigaction = wsgi_ledger_sigchld;
        sa.sa_flags = SA_NOCLDSTOP | SA_SIGINFO;    /* no SA_RESTART: the sleep it interrupts ends */
    }
    else {
        sa.sa_handler = on_sigchld;
        sa.sa_flags = SA_NOCLDSTOP;
    }
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);

    if (st->groups->nelts) {
        prefix = st->socket_prefix ? st->socket_prefix : ap_runtime_dir_relative(pconf, "wsgi");
        if ((i = wsgi_pool_check_dir(s, prefix, ptemp)) != OK)
            return i;
        if (!wsgi_doorbell_init(&sup->bell, s))
            return HTTP_INTERNAL_SERVER_ERROR;
        for (i = 0; ok && i < st->groups->nelts; ++i) {
            pool = pool_for(sup, groups[i], prefix);
            ok = pool != NULL;
            if (ok) {
                groups[i]->rt = apr_pcalloc(pconf, sizeof(wsgi_group_rt));
                groups[i]->rt->socket_path = apr_pstrdup(pconf, pool->socket_path);
                groups[i]->rt->pool = pool;
            }
        }
        wsgi_doorbell_arm(&sup->bell, pconf, s, wsgi_doorbell_rang, sup);
    }

    /* Pools whose group is gone from the configuration: their daemons drain and exit. */
    for (pool = sup->pools; pool; pool = pool->next) {
        if (pool->retired || pool->generation == generation)
            continue;
        pool->retired = 1;
        for (d = sup->daemons; d; d = d->next)
            if (d->pool == pool)
                wsgi_send_drain(d);
    }
    wsgi_collect_pools(sup);
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

void wsgi_daemons_child_init(apr_pool_t *pchild, server_rec *s)
{
    wsgi_supervisor *sup = wsgi_supervisor_get(s->process->pool);
    wsgi_pool *pool;

    /* httpd -X: the "child" is the parent itself, which still needs them to restart daemons. */
    if (ap_exists_config_define("ONE_PROCESS"))
        return;

    signal(SIGCHLD, SIG_DFL);
    wsgi_ledger_child_init(sup->ledger);
    for (pool = sup->pools; pool; pool = pool->next) {
        if (pool->listen_fd >= 0)
            close(pool->listen_fd);
        pool->listen_fd = -1;
        if (pool->seg && pool->seg->fd >= 0)
            close(pool->seg->fd);
    }
    if (sup->bell.read_fd > 0)
        close(sup->bell.read_fd);
    if (sup->bell.write_fd > 0)
        close(sup->bell.write_fd);
}

/*
 * Apache's graceful stop has begun (wsgi_stop.c): every daemon goes on serving what Apache's children
 * still forward, for at most its group's graceful-timeout, until the SIGTERM that the end of the
 * children brings (wsgi_daemon_maintenance, APR_OC_REASON_RESTART, then stop_all). Daemons already stopping are
 * left as they are.
 */
void wsgi_daemons_apache_stopping(server_rec *s)
{
    wsgi_supervisor *sup = wsgi_supervisor_get(s->process->pool);
    wsgi_daemon *d;
    int n = 0;

    /* The health endpoint answers 503 from now on (Apache's children read the ledger). */
    wsgi_ledger_set_stopping(sup->ledger);
    for (d = sup->daemons; d; d = d->next) {
        unsigned char *slot = wsgi_daemon_slot(d);
        if (d->stop_sent)
            continue;
        wsgi_slot_set_u32(slot, WSGI_SLOT_FLAGS, wsgi_slot_u32(slot, WSGI_SLOT_FLAGS) | WSGI_SLOT_F_APACHE_STOPPING);
        ++n;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, WSGILOGNO(01600)
                 "graceful stop: %d daemon process(es) serve on until Apache's children are gone, "
                 "each for at most its graceful-timeout (if set), then stop", n);
}

wsgi_pool *wsgi_daemons_pools(server_rec *s)
{
    return wsgi_supervisor_get(s->process->pool)->pools;
}

wsgi_ledger *wsgi_daemons_ledger(server_rec *s)
{
    return wsgi_supervisor_get(s->process->pool)->ledger;
}

int wsgi_daemons_monitor(apr_pool_t *p, server_rec *s)
{
    wsgi_supervisor *sup = wsgi_supervisor_get(s->process->pool);
    apr_time_t now = apr_time_now();
    wsgi_daemon *d;

    for (d = sup->daemons; d; d = d->next) {
        if (d->stop_sent && !d->killed &&
            now > d->stop_sent + apr_time_from_sec(d->stop_timeout + KILL_GRACE)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, WSGILOGNO(01112)
                         "daemon process %d of process group '%s' (pid %ld) did not stop within "
                         "%d s of being asked to; sending SIGKILL", d->index, d->pool->name,
                         (long)d->proc.pid, d->stop_timeout + KILL_GRACE);
            kill(d->proc.pid, SIGKILL);
            d->killed = 1;
        }
    }
    /* A backstop for a doorbell that could not be rung or started. */
    wsgi_supervise(sup);
    return DECLINED;
}

