/*
 * URL mapping (WSGIScriptAlias, WSGIScriptAliasMatch) and the content handler: it works out which
 * process group, application group and callable a request goes to (as mod_wsgi 4.1.0 does), checks
 * the request, and forwards it to the group's daemons, sending it again on a fresh connection when a
 * daemon says it did not process it (GOAWAY).
 */
#include "wsgi_forward.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_strings.h"

#include <stdlib.h>

APLOG_USE_MODULE(wsgi);
extern module AP_MODULE_DECLARE_DATA wsgi_module;

#include "wsgi_log.h"

#define ALIASED_NOTE "alias-forced-type"

/* ---------------------------------------------------------------------------------------------- */
/* URL mapping                                                                                    */

/* mod_alias's matching: any run of '/' in the alias matches any run in the URI, whole segments. */
static long alias_matches(const char *uri, const char *alias)
{
    const char *a = alias, *u = uri;

    while (*a) {
        if (*a == '/') {
            if (*u != '/')
                return 0;
            while (*a == '/')
                ++a;
            while (*u == '/')
                ++u;
        }
        else if (*u++ != *a++) {
            return 0;
        }
    }
    if (a[-1] != '/' && *u != '\0' && *u != '/')
        return 0;
    return u - uri;
}

int wsgi_translate_name(request_rec *r)
{
    wsgi_server_conf *sc = ap_get_module_config(r->server->module_config, &wsgi_module);
    ap_regmatch_t m[AP_MAX_REG_MATCH];
    const wsgi_alias *aliases;
    int i;

    if (!sc->aliases || (r->uri[0] != '/' && r->uri[0]))
        return DECLINED;
    aliases = (const wsgi_alias *)sc->aliases->elts;
    for (i = 0; i < sc->aliases->nelts; ++i) {
        const wsgi_alias *a = &aliases[i];
        const char *location = a->location, *target = a->target;
        long l = 0;

        if (a->regexp) {
            if (ap_regexec(a->regexp, r->uri, AP_MAX_REG_MATCH, m, 0))
                continue;
            l = m[0].rm_eo;
            location = apr_pstrndup(r->pool, r->uri, l);
            target = ap_pregsub(r->pool, a->target, r->uri, AP_MAX_REG_MATCH, m);
            if (!target)
                continue;
        }
        else {
            l = alias_matches(r->uri, a->location);
        }
        if (l <= 0)
            continue;
        r->filename = apr_pstrcat(r->pool, target, strcmp(location, "/") ? r->uri + l : r->uri, NULL);
        r->handler = "wsgi-script";
        apr_table_setn(r->notes, ALIASED_NOTE, r->handler);
        ap_set_module_config(r->request_config, &wsgi_module, (void *)a);
        return OK;
    }
    return DECLINED;
}

/* ---------------------------------------------------------------------------------------------- */
/* Process group, application group, callable                                                     */

/* Where PATH_INFO starts in the URI (mod_wsgi's version of ap_find_path_info). */
static long find_path_info(const char *uri, const char *path_info)
{
    long lu = (long)strlen(uri), lp = (long)strlen(path_info);

    while (lu-- && lp-- && uri[lu] == path_info[lp]) {
        if (path_info[lp] == '/') {
            while (lu && uri[lu - 1] == '/')
                lu--;
        }
    }
    if (lu == -1)
        lu = 0;
    while (uri[lu] != '\0' && uri[lu] != '/')
        lu++;
    return lu;
}

/* The script part of the URI, lower case, slashes collapsed: the key of %{RESOURCE}. */
static const char *script_name(request_rec *r)
{
    char *name;

    if (!r->path_info || !*r->path_info)
        name = apr_pstrdup(r->pool, r->uri);
    else
        name = apr_pstrndup(r->pool, r->uri, find_path_info(r->uri, r->path_info));
    ap_no2slash(name);
    ap_str_tolower(name);
    return name;
}

static const char *host_port(request_rec *r, const char *host)
{
    apr_port_t port = ap_get_server_port(r);

    if (port != DEFAULT_HTTP_PORT && port != DEFAULT_HTTPS_PORT)
        return apr_psprintf(r->pool, "%s:%u", host, port);
    return host;
}

static const char *env_lookup(request_rec *r, const char *name)
{
    const char *value = apr_table_get(r->notes, name);

    if (!value)
        value = apr_table_get(r->subprocess_env, name);
    if (!value)
        value = getenv(name);
    return value;
}

/*
 * Expands %{GLOBAL}, %{RESOURCE}, %{SERVER}, %{HOST} and %{ENV:name} as mod_wsgi does for process
 * and application groups. `dflt` is the value when s is NULL.
 */
static const char *expand_group(request_rec *r, const char *s, int dflt_resource, int depth)
{
    const char *h;

    if (!s)
        s = dflt_resource ? "%{RESOURCE}" : "";
    if (*s != '%')
        return s;
    if (!strcmp(s, "%{GLOBAL}"))
        return "";
    if (!strcmp(s, "%{RESOURCE}"))
        return apr_psprintf(r->pool, "%s|%s", host_port(r, r->server->server_hostname),
                            script_name(r));
    if (!strcmp(s, "%{SERVER}"))
        return host_port(r, r->server->server_hostname);
    if (!strcmp(s, "%{HOST}")) {
        h = r->hostname && *r->hostname ? r->hostname : r->server->server_hostname;
        return host_port(r, h);
    }
    if (!strncmp(s, "%{ENV:", 6) && s[strlen(s) - 1] == '}') {
        const char *value = env_lookup(r, apr_pstrndup(r->pool, s + 6, strlen(s) - 7));
        if (value) {
            if (*value == '%' && strncmp(value, "%{ENV:", 6) && depth < 4)
                return expand_group(r, value, dflt_resource, depth + 1);
            return value;
        }
    }
    return s;
}

static const char *expand_callable(request_rec *r, const char *s)
{
    const char *value;

    if (!s)
        return "application";
    if (*s != '%')
        return s;
    if (!strncmp(s, "%{ENV:", 6) && s[strlen(s) - 1] == '}') {
        value = env_lookup(r, apr_pstrndup(r->pool, s + 6, strlen(s) - 7));
        if (value)
            return value;
    }
    return "application";
}

/* script-user= / script-group= of the group: who must own the script and its directory. */
static int check_script_owner(request_rec *r, wsgi_group *g)
{
    apr_finfo_t dir;
    const char *parent;

    if (!g->script_user && !g->script_group)
        return OK;
    parent = ap_make_dirstr_parent(r->pool, r->filename);
    if (apr_stat(&dir, parent, APR_FINFO_OWNER | APR_FINFO_PROT, r->pool) != APR_SUCCESS ||
        !(r->finfo.valid & APR_FINFO_OWNER)) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01230)
                      "Unable to stat the WSGI script file or its directory: %s", r->filename);
        return HTTP_FORBIDDEN;
    }
    if (g->script_user) {
        if (r->finfo.user != g->script_uid || dir.user != g->script_uid ||
            (r->finfo.protection & (APR_FPROT_GWRITE | APR_FPROT_WWRITE)) ||
            (dir.protection & (APR_FPROT_GWRITE | APR_FPROT_WWRITE))) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01231)
                          "WSGI script file or its directory is not owned by, or is writable by "
                          "others than, user '%s' (script-user of process group '%s'): %s",
                          g->script_user, g->name, r->filename);
            return HTTP_FORBIDDEN;
        }
    }
    if (g->script_group) {
        if (r->finfo.group != g->script_gid || dir.group != g->script_gid ||
            (r->finfo.protection & APR_FPROT_WWRITE) || (dir.protection & APR_FPROT_WWRITE)) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01232)
                          "WSGI script file or its directory does not belong to group '%s' "
                          "(script-group of process group '%s') or is world writable: %s",
                          g->script_group, g->name, r->filename);
            return HTTP_FORBIDDEN;
        }
    }
    return OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* The handler                                                                                    */

/*
 * Several processes: a daemon whose threads are all busy may send a request back (GOAWAY) rather than
 * queue it while another process of the group has a free thread; the request then goes out again on a
 * fresh connection, which only a daemon with a free thread accepts. Allowed only while the request can
 * be sent again (its body, if any, is in q->head) and for the first `processes` attempts: later ones
 * queue wherever they land, so a fully busy group still queues (queue-timeout) instead of bouncing.
 */
static void set_retryable(wsgi_req *q, int attempt)
{
    unsigned char *flags = q->head + WSGI_WIRE_HEADER_SIZE;
    apr_uint32_t v = wsgi_get_u32(flags) & ~WSGI_REQUEST_RETRYABLE;

    if (!q->body_follows && q->group->processes > 1 && attempt < q->group->processes)
        v |= WSGI_REQUEST_RETRYABLE;
    wsgi_put_u32(flags, v);
}

static int forward(wsgi_req *q)
{
    request_rec *r = q->r;
    int attempt, status, retry, max_attempts = 2 * q->group->processes + 3;

    if ((status = wsgi_request_build(q)) != OK)
        return status;

    for (attempt = 0; attempt < max_attempts; ++attempt) {
        struct iovec iov;
        wsgi_conn *c;
        apr_status_t rv;

        /* A retry never takes an idle connection: they may all lead to a daemon going away. Nor does
         * a request whose body is streamed, which cannot be sent again: an idle connection may be
         * one its daemon is closing with GOAWAY (stopping, maximum-requests) just as we take it,
         * while a fresh one is accepted only by a daemon that is not stopping. */
        if ((status = wsgi_conn_acquire(r, q->group, attempt > 0 || q->body_follows, &c)) != OK)
            return status;
        set_retryable(q, attempt);
        q->sent_at = apr_time_now();
        iov.iov_base = q->head;
        iov.iov_len = q->head_len;
        rv = wsgi_conn_writev(c, &iov, 1);
        if (rv != APR_SUCCESS) {
            wsgi_conn_close(c);
            if (!APR_STATUS_IS_TIMEUP(rv))
                continue;   /* closed before it read anything: nothing was processed */
            wsgi_rlog(APLOG_ERR, rv, r, WSGILOGNO(01233)
                          "Timeout when sending request details to daemon process '%s'",
                          q->group->name);
            return HTTP_GATEWAY_TIME_OUT;
        }
        if (q->body_follows && (status = wsgi_request_stream_body(q, c)) != OK) {
            wsgi_conn_close(c);
            return status;
        }
        status = wsgi_response_relay(q, c, &retry);
        if (!retry)
            return status;
        wsgi_rlog(APLOG_DEBUG, 0, r, WSGILOGNO(01234)
                      "Daemon process '%s' did not process the request; sending it again",
                      q->group->name);
    }
    wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01235)
                  "Daemon processes of '%s' went away %d times without processing the request",
                  q->group->name, max_attempts);
    return HTTP_SERVICE_UNAVAILABLE;
}

/* Chooses the group and checks the request; OK or an HTTP status. */
static int choose_group(wsgi_req *q, wsgi_dir_conf *dc)
{
    request_rec *r = q->r;
    wsgi_server_conf *sc = ap_get_module_config(r->server->module_config, &wsgi_module);
    wsgi_state *st = sc->state;
    wsgi_group *g;

    if (dc->restrict_process && !apr_table_get(dc->restrict_process, q->process_group)) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01236)
                      "Daemon process called '%s' cannot be accessed by this WSGI application as "
                      "not a member of allowed groups: %s", q->process_group, r->filename);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    g = wsgi_group_find(st, q->process_group);
    if (!g || !g->rt || !g->rt->conns) {
        if (!*q->process_group && st->restrict_embedded == 1)
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01237)
                          "Embedded mode of mod_wsgi disabled by runtime configuration: %s",
                          r->filename);
        else
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01238)
                          "No WSGI daemon process called '%s' has been configured: %s",
                          q->process_group, r->filename);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!wsgi_group_visible(g, r->server)) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01239)
                      "Daemon process called '%s' cannot be accessed by this WSGI application: %s",
                      q->process_group, r->filename);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    q->group = g;
    return check_script_owner(r, g);
}

int wsgi_handler(request_rec *r)
{
    wsgi_dir_conf *dc;
    const wsgi_alias *alias = NULL;
    const wsgi_handler_script *hs = NULL;
    const char *tenc;
    wsgi_req *q;
    int status;

    if (!r->handler)
        return DECLINED;
    dc = ap_get_module_config(r->per_dir_config, &wsgi_module);
    if (!strcmp(r->handler, "wsgi-script") || !strcmp(r->handler, "application/x-httpd-wsgi")) {
        int aliased = apr_table_get(r->notes, ALIASED_NOTE) != NULL;
        if (aliased)
            alias = ap_get_module_config(r->request_config, &wsgi_module);
        else if (!(ap_allow_options(r) & OPT_EXECCGI)) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01240)
                          "Options ExecCGI is off in this directory: %s", r->filename);
            return HTTP_FORBIDDEN;
        }
        if (r->finfo.filetype == APR_NOFILE) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01241)
                          "Target WSGI script not found or unable to stat: %s", r->filename);
            return HTTP_NOT_FOUND;
        }
        if (r->finfo.filetype == APR_DIR) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01242)
                          "Attempt to invoke directory as WSGI application: %s", r->filename);
            return HTTP_FORBIDDEN;
        }
    }
    else if (!dc->handler_scripts ||
             !(hs = apr_hash_get(dc->handler_scripts, r->handler, APR_HASH_KEY_STRING))) {
        return DECLINED;
    }

    if (r->used_path_info == AP_REQ_REJECT_PATH_INFO && r->path_info && *r->path_info) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01243)
                      "AcceptPathInfo off disallows user's path: %s", r->filename);
        return HTTP_NOT_FOUND;
    }
    if ((tenc = apr_table_get(r->headers_in, "Transfer-Encoding")) != NULL) {
        if (strcasecmp(tenc, "chunked")) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01244)
                          "Unexpected value for Transfer-Encoding of '%s' supplied. Only "
                          "'chunked' supported.", tenc);
            return HTTP_NOT_IMPLEMENTED;
        }
        if (dc->chunked_request != 1) {
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01245)
                          "Request requires chunked transfer encoding, but support for chunked "
                          "transfer encoding has not been enabled (WSGIChunkedRequest).");
            return HTTP_LENGTH_REQUIRED;
        }
    }

    q = apr_pcalloc(r->pool, sizeof(*q));
    q->r = r;
    q->process_group = expand_group(r, dc->process_group, 0, 0);
    q->application_group = expand_group(r, dc->application_group, 1, 0);
    q->callable_object = expand_callable(r, dc->callable_object);
    q->pass_authorization = dc->pass_authorization == 1;
    q->script_reloading = dc->script_reloading != 0;
    q->error_override = dc->error_override == 1;
    q->enable_sendfile = dc->enable_sendfile == 1;
    if (alias) {
        if (alias->process_group)
            q->process_group = expand_group(r, alias->process_group, 0, 0);
        if (alias->application_group)
            q->application_group = expand_group(r, alias->application_group, 1, 0);
        if (alias->callable_object)
            q->callable_object = alias->callable_object;
        q->application_type = alias->application_type;
        if (alias->pass_authorization != WSGI_UNSET)
            q->pass_authorization = alias->pass_authorization;
    }
    if (hs) {
        q->handler_script = ap_server_root_relative(r->pool, hs->script);
        q->callable_object = "handle_request";
        if (hs->process_group)
            q->process_group = expand_group(r, hs->process_group, 0, 0);
        if (hs->application_group)
            q->application_group = expand_group(r, hs->application_group, 1, 0);
        if (hs->pass_authorization != WSGI_UNSET)
            q->pass_authorization = hs->pass_authorization;
    }

    if ((status = choose_group(q, dc)) != OK)
        return status;
    return forward(q);
}

/* ---------------------------------------------------------------------------------------------- */
/* The request id (wsgi_log.h)                                                                    */

#define REQUEST_ID_NOTE "mod_wsgi.request_id"

const char *wsgi_request_id(const request_rec *rc)
{
    request_rec *r = (request_rec *)rc;

    /* Apache's log id, made the way Apache makes it (mod_unique_id's UNIQUE_ID, else the core's id),
     * so that %L in ErrorLogFormat and LogFormat shows the same id as our lines. */
    if (!r->log_id)
        ap_run_generate_log_id(r->connection, r, &r->log_id);
    if (!r->log_id)
        return "-";
    if (!apr_table_get(r->notes, REQUEST_ID_NOTE))
        apr_table_setn(r->notes, REQUEST_ID_NOTE, r->log_id);
    return r->log_id;
}

/* ---------------------------------------------------------------------------------------------- */
/* For the hooks (wsgi_auth.c)                                                                    */

const char *wsgi_expand_group(request_rec *r, const char *s, int dflt_resource)
{
    return expand_group(r, s, dflt_resource, 0);
}

const char *wsgi_request_process_group(request_rec *r)
{
    wsgi_dir_conf *dc = ap_get_module_config(r->per_dir_config, &wsgi_module);
    const wsgi_alias *alias = NULL;

    if (apr_table_get(r->notes, ALIASED_NOTE))
        alias = ap_get_module_config(r->request_config, &wsgi_module);
    if (alias && alias->process_group)
        return expand_group(r, alias->process_group, 0, 0);
    return expand_group(r, dc ? dc->process_group : NULL, 0, 0);
}
