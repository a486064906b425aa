/*
 * Running a hook in a daemon (for wsgi_auth.c): the AUTH frame, sent to a daemon of the request's process
 * group (the script's process-group= option, else the WSGIScriptAlias option or WSGIProcessGroup that
 * applies, else the default group), answered by AUTH_RESULT; meanwhile the daemon may send VAR_LOOKUP
 * frames (mod_ssl.var_lookup()), answered here. The environ is mod_wsgi's cut-down one: request headers
 * (not Authorization), server and client details, no SetEnv variables. Sent again on a fresh connection
 * when a daemon says it did not run it (GOAWAY), as requests are.
 */
#include "wsgi_auth.h"
#include "wsgi_forward.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_script.h"
#include "apr_lib.h"
#include "apr_strings.h"

APLOG_USE_MODULE(wsgi);
extern module AP_MODULE_DECLARE_DATA wsgi_module;

#include "wsgi_log.h"

typedef struct {
    const char *name;
    const char *value;
} auth_var;

/* ---------------------------------------------------------------------------------------------- */
/* The AUTH frame                                                                                 */

static void add_var(apr_array_header_t *vars, const char *name, const char *value)
{
    auth_var *v = apr_array_push(vars);

    v->name = name;
    v->value = value ? value : "";
}

/* HTTP_ + the header name in upper case with '-' as '_'; NULL for a name with other characters (they
 * could pose as another header, as Apache 2.4 itself refuses for CGI). */
static const char *http_var(apr_pool_t *p, const char *header)
{
    char *name = apr_pstrcat(p, "HTTP_", header, NULL), *c;

    for (c = name + 5; *c; ++c) {
        if (*c == '-')
            *c = '_';
        else if (apr_isalnum(*c))
            *c = apr_toupper(*c);
        else
            return NULL;
    }
    return name;
}

/* The request URI as the client sent it (before internal redirects). */
static const char *original_uri(request_rec *r)
{
    while (r->prev)
        r = r->prev;
    while (r->main)
        r = r->main;
    return r->unparsed_uri ? r->unparsed_uri : r->uri;
}

/* mod_wsgi's environ for hooks (Auth_environ): no SetEnv variables, no Authorization header. */
static apr_array_header_t *hook_environ(request_rec *r)
{
    conn_rec *c = r->connection;
    apr_array_header_t *vars = apr_array_make(r->pool, 32, sizeof(auth_var));
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *h = (const apr_table_entry_t *)arr->elts;
    const char *value;
    int i;

    for (i = 0; i < arr->nelts; ++i) {
        if (!h[i].key || !h[i].val)
            continue;
        if (!strcasecmp(h[i].key, "Content-Type"))
            add_var(vars, "CONTENT_TYPE", h[i].val);
        else if (!strcasecmp(h[i].key, "Content-Length"))
            add_var(vars, "CONTENT_LENGTH", h[i].val);
        /* Proxy: as ap_add_common_vars does for applications (httpoxy, CVE-2016-5387). */
        else if (strcasecmp(h[i].key, "Authorization") && strcasecmp(h[i].key, "Proxy-Authorization") &&
                 strcasecmp(h[i].key, "Proxy") && (value = http_var(r->pool, h[i].key)) != NULL)
            add_var(vars, value, h[i].val);
    }
    add_var(vars, "SERVER_SIGNATURE", ap_psignature("", r));
    add_var(vars, "SERVER_SOFTWARE", ap_get_server_banner());
    add_var(vars, "SERVER_NAME", ap_escape_html(r->pool, ap_get_server_name(r)));
    if (c->local_ip)
        add_var(vars, "SERVER_ADDR", c->local_ip);
    add_var(vars, "SERVER_PORT", apr_psprintf(r->pool, "%u", ap_get_server_port(r)));
    if ((value = ap_get_remote_host(c, r->per_dir_config, REMOTE_HOST, NULL)) != NULL)
        add_var(vars, "REMOTE_HOST", value);
    add_var(vars, "REMOTE_ADDR", r->useragent_ip);
    add_var(vars, "DOCUMENT_ROOT", ap_document_root(r));
    if (r->server->server_admin)
        add_var(vars, "SERVER_ADMIN", r->server->server_admin);
    add_var(vars, "REMOTE_PORT", apr_itoa(r->pool, c->client_addr ? c->client_addr->port : 0));
    add_var(vars, "SERVER_PROTOCOL", r->protocol);
    add_var(vars, "REQUEST_METHOD", r->method);
    add_var(vars, "QUERY_STRING", r->args ? r->args : "");
    add_var(vars, "REQUEST_URI", original_uri(r));
    add_var(vars, "mod_wsgi.request_id", wsgi_request_id(r));
    if (r->path_info && *r->path_info) {
        add_var(vars, "SCRIPT_NAME", apr_pstrndup(r->pool, r->uri, ap_find_path_info(r->uri, r->path_info)));
        add_var(vars, "PATH_INFO", r->path_info);
    }
    else {
        add_var(vars, "SCRIPT_NAME", r->uri);
        add_var(vars, "PATH_INFO", "");
    }
    return vars;
}

/* The whole AUTH frame in one buffer; NULL (logged) when it would exceed the protocol's limit. */
static unsigned char *build_frame(request_rec *r, const wsgi_auth_script *s, int hook, wsgi_group *g,
                                  const char *arg1, const char *arg2, apr_size_t *len)
{
    wsgi_dir_conf *dc = ap_get_module_config(r->per_dir_config, &wsgi_module);
    apr_array_header_t *vars = hook_environ(r);
    const auth_var *v;
    const char *strings[4];
    apr_uint32_t flags = 0;
    apr_size_t size = WSGI_WIRE_HEADER_SIZE + WSGI_AUTH_FIXED_SIZE + 4;
    unsigned char *frame, *p;
    int i;

    if (ap_ssl_conn_is_ssl(r->connection))
        flags |= WSGI_AUTH_SSL;
    if (ap_find_linked_module("mod_ssl.c") || ap_find_linked_module("mod_tls.c"))
        flags |= WSGI_AUTH_LOOKUP;
    if (dc->script_reloading != 0)
        flags |= WSGI_AUTH_RELOADING;
    if (flags & WSGI_AUTH_LOOKUP) {
        /* SSL variables the group's hooks and applications asked for before (wsgi_lookup.c). */
        const char *names[WSGI_LEARN_MAX], *values[WSGI_LEARN_MAX];
        int k, np = wsgi_lookup_prefetch(r, g, names, values);
        for (k = 0; k < np; ++k)
            add_var(vars, names[k], values[k]);
    }

    strings[0] = s->script;
    strings[1] = s->application_group ? wsgi_expand_group(r, s->application_group, 0) : "";
    strings[2] = arg1 ? arg1 : "";
    strings[3] = arg2 ? arg2 : "";
    for (i = 0; i < 4; ++i)
        size += wsgi_string_size(strlen(strings[i]));
    v = (const auth_var *)vars->elts;
    for (i = 0; i < vars->nelts; ++i)
        size += wsgi_string_size(strlen(v[i].name)) + wsgi_string_size(strlen(v[i].value));
    if (size - WSGI_WIRE_HEADER_SIZE > WSGI_LIMIT_AUTH) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01310)
                      "Request details too large to run hook script '%s' in daemon process '%s'",
                      s->script, g->name);
        return NULL;
    }

    frame = p = apr_palloc(r->pool, size);
    wsgi_frame_header_pack(p, WSGI_FRAME_AUTH, 0, (uint32_t)(size - WSGI_WIRE_HEADER_SIZE));
    p += WSGI_WIRE_HEADER_SIZE;
    wsgi_put_u32(p, flags);
    wsgi_put_u32(p + 4, (uint32_t)hook);
    wsgi_put_u64(p + 8, (uint64_t)apr_time_now());
    p += WSGI_AUTH_FIXED_SIZE;
    for (i = 0; i < 4; ++i)
        p += wsgi_write_string(p, strings[i], (uint32_t)strlen(strings[i]));
    wsgi_put_u32(p, (uint32_t)vars->nelts);
    p += 4;
    for (i = 0; i < vars->nelts; ++i) {
        p += wsgi_write_string(p, v[i].name, (uint32_t)strlen(v[i].name));
        p += wsgi_write_string(p, v[i].value, (uint32_t)strlen(v[i].value));
    }
    *len = size;
    return frame;
}

/* ---------------------------------------------------------------------------------------------- */
/* Running a hook in a daemon                                                                     */

/* The group that runs the hook: the script's process-group=, else the request's, else the default. */
static wsgi_group *hook_group(request_rec *r, const wsgi_auth_script *s)
{
    wsgi_server_conf *sc = ap_get_module_config(r->server->module_config, &wsgi_module);
    const char *name = s->process_group ? wsgi_expand_group(r, s->process_group, 0)
                                        : wsgi_request_process_group(r);
    wsgi_group *g = wsgi_group_find(sc->state, name);

    if (!g || !g->rt || !g->rt->conns) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01311)
                      "No WSGI daemon process called '%s' has been configured to run hook script '%s'",
                      name, s->script);
        return NULL;
    }
    if (!wsgi_group_visible(g, r->server)) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01312)
                      "Daemon process called '%s' cannot be accessed by hook script '%s'", name, s->script);
        return NULL;
    }
    return g;
}

/* Reads the AUTH_RESULT payload at the front of c's buffer (already buffered). */
static int parse_result(request_rec *r, wsgi_conn *c, apr_size_t len, wsgi_auth_result *res)
{
    wsgi_reader rd;
    uint32_t outcome, count, i;

    wsgi_reader_init(&rd, c->buf + c->rpos + WSGI_WIRE_HEADER_SIZE, len);
    outcome = wsgi_read_u32(&rd);
    count = wsgi_read_u32(&rd);
    if (!rd.ok || outcome > WSGI_AUTH_ERROR || count > len / 4)
        return 0;
    for (i = 0; i < count; ++i) {
        const char *s;
        uint32_t n;
        wsgi_read_string(&rd, &s, &n);
        if (!rd.ok || memchr(s, '\0', n))
            return 0;
        *(const char **)apr_array_push(res->values) = apr_pstrmemdup(r->pool, s, n);
    }
    if (rd.left)
        return 0;
    res->outcome = (int)outcome;
    c->rpos += WSGI_WIRE_HEADER_SIZE + len;
    return 1;
}

/* One attempt on connection c: 1 answered (res filled), 0 failed (logged), -1 not processed (retry). */
static int exchange(request_rec *r, wsgi_group *g, wsgi_conn *c, const char *script,
                    wsgi_auth_result *res)
{
    wsgi_frame_header h;
    apr_status_t rv;
    int looked_up = 0;

    for (;;) {
        if ((rv = wsgi_conn_fill(c, WSGI_WIRE_HEADER_SIZE)) != APR_SUCCESS) {
            if (!looked_up && !wsgi_conn_avail(c) && APR_STATUS_IS_ECONNRESET(rv))
                return -1;
            wsgi_rlog(APLOG_ERR, rv == APR_EOF ? 0 : rv, r, WSGILOGNO(01313)
                          "%s daemon process '%s' for hook script '%s'",
                          APR_STATUS_IS_TIMEUP(rv) ? "Timeout waiting for the answer of"
                                                   : "No answer (connection closed) from",
                          g->name, script);
            return 0;
        }
        wsgi_frame_header_unpack(c->buf + c->rpos, &h);
        if (h.version != WSGI_WIRE_VERSION)
            break;
        if (h.type == WSGI_FRAME_GOAWAY && h.length == 0)
            return looked_up ? 0 : -1;
        if ((h.type == WSGI_FRAME_VAR_LOOKUP && (h.length < 5 || h.length > WSGI_LIMIT_VAR_LOOKUP)) ||
            (h.type == WSGI_FRAME_AUTH_RESULT && (h.length < 8 || h.length > WSGI_LIMIT_AUTH_RESULT)) ||
            (h.type == WSGI_FRAME_ERROR && (h.length < 8 || h.length > WSGI_LIMIT_ERROR)))
            break;
        if (h.type != WSGI_FRAME_VAR_LOOKUP && h.type != WSGI_FRAME_AUTH_RESULT &&
            h.type != WSGI_FRAME_ERROR)
            break;
        if ((rv = wsgi_conn_fill(c, WSGI_WIRE_HEADER_SIZE + h.length)) != APR_SUCCESS) {
            wsgi_rlog(APLOG_ERR, rv == APR_EOF ? 0 : rv, r, WSGILOGNO(01314)
                          "Truncated answer from daemon process '%s' for hook script '%s'", g->name,
                          script);
            return 0;
        }
        if (h.type == WSGI_FRAME_VAR_LOOKUP) {
            if ((rv = wsgi_lookup_answer(r, c, h.length)) == APR_EGENERAL)
                return 0;
            if (rv != APR_SUCCESS) {
                wsgi_rlog(APLOG_ERR, rv, r, WSGILOGNO(01315)
                              "Unable to send a variable to daemon process '%s'", g->name);
                return 0;
            }
            looked_up = 1;
            continue;
        }
        if (h.type == WSGI_FRAME_ERROR) {
            wsgi_reader rd;
            const char *msg;
            uint32_t status, n;
            wsgi_reader_init(&rd, c->buf + c->rpos + WSGI_WIRE_HEADER_SIZE, h.length);
            status = wsgi_read_u32(&rd);
            wsgi_read_string(&rd, &msg, &n);
            if (!rd.ok || rd.left)
                break;
            wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01316)
                          "Daemon process '%s' failed hook script '%s' with status %u: %.*s", g->name,
                          script, status, (int)n, msg);
            c->rpos += WSGI_WIRE_HEADER_SIZE + h.length;
            res->outcome = WSGI_AUTH_ERROR;
            return 1;
        }
        if (!parse_result(r, c, h.length, res))
            break;
        return 1;
    }
    wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01317)
                  "Malformed answer from daemon process '%s' for hook script '%s'; connection dropped",
                  g->name, script);
    return 0;
}

void wsgi_auth_run(request_rec *r, const wsgi_auth_script *s, int hook, const char *arg1,
                     const char *arg2, wsgi_auth_result *res)
{
    wsgi_group *g = hook_group(r, s);
    unsigned char *frame;
    apr_size_t len;
    int attempt, max_attempts;

    res->outcome = WSGI_AUTH_ERROR;
    res->values = apr_array_make(r->pool, 4, sizeof(const char *));
    if (!g || !(frame = build_frame(r, s, hook, g, arg1, arg2, &len)))
        return;
    max_attempts = 2 * g->processes + 3;
    for (attempt = 0; attempt < max_attempts; ++attempt) {
        struct iovec iov;
        wsgi_conn *c;
        int done;

        /* A retry never takes an idle connection: they may all lead to a daemon going away. */
        if (wsgi_conn_acquire(r, g, attempt > 0, &c) != OK)
            return;
        iov.iov_base = frame;
        iov.iov_len = len;
        if (wsgi_conn_writev(c, &iov, 1) != APR_SUCCESS) {
            wsgi_conn_close(c);
            continue;
        }
        done = exchange(r, g, c, s->script, res);
        if (done > 0) {
            wsgi_conn_release(c);
            return;
        }
        wsgi_conn_close(c);
        if (done == 0) {
            res->outcome = WSGI_AUTH_ERROR;
            return;
        }
    }
    wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01318)
                  "Daemon processes of '%s' went away %d times without running hook script '%s'",
                  g->name, max_attempts, s->script);
}
