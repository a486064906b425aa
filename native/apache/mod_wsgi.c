/*
 * mod_wsgi.so: mod_wsgi 4.1.0 for Apache httpd 2.4, with daemon processes written in TypeScript.
 *
 * This file holds the module declaration, the command table and the hooks; the work is done by
 *   wsgi_config.c, wsgi_options.c, wsgi_check.c   directives and their validation
 *   wsgi_python.c                                  each group's CPython, the GIL directives
 *   wsgi_daemon.c, wsgi_supervise.c, wsgi_pool.c, wsgi_segment.c, wsgi_doorbell.c, wsgi_spawn.c,
 *   wsgi_json.c                                    daemon sockets, the board, processes and supervision
 *   wsgi_stop.c                                    Apache's graceful stop, for the daemons
 *   wsgi_forward.c, wsgi_request.c, wsgi_response.c, wsgi_conn.c   forwarding requests to daemons
 *   wsgi_auth.c, wsgi_auth_call.c, wsgi_lookup.c   access/auth/group hooks, mod_ssl variable lookups
 *   wsgi_ledger.c, wsgi_status*.c, wsgi_metrics.c, wsgi_health.c, wsgi_backlog.c
 *                                                  what the daemons do: status, metrics, health, history
 * No Python runs in Apache's processes: every WSGI application lives in a daemon process group.
 */
#include "httpd.h"

/* Release notes 4.1.0, Features Removed 2: no Apache 1.3 any more. This module is written against the
 * Apache 2.4 API (APLOG_USE_MODULE, ap_state_query, mod_unixd...): older trees are refused here, with
 * one clear line, instead of a page of compiler errors. 20120211 is Apache 2.4.0's magic number. */
#if !AP_MODULE_MAGIC_AT_LEAST(20120211, 0)
#error "mod_wsgi needs Apache httpd 2.4 or later: these are the headers of an older Apache (see apxs -q INCLUDEDIR)"
#endif

#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "mpm_common.h"

#include <stddef.h>

#include "wsgi_auth.h"
#include "wsgi_config.h"
#include "wsgi_conn.h"
#include "wsgi_daemon.h"
#include "wsgi_forward.h"
#include "wsgi_log.h"
#include "wsgi_python.h"
#include "wsgi_status.h"

#define MOD_WSGI_VERSION_STRING "4.1.0"

module AP_MODULE_DECLARE_DATA wsgi_module;

/* ---------------------------------------------------------------------------------------------- */
/* Hooks                                                                                          */

static int wsgi_hook_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                  server_rec *s)
{
    int rv = wsgi_config_check(pconf, s);
    return rv != OK ? rv : wsgi_python_check(pconf, s);
}

static int wsgi_hook_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                 server_rec *s)
{
    /* Release notes 4.1.0, Features Removed 1: no longer together with mod_python. */
    if (ap_find_linked_module("mod_python.c")) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, WSGILOGNO(01010)
                     "mod_wsgi %s cannot be used together with mod_python: remove the LoadModule "
                     "line of mod_python. Apache will not start.", MOD_WSGI_VERSION_STRING);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_add_version_component(pconf, "mod_wsgi/" MOD_WSGI_VERSION_STRING);

    /* The first pass only checks the configuration: no daemons for it. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    return wsgi_daemons_start(pconf, ptemp, s);
}

static void wsgi_hook_child_init(apr_pool_t *pchild, server_rec *s)
{
    wsgi_daemons_child_init(pchild, s);
    wsgi_conn_child_init(pchild, s);
}

static int wsgi_hook_monitor(apr_pool_t *p, server_rec *s)
{
    return wsgi_daemons_monitor(p, s);
}

/* ---------------------------------------------------------------------------------------------- */
/* Command table                                                                                  */

#define STATE_FLAG(name, field, help) \
    AP_INIT_TAKE1(name, wsgi_cmd_global_flag, (void *)offsetof(wsgi_state, field), RSRC_CONF, help)
#define DIR_FLAG(name, field, help) \
    AP_INIT_TAKE1(name, wsgi_cmd_dir_flag, (void *)offsetof(wsgi_dir_conf, field), OR_FILEINFO, help)
#define AUTH_SCRIPT(name, field, help) \
    AP_INIT_RAW_ARGS(name, wsgi_cmd_auth_script, (void *)offsetof(wsgi_dir_conf, field), OR_AUTHCFG, help)

static const command_rec wsgi_commands[] = {
    AP_INIT_RAW_ARGS("WSGIScriptAlias", wsgi_cmd_script_alias, NULL, RSRC_CONF,
                     "URL-path file-or-directory [process-group=G] [application-group=A] "
                     "[callable-object=C] [pass-authorization=On|Off] [application-type=auto|asgi|wsgi]: "
                     "map a URL to a WSGI (or ASGI) script"),
    AP_INIT_RAW_ARGS("WSGIScriptAliasMatch", wsgi_cmd_script_alias, "*", RSRC_CONF,
                     "regex file-or-directory [options as WSGIScriptAlias]: map a URL pattern to a "
                     "WSGI script ($1... substituted)"),
    AP_INIT_RAW_ARGS("WSGIDaemonProcess", wsgi_cmd_daemon_process, NULL, RSRC_CONF,
                     "name [option=value ...]: define a group of daemon processes"),
    AP_INIT_TAKE1("WSGISocketPrefix", wsgi_cmd_socket_prefix, NULL, RSRC_CONF,
                  "path prefix of the daemon process sockets (global)"),
    AP_INIT_TAKE1("WSGIPythonHome", wsgi_cmd_python_home, NULL, RSRC_CONF,
                  "Python prefix or virtual environment of the daemons (global)"),
    AP_INIT_TAKE1("WSGIPythonPath", wsgi_cmd_python_path, NULL, RSRC_CONF,
                  "colon separated directories added to the Python module search path (global)"),
    AP_INIT_TAKE1("WSGIPythonEggs", wsgi_cmd_python_eggs, NULL, RSRC_CONF,
                  "Python eggs cache directory (global)"),
    AP_INIT_TAKE1("WSGIPythonHashSeed", wsgi_cmd_python_hash_seed, NULL, RSRC_CONF,
                  "random or 0..4294967295: Python's hash seed, as PYTHONHASHSEED (global)"),
    AP_INIT_TAKE1("WSGIPythonOptimize", wsgi_cmd_python_optimize, NULL, RSRC_CONF,
                  "0, 1 or 2: Python optimisation level (global)"),
    AP_INIT_TAKE1("WSGIPythonWarnings", wsgi_cmd_python_warnings, NULL, RSRC_CONF,
                  "a warning filter as for python -W; repeatable (global)"),
    STATE_FLAG("WSGIDontWriteBytecode", dont_write_bytecode,
               "On|Off: stop Python writing .pyc files (global)"),
    STATE_FLAG("WSGILazyInitialization", lazy_initialization,
               "On|Off: accepted for compatibility; Python only runs in daemons (global)"),
    STATE_FLAG("WSGIVerboseDebugging", verbose_debugging,
               "On|Off: log each step of interpreter and script setup (global)"),
    STATE_FLAG("WSGIRestrictEmbedded", restrict_embedded,
               "On|Off: On refuses requests without a daemon process group (global)"),
    STATE_FLAG("WSGIRestrictStdin", restrict_stdin,
               "On|Off: restrict use of sys.stdin by applications (global)"),
    STATE_FLAG("WSGIRestrictStdout", restrict_stdout,
               "On|Off: restrict use of sys.stdout by applications (global)"),
    STATE_FLAG("WSGIRestrictSignal", restrict_signal,
               "On|Off: stop applications registering signal handlers (global)"),
    STATE_FLAG("WSGIPerInterpreterGIL", per_interpreter_gil,
               "On|Off: each sub-interpreter (application group) has its own GIL, CPython 3.12+ "
               "(global, mod_wsgi 6)"),
    AP_INIT_TAKE1("WSGISwitchInterval", wsgi_cmd_switch_interval, NULL, RSRC_CONF,
                  "seconds: sys.setswitchinterval() of the default process group (global, mod_wsgi 6; "
                  "process groups have switch-interval=)"),
    AP_INIT_TAKE1("WSGIAcceptMutex", wsgi_cmd_ignored, NULL, RSRC_CONF,
                  "accepted for compatibility, no effect: daemons share one listening socket"),
    AP_INIT_TAKE1("WSGIPassApacheRequest", wsgi_cmd_ignored, NULL, ACCESS_CONF | RSRC_CONF,
                  "accepted for compatibility, no effect: there is no embedded mode"),
    AP_INIT_TAKE1("WSGIProcessGroup", wsgi_cmd_process_group, NULL, ACCESS_CONF | RSRC_CONF,
                  "name | %{GLOBAL} | %{ENV:variable}: the daemon process group to use"),
    AP_INIT_TAKE1("WSGIApplicationGroup", wsgi_cmd_application_group, NULL,
                  ACCESS_CONF | RSRC_CONF,
                  "name | %{GLOBAL} | %{SERVER} | %{RESOURCE} | %{HOST} | %{ENV:variable}: "
                  "the Python (sub)interpreter to use"),
    AP_INIT_TAKE1("WSGICallableObject", wsgi_cmd_callable_object, NULL, OR_FILEINFO,
                  "name | %{ENV:variable}: the WSGI callable in the script (default application)"),
    AP_INIT_RAW_ARGS("WSGIRestrictProcess", wsgi_cmd_restrict_process, NULL,
                     ACCESS_CONF | RSRC_CONF, "group...: the process groups that may be used here"),
    AP_INIT_RAW_ARGS("WSGIImportScript", wsgi_cmd_import_script, NULL, RSRC_CONF,
                     "file process-group=G application-group=A: preload a script in the daemons"),
    AP_INIT_RAW_ARGS("WSGIHandlerScript", wsgi_cmd_handler_script, NULL, ACCESS_CONF | RSRC_CONF,
                     "name file [process-group=G] [application-group=A] [pass-authorization=On|Off]: "
                     "a handler name for SetHandler/AddHandler served by a WSGI script"),
    DIR_FLAG("WSGIPassAuthorization", pass_authorization,
             "On|Off: pass the Authorization header to applications (HTTP_AUTHORIZATION)"),
    DIR_FLAG("WSGIScriptReloading", script_reloading,
             "On|Off: reload a WSGI script when its file changes (default On)"),
    DIR_FLAG("WSGIErrorOverride", error_override,
             "On|Off: Apache's error documents replace the application's error responses"),
    DIR_FLAG("WSGIChunkedRequest", chunked_request,
             "On|Off: accept chunked request bodies (default Off: 411 Length Required)"),
    DIR_FLAG("WSGIEnableSendfile", enable_sendfile,
             "On|Off: let wsgi.file_wrapper responses use sendfile() (default Off)"),
    AUTH_SCRIPT("WSGIAccessScript", access_script,
                "file [process-group=G] [application-group=A]: allow_access(environ, host) decides "
                "who may access"),
    AUTH_SCRIPT("WSGIAuthUserScript", auth_user_script,
                "file [process-group=G] [application-group=A]: check_password()/get_realm_hash() for "
                "AuthBasicProvider/AuthDigestProvider wsgi"),
    AUTH_SCRIPT("WSGIAuthGroupScript", auth_group_script,
                "file [process-group=G] [application-group=A]: groups_for_user() for Require wsgi-group"),
    { NULL }
};

/* ---------------------------------------------------------------------------------------------- */
/* Hook registration and module declaration                                                       */

static void wsgi_register_hooks(apr_pool_t *p)
{
    /* After mod_alias (an Alias wins over WSGIScriptAlias, as in mod_wsgi), before userdir. */
    static const char *const after_alias[] = { "mod_alias.c", NULL };
    static const char *const before[] = { "mod_userdir.c", "mod_vhost_alias.c", NULL };

    ap_hook_check_config(wsgi_hook_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(wsgi_hook_post_config, NULL, NULL, APR_HOOK_LAST);
    ap_hook_child_init(wsgi_hook_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(wsgi_hook_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(wsgi_translate_name, after_alias, before, APR_HOOK_MIDDLE);
    ap_hook_handler(wsgi_handler, NULL, NULL, APR_HOOK_MIDDLE);
    wsgi_auth_register_hooks(p);
    wsgi_stop_register_hooks(p);
    wsgi_status_register_hooks(p);
}

AP_DECLARE_MODULE(wsgi) = {
    STANDARD20_MODULE_STUFF,
    wsgi_create_dir_config,
    wsgi_merge_dir_config,
    wsgi_create_server_config,
    wsgi_merge_server_config,
    wsgi_commands,
    wsgi_register_hooks
};
