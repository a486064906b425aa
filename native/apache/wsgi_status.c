/*
 * The collector of wsgi_status.h: one consistent reading of the board segments this process knows and
 * of the ledger, arranged by process group. Every rendering (JSON, Prometheus, the health endpoint,
 * mod_status's section) starts from what this returns: there is one way of counting.
 */
#include "wsgi_status.h"
#include "wsgi_daemon.h"

#include "http_config.h"
#include "apr_strings.h"

#include <math.h>
#include <string.h>

extern module AP_MODULE_DECLARE_DATA wsgi_module;

const char *const wsgi_status_class_names[WSGI_BOARD_STATUS_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx", "other" };
const char *const wsgi_status_state_names[WSGI_STATE_STOPPING + 1] = { "free", "starting", "ready", "draining",
                                                                       "stopping" };

#define DURATION_AT     ((WSGI_SLOT_DURATION - WSGI_SLOT_STATUS) / 8)
#define QUEUE_WAIT_AT   ((WSGI_SLOT_QUEUE_WAIT - WSGI_SLOT_STATUS) / 8)

double wsgi_status_class(const double *stats, int cls)
{
    return stats[cls];
}

double wsgi_status_requests(const double *stats)
{
    double n = 0;
    int i;

    for (i = 0; i < WSGI_BOARD_STATUS_CLASSES; ++i)
        n += stats[i];
    return n;
}

const double *wsgi_status_histogram(const double *stats, int queue_wait)
{
    return stats + (queue_wait ? QUEUE_WAIT_AT : DURATION_AT);
}

const char *wsgi_status_signal_name(apr_pool_t *p, int sig)
{
    const char *abbrev;

    if (sig <= 0)
        return "";
    abbrev = sigabbrev_np(sig);
    return abbrev ? apr_pstrcat(p, "SIG", abbrev, NULL) : apr_psprintf(p, "signal %d", sig);
}

static wsgi_status_group *group_named(wsgi_status *st, apr_pool_t *p, const char *name)
{
    wsgi_status_group *g;
    int i;

    for (i = 0; i < st->groups->nelts; ++i) {
        g = &APR_ARRAY_IDX(st->groups, i, wsgi_status_group);
        if (!strcmp(g->name, name))
            return g;
    }
    g = apr_array_push(st->groups);
    memset(g, 0, sizeof(*g));
    g->name = apr_pstrdup(p, name);
    g->label = *name ? g->name : "(default)";
    g->procs = apr_array_make(p, 4, sizeof(wsgi_status_process));
    g->accept_queue = -1;
    return g;
}

/* One live process from its slot. The daemon writes most of it: every value is taken as it is, bounded. */
static void read_slot(wsgi_status_process *w, const unsigned char *slot, uint32_t i, uint32_t threads)
{
    volatile const double *stats = (volatile const double *)(slot + WSGI_SLOT_STATUS);
    int k;

    memset(w, 0, sizeof(*w));
    w->slot = i;
    w->state = wsgi_slot_u32(slot, WSGI_SLOT_STATE);
    if (w->state > WSGI_STATE_STOPPING)
        w->state = WSGI_STATE_STOPPING;
    w->pid = wsgi_slot_u32(slot, WSGI_SLOT_PID);
    w->index = wsgi_slot_u32(slot, WSGI_SLOT_INDEX);
    w->generation = wsgi_slot_u32(slot, WSGI_SLOT_GENERATION);
    w->started_us = wsgi_slot_u64(slot, WSGI_SLOT_STARTED_US);
    w->ready_us = wsgi_slot_u64(slot, WSGI_SLOT_READY_US);
    w->heartbeat_us = wsgi_slot_u64(slot, WSGI_SLOT_HEARTBEAT_US);
    w->rss = wsgi_slot_u64(slot, WSGI_SLOT_RSS);
    w->cpu_seconds = (double)wsgi_slot_u64(slot, WSGI_SLOT_CPU_US) / 1e6;
    w->threads = threads;
    w->active = wsgi_slot_u32(slot, WSGI_SLOT_ACTIVE);
    w->threads_busy = wsgi_slot_u32(slot, WSGI_SLOT_THREADS_BUSY);
    if (w->threads_busy > threads)
        w->threads_busy = threads;
    w->queued = wsgi_slot_u32(slot, WSGI_SLOT_QUEUED);
    w->websockets = wsgi_slot_u32(slot, WSGI_SLOT_WEBSOCKETS);
    for (k = 0; k < WSGI_STATS_VALUES; ++k)
        w->stats[k] = wsgi_ledger_sane(stats[k]);
}

/* The pools of one group, newest first: its slots are labelled from 0 in that order. */
static int newer_first(const void *a, const void *b)
{
    const wsgi_pool *x = *(wsgi_pool *const *)a, *y = *(wsgi_pool *const *)b;
    uint32_t gx = *(const uint32_t *)(x->seg->base + WSGI_BOARD_H_GENERATION);
    uint32_t gy = *(const uint32_t *)(y->seg->base + WSGI_BOARD_H_GENERATION);

    return gx == gy ? 0 : gx > gy ? -1 : 1;
}

static void read_pools(wsgi_status *st, apr_pool_t *p, wsgi_pool *pools, wsgi_state *cfg)
{
    apr_array_header_t *list = apr_array_make(p, 8, sizeof(wsgi_pool *));
    wsgi_pool *pool;
    int i, j;

    for (pool = pools; pool; pool = pool->next)
        if (pool->seg && pool->seg->base)
            APR_ARRAY_PUSH(list, wsgi_pool *) = pool;
    qsort(list->elts, (size_t)list->nelts, sizeof(wsgi_pool *), newer_first);
    for (i = 0; i < list->nelts; ++i) {
        wsgi_pool *pl = APR_ARRAY_IDX(list, i, wsgi_pool *);
        wsgi_status_group *g = group_named(st, p, pl->name);
        const unsigned char *h = pl->seg->base;
        uint32_t threads = *(const uint32_t *)(h + WSGI_BOARD_H_THREADS), offset = 0;
        wsgi_group *conf = cfg ? wsgi_group_find(cfg, pl->name) : NULL;

        /* Slots of this group's newer pools come first. */
        for (j = 0; j < g->procs->nelts; ++j) {
            uint32_t end = APR_ARRAY_IDX(g->procs, j, wsgi_status_process).label + 1;
            if (end > offset)
                offset = end;
        }
        if (!g->processes) {
            g->processes = conf ? conf->processes : (int)*(const uint32_t *)(h + WSGI_BOARD_H_PROCESSES);
            g->threads = conf ? conf->threads : (int)threads;
        }
        for (j = 0; j < (int)pl->seg->slots; ++j) {
            const unsigned char *slot = wsgi_slot(pl->seg, (uint32_t)j);
            wsgi_status_process *w;
            if (wsgi_slot_u32(slot, WSGI_SLOT_STATE) == WSGI_STATE_FREE)
                continue;
            w = apr_array_push(g->procs);
            read_slot(w, slot, (uint32_t)j, threads);
            w->label = offset + (uint32_t)j;
        }
    }
}

/* The ledger's part: the history and the totals of processes that ended. */
static void read_ledger(wsgi_status *st, apr_pool_t *p, const wsgi_ledger *l)
{
    uint64_t n = l->events, k;
    uint32_t i;

    st->apache_stopping = l->apache_stopping != 0;
    for (i = 0; i < l->ngroups && i < WSGI_LEDGER_GROUPS; ++i) {
        const wsgi_ledger_group *lg = &l->groups[i];
        char name[WSGI_BOARD_NAME_MAX];
        wsgi_status_group *g;
        int r;
        memcpy(name, lg->name, sizeof(name));
        name[sizeof(name) - 1] = '\0';
        g = group_named(st, p, name);
        g->ended = lg->ended;
        g->ended_cpu_seconds = lg->cpu_seconds;
        for (r = 0; r < WSGI_REASON_COUNT; ++r)
            g->by_reason[r] = lg->by_reason[r];
        for (r = 0; r < WSGI_STATS_VALUES; ++r)
            g->stats[r] = wsgi_ledger_sane(lg->stats[r]);
    }
    for (k = 0; k < WSGI_LEDGER_HISTORY && k < n; ++k) {
        const wsgi_ledger_event *ev = &l->history[(n - 1 - k) % WSGI_LEDGER_HISTORY];
        wsgi_status_restart *r = apr_array_push(st->restarts);
        r->time_us = ev->time_us;
        r->group = ev->group < l->ngroups
                       ? (*l->groups[ev->group].name ? apr_pstrndup(p, l->groups[ev->group].name, WSGI_BOARD_NAME_MAX - 1)
                                                     : "(default)")
                       : "?";
        r->slot = ev->slot;
        r->index = ev->index;
        r->generation = ev->generation;
        r->old_pid = ev->old_pid;
        r->new_pid = ev->new_pid;
        r->reason = wsgi_reason_name(ev->reason);
        r->exit_status = ev->exit_status;
        r->signal = ev->signal;
        r->core = (int)ev->core;
    }
}

/* Group totals from its live processes, and why each was started. */
static void sum_up(wsgi_status *st)
{
    int i, j, k;

    for (i = 0; i < st->groups->nelts; ++i) {
        wsgi_status_group *g = &APR_ARRAY_IDX(st->groups, i, wsgi_status_group);
        for (j = 0; j < g->procs->nelts; ++j) {
            wsgi_status_process *w = &APR_ARRAY_IDX(g->procs, j, wsgi_status_process);
            for (k = 0; k < WSGI_STATS_VALUES; ++k)
                g->stats[k] += w->stats[k];
            g->by_state[w->state]++;
            g->active += w->active;
            g->threads_busy += w->threads_busy;
            g->threads_idle += w->threads - w->threads_busy;
            g->queued += w->queued;
            g->websockets += w->websockets;
            for (k = 0; k < st->restarts->nelts && !w->start_reason; ++k) {
                const wsgi_status_restart *r = &APR_ARRAY_IDX(st->restarts, k, wsgi_status_restart);
                if (r->new_pid == w->pid && !strcmp(r->group, g->label))
                    w->start_reason = r->reason;
            }
        }
    }
}

static void read_backlogs(wsgi_status *st, wsgi_pool *pools)
{
    wsgi_pool *pool;
    int i;

    for (i = 0; i < st->groups->nelts; ++i) {
        wsgi_status_group *g = &APR_ARRAY_IDX(st->groups, i, wsgi_status_group);
        for (pool = pools; pool; pool = pool->next) {
            long n;
            if (strcmp(pool->name, g->name) || !pool->listen_ino || (n = wsgi_backlog_of(pool->listen_ino)) < 0)
                continue;
            g->accept_queue = (g->accept_queue < 0 ? 0 : g->accept_queue) + n;
        }
    }
}

wsgi_status *wsgi_status_collect(request_rec *r)
{
    wsgi_server_conf *sc = ap_get_module_config(r->server->module_config, &wsgi_module);
    wsgi_state *cfg = sc ? sc->state : NULL;
    wsgi_pool *pools = wsgi_daemons_pools(r->server);
    wsgi_ledger *l = wsgi_daemons_ledger(r->server);
    wsgi_status *st = NULL;
    int attempt, i;

    for (attempt = 0; attempt < 50; ++attempt) {
        uint32_t seq = l ? wsgi_ledger_read_begin(l) : 0;
        st = apr_pcalloc(r->pool, sizeof(*st));
        st->now = apr_time_now();
        st->ledger = l != NULL;
        st->groups = apr_array_make(r->pool, 4, sizeof(wsgi_status_group));
        st->restarts = apr_array_make(r->pool, WSGI_LEDGER_HISTORY, sizeof(wsgi_status_restart));
        /* The configuration's groups first, in its order, even without a pool (a failed start). */
        for (i = 0; cfg && i < cfg->groups->nelts; ++i) {
            wsgi_group *cg = APR_ARRAY_IDX(cfg->groups, i, wsgi_group *);
            wsgi_status_group *g = group_named(st, r->pool, cg->name);
            g->configured = 1;
            g->processes = cg->processes;
            g->threads = cg->threads;
        }
        read_pools(st, r->pool, pools, cfg);
        if (l)
            read_ledger(st, r->pool, l);
        if (!l || !wsgi_ledger_read_retry(l, seq))
            break;
    }
    sum_up(st);
    read_backlogs(st, pools);
    return st;
}

int wsgi_status_healthy(const wsgi_status *st, const char **why)
{
    int i;

    if (st->apache_stopping) {
        *why = "Apache is stopping";
        return 0;
    }
    for (i = 0; i < st->groups->nelts; ++i) {
        const wsgi_status_group *g = &APR_ARRAY_IDX(st->groups, i, wsgi_status_group);
        if (g->configured && !g->by_state[WSGI_STATE_READY]) {
            *why = apr_psprintf(st->groups->pool, "process group '%s' has no ready process", g->label);
            return 0;
        }
    }
    *why = "every process group has a ready process";
    return 1;
}
