/*
 * SetHandler wsgi-health: 200 only while every process group of the configuration has at least one
 * ready daemon process and Apache is not stopping, 503 otherwise, with one line of text saying why. For
 * load balancers and container probes (README, "Scaling out"): a balancer stops sending before Apache's
 * graceful stop completes. The answer comes from the collector (wsgi_status.h), in this Apache child.
 */
#include "wsgi_status.h"

#include "http_protocol.h"
#include "apr_strings.h"

int wsgi_health_handler(request_rec *r)
{
    const char *why;
    int healthy;

    if (!r->handler || strcmp(r->handler, "wsgi-health"))
        return DECLINED;
    r->allowed |= AP_METHOD_BIT << M_GET;
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    healthy = wsgi_status_healthy(wsgi_status_collect(r), &why);
    /* Our own body, not an error document: a probe reads why. */
    r->status = healthy ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE;
    ap_set_content_type(r, "text/plain; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (!r->header_only)
        ap_rprintf(r, "%s: %s\n", healthy ? "ready" : "not ready", why);
    return OK;
}
