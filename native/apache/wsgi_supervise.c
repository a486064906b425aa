/*
 * The daemons of a running generation (wsgi_daemon.h, docs/restarts.md): starting one in a slot of its
 * pool, the successors daemons ask for (one at a time per pool), the switch to a newer pool of a group
 * once its daemons are ready, and what happens when a daemon exits: replaced in its slot, or not when a
 * successor stands in its place; a successor that dies before it is ready leaves its predecessor serving.
 * The parent acts when a child of its exits: its main loop reaps children once a second, and sooner when
 * SIGCHLD interrupts its sleep (wsgi_daemon.c installs the handler). Daemons reach it through the
 * doorbell. What it reads on the board is trusted for the group whose daemons wrote it, and for nothing
 * else.
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

#define SUPERVISOR_KEY  "mod_wsgi_supervisor"
/* A daemon that dies this soon after starting is restarted with a growing delay. Apache's main loop
 * notices deaths up to a second late, so "within a second" reads as up to two. */
#define QUICK_EXIT      apr_time_from_sec(2)
#define MAX_BACKOFF     30                      /* seconds */

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */

wsgi_supervisor *wsgi_supervisor_get(apr_pool_t *process_pool)
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

unsigned char *wsgi_daemon_slot(const wsgi_daemon *d)
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

void wsgi_unlink_daemon(wsgi_supervisor *sup, wsgi_daemon *d)
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

void wsgi_send_stop(wsgi_daemon *d, int sig)
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
void wsgi_send_drain(wsgi_daemon *d)
{
    unsigned char *slot = wsgi_daemon_slot(d);

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

/*
 * Starts a daemon in `slot` of the pool: the first of its index, a replacement of a process that died
 * (`quick_exits` in a row soon after starting), or the successor of `predecessor`.
 */
wsgi_daemon *wsgi_start_daemon(wsgi_supervisor *sup, wsgi_pool *pool, wsgi_group *g, uint32_t slot, int index,
                                 int quick_exits, wsgi_daemon *predecessor)
{
    wsgi_runtime *rt = sup->current;
    unsigned char *s = wsgi_slot(pool->seg, slot), *ps = predecessor ? wsgi_daemon_slot(predecessor) : NULL;
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
    apr_proc_other_child_register(&d->proc, wsgi_daemon_maintenance, d, NULL, rt->pconf);
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
    unsigned char *s = wsgi_daemon_slot(d);
    uint32_t succ = wsgi_slot_u32(s, WSGI_SLOT_SUCCESSOR);
    wsgi_daemon *n;

    if (!succ || succ > d->pool->seg->slots)
        return NULL;
    n = daemon_in(sup, d->pool, succ - 1);
    return n && (uint32_t)n->proc.pid == wsgi_slot_u32(s, WSGI_SLOT_SUCCESSOR_PID) ? n : NULL;
}

static int is_ready(const wsgi_daemon *d)
{
    return wsgi_slot_u32(wsgi_daemon_slot(d), WSGI_SLOT_STATE) == WSGI_STATE_READY;
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
            !(wsgi_slot_u32(wsgi_daemon_slot(d), WSGI_SLOT_FLAGS) & WSGI_SLOT_F_WANT_SUCCESSOR) || successor_of(sup, d))
            continue;
        if (!free_slot(sup, pool, &slot))
            return;
        wsgi_start_daemon(sup, pool, g, slot, d->index, 0, d);
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
                wsgi_send_drain(d);
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, WSGILOGNO(01117)
                 "process group '%s': the daemon processes of the new configuration are ready and "
                 "take over; the previous ones finish their requests", pool->name);
}

/* Closes pools that are retired and have no daemon left. */
void wsgi_collect_pools(wsgi_supervisor *sup)
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

void wsgi_supervise(wsgi_supervisor *sup)
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
    wsgi_collect_pools(sup);
}

/* The doorbell rang (or its watcher died): look, and listen again. */
void wsgi_doorbell_rang(void *data)
{
    wsgi_supervisor *sup = data;

    wsgi_supervise(sup);
    if (sup->current && !apache_stopping())
        wsgi_doorbell_arm(&sup->bell, sup->current->pconf, sup->current->server, wsgi_doorbell_rang, sup);
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
        ps = wsgi_daemon_slot(d);
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
    unsigned char *slot = wsgi_daemon_slot(d);
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
        wsgi_unlink_daemon(sup, d);
        wsgi_supervise(sup);
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
        wsgi_slot_set_u32(wsgi_daemon_slot(succ), WSGI_SLOT_PREDECESSOR, 0);
    /* Recorded before its slot is reused by its replacement, whose pid is added after. */
    event = wsgi_end_record(sup, d, &e, reason, succ ? (uint32_t)succ->proc.pid : 0);
    wsgi_unlink_daemon(sup, d);
    if (!succ && (replacement = wsgi_start_daemon(sup, pool, g, slotno, index, quick, NULL)) != NULL && sup->ledger)
        wsgi_ledger_set_new_pid(sup->ledger, event, (uint32_t)replacement->proc.pid);
    wsgi_supervise(sup);
}

/* apr_proc_other_child callback, from the parent's main loop. */
void wsgi_daemon_maintenance(int reason, void *data, int status)
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
        wsgi_send_stop(d, SIGTERM);
        break;
    case APR_OC_REASON_UNREGISTER:
        d->registered = 0;
        break;
    default:
        break;
    }
}


