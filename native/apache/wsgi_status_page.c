/*
 * The daemon groups' section of Apache's own status page (mod_status, through its optional status_hook):
 * an HTML table of every process and the restart history, or under ?auto, "Key: value" lines. Also
 * registers the handlers of wsgi_status.h. mod_status is optional: without it the hook is never run.
 */
#include "wsgi_status.h"

#include "http_config.h"
#include "http_protocol.h"
#include "apr_optional_hooks.h"
#include "apr_strings.h"
#include "mod_status.h"

static const char *when(apr_pool_t *p, uint64_t us)
{
    char buf[APR_RFC822_DATE_LEN];

    if (!us)
        return "-";
    apr_rfc822_date(buf, (apr_time_t)us);
    return apr_pstrdup(p, buf);
}

static void page_auto(request_rec *r, const wsgi_status *st)
{
    const char *why;
    int i, k;

    ap_rprintf(r, "WSGIHealthy: %d\nWSGIApacheStopping: %d\nWSGIGroups: %d\n", wsgi_status_healthy(st, &why),
               st->apache_stopping, st->groups->nelts);
    for (i = 0; i < st->groups->nelts; ++i) {
        const wsgi_status_group *g = &APR_ARRAY_IDX(st->groups, i, wsgi_status_group);
        const char *n = g->label;
        ap_rprintf(r, "WSGI %s Requests: %.0f\n", n, wsgi_status_requests(g->stats));
        for (k = 0; k < WSGI_BOARD_STATUS_CLASSES; ++k)
            ap_rprintf(r, "WSGI %s Requests %s: %.0f\n", n, wsgi_status_class_names[k], wsgi_status_class(g->stats, k));
        ap_rprintf(r, "WSGI %s Active: %u\nWSGI %s BusyThreads: %u\nWSGI %s IdleThreads: %u\nWSGI %s Queued: %u\n", n,
                   g->active, n, g->threads_busy, n, g->threads_idle, n, g->queued);
        if (g->accept_queue >= 0)
            ap_rprintf(r, "WSGI %s AcceptQueue: %ld\n", n, g->accept_queue);
        for (k = WSGI_STATE_STARTING; k <= WSGI_STATE_STOPPING; ++k)
            ap_rprintf(r, "WSGI %s Processes %s: %d\n", n, wsgi_status_state_names[k], g->by_state[k]);
        ap_rprintf(r, "WSGI %s Restarts: %" APR_UINT64_T_FMT "\n", n, (apr_uint64_t)g->ended);
    }
}

static void page_html(request_rec *r, const wsgi_status *st)
{
    const char *why;
    int healthy = wsgi_status_healthy(st, &why), i, k;

    ap_rputs("<hr />\n<h2>mod_wsgi daemon processes</h2>\n", r);
    ap_rprintf(r, "<p>%s: %s.</p>\n", healthy ? "Ready" : "Not ready", ap_escape_html(r->pool, why));
    ap_rputs("<table border=\"1\"><tr><th>Group</th><th>Slot</th><th>PID</th><th>State</th><th>Requests</th>"
             "<th>Active</th><th>Busy</th><th>Idle</th><th>Queued</th><th>RSS (MiB)</th><th>CPU (s)</th>"
             "<th>Started</th><th>Started because</th></tr>\n", r);
    for (i = 0; i < st->groups->nelts; ++i) {
        const wsgi_status_group *g = &APR_ARRAY_IDX(st->groups, i, wsgi_status_group);
        const char *name = ap_escape_html(r->pool, g->label);
        for (k = 0; k < g->procs->nelts; ++k) {
            const wsgi_status_process *w = &APR_ARRAY_IDX(g->procs, k, wsgi_status_process);
            ap_rprintf(r, "<tr><td>%s</td><td>%u</td><td>%u</td><td>%s</td><td>%.0f</td><td>%u</td><td>%u</td>"
                          "<td>%u</td><td>%u</td><td>%.1f</td><td>%.2f</td><td>%s</td><td>%s</td></tr>\n",
                       name, w->label, w->pid, wsgi_status_state_names[w->state], wsgi_status_requests(w->stats),
                       w->active, w->threads_busy, w->threads - w->threads_busy, w->queued,
                       (double)w->rss / 1048576.0, w->cpu_seconds, when(r->pool, w->started_us),
                       w->start_reason ? w->start_reason : "-");
        }
        ap_rprintf(r, "<tr><th>%s</th><td colspan=\"3\">%d process(es) x %d thread(s)</td><th>%.0f</th><th>%u</th>"
                      "<th>%u</th><th>%u</th><th>%u</th><td colspan=\"4\">accept queue %ld, %" APR_UINT64_T_FMT
                      " restart(s)</td></tr>\n",
                   name, g->processes, g->threads, wsgi_status_requests(g->stats), g->active, g->threads_busy,
                   g->threads_idle, g->queued, g->accept_queue, (apr_uint64_t)g->ended);
    }
    ap_rputs("</table>\n", r);
    if (!st->restarts->nelts)
        return;
    ap_rputs("<h3>Restarts, newest first</h3>\n<table border=\"1\"><tr><th>Time</th><th>Group</th><th>Slot</th>"
             "<th>Old PID</th><th>New PID</th><th>Reason</th><th>Exit status or signal</th></tr>\n", r);
    for (i = 0; i < st->restarts->nelts; ++i) {
        const wsgi_status_restart *x = &APR_ARRAY_IDX(st->restarts, i, wsgi_status_restart);
        const char *how = x->signal ? wsgi_status_signal_name(r->pool, x->signal)
                          : x->exit_status >= 0 ? apr_psprintf(r->pool, "exit status %d", x->exit_status) : "-";
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%u</td><td>%u</td><td>%u</td><td>%s</td><td>%s</td></tr>\n",
                   when(r->pool, x->time_us), ap_escape_html(r->pool, x->group), x->slot, x->old_pid, x->new_pid,
                   x->reason, how);
    }
    ap_rputs("</table>\n", r);
}

static int status_hook(request_rec *r, int flags)
{
    const wsgi_status *st = wsgi_status_collect(r);

    if (flags & AP_STATUS_SHORT)
        page_auto(r, st);
    else
        page_html(r, st);
    return OK;
}

void wsgi_status_register_hooks(apr_pool_t *p)
{
    ap_hook_handler(wsgi_status_json_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(wsgi_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(wsgi_health_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
