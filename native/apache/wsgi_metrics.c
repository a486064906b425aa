/*
 * SetHandler wsgi-metrics: the collector's reading (wsgi_status.h) in the Prometheus text exposition
 * format (0.0.4), following its conventions: base units (seconds, bytes), counters named *_total,
 * histograms that add up across processes (the request statistics of every process of a group, those
 * that ended included, so a group's counters never go backwards when a process is replaced), and labels
 * of stable identity: `group`, and for per-process series `slot` (a new process in a slot continues its
 * series; a pid never labels anything).
 *
 *   mod_wsgi_requests_total{group,status_class}            counter
 *   mod_wsgi_request_duration_seconds{group}               histogram (from Apache reading the request)
 *   mod_wsgi_request_queue_wait_seconds{group}             histogram (until a thread took it)
 *   mod_wsgi_requests_active{group}                        gauge
 *   mod_wsgi_requests_waiting{group,queue="socket"|"daemon"}   gauge
 *   mod_wsgi_threads{group,state="busy"|"idle"}            gauge
 *   mod_wsgi_processes{group,state}                        gauge
 *   mod_wsgi_restarts_total{group,reason}                  counter: processes that ended, by reason word
 *   mod_wsgi_websocket_connections{group}                  gauge
 *   mod_wsgi_process_resident_memory_bytes{group,slot}     gauge
 *   mod_wsgi_process_cpu_seconds_total{group,slot}         counter
 *   mod_wsgi_process_start_time_seconds{group,slot}        gauge
 *   mod_wsgi_process_requests_total{group,slot}            counter
 *   mod_wsgi_healthy                                       gauge: what wsgi-health answers (1: 200)
 */
#include "wsgi_status.h"

#include "http_protocol.h"
#include "apr_strings.h"

#include <stdio.h>

/* A label value: backslash, double quote and newline escaped. */
static const char *label(apr_pool_t *p, const char *v)
{
    char *out, *w;

    if (!strpbrk(v, "\\\"\n"))
        return v;
    out = w = apr_palloc(p, 2 * strlen(v) + 1);
    for (; *v; ++v) {
        if (*v == '\\' || *v == '"') {
            *w++ = '\\';
            *w++ = *v;
        }
        else if (*v == '\n') {
            *w++ = '\\';
            *w++ = 'n';
        }
        else
            *w++ = *v;
    }
    *w = '\0';
    return out;
}

static void family(apr_bucket_brigade *bb, const char *name, const char *type, const char *help)
{
    apr_brigade_printf(bb, NULL, NULL, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Values: integers without a fraction, others with 15 significant digits (C's snprintf: APR's %g
 * leaves out the 0 before the point). */
static const char *num(apr_pool_t *p, double v)
{
    char buf[40];

    if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        snprintf(buf, sizeof(buf), "%lld", (long long)v);
    else
        snprintf(buf, sizeof(buf), "%.15g", v);
    return apr_pstrdup(p, buf);
}

static void histogram(apr_bucket_brigade *bb, apr_pool_t *p, const char *name, const char *g, const double *stats,
                      int queue_wait)
{
    const double *h = wsgi_status_histogram(stats, queue_wait);
    double cumulative = 0;
    int i;

    for (i = 0; i < WSGI_BOARD_BUCKETS; ++i) {
        cumulative += h[i];
        apr_brigade_printf(bb, NULL, NULL, "%s_bucket{group=\"%s\",le=\"%s\"} %s\n", name, g,
                           i < WSGI_BOARD_BUCKETS - 1 ? num(p, wsgi_board_bounds[i]) : "+Inf", num(p, cumulative));
    }
    apr_brigade_printf(bb, NULL, NULL, "%s_sum{group=\"%s\"} %s\n%s_count{group=\"%s\"} %s\n", name, g,
                       num(p, h[WSGI_BOARD_BUCKETS]), name, g, num(p, cumulative));
}

#define EACH_GROUP(st, g, i) \
    for ((i) = 0; (i) < (st)->groups->nelts && ((g) = &APR_ARRAY_IDX((st)->groups, (i), wsgi_status_group)); ++(i))

static void render(apr_bucket_brigade *bb, apr_pool_t *p, const wsgi_status *st)
{
    const wsgi_status_group *g;
    const char **names = apr_palloc(p, sizeof(char *) * (size_t)(st->groups->nelts + 1)), *why;
    int i, k;

    EACH_GROUP(st, g, i)
        names[i] = label(p, g->label);

    family(bb, "mod_wsgi_requests_total", "counter", "Requests answered by the daemon processes, by status class.");
    EACH_GROUP(st, g, i)
        for (k = 0; k < WSGI_BOARD_STATUS_CLASSES; ++k)
            apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_requests_total{group=\"%s\",status_class=\"%s\"} %s\n",
                               names[i], wsgi_status_class_names[k], num(p, wsgi_status_class(g->stats, k)));
    family(bb, "mod_wsgi_request_duration_seconds", "histogram",
           "Time from Apache reading a request to the end of its response in the daemon process.");
    EACH_GROUP(st, g, i)
        histogram(bb, p, "mod_wsgi_request_duration_seconds", names[i], g->stats, 0);
    family(bb, "mod_wsgi_request_queue_wait_seconds", "histogram",
           "Time from Apache reading a request until an application thread took it.");
    EACH_GROUP(st, g, i)
        histogram(bb, p, "mod_wsgi_request_queue_wait_seconds", names[i], g->stats, 1);
    family(bb, "mod_wsgi_requests_active", "gauge", "Requests in progress in the daemon processes.");
    EACH_GROUP(st, g, i)
        apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_requests_active{group=\"%s\"} %u\n", names[i], g->active);
    family(bb, "mod_wsgi_requests_waiting", "gauge",
           "Requests waiting: in the group's socket for a process to accept them, or in a process for a thread.");
    EACH_GROUP(st, g, i) {
        if (g->accept_queue >= 0)
            apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_requests_waiting{group=\"%s\",queue=\"socket\"} %ld\n",
                               names[i], g->accept_queue);
        apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_requests_waiting{group=\"%s\",queue=\"daemon\"} %u\n", names[i],
                           g->queued);
    }
    family(bb, "mod_wsgi_threads", "gauge", "Request threads of the live daemon processes, busy or idle.");
    EACH_GROUP(st, g, i)
        apr_brigade_printf(bb, NULL, NULL,
                           "mod_wsgi_threads{group=\"%s\",state=\"busy\"} %u\nmod_wsgi_threads{group=\"%s\",state=\"idle\"} %u\n",
                           names[i], g->threads_busy, names[i], g->threads_idle);
    family(bb, "mod_wsgi_processes", "gauge", "Daemon processes by state.");
    EACH_GROUP(st, g, i)
        for (k = WSGI_STATE_STARTING; k <= WSGI_STATE_STOPPING; ++k)
            apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_processes{group=\"%s\",state=\"%s\"} %d\n", names[i],
                               wsgi_status_state_names[k], g->by_state[k]);
    family(bb, "mod_wsgi_restarts_total", "counter", "Daemon processes that ended, by the reason they ended.");
    EACH_GROUP(st, g, i)
        for (k = 1; k < WSGI_REASON_COUNT; ++k)
            apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_restarts_total{group=\"%s\",reason=\"%s\"} %" APR_UINT64_T_FMT "\n",
                               names[i], wsgi_reason_name((uint32_t)k), (apr_uint64_t)g->by_reason[k]);
    family(bb, "mod_wsgi_websocket_connections", "gauge", "Open WebSocket connections.");
    EACH_GROUP(st, g, i)
        apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_websocket_connections{group=\"%s\"} %u\n", names[i], g->websockets);

    family(bb, "mod_wsgi_process_resident_memory_bytes", "gauge", "Resident memory of each daemon process.");
    EACH_GROUP(st, g, i)
        for (k = 0; k < g->procs->nelts; ++k) {
            const wsgi_status_process *w = &APR_ARRAY_IDX(g->procs, k, wsgi_status_process);
            apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_process_resident_memory_bytes{group=\"%s\",slot=\"%u\"} %"
                               APR_UINT64_T_FMT "\n", names[i], w->label, (apr_uint64_t)w->rss);
        }
    family(bb, "mod_wsgi_process_cpu_seconds_total", "counter", "User and system CPU time of each daemon process.");
    EACH_GROUP(st, g, i)
        for (k = 0; k < g->procs->nelts; ++k) {
            const wsgi_status_process *w = &APR_ARRAY_IDX(g->procs, k, wsgi_status_process);
            apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_process_cpu_seconds_total{group=\"%s\",slot=\"%u\"} %s\n",
                               names[i], w->label, num(p, w->cpu_seconds));
        }
    family(bb, "mod_wsgi_process_start_time_seconds", "gauge", "When each daemon process started, since the epoch.");
    EACH_GROUP(st, g, i)
        for (k = 0; k < g->procs->nelts; ++k) {
            const wsgi_status_process *w = &APR_ARRAY_IDX(g->procs, k, wsgi_status_process);
            apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_process_start_time_seconds{group=\"%s\",slot=\"%u\"} %s\n",
                               names[i], w->label, num(p, (double)w->started_us / 1e6));
        }
    family(bb, "mod_wsgi_process_requests_total", "counter", "Requests answered by each daemon process.");
    EACH_GROUP(st, g, i)
        for (k = 0; k < g->procs->nelts; ++k) {
            const wsgi_status_process *w = &APR_ARRAY_IDX(g->procs, k, wsgi_status_process);
            apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_process_requests_total{group=\"%s\",slot=\"%u\"} %s\n",
                               names[i], w->label, num(p, wsgi_status_requests(w->stats)));
        }
    family(bb, "mod_wsgi_healthy", "gauge",
           "1 while every process group has a ready process and Apache is not stopping (wsgi-health answers 200).");
    apr_brigade_printf(bb, NULL, NULL, "mod_wsgi_healthy %d\n", wsgi_status_healthy(st, &why));
}

int wsgi_metrics_handler(request_rec *r)
{
    apr_bucket_brigade *bb;

    if (!r->handler || strcmp(r->handler, "wsgi-metrics"))
        return DECLINED;
    r->allowed |= AP_METHOD_BIT << M_GET;
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only)
        return OK;
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    render(bb, r->pool, wsgi_status_collect(r));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    return ap_pass_brigade(r->output_filters, bb) == APR_SUCCESS ? OK : AP_FILTER_ERROR;
}
