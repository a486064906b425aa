/*
 * Daemon process supervision in the Apache parent (wsgi_daemon.h, docs/restarts.md): the daemons of each
 * pool, their successors, crashes, the hand-over to a new generation on a graceful restart, and the stop
 * of everything when Apache stops.
 *
 * The parent acts when a child of its exits: its main loop reaps children once a second, and sooner
 * when SIGCHLD interrupts its sleep (a handler installed here). Daemons reach it through the doorbell.
 * What it reads on the board is trusted for the group whose daemons wrote it, and for nothing else.
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

static int backoff(int failures)
{
    return failures ? (failures > 5 ? MAX_BACKOFF : 1 << (failures - 1)) : 0;
}

static unsigned char *slot_of(const wsgi_daemon *d)
{
    return wsgi_slot(d->pool->seg, d->slot);
}

static wsgi_daemon *daemon_in(wsgi_supervisor *sup, const wsgi_pool *pool, uint32_t slot)
{
    wsgi_daemon *d;

    for (d = sup->daemons; d; d = d->next)
        if (d->pool == pool && d->slot == slot)
            return d;
    return NULL;
}

/* A slot no live process holds. */
static int free_slot(wsgi_supervisor *sup, const wsgi_pool *pool, uint32_t *out)
{
    uint32_t i;

    for (i = 0; i < pool->seg->slots; ++i) {
        if (!daemon_in(sup, pool, i)) {
            *out = i;
            return 1;
        }
    }
    return 0;
}

static void unlink_daemon(wsgi_supervisor *sup, wsgi_daemon *d)
{
    wsgi_daemon **pp;

    wsgi_ledger_watch(sup->ledger, (int32_t)d->proc.pid, 0);
    for (pp = &sup->daemons; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
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
    d->stop_timeout = d->shutdown_timeout;
}

/* Tells a daemon through the board to stop taking requests and exit once what runs is done (a newer
 * pool of its group is ready, or the group is gone). The monitor kills it if it does not. */
static void send_drain(wsgi_daemon *d)
{
    unsigned char *slot = slot_of(d);

    if (d->stop_sent)
        return;
    wsgi_slot_set_u32(slot, WSGI_SLOT_FLAGS, wsgi_slot_u32(slot, WSGI_SLOT_FLAGS) | WSGI_SLOT_F_DRAIN);
    d->stop_sent = apr_time_now();
    d->stop_signal = 0;
    d->stop_timeout = (d->graceful_timeout ? d->graceful_timeout : 0) + d->shutdown_timeout;
}

/*
 * An exit the daemon chose (docs/daemon-config.md, "exit statuses"): 0, asked to stop (a signal from
 * someone else than us, say SIGTERM sent by hand), or 4, stopped itself to be restarted. Such a process
 * is replaced at once and is never counted as a quick exit: only crashes and failed starts earn the
 * growing delay. When the SIGCHLD handler did not note it, APR's decoded code cannot tell exit status 4
 * from death by signal 4 (SIGILL): a SIGILL is then taken as deliberate.
 */
static int deliberate_exit(const wsgi_end *e)
{
    if (e->sig || e->exit_status >= 0)
        return e->exit_status == 0 || e->exit_status == 4;
    if (e->code > 255)
        return WIFEXITED(e->code) && (WEXITSTATUS(e->code) == 0 || WEXITSTATUS(e->code) == 4);
    return e->code == 0 || e->code == 4;
}

static int apache_stopping(void)
{
    int state = AP_MPMQ_RUNNING;

    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_RUN_MPM)
        return 1;
    ap_mpm_query(AP_MPMQ_MPM_STATE, &state);
    return state == AP_MPMQ_STOPPING;
}

static wsgi_group *group_of(wsgi_supervisor *sup, const wsgi_pool *pool)
{
    wsgi_runtime *rt = sup->current;

    if (!rt || pool->retired || pool->generation != rt->generation)
        return NULL;
    return wsgi_group_find(rt->state, pool->name);
}

/* ---------------------------------------------------------------------------------------------- */
/* Starting daemons                                                                               */

static void maintenance(int reason, void *data, int status);

/*
 * Starts a daemon in `slot` of the pool: the first of its index, a replacement of a process that died
 * (`quick_exits` in a row soon after starting), or the successor of `predecessor`.
 */
static wsgi_daemon *start_daemon(wsgi_supervisor *sup, wsgi_pool *pool, wsgi_group *g, uint32_t slot, int index,
                                 int quick_exits, wsgi_daemon *predecessor)
{
    wsgi_runtime *rt = sup->current;
    unsigned char *s = wsgi_slot(pool->seg, slot), *ps = predecessor ? slot_of(predecessor) : NULL;
    wsgi_spawn_info info;
    wsgi_daemon *d;

    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    memset(&info, 0, sizeof(info));
    info.pool = pool;
    info.slot = slot;
    info.index = index;
    info.delay = backoff(quick_exits);
    info.bell_fd = sup->bell.write_fd > 0 ? sup->bell.write_fd : -1;
    if (predecessor) {
        info.predecessor_pid = (long)predecessor->proc.pid;
        info.reason = wsgi_slot_u32(ps, WSGI_SLOT_REASON);
        info.scripts = ps + WSGI_SLOT_SCRIPTS;
    }
    wsgi_slot_clear(s);
    wsgi_slot_set_u32(s, WSGI_SLOT_STATE, WSGI_STATE_STARTING);
    wsgi_slot_set_u32(s, WSGI_SLOT_INDEX, (uint32_t)index);
    wsgi_slot_set_u32(s, WSGI_SLOT_GENERATION, (uint32_t)rt->generation);
    wsgi_slot_set_u32(s, WSGI_SLOT_PREDECESSOR, predecessor ? predecessor->slot + 1 : 0);
    wsgi_slot_set_u64(s, WSGI_SLOT_STARTED_US, (uint64_t)(apr_time_now() + apr_time_from_sec(info.delay)));
    if (wsgi_spawn(rt, g, &info, &d->proc) != APR_SUCCESS) {
        wsgi_slot_set_u32(s, WSGI_SLOT_STATE, WSGI_STATE_FREE);
        free(d);
        return NULL;
    }
    wsgi_slot_set_u32(s, WSGI_SLOT_PID, (uint32_t)d->proc.pid);
    wsgi_ledger_watch(sup->ledger, (int32_t)d->proc.pid, 1);
    d->sup = sup;
    d->pool = pool;
    d->slot = slot;
    d->index = index;
    d->generation = rt->generation;
    d->started = apr_time_now() + apr_time_from_sec(info.delay);
    d->shutdown_timeout = g->shutdown_timeout;
    d->graceful_timeout = g->graceful_timeout;
    d->quick_exits = quick_exits;
    d->next = sup->daemons;
    sup->daemons = d;
    apr_proc_other_child_register(&d->proc, maintenance, d, NULL, rt->pconf);
    d->registered = 1;
    if (predecessor) {
        wsgi_slot_set_u32(ps, WSGI_SLOT_SUCCESSOR_PID, (uint32_t)d->proc.pid);
        wsgi_slot_set_u32(ps, WSGI_SLOT_SUCCESSOR, slot + 1);
        wsgi_slot_set_u32(ps, WSGI_SLOT_FLAGS,
                          wsgi_slot_u32(ps, WSGI_SLOT_FLAGS) & ~WSGI_SLOT_F_SUCCESSOR_FAILED);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, rt->server, WSGILOGNO(01116)
                     "started daemon process %d of process group '%s' (pid %ld) to replace pid %ld "
                     "(%s)%s", index, g->name, (long)d->proc.pid, (long)predecessor->proc.pid,
                     wsgi_reason_name(info.reason),
                     info.delay ? apr_psprintf(rt->pconf, " after a delay of %d s", info.delay) : "");
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, rt->server, WSGILOGNO(01102)
                     "started daemon process %d of process group '%s' (pid %ld)%s", index, g->name,
                     (long)d->proc.pid,
                     info.delay ? apr_psprintf(rt->pconf, " after a delay of %d s", info.delay) : "");
    }
    return d;
}

/* ---------------------------------------------------------------------------------------------- */
/* Supervision: successors and the switch to a newer pool                                          */

static wsgi_daemon *successor_of(wsgi_supervisor *sup, wsgi_daemon *d)
{
    unsigned char *s = slot_of(d);
    uint32_t succ = wsgi_slot_u32(s, WSGI_SLOT_SUCCESSOR);
    wsgi_daemon *n;

    if (!succ || succ > d->pool->seg->slots)
        return NULL;
    n = daemon_in(sup, d->pool, succ - 1);
    return n && (uint32_t)n->proc.pid == wsgi_slot_u32(s, WSGI_SLOT_SUCCESSOR_PID) ? n : NULL;
}

static int is_ready(const wsgi_daemon *d)
{
    return wsgi_slot_u32(slot_of(d), WSGI_SLOT_STATE) == WSGI_STATE_READY;
}

/* Starts the successors daemons ask for: one at a time per pool, after any back-off. */
static void start_successors(wsgi_supervisor *sup, wsgi_pool *pool, wsgi_group *g)
{
    apr_time_t now = apr_time_now();
    wsgi_daemon *d;
    uint32_t slot;

    for (d = sup->daemons; d; d = d->next) {
        wsgi_daemon *n;
        if (d->pool == pool && (n = successor_of(sup, d)) != NULL && !is_ready(n))
            return;     /* one is starting: the next waits its turn */
    }
    for (d = sup->daemons; d; d = d->next) {
        if (d->pool != pool || d->stop_sent || now < d->successor_after ||
            !(wsgi_slot_u32(slot_of(d), WSGI_SLOT_FLAGS) & WSGI_SLOT_F_WANT_SUCCESSOR) || successor_of(sup, d))
            continue;
        if (!free_slot(sup, pool, &slot))
            return;
        start_daemon(sup, pool, g, slot, d->index, 0, d);
        return;
    }
}

/* A pending pool whose daemons are all ready takes over from the older pool of its group. */
static void switch_pool(wsgi_supervisor *sup, wsgi_pool *pool, server_rec *s)
{
    wsgi_pool *old;
    wsgi_daemon *d;
    int ready = 0;

    for (d = sup->daemons; d; d = d->next)
        if (d->pool == pool && !d->stop_sent && is_ready(d))
            ++ready;
    if (ready < pool->processes || !wsgi_pool_activate(s, pool))
        return;
    for (old = sup->pools; old; old = old->next) {
        if (old == pool || old->retired || strcmp(old->name, pool->name))
            continue;
        old->retired = 1;
        for (d = sup->daemons; d; d = d->next)
            if (d->pool == old)
                send_drain(d);
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, WSGILOGNO(01117)
                 "process group '%s': the daemon processes of the new configuration are ready and "
                 "take over; the previous ones finish their requests", pool->name);
}

/* Closes pools that are retired and have no daemon left. */
static void collect_pools(wsgi_supervisor *sup)
{
    wsgi_pool **pp = &sup->pools;

    while (*pp) {
        wsgi_pool *pool = *pp, *other;
        wsgi_daemon *d;
        int in_use = 0, path_taken = 0;

        for (d = sup->daemons; d && !in_use; d = d->next)
            in_use = d->pool == pool;
        if (!pool->retired || in_use) {
            pp = &pool->next;
            continue;
        }
        /* The stable path goes with the last pool of the group (a newer one renamed its socket there). */
        for (other = sup->pools; other; other = other->next)
            path_taken |= other != pool && !strcmp(other->socket_path, pool->socket_path);
        *pp = pool->next;
        wsgi_pool_destroy(pool, !path_taken);
    }
}

static void supervise(wsgi_supervisor *sup)
{
    wsgi_runtime *rt = sup->current;
    wsgi_pool *pool;

    if (!rt || apache_stopping())
        return;
    for (pool = sup->pools; pool; pool = pool->next) {
        wsgi_group *g = group_of(sup, pool);
        if (!g)
            continue;
        if (pool->pending_path)
            switch_pool(sup, pool, rt->server);
        start_successors(sup, pool, g);
    }
    collect_pools(sup);
}

/* The doorbell rang (or its watcher died): look, and listen again. */
static void doorbell_rang(void *data)
{
    wsgi_supervisor *sup = data;

    supervise(sup);
    if (sup->current && !apache_stopping())
        wsgi_doorbell_arm(&sup->bell, sup->current->pconf, sup->current->server, doorbell_rang, sup);
}

/* ---------------------------------------------------------------------------------------------- */
/* Deaths                                                                                         */

/* A successor died before it was ready: its predecessor serves on, and asks again after a back-off. */
static void successor_failed(wsgi_supervisor *sup, wsgi_daemon *n, server_rec *s, const char *how)
{
    wsgi_daemon *d;

    for (d = sup->daemons; d; d = d->next) {
        unsigned char *ps;
        if (d == n || successor_of(sup, d) != n)
            continue;
        ps = slot_of(d);
        wsgi_slot_set_u32(ps, WSGI_SLOT_SUCCESSOR, 0);
        wsgi_slot_set_u32(ps, WSGI_SLOT_SUCCESSOR_PID, 0);
        wsgi_slot_set_u32(ps, WSGI_SLOT_FLAGS, wsgi_slot_u32(ps, WSGI_SLOT_FLAGS) | WSGI_SLOT_F_SUCCESSOR_FAILED);
        d->successor_failures++;
        d->successor_after = apr_time_now() + apr_time_from_sec(backoff(d->successor_failures));
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, WSGILOGNO(01118)
                     "daemon process %d of process group '%s' (pid %ld), started to replace pid %ld, "
                     "exited with %s before it was ready; pid %ld goes on serving",
                     n->index, n->pool->name, (long)n->proc.pid, (long)d->proc.pid, how, (long)d->proc.pid);
        return;
    }
}

/* The process of a newer pool of d's group with d's index (a graceful restart that changed the group's
 * configuration replaced d's pool): its pid, for the restart history; 0 for none. */
static uint32_t stand_in(wsgi_supervisor *sup, const wsgi_daemon *d)
{
    const wsgi_daemon *n;

    for (n = sup->daemons; n; n = n->next)
        if (n->pool != d->pool && !n->pool->retired && n->index == d->index && !strcmp(n->pool->name, d->pool->name))
            return (uint32_t)n->proc.pid;
    return 0;
}

/* A daemon has been reaped: log it, record it, and replace it unless a successor took its place. */
static void daemon_exited(wsgi_daemon *d, int status)
{
    wsgi_supervisor *sup = d->sup;
    wsgi_runtime *rt = sup->current;
    server_rec *s = rt ? rt->server : ap_server_conf;
    apr_pool_t *p = rt ? rt->pconf : s->process->pool;
    wsgi_pool *pool = d->pool;
    unsigned char *slot = slot_of(d);
    wsgi_daemon *succ = successor_of(sup, d), *replacement;
    uint32_t predecessor = wsgi_slot_u32(slot, WSGI_SLOT_PREDECESSOR);
    /* Its ready time, not its state: a process that never got ready still says STOPPING as it exits. */
    int was_ready = wsgi_slot_u64(slot, WSGI_SLOT_READY_US) != 0;
    wsgi_group *g = d->stop_sent || apache_stopping() ? NULL : group_of(sup, pool);
    wsgi_end e = wsgi_end_of(sup, d, status);
    uint32_t reason = wsgi_ledger_end_reason(slot, was_ready, e.exit_status, e.sig, d->killed,
                                             d->stop_sent && !d->stop_signal);
    const char *how = wsgi_end_describe(p, &e);
    int quick, deliberate, index = d->index;
    uint32_t slotno = d->slot;
    uint64_t event;

    if (predecessor && !was_ready)
        successor_failed(sup, d, s, how);

    if (!g || (succ && is_ready(succ)) || (predecessor && !was_ready)) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, WSGILOGNO(01103)
                     "daemon process %d of process group '%s' (pid %ld) stopped with %s, reason %s%s",
                     d->index, pool->name, (long)d->proc.pid, how, wsgi_reason_name(reason),
                     succ ? apr_psprintf(p, "; pid %ld replaces it", (long)succ->proc.pid) : "");
        wsgi_end_record(sup, d, &e, reason, succ ? (uint32_t)succ->proc.pid : stand_in(sup, d));
        unlink_daemon(sup, d);
        supervise(sup);
        return;
    }

    deliberate = deliberate_exit(&e);
    quick = !deliberate && apr_time_now() - d->started < QUICK_EXIT ? d->quick_exits + 1 : 0;
    ap_log_error(APLOG_MARK,
                 quick ? APLOG_ERR : deliberate ? APLOG_INFO : APLOG_NOTICE, 0, s,
                 WSGILOGNO(01104) "daemon process %d of process group '%s' (pid %ld) exited with %s, reason %s"
                 "%s; %s", d->index, pool->name, (long)d->proc.pid, how, wsgi_reason_name(reason),
                 quick ? apr_psprintf(p, " %d time(s) in a row soon after starting", quick) : "",
                 succ ? apr_psprintf(p, "its successor pid %ld, still starting, replaces it", (long)succ->proc.pid)
                      : "starting a new one");
    /* Its successor, if one was starting, now stands in for nobody: it becomes a process of its own. */
    if (succ)
        wsgi_slot_set_u32(slot_of(succ), WSGI_SLOT_PREDECESSOR, 0);
    /* Recorded before its slot is reused by its replacement, whose pid is added after. */
    event = wsgi_end_record(sup, d, &e, reason, succ ? (uint32_t)succ->proc.pid : 0);
    unlink_daemon(sup, d);
    if (!succ && (replacement = start_daemon(sup, pool, g, slotno, index, quick, NULL)) != NULL && sup->ledger)
        wsgi_ledger_set_new_pid(sup->ledger, event, (uint32_t)replacement->proc.pid);
    supervise(sup);
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
         * time; a new generation, if any, starts its own daemons in pools of its own. */
        d->pool->retired = 1;
        send_stop(d, SIGTERM);
        break;
    case APR_OC_REASON_UNREGISTER:
        d->registered = 0;
        break;
    default:
        break;
    }
}

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
                             d->index, d->pool->name, (long)d->proc.pid);
                unlink_daemon(sup, d);
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
                send_stop(d, SIGTERM);
    }
    if (keep) {
        /* Unchanged: the daemons go on serving (or starting), now as part of this generation. */
        keep->generation = rt->generation;
        for (d = sup->daemons; d; d = d->next)
            if (d->pool == keep)
                d->generation = rt->generation;
        /* (A pending one takes over once its daemons are ready, as planned.) */
        if (keep == serving)
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, rt->server, WSGILOGNO(01119)
                         "process group '%s': configuration unchanged, its daemon processes are kept", g->name);
        return keep;
    }
    pool = wsgi_pool_create(rt->server, g, path, serving != NULL, rt->generation, fingerprint);
    if (!pool)
        return NULL;
    pool->next = sup->pools;
    sup->pools = pool;
    for (i = 0; i < g->processes; ++i)
        start_daemon(sup, pool, g, (uint32_t)i, i + 1, 0, NULL);
    return pool;
}

int wsgi_daemons_start(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    wsgi_supervisor *sup = supervisor_get(s->process->pool);
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
        wsgi_doorbell_arm(&sup->bell, pconf, s, doorbell_rang, sup);
    }

    /* Pools whose group is gone from the configuration: their daemons drain and exit. */
    for (pool = sup->pools; pool; pool = pool->next) {
        if (pool->retired || pool->generation == generation)
            continue;
        pool->retired = 1;
        for (d = sup->daemons; d; d = d->next)
            if (d->pool == pool)
                send_drain(d);
    }
    collect_pools(sup);
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

void wsgi_daemons_child_init(apr_pool_t *pchild, server_rec *s)
{
    wsgi_supervisor *sup = supervisor_get(s->process->pool);
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
 * children brings (maintenance, APR_OC_REASON_RESTART, then stop_all). Daemons already stopping are
 * left as they are.
 */
void wsgi_daemons_apache_stopping(server_rec *s)
{
    wsgi_supervisor *sup = supervisor_get(s->process->pool);
    wsgi_daemon *d;
    int n = 0;

    /* The health endpoint answers 503 from now on (Apache's children read the ledger). */
    wsgi_ledger_set_stopping(sup->ledger);
    for (d = sup->daemons; d; d = d->next) {
        unsigned char *slot = slot_of(d);
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
    return supervisor_get(s->process->pool)->pools;
}

wsgi_ledger *wsgi_daemons_ledger(server_rec *s)
{
    return supervisor_get(s->process->pool)->ledger;
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
                         "%d s of being asked to; sending SIGKILL", d->index, d->pool->name,
                         (long)d->proc.pid, d->stop_timeout + KILL_GRACE);
            kill(d->proc.pid, SIGKILL);
            d->killed = 1;
        }
    }
    /* A backstop for a doorbell that could not be rung or started. */
    supervise(sup);
    return DECLINED;
}
