/*
 * SetHandler wsgi-status: the collector's reading (wsgi_status.h) as JSON. Times are seconds since the
 * epoch (fractions allowed), sizes bytes, durations seconds:
 *
 *   { "time", "apache_stopping", "healthy",
 *     "groups": [ { "name", "default", "configured", "processes", "threads",
 *                   "requests", "requests_by_status": {"1xx".."5xx","other"},
 *                   "request_duration_seconds": {"count","sum"}, "queue_wait_seconds": {"count","sum"},
 *                   "active", "threads_busy", "threads_idle", "queued", "accept_queue", "websockets",
 *                   "processes_by_state": {"starting","ready","draining","stopping"},
 *                   "processes_ended", "restarts": {reason word: count...},
 *                   "process": [ { "slot", "index", "pid", "generation", "state", "started_at",
 *                                  "ready_at", "heartbeat_at", "requests", "active", "threads_busy",
 *                                  "threads_idle", "queued", "websockets", "rss", "cpu_seconds",
 *                                  "last_restart_reason" } ] } ],
 *     "restarts": [ { "time", "group", "slot", "index", "generation", "old_pid", "new_pid", "reason",
 *                     "exit_status", "signal", "signal_name" } ]   newest first, at most 50 }
 */
#include "wsgi_status.h"
#include "wsgi_json.h"

#include "http_protocol.h"
#include "apr_strings.h"

static void seconds(wsgi_json *j, const char *key, uint64_t us)
{
    wsgi_json_key(j, key);
    if (us)
        wsgi_json_number(j, (double)us / 1e6);
    else
        wsgi_json_null(j);
}

static void histogram_summary(wsgi_json *j, const char *key, const double *stats, int queue_wait)
{
    const double *h = wsgi_status_histogram(stats, queue_wait);
    double count = 0;
    int i;

    for (i = 0; i < WSGI_BOARD_BUCKETS; ++i)
        count += h[i];
    wsgi_json_key(j, key);
    wsgi_json_object_open(j);
    wsgi_json_key(j, "count");
    wsgi_json_number(j, count);
    wsgi_json_key(j, "sum");
    wsgi_json_number(j, h[WSGI_BOARD_BUCKETS]);
    wsgi_json_object_close(j);
}

static void process_json(wsgi_json *j, const wsgi_status_process *w)
{
    wsgi_json_object_open(j);
    wsgi_json_int_member(j, "slot", w->label);
    wsgi_json_int_member(j, "index", w->index);
    wsgi_json_int_member(j, "pid", w->pid);
    wsgi_json_int_member(j, "generation", w->generation);
    wsgi_json_string_member(j, "state", wsgi_status_state_names[w->state]);
    seconds(j, "started_at", w->started_us);
    seconds(j, "ready_at", w->ready_us);
    seconds(j, "heartbeat_at", w->heartbeat_us);
    wsgi_json_key(j, "requests");
    wsgi_json_number(j, wsgi_status_requests(w->stats));
    wsgi_json_int_member(j, "active", w->active);
    wsgi_json_int_member(j, "threads_busy", w->threads_busy);
    wsgi_json_int_member(j, "threads_idle", (apr_int64_t)w->threads - w->threads_busy);
    wsgi_json_int_member(j, "queued", w->queued);
    wsgi_json_int_member(j, "websockets", w->websockets);
    wsgi_json_int_member(j, "rss", (apr_int64_t)w->rss);
    wsgi_json_key(j, "cpu_seconds");
    wsgi_json_number(j, w->cpu_seconds);
    wsgi_json_string_member(j, "last_restart_reason", w->start_reason);
    wsgi_json_object_close(j);
}

static void group_json(wsgi_json *j, const wsgi_status_group *g)
{
    int i;

    wsgi_json_object_open(j);
    wsgi_json_string_member(j, "name", g->label);
    wsgi_json_key(j, "default");
    wsgi_json_bool(j, !*g->name);
    wsgi_json_key(j, "configured");
    wsgi_json_bool(j, g->configured);
    wsgi_json_int_member(j, "processes", g->processes);
    wsgi_json_int_member(j, "threads", g->threads);
    wsgi_json_key(j, "requests");
    wsgi_json_number(j, wsgi_status_requests(g->stats));
    wsgi_json_key(j, "requests_by_status");
    wsgi_json_object_open(j);
    for (i = 0; i < WSGI_BOARD_STATUS_CLASSES; ++i) {
        wsgi_json_key(j, wsgi_status_class_names[i]);
        wsgi_json_number(j, wsgi_status_class(g->stats, i));
    }
    wsgi_json_object_close(j);
    histogram_summary(j, "request_duration_seconds", g->stats, 0);
    histogram_summary(j, "queue_wait_seconds", g->stats, 1);
    wsgi_json_int_member(j, "active", g->active);
    wsgi_json_int_member(j, "threads_busy", g->threads_busy);
    wsgi_json_int_member(j, "threads_idle", g->threads_idle);
    wsgi_json_int_member(j, "queued", g->queued);
    wsgi_json_key(j, "accept_queue");
    if (g->accept_queue >= 0)
        wsgi_json_int(j, g->accept_queue);
    else
        wsgi_json_null(j);
    wsgi_json_int_member(j, "websockets", g->websockets);
    wsgi_json_key(j, "processes_by_state");
    wsgi_json_object_open(j);
    for (i = WSGI_STATE_STARTING; i <= WSGI_STATE_STOPPING; ++i) {
        wsgi_json_key(j, wsgi_status_state_names[i]);
        wsgi_json_int(j, g->by_state[i]);
    }
    wsgi_json_object_close(j);
    wsgi_json_int_member(j, "processes_ended", (apr_int64_t)g->ended);
    wsgi_json_key(j, "restarts");
    wsgi_json_object_open(j);
    for (i = 1; i < WSGI_REASON_COUNT; ++i) {
        wsgi_json_key(j, wsgi_reason_name((uint32_t)i));
        wsgi_json_int(j, (apr_int64_t)g->by_reason[i]);
    }
    wsgi_json_object_close(j);
    wsgi_json_key(j, "process");
    wsgi_json_array_open(j);
    for (i = 0; i < g->procs->nelts; ++i)
        process_json(j, &APR_ARRAY_IDX(g->procs, i, wsgi_status_process));
    wsgi_json_array_close(j);
    wsgi_json_object_close(j);
}

static void restart_json(wsgi_json *j, apr_pool_t *p, const wsgi_status_restart *r)
{
    wsgi_json_object_open(j);
    seconds(j, "time", r->time_us);
    wsgi_json_string_member(j, "group", r->group);
    wsgi_json_int_member(j, "slot", r->slot);
    wsgi_json_int_member(j, "index", r->index);
    wsgi_json_int_member(j, "generation", r->generation);
    wsgi_json_int_member(j, "old_pid", r->old_pid);
    wsgi_json_key(j, "new_pid");
    if (r->new_pid)
        wsgi_json_int(j, r->new_pid);
    else
        wsgi_json_null(j);
    wsgi_json_string_member(j, "reason", r->reason);
    wsgi_json_key(j, "exit_status");
    if (r->exit_status >= 0)
        wsgi_json_int(j, r->exit_status);
    else
        wsgi_json_null(j);
    wsgi_json_key(j, "signal");
    if (r->signal)
        wsgi_json_int(j, r->signal);
    else
        wsgi_json_null(j);
    wsgi_json_string_member(j, "signal_name", r->signal ? wsgi_status_signal_name(p, r->signal) : NULL);
    wsgi_json_object_close(j);
}

int wsgi_status_json_handler(request_rec *r)
{
    wsgi_status *st;
    const char *why;
    wsgi_json j;
    int i;

    if (!r->handler || strcmp(r->handler, "wsgi-status"))
        return DECLINED;
    r->allowed |= AP_METHOD_BIT << M_GET;
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    st = wsgi_status_collect(r);
    wsgi_json_init(&j, r->pool);
    wsgi_json_object_open(&j);
    seconds(&j, "time", (uint64_t)st->now);
    wsgi_json_key(&j, "apache_stopping");
    wsgi_json_bool(&j, st->apache_stopping);
    wsgi_json_key(&j, "healthy");
    wsgi_json_bool(&j, wsgi_status_healthy(st, &why));
    wsgi_json_key(&j, "groups");
    wsgi_json_array_open(&j);
    for (i = 0; i < st->groups->nelts; ++i)
        group_json(&j, &APR_ARRAY_IDX(st->groups, i, wsgi_status_group));
    wsgi_json_array_close(&j);
    wsgi_json_key(&j, "restarts");
    wsgi_json_array_open(&j);
    for (i = 0; i < st->restarts->nelts; ++i)
        restart_json(&j, r->pool, &APR_ARRAY_IDX(st->restarts, i, wsgi_status_restart));
    wsgi_json_array_close(&j);
    wsgi_json_object_close(&j);
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (!r->header_only)
        ap_rputs(wsgi_json_text(&j), r);
    return OK;
}
