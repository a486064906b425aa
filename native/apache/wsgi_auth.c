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
 * Python never runs in Apache: each call is an AUTH frame to a daemon (wsgi_auth_call.c).
 */
#include "wsgi_auth.h"
#include "wsgi_forward.h"
#include "wsgi_options.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_auth.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include <stddef.h>

APLOG_USE_MODULE(wsgi);
extern module AP_MODULE_DECLARE_DATA wsgi_module;

#include "wsgi_log.h"

typedef struct {
    server_rec *server;
    const wsgi_dir_conf *dc;
    const char *location;               /* the URL of an enclosing <Location>, else NULL */
} auth_ref;

/* ---------------------------------------------------------------------------------------------- */
/* Directives                                                                                     */

/* Their options (wsgi_parse_script_options); in .htaccess a literal group name is not remembered for
 * check_config, which has run long before. */
static const wsgi_script_option script_options[] = {
    { "application-group", WSGI_OPT_APPLICATION_GROUP, offsetof(wsgi_auth_script, application_group) },
    { "process-group", WSGI_OPT_PROCESS_GROUP, offsetof(wsgi_auth_script, process_group) },
    { NULL, 0, 0 }
};
static const wsgi_script_option htaccess_options[] = {
    { "application-group", WSGI_OPT_APPLICATION_GROUP, offsetof(wsgi_auth_script, application_group) },
    { "process-group", WSGI_OPT_GROUP_NAME, offsetof(wsgi_auth_script, process_group) },
    { NULL, 0, 0 }
};

const char *wsgi_cmd_auth_script(cmd_parms *cmd, void *dconf, const char *args)
{
    /* In .htaccess (AllowOverride AuthConfig) the setter runs per request, with the request's pool:
     * nothing may go into the configuration generation's state then. */
    int htaccess = cmd->pool != cmd->server->process->pconf;
    wsgi_auth_script *s = apr_pcalloc(cmd->pool, sizeof(*s));
    const char *path, *err;

    path = ap_getword_conf(cmd->pool, &args);
    if (!*path)
        return apr_psprintf(cmd->pool, "%s requires the path of a Python script", cmd->cmd->name);
    s->script = ap_server_root_relative(cmd->pool, path);
    if (!s->script)
        return apr_psprintf(cmd->pool, "%s: invalid script path '%s'", cmd->cmd->name, path);
    if ((err = wsgi_parse_script_options(cmd, args, htaccess ? htaccess_options : script_options, s)) != NULL)
        return err;
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
/* Hooks and providers                                                                            */

static int wsgi_check_access(request_rec *r)
{
    wsgi_dir_conf *dc = ap_get_module_config(r->per_dir_config, &wsgi_module);
    const char *host;
    wsgi_auth_result res;

    if (!dc || !dc->access_script)
        return DECLINED;
    host = ap_get_remote_host(r->connection, r->per_dir_config, REMOTE_HOST, NULL);
    if (!host)
        host = r->useragent_ip;
    wsgi_auth_run(r, dc->access_script, WSGI_AUTH_ALLOW_ACCESS, host, NULL, &res);
    if (res.outcome == WSGI_AUTH_GRANTED)
        return OK;
    if (res.outcome == WSGI_AUTH_NOT_FOUND)
        return DECLINED;
    wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01319)
                  "Client denied by server configuration (WSGIAccessScript '%s'): '%s'",
                  dc->access_script->script, r->filename ? r->filename : r->uri);
    return HTTP_FORBIDDEN;
}

static const wsgi_auth_script *user_script(request_rec *r)
{
    wsgi_dir_conf *dc = ap_get_module_config(r->per_dir_config, &wsgi_module);

    if (dc && dc->auth_user_script)
        return dc->auth_user_script;
    wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01320)
                  "Location of WSGI user authentication script not provided (WSGIAuthUserScript is "
                  "needed with the 'wsgi' authentication provider)");
    return NULL;
}

static authn_status wsgi_check_password(request_rec *r, const char *user, const char *password)
{
    const wsgi_auth_script *s = user_script(r);
    wsgi_auth_result res;

    if (!s)
        return AUTH_GENERAL_ERROR;
    wsgi_auth_run(r, s, WSGI_AUTH_CHECK_PASSWORD, user, password, &res);
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
    wsgi_auth_result res;

    if (!s)
        return AUTH_GENERAL_ERROR;
    wsgi_auth_run(r, s, WSGI_AUTH_GET_REALM_HASH, user, realm, &res);
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
    wsgi_auth_result *res;
    void *cached = NULL;
    int i;

    if (!r->user)
        return AUTHZ_DENIED_NO_USER;
    if (!dc || !dc->auth_group_script) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01321)
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
        wsgi_auth_run(r, dc->auth_group_script, WSGI_AUTH_GROUPS_FOR_USER, r->user, NULL, res);
        apr_pool_userdata_setn(res, key, NULL, r->pool);
    }
    if (res->outcome != WSGI_AUTH_GRANTED)
        return AUTHZ_DENIED;
    if (res->values->nelts == 0) {
        wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01322)
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
    wsgi_rlog(APLOG_ERR, 0, r, WSGILOGNO(01323)
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
