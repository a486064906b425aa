/*
 * Configuration of mod_wsgi.so: the directive setters (wsgi_config.c), the per-server and
 * per-directory structures with their create/merge functions, and the per-generation state that
 * collects what the whole configuration defines (process groups, global Python settings).
 *
 * "Unset" is always distinguishable from "off": flags use WSGI_UNSET, strings NULL.
 */
#ifndef WSGI_CONFIG_H
#define WSGI_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "ap_regex.h"
#include "apr_hash.h"
#include "apr_tables.h"

#include <sys/types.h>

#define WSGI_UNSET (-1)

#define WSGI_DEFAULT_THREADS            15
#define WSGI_DEFAULT_SHUTDOWN_TIMEOUT   5
#define WSGI_DEFAULT_DEADLOCK_TIMEOUT   300
#define WSGI_DEFAULT_CONNECT_TIMEOUT    15
#define WSGI_DEFAULT_LISTEN_BACKLOG     100
#define WSGI_DEFAULT_HEADER_BUFFER_SIZE 32768
#define WSGI_MIN_HEADER_BUFFER_SIZE     8192

/*
 * The smallest memory limits a daemon process (Node.js + CPython) works with, measured with
 * bench/memory-floor.ts for hello world (README, "Memory limits"): a base, plus each worker thread's
 * stack (stack-size, else the usual 8 MiB). RLIMIT_AS needs about 810-842 MiB at threads=1 and 921-953
 * MiB at threads=15, and in use with 15 threads busy after requests 998-1110 MiB from run to run (V8
 * and malloc reserve address space in large, variable steps); RLIMIT_DATA 72 MiB and 191 MiB.
 * The bases leave room for V8's heap to grow under load.
 * src/config/memory-floor.ts has the same numbers.
 */
#define WSGI_MIB                        (APR_INT64_C(1) << 20)
#define WSGI_FLOOR_AS_BASE              (1024 * WSGI_MIB)
#define WSGI_FLOOR_AS_PER_THREAD        (4 * WSGI_MIB)      /* besides the stack */
#define WSGI_FLOOR_DATA_BASE            (128 * WSGI_MIB)
#define WSGI_FLOOR_DATA_PER_THREAD      (WSGI_MIB / 2)      /* besides the stack */
#define WSGI_DEFAULT_THREAD_STACK       (8 * WSGI_MIB)
/* memory-recycle below this would recycle a daemon before its application is even loaded. */
#define WSGI_MIN_MEMORY_RECYCLE         (64 * WSGI_MIB)
/* WebSocket (README, "WebSocket"): uvicorn's defaults. */
#define WSGI_DEFAULT_WEBSOCKET_MAX_MESSAGE    (16 * WSGI_MIB)
#define WSGI_MAX_WEBSOCKET_MAX_MESSAGE        APR_INT64_C(2147483647)
#define WSGI_DEFAULT_WEBSOCKET_PING_INTERVAL  20
#define WSGI_DEFAULT_WEBSOCKET_PING_TIMEOUT   20

struct wsgi_conn_pool;
struct wsgi_pool;

/*
 * What the running server keeps for a group beside its configuration: set in the Apache parent by
 * post_config (wsgi_daemon.c), inherited by Apache's children, which add their connection pool in
 * child_init (wsgi_conn.c). NULL in a configuration that only checks (apache2 -t).
 */
typedef struct wsgi_group_rt {
    const char *socket_path;        /* where the group's daemons listen */
    struct wsgi_pool *pool;         /* the daemons' pool (parent) */
    struct wsgi_conn_pool *conns;   /* this Apache child's idle connections to them */
} wsgi_group_rt;

/*
 * One process group: a WSGIDaemonProcess, or the implicit default group "" that serves every
 * WSGIScriptAlias without a process group. Validated and normalised by the time post_config runs
 * (check_config fills in Apache's User/Group/Timeout defaults).
 */
typedef struct wsgi_group {
    const char *name;
    server_rec *server;             /* where it was defined (the main server for the default group) */
    const char *defined_at;         /* "file:line", for messages */

    int processes;
    int multiprocess;               /* processes= given explicitly */
    int threads;
    const char *user;               /* NULL until check_config: Apache's User */
    uid_t uid;
    const char *group;              /* NULL until check_config: Apache's Group */
    gid_t gid;
    apr_array_header_t *supplementary_groups;   /* gid_t; NULL: initgroups(user) */
    long umask;                     /* -1: not set */
    const char *home;
    const char *display_name;
    const char *lang;
    const char *locale;
    int cpu_priority;
    apr_array_header_t *python_path;            /* const char * */
    const char *python_home;
    const char *python_executable;  /* python-executable=: a Python without a virtualenv */
    const char *python_eggs;
    apr_int64_t stack_size;
    int maximum_requests;
    int shutdown_timeout;
    int deadlock_timeout;
    int inactivity_timeout;
    int request_timeout;
    int interrupt_timeout;          /* mod_wsgi 6: RequestTimeout raised first, this long to unwind */
    double switch_interval;         /* mod_wsgi 6: sys.setswitchinterval(); 0: not set */
    int graceful_timeout;
    int cpu_time_limit;
    apr_int64_t memory_limit;
    apr_int64_t virtual_memory_limit;
    int listen_backlog;
    int send_buffer_size;
    int receive_buffer_size;
    int connect_timeout;
    int socket_timeout;             /* 0 until check_config: Apache's Timeout */
    int queue_timeout;
    int header_buffer_size;
    const char *asgi_loop;          /* asgi-loop=: "asyncio" (default) or "uvloop" */
    const char *script_user;        /* script-user=: owner the WSGI script file must have */
    uid_t script_uid;
    const char *script_group;       /* script-group=: group the WSGI script file must have */
    gid_t script_gid;
    int restart_interval;           /* seconds; a process is replaced (start-first) after this long */
    int startup_timeout;            /* seconds; a process not ready after this long is replaced */
    apr_int64_t memory_recycle;     /* bytes; a process whose RSS passes this is replaced */
    apr_int64_t websocket_max_message;  /* bytes; a larger message from a client: close 1009; 0: none */
    int websocket_ping_interval;    /* seconds without anything from a client before a ping; 0: never */
    int websocket_ping_timeout;     /* seconds a ping may go unanswered before the peer counts as dead */
    int websocket_idle_timeout;     /* seconds without a message either way: close 1001; 0: never */
    int websocket_max_lifetime;     /* seconds a WebSocket may stay open: close 1001; 0: no limit */
    /* Normalised by check_config. */
    apr_interval_time_t connect_timeout_us;
    apr_interval_time_t socket_timeout_us;

    wsgi_group_rt *rt;              /* running state, apart from the configuration */
} wsgi_group;

/* A process group named literally somewhere, checked against the defined groups in check_config. */
typedef struct {
    const char *name;
    server_rec *server;
    const char *directive;
    const char *file;
    int line;
} wsgi_group_ref;

/* A script preloaded by the daemons of a group: WSGIImportScript, or a WSGIScriptAlias naming both
 * its process group and application group literally (as mod_wsgi does). */
typedef struct {
    const char *script;
    const char *process_group;
    const char *application_group;
} wsgi_import;

/*
 * Everything one configuration generation defines globally. One per pconf (pool userdata), so it is
 * rebuilt on every restart; every server config points to it.
 */
typedef struct wsgi_state {
    apr_pool_t *pool;
    apr_array_header_t *groups;         /* wsgi_group *, definition order, default group last */
    apr_hash_t *group_index;            /* name -> wsgi_group * */
    apr_array_header_t *refs;           /* wsgi_group_ref */
    apr_array_header_t *imports;        /* wsgi_import */
    int uses_default_group;             /* some directive may route to the group "" */
    wsgi_group *default_group;          /* created by check_config when needed */

    const char *socket_prefix;
    const char *python_home;
    const char *python_path;
    const char *python_eggs;
    const char *python_hash_seed;       /* NULL, "random" or digits */
    apr_array_header_t *python_warnings;
    int python_optimize;
    int dont_write_bytecode;
    int restrict_embedded;
    int restrict_stdin;
    int restrict_stdout;
    int restrict_signal;
    int verbose_debugging;
    int lazy_initialization;
    int per_interpreter_gil;            /* WSGIPerInterpreterGIL (mod_wsgi 6): 1 On */
    double switch_interval;             /* WSGISwitchInterval (mod_wsgi 6): the default group's; 0 unset */
    apr_array_header_t *auth_refs;      /* hook scripts without process-group= (wsgi_auth.c) */
} wsgi_state;

typedef struct {
    const char *location;               /* URL prefix, or the pattern of WSGIScriptAliasMatch */
    ap_regex_t *regexp;                 /* WSGIScriptAliasMatch only */
    const char *target;                 /* script file or directory; $N substituted for Match */
    const char *process_group;
    const char *application_group;
    const char *callable_object;
    int pass_authorization;
    const char *application_type;       /* application-type=: NULL (auto), "asgi" or "wsgi" */
} wsgi_alias;

typedef struct {
    const char *script;
    const char *process_group;
    const char *application_group;
    int pass_authorization;
} wsgi_handler_script;

/* WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript (wsgi_auth.c). */
typedef struct {
    const char *script;
    const char *process_group;          /* NULL: the request's process group, else the default group */
    const char *application_group;      /* NULL: %{GLOBAL} */
} wsgi_auth_script;

typedef struct {
    wsgi_state *state;
    apr_array_header_t *aliases;        /* wsgi_alias, this server's first */
} wsgi_server_conf;

typedef struct {
    const char *process_group;
    const char *application_group;
    const char *callable_object;
    apr_table_t *restrict_process;      /* WSGIRestrictProcess: allowed group names */
    apr_hash_t *handler_scripts;        /* handler name -> wsgi_handler_script */
    int pass_authorization;
    int script_reloading;
    int error_override;
    int chunked_request;
    int enable_sendfile;
    const wsgi_auth_script *access_script;
    const wsgi_auth_script *auth_user_script;
    const wsgi_auth_script *auth_group_script;
} wsgi_dir_conf;

void *wsgi_create_server_config(apr_pool_t *p, server_rec *s);
void *wsgi_merge_server_config(apr_pool_t *p, void *base, void *add);
void *wsgi_create_dir_config(apr_pool_t *p, char *dir);
void *wsgi_merge_dir_config(apr_pool_t *p, void *base, void *add);

/* The state of the configuration being read into pconf (created on first use). */
wsgi_state *wsgi_state_get(apr_pool_t *pconf);

/* Finds a group by name ("" is the default group); NULL if none. */
wsgi_group *wsgi_group_find(const wsgi_state *st, const char *name);

/* May a request to server s use group g? (defined in s, globally, or in a vhost of the same name) */
int wsgi_group_visible(const wsgi_group *g, const server_rec *s);

/*
 * Normalises a process group named in a directive (%{GLOBAL} is ""), remembering a literal name for
 * check_config to verify; returns the value to store.
 */
const char *wsgi_note_process_group(cmd_parms *cmd, const char *value);

/* check_config: defaults that depend on the whole configuration, and every literal group name. */
int wsgi_config_check(apr_pool_t *pconf, server_rec *main_server);

/* Directive setters, one per directive (the command table is in mod_wsgi.c). */
const char *wsgi_cmd_script_alias(cmd_parms *cmd, void *dconf, const char *args);
const char *wsgi_cmd_daemon_process(cmd_parms *cmd, void *dconf, const char *args);
const char *wsgi_cmd_socket_prefix(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_python_home(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_python_path(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_python_eggs(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_python_hash_seed(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_python_optimize(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_python_warnings(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_global_flag(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_ignored(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_process_group(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_application_group(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_callable_object(cmd_parms *cmd, void *dconf, const char *arg);
const char *wsgi_cmd_restrict_process(cmd_parms *cmd, void *dconf, const char *args);
const char *wsgi_cmd_import_script(cmd_parms *cmd, void *dconf, const char *args);
const char *wsgi_cmd_handler_script(cmd_parms *cmd, void *dconf, const char *args);
const char *wsgi_cmd_dir_flag(cmd_parms *cmd, void *dconf, const char *arg);

#endif /* WSGI_CONFIG_H */
