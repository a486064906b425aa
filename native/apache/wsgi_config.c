/*
 * Configuration structures and directive setters of mod_wsgi.so (mod_wsgi 4.1.0 directives).
 * WSGIDaemonProcess options are parsed by wsgi_options.c; whole-configuration checks that need every
 * directive read first (defaults from User/Group/Timeout, process group names) are in wsgi_check.c.
 */
#include "wsgi_config.h"
#include "wsgi_options.h"

#include "http_core.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include <errno.h>
#include <stddef.h>

APLOG_USE_MODULE(wsgi);
extern module AP_MODULE_DECLARE_DATA wsgi_module;

#include "wsgi_log.h"

#define STATE_KEY "mod_wsgi_state"

/* ---------------------------------------------------------------------------------------------- */
/* Structures                                                                                     */

wsgi_state *wsgi_state_get(apr_pool_t *pconf)
{
    void *data = NULL;
    wsgi_state *st;

    apr_pool_userdata_get(&data, STATE_KEY, pconf);
    if (data)
        return data;

    st = apr_pcalloc(pconf, sizeof(*st));
    st->pool = pconf;
    st->groups = apr_array_make(pconf, 4, sizeof(wsgi_group *));
    st->group_index = apr_hash_make(pconf);
    st->refs = apr_array_make(pconf, 8, sizeof(wsgi_group_ref));
    st->imports = apr_array_make(pconf, 4, sizeof(wsgi_import));
    st->python_warnings = apr_array_make(pconf, 2, sizeof(const char *));
    st->restrict_embedded = WSGI_UNSET;
    st->restrict_stdin = WSGI_UNSET;
    st->restrict_stdout = WSGI_UNSET;
    st->restrict_signal = WSGI_UNSET;
    st->dont_write_bytecode = WSGI_UNSET;
    st->verbose_debugging = WSGI_UNSET;
    st->lazy_initialization = WSGI_UNSET;
    apr_pool_userdata_setn(st, STATE_KEY, NULL, pconf);
    return st;
}

wsgi_group *wsgi_group_find(const wsgi_state *st, const char *name)
{
    return apr_hash_get(st->group_index, name, APR_HASH_KEY_STRING);
}

int wsgi_group_visible(const wsgi_group *g, const server_rec *s)
{
    if (g->server == s || !g->server->is_virtual)
        return 1;
    return g->server->server_hostname && s->server_hostname &&
           !strcmp(g->server->server_hostname, s->server_hostname);
}

void *wsgi_create_server_config(apr_pool_t *p, server_rec *s)
{
    wsgi_server_conf *sc = apr_pcalloc(p, sizeof(*sc));

    sc->state = wsgi_state_get(p);
    return sc;
}

void *wsgi_merge_server_config(apr_pool_t *p, void *basev, void *addv)
{
    wsgi_server_conf *base = basev, *add = addv;
    wsgi_server_conf *sc = apr_pcalloc(p, sizeof(*sc));

    sc->state = add->state;
    /* A virtual host's own aliases are matched before the main server's, as in mod_wsgi. */
    if (add->aliases && base->aliases)
        sc->aliases = apr_array_append(p, add->aliases, base->aliases);
    else
        sc->aliases = add->aliases ? add->aliases : base->aliases;
    return sc;
}

void *wsgi_create_dir_config(apr_pool_t *p, char *dir)
{
    wsgi_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));

    dc->pass_authorization = WSGI_UNSET;
    dc->script_reloading = WSGI_UNSET;
    dc->error_override = WSGI_UNSET;
    dc->chunked_request = WSGI_UNSET;
    dc->enable_sendfile = WSGI_UNSET;
    return dc;
}

#define MERGE_PTR(field) dc->field = add->field ? add->field : base->field
#define MERGE_FLAG(field) dc->field = add->field != WSGI_UNSET ? add->field : base->field

void *wsgi_merge_dir_config(apr_pool_t *p, void *basev, void *addv)
{
    wsgi_dir_conf *base = basev, *add = addv;
    wsgi_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));

    MERGE_PTR(process_group);
    MERGE_PTR(application_group);
    MERGE_PTR(callable_object);
    MERGE_PTR(restrict_process);
    MERGE_FLAG(pass_authorization);
    MERGE_FLAG(script_reloading);
    MERGE_FLAG(error_override);
    MERGE_FLAG(chunked_request);
    MERGE_FLAG(enable_sendfile);
    MERGE_PTR(access_script);
    MERGE_PTR(auth_user_script);
    MERGE_PTR(auth_group_script);
    if (add->handler_scripts && base->handler_scripts)
        dc->handler_scripts = apr_hash_overlay(p, add->handler_scripts, base->handler_scripts);
    else
        MERGE_PTR(handler_scripts);
    return dc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */

/*
 * Normalises a process group value as written in the configuration: %{GLOBAL} is the default group
 * "". A literal name is remembered so that check_config can verify it names a defined group; a value
 * that only resolves per request (%{ENV:...}) may land on the default group, so it makes that group
 * needed.
 */
static const char *note_process_group(cmd_parms *cmd, const char *value)
{
    wsgi_state *st = wsgi_state_get(cmd->pool);
    wsgi_group_ref *ref;

    if (!strcmp(value, "%{GLOBAL}"))
        value = "";
    if (*value == '%') {
        if (!strncmp(value, "%{ENV:", 6))
            st->uses_default_group = 1;
        return value;
    }
    if (!*value)
        st->uses_default_group = 1;
    ref = apr_array_push(st->refs);
    ref->name = value;
    ref->server = cmd->server;
    ref->directive = cmd->cmd->name;
    ref->file = cmd->directive->filename;
    ref->line = cmd->directive->line_num;
    return value;
}

const char *wsgi_note_process_group(cmd_parms *cmd, const char *value)
{
    return note_process_group(cmd, value);
}

/* The options of each directive that names a script (wsgi_parse_script_options). */
static const wsgi_script_option alias_options[] = {
    { "process-group", WSGI_OPT_PROCESS_GROUP, offsetof(wsgi_alias, process_group) },
    { "application-group", WSGI_OPT_APPLICATION_GROUP, offsetof(wsgi_alias, application_group) },
    { "callable-object", WSGI_OPT_STRING, offsetof(wsgi_alias, callable_object) },
    { "pass-authorization", WSGI_OPT_ON_OFF, offsetof(wsgi_alias, pass_authorization) },
    { "application-type", WSGI_OPT_APPLICATION_TYPE, offsetof(wsgi_alias, application_type) },
    { NULL, 0, 0 }
};

/* process-group is checked (a name or %{GLOBAL}, never %{ENV:...}) before it is remembered. */
static const wsgi_script_option import_options[] = {
    { "process-group", WSGI_OPT_STRING, offsetof(wsgi_import, process_group) },
    { "application-group", WSGI_OPT_APPLICATION_GROUP, offsetof(wsgi_import, application_group) },
    { NULL, 0, 0 }
};

static const wsgi_script_option handler_options[] = {
    { "process-group", WSGI_OPT_PROCESS_GROUP, offsetof(wsgi_handler_script, process_group) },
    { "application-group", WSGI_OPT_APPLICATION_GROUP, offsetof(wsgi_handler_script, application_group) },
    { "pass-authorization", WSGI_OPT_ON_OFF, offsetof(wsgi_handler_script, pass_authorization) },
    { NULL, 0, 0 }
};

/* ---------------------------------------------------------------------------------------------- */
/* Directive setters                                                                              */

/* WSGIScriptAlias URL-path file [options], WSGIScriptAliasMatch regex file [options] (cmd->info set) */
const char *wsgi_cmd_script_alias(cmd_parms *cmd, void *dconf, const char *args)
{
    wsgi_server_conf *sc = ap_get_module_config(cmd->server->module_config, &wsgi_module);
    wsgi_state *st = sc->state;
    const char *location, *target, *err;
    wsgi_alias *a;

    location = ap_getword_conf(cmd->pool, &args);
    target = ap_getword_conf(cmd->pool, &args);
    if (!*location || !*target)
        return apr_psprintf(cmd->pool, "%s requires a %s and a script file or directory",
                            cmd->cmd->name, cmd->info ? "regular expression" : "URL path");

    a = apr_pcalloc(cmd->pool, sizeof(*a));
    a->location = location;
    a->target = target;
    a->pass_authorization = WSGI_UNSET;
    if ((err = wsgi_parse_script_options(cmd, args, alias_options, a)) != NULL)
        return err;

    if (cmd->info) {
        a->regexp = ap_pregcomp(cmd->pool, location, AP_REG_EXTENDED);
        if (!a->regexp)
            return apr_psprintf(cmd->pool, "%s: regular expression '%s' could not be compiled",
                                cmd->cmd->name, location);
    }

    /* As mod_wsgi: an alias naming both groups literally is preloaded by that group's daemons. */
    if (a->process_group && a->application_group && *a->process_group != '%' &&
        *a->application_group != '%' && (!cmd->info || !strchr(target, '$'))) {
        wsgi_import *imp = apr_array_push(st->imports);
        imp->script = target;
        imp->process_group = a->process_group;
        imp->application_group = a->application_group;
    }

    if (!sc->aliases)
        sc->aliases = apr_array_make(cmd->pool, 4, sizeof(wsgi_alias));
    *(wsgi_alias *)apr_array_push(sc->aliases) = *a;
    return NULL;
}

/* WSGIDaemonProcess name [options] */
const char *wsgi_cmd_daemon_process(cmd_parms *cmd, void *dconf, const char *args)
{
    wsgi_state *st = wsgi_state_get(cmd->pool);
    const char *name, *err;
    wsgi_group *g, *prev;

    name = ap_getword_conf(cmd->pool, &args);
    if (!*name)
        return "WSGIDaemonProcess requires the name of the process group";

    g = wsgi_group_new(cmd->pool, name, cmd->server);
    g->defined_at = apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                                 cmd->directive->line_num);
    if ((err = wsgi_parse_daemon_options(cmd, g, args)) != NULL)
        return err;

    /* Names are unique across the whole configuration, globally and in every virtual host, as in
     * mod_wsgi: a request names its group, and that name must lead to one socket. */
    prev = wsgi_group_find(st, name);
    if (prev)
        return apr_psprintf(cmd->pool, "WSGIDaemonProcess: process group name '%s' duplicates the "
                            "one defined at %s", name, prev->defined_at);

    *(wsgi_group **)apr_array_push(st->groups) = g;
    apr_hash_set(st->group_index, g->name, APR_HASH_KEY_STRING, g);
    return NULL;
}

/* WSGISocketPrefix path (global) */
const char *wsgi_cmd_socket_prefix(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    if (!*arg)
        return "WSGISocketPrefix requires a path prefix";
    wsgi_state_get(cmd->pool)->socket_prefix = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

const char *wsgi_cmd_python_home(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    if (*arg != '/')
        return apr_psprintf(cmd->pool, "WSGIPythonHome must be an absolute directory path, not '%s'",
                            arg);
    wsgi_state_get(cmd->pool)->python_home = arg;
    return NULL;
}

const char *wsgi_cmd_python_path(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    wsgi_state_get(cmd->pool)->python_path = arg;
    return NULL;
}

const char *wsgi_cmd_python_eggs(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    wsgi_state_get(cmd->pool)->python_eggs = arg;
    return NULL;
}

/* WSGIPythonHashSeed random | 0..4294967295 */
const char *wsgi_cmd_python_hash_seed(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *p;

    if (err)
        return err;
    if (strcmp(arg, "random")) {
        for (p = arg; apr_isdigit(*p); ++p)
            ;
        if (!*arg || *p || p - arg > 10 || apr_strtoi64(arg, NULL, 10) > APR_INT64_C(4294967295))
            return apr_psprintf(cmd->pool, "WSGIPythonHashSeed must be \"random\" or an integer from "
                                "0 to 4294967295, not '%s'", arg);
    }
    wsgi_state_get(cmd->pool)->python_hash_seed = arg;
    return NULL;
}

/* WSGIPythonOptimize 0 | 1 | 2 */
const char *wsgi_cmd_python_optimize(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    if (strcmp(arg, "0") && strcmp(arg, "1") && strcmp(arg, "2"))
        return apr_psprintf(cmd->pool, "WSGIPythonOptimize must be 0, 1 or 2, not '%s'", arg);
    wsgi_state_get(cmd->pool)->python_optimize = arg[0] - '0';
    return NULL;
}

/* WSGIPythonWarnings action:message:category:module:lineno (repeatable) */
const char *wsgi_cmd_python_warnings(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err)
        return err;
    if (!*arg)
        return "WSGIPythonWarnings requires a warning filter, as for python -W";
    *(const char **)apr_array_push(wsgi_state_get(cmd->pool)->python_warnings) = arg;
    return NULL;
}

/* Global On/Off directives; cmd->info is the offset of the int field in wsgi_state. */
const char *wsgi_cmd_global_flag(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    wsgi_state *st = wsgi_state_get(cmd->pool);

    if (err)
        return err;
    return wsgi_parse_on_off(cmd, NULL, arg, (int *)((char *)st + (size_t)cmd->info));
}

/* Directives of mod_wsgi that have no effect with daemon-only operation (accepted for compatibility). */
const char *wsgi_cmd_ignored(cmd_parms *cmd, void *dconf, const char *arg)
{
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, cmd->server, WSGILOGNO(01002)
                 "%s has no effect in this mod_wsgi and is ignored (%s:%d)", cmd->cmd->name,
                 cmd->directive->filename, cmd->directive->line_num);
    return NULL;
}

/* WSGIProcessGroup name | %{GLOBAL} | %{ENV:variable} | %{RESOURCE} | %{SERVER} | %{HOST} */
const char *wsgi_cmd_process_group(cmd_parms *cmd, void *dconf, const char *arg)
{
    wsgi_dir_conf *dc = dconf;

    if (!*arg)
        return "WSGIProcessGroup requires a process group name";
    dc->process_group = note_process_group(cmd, arg);
    return NULL;
}

/* WSGIApplicationGroup name | %{GLOBAL} | %{SERVER} | %{RESOURCE} | %{HOST} | %{ENV:variable} */
const char *wsgi_cmd_application_group(cmd_parms *cmd, void *dconf, const char *arg)
{
    wsgi_dir_conf *dc = dconf;

    dc->application_group = strcmp(arg, "%{GLOBAL}") ? arg : "";
    return NULL;
}

/* WSGICallableObject name | %{ENV:variable} */
const char *wsgi_cmd_callable_object(cmd_parms *cmd, void *dconf, const char *arg)
{
    wsgi_dir_conf *dc = dconf;

    if (!*arg)
        return "WSGICallableObject requires the name of the WSGI callable";
    dc->callable_object = arg;
    return NULL;
}

/* WSGIRestrictProcess group... : the process groups requests in this scope may select. */
const char *wsgi_cmd_restrict_process(cmd_parms *cmd, void *dconf, const char *args)
{
    wsgi_dir_conf *dc = dconf;

    dc->restrict_process = apr_table_make(cmd->pool, 4);
    while (*args) {
        const char *name = ap_getword_conf(cmd->pool, &args);
        if (!strcmp(name, "%{GLOBAL}"))
            name = "";
        apr_table_setn(dc->restrict_process, name, name);
    }
    return NULL;
}

/* WSGIImportScript file process-group=G application-group=A */
const char *wsgi_cmd_import_script(cmd_parms *cmd, void *dconf, const char *args)
{
    wsgi_state *st = wsgi_state_get(cmd->pool);
    const char *err;
    wsgi_import imp = { NULL, NULL, NULL };

    imp.script = ap_getword_conf(cmd->pool, &args);
    if (!*imp.script)
        return "WSGIImportScript requires the path of the script to import";
    if ((err = wsgi_parse_script_options(cmd, args, import_options, &imp)) != NULL)
        return err;
    if (!imp.process_group || !imp.application_group)
        return "WSGIImportScript: options 'process-group' and 'application-group' are both required";
    if (*imp.process_group == '%' && strcmp(imp.process_group, "%{GLOBAL}"))
        return apr_psprintf(cmd->pool, "WSGIImportScript: option 'process-group' must name a process "
                            "group or be %%{GLOBAL}, not '%s'", imp.process_group);
    if (*imp.application_group == '%')
        return apr_psprintf(cmd->pool, "WSGIImportScript: option 'application-group' must name an "
                            "application group or be %%{GLOBAL}, not '%s'", imp.application_group);
    imp.process_group = note_process_group(cmd, imp.process_group);
    *(wsgi_import *)apr_array_push(st->imports) = imp;
    return NULL;
}

/* WSGIHandlerScript name file [process-group=G] [application-group=A] [pass-authorization=On|Off] */
const char *wsgi_cmd_handler_script(cmd_parms *cmd, void *dconf, const char *args)
{
    wsgi_dir_conf *dc = dconf;
    wsgi_state *st = wsgi_state_get(cmd->pool);
    const char *name, *err;
    wsgi_handler_script *h;

    name = ap_getword_conf(cmd->pool, &args);
    h = apr_pcalloc(cmd->pool, sizeof(*h));
    h->script = ap_getword_conf(cmd->pool, &args);
    h->pass_authorization = WSGI_UNSET;
    if (!*name || !*h->script)
        return "WSGIHandlerScript requires a handler name and the path of the handler script";
    if ((err = wsgi_parse_script_options(cmd, args, handler_options, h)) != NULL)
        return err;
    if (!h->process_group)
        st->uses_default_group = 1;
    if (!dc->handler_scripts)
        dc->handler_scripts = apr_hash_make(cmd->pool);
    apr_hash_set(dc->handler_scripts, name, APR_HASH_KEY_STRING, h);
    return NULL;
}

/* Per-directory On/Off directives; cmd->info is the offset of the int field in wsgi_dir_conf. */
const char *wsgi_cmd_dir_flag(cmd_parms *cmd, void *dconf, const char *arg)
{
    return wsgi_parse_on_off(cmd, NULL, arg, (int *)((char *)dconf + (size_t)cmd->info));
}
