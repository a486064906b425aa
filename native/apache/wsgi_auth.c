/*
 * The hooks of mod_wsgi 4.1.0 for access control, in Apache 2.4's terms:
 *   WSGIAccessScript    an access checker (after mod_ssl's): allow_access(environ, host) -> True (OK),
 *                       False (403), None (no opinion: DECLINED); a failure denies (403)
 *   WSGIAuthUserScript  the authn provider "wsgi" (AuthBasicProvider / AuthDigestProvider wsgi):
 *                       check_password(environ, user, password), get_realm_hash(environ, user, realm)
 *   WSGIAuthGroupScript the authz provider "wsgi-group" (Require wsgi-group NAME...):
 *                       groups_for_user(environ, user)
 * Providers are registered with ap_register_auth_provider, so they compose with the other providers,
 * RequireAny/RequireAll and AuthnProviderAlias like any other.
 *
 * Python never runs in Apache: each call is an AUTH frame to a daemon of the request's process group
 * (the script's process-group= option, else the WSGIScriptAlias option or WSGIProcessGroup that applies,
 * else the default group), answered by AUTH_RESULT; meanwhile the daemon may send VAR_LOOKUP frames
 * (mod_ssl.var_lookup()), answered here. The environ is mod_wsgi's cut-down one: request headers (not
 * Authorization), server and client details, no SetEnv variables.
 */
#include "wsgi_auth.h"
#include "wsgi_forward.h"
#include "wsgi_options.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "mod_auth.h"
#include "util_script.h"
#include "apr_lib.h"
#include "apr_strings.h"

APLOG_USE_MODULE(wsgi);
extern module AP_MODULE_DECLARE_DATA wsgi_module;

#include "wsgi_log.h"

typedef struct {
    server_rec *server;
    const wsgi_dir_conf *dc;
    const char *location;               /* the URL of an enclosing <Location>, else NULL */
} auth_ref;

typedef struct {
    const char *name;
    const char *value;
} auth_var;

typedef struct {
    int outcome;                        /* WSGI_AUTH_*: ERROR when the hook or the daemon failed */
    apr_array_header_t *values;         /* const char *: user name, realm hash or groups */
} hook_result;

/* ---------------------------------------------------------------------------------------------- */
/* Directives                                                                                     */

const char *wsgi_cmd_auth_script(cmd_parms *cmd, void *dconf, const char *args)
{
    /* In .htaccess (AllowOverride AuthConfig) the setter runs per request, with the request's pool:
     * nothing may go into the configuration generation's state then. */
    int htaccess = cmd->pool != cmd->server->process->pconf;
    wsgi_auth_script *s = apr_pcalloc(cmd->pool, sizeof(*s));
    const char *path, *option, *value, *err;

    path = ap_getword_conf(cmd->pool, &args);
    if (!*path)
        return apr_psprintf(cmd->pool, "%s requires the path of a Python script", cmd->cmd->name);
    s->script = ap_server_root_relative(cmd->pool, path);
    if (!s->script)
        return apr_psprintf(cmd->pool, "%s: invalid script path '%s'", cmd->cmd->name, path);
    while (*args) {
        if ((err = wsgi_next_option(cmd, &args, &option, &value)) != NULL)
            return err;
        if (!*value)
            return apr_psprintf(cmd->pool, "%s: option '%s' needs a non-empty value", cmd->cmd->name, option);
        if (!strcmp(option, "application-group"))
            s->application_group = strcmp(value, "%{GLOBAL}") ? value : "";
        else if (!strcmp(option, "process-group"))
            s->process_group = htaccess ? (strcmp(value, "%{GLOBAL}") ? value : "")
                                        : wsgi_note_process_group(cmd, value);
        else
            return apr_psprintf(cmd->pool, "%s: unknown option '%s' (allowed: application-group, "
                                "process-group)", cmd->cmd->name, option);
        while (*args && apr_isspace(*args))
            ++args;
    }
    *(const wsgi_auth_script **)((char *)dconf + (size_t)cmd->info) = s;
    if (!htaccess && !s->process_group) {
        wsgi_state *st = wsgi_state_get(cmd->pool);
        auth_ref *ref;
        if (!st->auth_refs)
            st->auth_refs = apr_array_make(cmd->pool, 4, sizeof(auth_ref));
        ref = apr_array_push(st->auth_refs);
        ref->server = cmd->server;
        ref->dc = dconf;
        ref->location = cmd->directive->parent &&
                        !strcasecmp(cmd->directive->parent->directive, "<Location") ? cmd->path : NULL;
    }
    return NULL;
}

/* Is every URL under `location` served by a WSGIScriptAlias that names its process group? (The first
 * alias covering it wins, as in translate_name.) */
static int location_has_group(server_rec *s, const char *location)
{
    wsgi_server_conf *sc = ap_get_module_config(s->module_config, &wsgi_module);
    const wsgi_alias *a;
    int i;

    if (!location || !sc->aliases)
        return 0;
    a = (const wsgi_alias *)sc->aliases->elts;
    for (i = 0; i < sc->aliases->nelts; ++i) {
        size_t n = strlen(a[i].location);
        if (a[i].regexp || strncmp(a[i].location, location, n))
            continue;
        if (n && a[i].location[n - 1] != '/' && location[n] && location[n] != '/')
            continue;
        return a[i].process_group != NULL;
    }
    return 0;
}

int wsgi_auth_needs_default_group(wsgi_state *st)
{
    const auth_ref *refs;
    int i;

    if (!st->auth_refs)
        return 0;
    refs = (const auth_ref *)st->auth_refs->elts;
    for (i = 0; i < st->auth_refs->nelts; ++i) {
        const wsgi_dir_conf *top = ap_get_module_config(refs[i].server->lookup_defaults, &wsgi_module);
        /* A WSGIProcessGroup in the same section or for the whole server, or a <Location> served by
         * a WSGIScriptAlias with process-group=, gives the hook its group; anything else may leave it
         * to the default group (other nestings of sections are not followed). */
        if (!refs[i].dc->process_group && !(top && top->process_group) &&
            !location_has_group(refs[i].server, refs[i].location))
            return 1;
    }
    return 0;
}

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
        else if (strcasecmp(h[i].key, "Authorization") && strcasecmp(h[i].key, "Proxy-Authorization") &&
                 (value = http_var(r->pool, h[i].key)) != NULL)
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
static unsigned char *build_frame(request_rec *r, const wsgi_auth_script *s, int hook,
                                  const char *group, const char *arg1, const char *arg2,
                                  apr_size_t *len)
{
    wsgi_dir_conf *dc = ap_get_module_config(r->per_dir_config, &wsgi_module);
    apr_array_header_t *vars = hook_environ(r);
    const auth_var *v = (const auth_var *)vars->elts;
    const char *strings[4];
    apr_uint32_t flags = 0;
    apr_size_t size = WSGI_WIRE_HEADER_SIZE + WSGI_AUTH_FIXED_SIZE + 4;
    unsigned char *frame, *p;
    int i;

    strings[0] = s->script;
    strings[1] = s->application_group ? wsgi_expand_group(r, s->application_group, 0) : "";
    strings[2] = arg1 ? arg1 : "";
    strings[3] = arg2 ? arg2 : "";
    for (i = 0; i < 4; ++i)
        size += wsgi_string_size(strlen(strings[i]));
    for (i = 0; i < vars->nelts; ++i)
        size += wsgi_string_size(strlen(v[i].name)) + wsgi_string_size(strlen(v[i].value));
    if (size - WSGI_WIRE_HEADER_SIZE > WSGI_LIMIT_AUTH) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01310)
                      "Request details too large to run hook script '%s' in daemon process '%s'",
                      s->script, group);
        return NULL;
    }
    if (ap_ssl_conn_is_ssl(r->connection))
        flags |= WSGI_AUTH_SSL;
    if (ap_find_linked_module("mod_ssl.c") || ap_find_linked_module("mod_tls.c"))
        flags |= WSGI_AUTH_LOOKUP;
    if (dc->script_reloading != 0)
        flags |= WSGI_AUTH_RELOADING;

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

    if (!g || !g->conns) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01311)
                      "No WSGI daemon process called '%s' has been configured to run hook script '%s'",
                      name, s->script);
        return NULL;
    }
    if (!wsgi_group_visible(g, r->server)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01312)
                      "Daemon process called '%s' cannot be accessed by hook script '%s'", name, s->script);
        return NULL;
    }
    return g;
}

/* Reads the AUTH_RESULT payload at the front of c's buffer (already buffered). */
static int parse_result(request_rec *r, wsgi_conn *c, apr_size_t len, hook_result *res)
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
static int exchange(request_rec *r, wsgi_group *g, wsgi_conn *c, const char *script, hook_result *res)
{
    wsgi_frame_header h;
    apr_status_t rv;
    int looked_up = 0;

    for (;;) {
        if ((rv = wsgi_conn_fill(c, WSGI_WIRE_HEADER_SIZE)) != APR_SUCCESS) {
            if (!looked_up && !wsgi_conn_avail(c) && APR_STATUS_IS_ECONNRESET(rv))
                return -1;
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv == APR_EOF ? 0 : rv, r, WSGILOGNO(01313)
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
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv == APR_EOF ? 0 : rv, r, WSGILOGNO(01314)
                          "Truncated answer from daemon process '%s' for hook script '%s'", g->name,
                          script);
            return 0;
        }
        if (h.type == WSGI_FRAME_VAR_LOOKUP) {
            if ((rv = wsgi_lookup_answer(r, c, h.length)) == APR_EGENERAL)
                return 0;
            if (rv != APR_SUCCESS) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, WSGILOGNO(01315)
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
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01316)
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
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01317)
                  "Malformed answer from daemon process '%s' for hook script '%s'; connection dropped",
                  g->name, script);
    return 0;
}

/* Runs `hook` of script s for r; res->outcome is WSGI_AUTH_ERROR whenever it could not run. */
static void run_hook(request_rec *r, const wsgi_auth_script *s, int hook, const char *arg1,
                     const char *arg2, hook_result *res)
{
    wsgi_group *g = hook_group(r, s);
    unsigned char *frame;
    apr_size_t len;
    int attempt, max_attempts;

    res->outcome = WSGI_AUTH_ERROR;
    res->values = apr_array_make(r->pool, 4, sizeof(const char *));
    if (!g || !(frame = build_frame(r, s, hook, g->name, arg1, arg2, &len)))
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
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01318)
                  "Daemon processes of '%s' went away %d times without running hook script '%s'",
                  g->name, max_attempts, s->script);
}

/* ---------------------------------------------------------------------------------------------- */
/* Hooks and providers                                                                            */

static int wsgi_check_access(request_rec *r)
{
    wsgi_dir_conf *dc = ap_get_module_config(r->per_dir_config, &wsgi_module);
    const char *host;
    hook_result res;

    if (!dc || !dc->access_script)
        return DECLINED;
    host = ap_get_remote_host(r->connection, r->per_dir_config, REMOTE_HOST, NULL);
    if (!host)
        host = r->useragent_ip;
    run_hook(r, dc->access_script, WSGI_AUTH_ALLOW_ACCESS, host, NULL, &res);
    if (res.outcome == WSGI_AUTH_GRANTED)
        return OK;
    if (res.outcome == WSGI_AUTH_NOT_FOUND)
        return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01319)
                  "Client denied by server configuration (WSGIAccessScript '%s'): '%s'",
                  dc->access_script->script, r->filename ? r->filename : r->uri);
    return HTTP_FORBIDDEN;
}

static const wsgi_auth_script *user_script(request_rec *r)
{
    wsgi_dir_conf *dc = ap_get_module_config(r->per_dir_config, &wsgi_module);

    if (dc && dc->auth_user_script)
        return dc->auth_user_script;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01320)
                  "Location of WSGI user authentication script not provided (WSGIAuthUserScript is "
                  "needed with the 'wsgi' authentication provider)");
    return NULL;
}

static authn_status wsgi_check_password(request_rec *r, const char *user, const char *password)
{
    const wsgi_auth_script *s = user_script(r);
    hook_result res;

    if (!s)
        return AUTH_GENERAL_ERROR;
    run_hook(r, s, WSGI_AUTH_CHECK_PASSWORD, user, password, &res);
    switch (res.outcome) {
    case WSGI_AUTH_GRANTED:
        /* A name instead of True: the authenticated user from now on (REMOTE_USER, logs, authz). */
        if (res.values->nelts == 1)
            r->user = ((char **)res.values->elts)[0];
        return AUTH_GRANTED;
    case WSGI_AUTH_DENIED:
        return AUTH_DENIED;
    case WSGI_AUTH_NOT_FOUND:
        return AUTH_USER_NOT_FOUND;
    default:
        return AUTH_GENERAL_ERROR;
    }
}

static authn_status wsgi_get_realm_hash(request_rec *r, const char *user, const char *realm,
                                        char **rethash)
{
    const wsgi_auth_script *s = user_script(r);
    hook_result res;

    if (!s)
        return AUTH_GENERAL_ERROR;
    run_hook(r, s, WSGI_AUTH_GET_REALM_HASH, user, realm, &res);
    if (res.outcome == WSGI_AUTH_GRANTED && res.values->nelts == 1) {
        *rethash = ((char **)res.values->elts)[0];
        return AUTH_USER_FOUND;
    }
    return res.outcome == WSGI_AUTH_NOT_FOUND ? AUTH_USER_NOT_FOUND : AUTH_GENERAL_ERROR;
}

static authz_status wsgi_check_groups(request_rec *r, const char *require_args, const void *parsed)
{
    wsgi_dir_conf *dc = ap_get_module_config(r->per_dir_config, &wsgi_module);
    const char *t = require_args, *w, *key;
    hook_result *res;
    void *cached = NULL;
    int i;

    if (!r->user)
        return AUTHZ_DENIED_NO_USER;
    if (!dc || !dc->auth_group_script) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01321)
                      "Location of WSGI group authorization script not provided (WSGIAuthGroupScript "
                      "is needed with 'Require wsgi-group')");
        return AUTHZ_DENIED;
    }
    /* Several Require wsgi-group lines of one request ask the script once. */
    key = apr_pstrcat(r->pool, "mod_wsgi.groups:", dc->auth_group_script->script, ":", r->user, NULL);
    apr_pool_userdata_get(&cached, key, r->pool);
    if (cached) {
        res = cached;
    }
    else {
        res = apr_pcalloc(r->pool, sizeof(*res));
        run_hook(r, dc->auth_group_script, WSGI_AUTH_GROUPS_FOR_USER, r->user, NULL, res);
        apr_pool_userdata_setn(res, key, NULL, r->pool);
    }
    if (res->outcome != WSGI_AUTH_GRANTED)
        return AUTHZ_DENIED;
    if (res->values->nelts == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01322)
                      "Authorization of user '%s' to access '%s' failed. User is not a member of any "
                      "groups.", r->user, r->uri);
        return AUTHZ_DENIED;
    }
    while ((w = ap_getword_conf(r->pool, &t)) && w[0]) {
        for (i = 0; i < res->values->nelts; ++i) {
            if (!strcmp(((const char **)res->values->elts)[i], w))
                return AUTHZ_GRANTED;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, WSGILOGNO(01323)
                  "Authorization of user '%s' to access '%s' failed. User is not a member of "
                  "designated groups.", r->user, r->uri);
    return AUTHZ_DENIED;
}

/* `Require wsgi-group` without a group name is a configuration error, caught by apache2 -t. */
static const char *wsgi_parse_groups(cmd_parms *cmd, const char *require_line, const void **parsed)
{
    const char *t = require_line;

    if (!*ap_getword_conf(cmd->temp_pool, &t))
        return "Require wsgi-group: at least one group name is required";
    return NULL;
}

static const authn_provider wsgi_authn_provider = {
    &wsgi_check_password,
    &wsgi_get_realm_hash
};

static const authz_provider wsgi_authz_provider = {
    &wsgi_check_groups,
    &wsgi_parse_groups
};

void wsgi_auth_register_hooks(apr_pool_t *p)
{
    /* After mod_ssl's access checks (SSLRequire, client certificates), as mod_wsgi. */
    static const char *const after_ssl[] = { "mod_ssl.c", NULL };

    ap_hook_check_access(wsgi_check_access, after_ssl, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHN_PROVIDER_GROUP, "wsgi", AUTHN_PROVIDER_VERSION,
                              &wsgi_authn_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "wsgi-group", AUTHZ_PROVIDER_VERSION,
                              &wsgi_authz_provider, AP_AUTH_INTERNAL_PER_CONF);
}
