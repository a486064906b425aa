/*
 * Starting one daemon process from the Apache parent, exactly as docs/daemon-config.md says:
 *     <node> [MOD_WSGI_NODE_FLAGS] <daemon-main> <padding>     argv[0] "(wsgi:GROUP)"
 * fd 0 /dev/null, fds 1 and 2 the parent's error log, fd 3 the group's listening socket, nothing else
 * inherited; the whole configuration in MOD_WSGI_DAEMON_CONFIG; HOME/USER/LOGNAME for the target user.
 */
#include "wsgi_daemon.h"
#include "wsgi_json.h"

#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "mod_unixd.h"
#include "unixd.h"
#include "apr_strings.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

extern char **environ;

#define PADDING_LENGTH 64

static const char *log_level_name(int level)
{
    static const char *const names[] = {
        "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
        "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8"
    };
    if (level < 0)
        level = 0;
    if (level > 15)
        level = 15;
    return names[level];
}

static void json_strings(wsgi_json *j, const apr_array_header_t *a)
{
    int i;

    wsgi_json_array_open(j);
    for (i = 0; a && i < a->nelts; ++i)
        wsgi_json_string(j, APR_ARRAY_IDX(a, i, const char *));
    wsgi_json_array_close(j);
}

/* WSGIPythonPath split on ':' */
static void json_path_list(wsgi_json *j, apr_pool_t *p, const char *path)
{
    while (path && *path) {
        const char *entry = ap_getword(p, &path, ':');
        if (*entry)
            wsgi_json_string(j, entry);
    }
}

static void json_server(wsgi_json *j, wsgi_runtime *rt)
{
    server_rec *s = rt->server;
    const char *error_log = s->error_fname;

    if (error_log && *error_log != '|' && strncmp(error_log, "syslog", 6))
        error_log = ap_server_root_relative(rt->pconf, error_log);

    wsgi_json_key(j, "server");
    wsgi_json_object_open(j);
    wsgi_json_key(j, "hostname");
    wsgi_json_string(j, s->server_hostname ? s->server_hostname : "");
    wsgi_json_key(j, "server_root");
    wsgi_json_string(j, ap_server_root);
    wsgi_json_key(j, "apache_user");
    wsgi_json_string(j, ap_unixd_config.user_name);
    wsgi_json_key(j, "apache_uid");
    wsgi_json_int(j, ap_unixd_config.user_id);
    wsgi_json_key(j, "apache_gid");
    wsgi_json_int(j, ap_unixd_config.group_id);
    wsgi_json_key(j, "timeout");
    wsgi_json_int(j, apr_time_sec(s->timeout));
    wsgi_json_key(j, "log_level");
    wsgi_json_string(j, log_level_name(ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX)));
    wsgi_json_key(j, "error_log");
    wsgi_json_string(j, error_log);
    wsgi_json_key(j, "parent_pid");
    wsgi_json_int(j, getpid());
    wsgi_json_object_close(j);
}

static void json_python(wsgi_json *j, apr_pool_t *p, wsgi_state *st, wsgi_group *g)
{
    const wsgi_import *imports = (const wsgi_import *)st->imports->elts;
    int i;

    wsgi_json_key(j, "python");
    wsgi_json_object_open(j);
    wsgi_json_key(j, "home");
    wsgi_json_string(j, g->python_home ? g->python_home : st->python_home);
    wsgi_json_key(j, "path");
    wsgi_json_array_open(j);
    for (i = 0; g->python_path && i < g->python_path->nelts; ++i)
        wsgi_json_string(j, APR_ARRAY_IDX(g->python_path, i, const char *));
    json_path_list(j, p, st->python_path);
    wsgi_json_array_close(j);
    wsgi_json_key(j, "hash_seed");
    if (!st->python_hash_seed)
        wsgi_json_null(j);
    else if (!strcmp(st->python_hash_seed, "random"))
        wsgi_json_string(j, "random");
    else
        wsgi_json_int(j, apr_atoi64(st->python_hash_seed));
    wsgi_json_key(j, "dont_write_bytecode");
    wsgi_json_bool(j, st->dont_write_bytecode == 1);
    wsgi_json_key(j, "optimize");
    wsgi_json_int(j, st->python_optimize);
    wsgi_json_key(j, "warnings");
    json_strings(j, st->python_warnings);
    /* As mod_wsgi since 3.0: signal() is restricted unless turned Off, stdin/stdout only when On. */
    wsgi_json_key(j, "restrict_signal");
    wsgi_json_bool(j, st->restrict_signal != 0);
    wsgi_json_key(j, "restrict_stdin");
    wsgi_json_bool(j, st->restrict_stdin == 1);
    wsgi_json_key(j, "restrict_stdout");
    wsgi_json_bool(j, st->restrict_stdout == 1);
    wsgi_json_key(j, "verbose_debugging");
    wsgi_json_bool(j, st->verbose_debugging == 1);
    wsgi_json_key(j, "import_scripts");
    wsgi_json_array_open(j);
    for (i = 0; i < st->imports->nelts; ++i) {
        if (strcmp(imports[i].process_group, g->name))
            continue;
        wsgi_json_object_open(j);
        wsgi_json_key(j, "script");
        wsgi_json_string(j, ap_server_root_relative(p, imports[i].script));
        wsgi_json_key(j, "application_group");
        wsgi_json_string(j, imports[i].application_group);
        wsgi_json_object_close(j);
    }
    wsgi_json_array_close(j);
    wsgi_json_object_close(j);
}

#define JSON_INT(name, value) do { wsgi_json_key(j, name); wsgi_json_int(j, value); } while (0)
#define JSON_STR(name, value) do { wsgi_json_key(j, name); wsgi_json_string(j, value); } while (0)

static void json_options(wsgi_json *j, wsgi_group *g)
{
    int i;

    wsgi_json_key(j, "options");
    wsgi_json_object_open(j);
    JSON_INT("processes", g->processes);
    wsgi_json_key(j, "multiprocess");
    wsgi_json_bool(j, g->multiprocess);
    JSON_INT("threads", g->threads);
    JSON_STR("user", g->user);
    JSON_INT("uid", g->uid);
    JSON_STR("group", g->group);
    JSON_INT("gid", g->gid);
    wsgi_json_key(j, "supplementary_groups");
    if (!g->supplementary_groups) {
        wsgi_json_null(j);
    }
    else {
        /* As mod_wsgi: the primary group first, then the listed ones. */
        wsgi_json_array_open(j);
        wsgi_json_int(j, g->gid);
        for (i = 0; i < g->supplementary_groups->nelts; ++i)
            wsgi_json_int(j, APR_ARRAY_IDX(g->supplementary_groups, i, gid_t));
        wsgi_json_array_close(j);
    }
    wsgi_json_key(j, "umask");
    if (g->umask < 0)
        wsgi_json_null(j);
    else
        wsgi_json_int(j, g->umask);
    JSON_STR("home", g->home);
    JSON_STR("display_name", g->display_name);
    JSON_STR("lang", g->lang);
    JSON_STR("locale", g->locale);
    JSON_INT("cpu_priority", g->cpu_priority);
    wsgi_json_key(j, "python_path");
    json_strings(j, g->python_path);
    JSON_STR("python_home", g->python_home);
    JSON_STR("python_eggs", g->python_eggs);
    JSON_INT("stack_size", g->stack_size);
    JSON_INT("maximum_requests", g->maximum_requests);
    JSON_INT("shutdown_timeout", g->shutdown_timeout);
    JSON_INT("deadlock_timeout", g->deadlock_timeout);
    JSON_INT("inactivity_timeout", g->inactivity_timeout);
    JSON_INT("request_timeout", g->request_timeout);
    JSON_INT("graceful_timeout", g->graceful_timeout);
    JSON_INT("cpu_time_limit", g->cpu_time_limit);
    JSON_INT("memory_limit", g->memory_limit);
    JSON_INT("virtual_memory_limit", g->virtual_memory_limit);
    JSON_INT("listen_backlog", g->listen_backlog);
    JSON_INT("send_buffer_size", g->send_buffer_size);
    JSON_INT("receive_buffer_size", g->receive_buffer_size);
    JSON_INT("connect_timeout", g->connect_timeout);
    JSON_INT("socket_timeout", g->socket_timeout);
    JSON_INT("queue_timeout", g->queue_timeout);
    JSON_INT("header_buffer_size", g->header_buffer_size);
    wsgi_json_key(j, "asgi_loop");
    wsgi_json_string(j, g->asgi_loop ? g->asgi_loop : "asyncio");
    wsgi_json_object_close(j);
}

/* MOD_WSGI_DAEMON_CONFIG for process `index` of group g. */
static const char *daemon_config_json(apr_pool_t *p, wsgi_runtime *rt, wsgi_group *g, int index)
{
    wsgi_json j;

    wsgi_json_init(&j, p);
    wsgi_json_object_open(&j);
    wsgi_json_key(&j, "format");
    wsgi_json_int(&j, 1);
    wsgi_json_key(&j, "group");
    wsgi_json_string(&j, g->name);
    wsgi_json_key(&j, "process_index");
    wsgi_json_int(&j, index);
    wsgi_json_key(&j, "generation");
    wsgi_json_int(&j, rt->generation);
    json_server(&j, rt);
    json_python(&j, p, rt->state, g);
    json_options(&j, g);
    wsgi_json_object_close(&j);
    return wsgi_json_text(&j);
}

/* The parent's environment without what the daemon gets from us, plus ours. NODE_OPTIONS is replaced:
 * the daemon is our own program, and flags or preloaded hooks meant for other Node programs (a test
 * runner's, say) must not change how it starts, runs or exits. Ours caps V8's young generation at
 * 1 MiB per semi-space: the daemon's JavaScript allocates little that lives, and the default (up to
 * 16 MiB each) only held memory (-3 MiB RSS for hello world, -13 MiB with 64 KiB responses, at no
 * measurable CPU cost). The daemon removes it from its environment before applications run. */
#define DAEMON_NODE_OPTIONS "--max-semi-space-size=1"

static char **daemon_environment(apr_pool_t *p, wsgi_group *g, const char *config)
{
    static const char *const replaced[] = {
        "MOD_WSGI_DAEMON_CONFIG=", "HOME=", "USER=", "LOGNAME=", "NODE_OPTIONS=", NULL
    };
    struct passwd *pw = getpwuid(g->uid);
    apr_array_header_t *env = apr_array_make(p, 32, sizeof(char *));
    char **e;

    for (e = environ; e && *e; ++e) {
        const char *const *r;
        for (r = replaced; *r && strncmp(*e, *r, strlen(*r)); ++r)
            ;
        if (!*r)
            *(char **)apr_array_push(env) = *e;
    }
    *(char **)apr_array_push(env) = apr_pstrcat(p, "MOD_WSGI_DAEMON_CONFIG=", config, NULL);
    *(char **)apr_array_push(env) = apr_pstrcat(p, "HOME=", pw && pw->pw_dir ? pw->pw_dir : "/", NULL);
    *(char **)apr_array_push(env) = apr_pstrcat(p, "USER=", g->user, NULL);
    *(char **)apr_array_push(env) = apr_pstrcat(p, "LOGNAME=", g->user, NULL);
    *(char **)apr_array_push(env) = "NODE_OPTIONS=" DAEMON_NODE_OPTIONS;
    *(char **)apr_array_push(env) = NULL;
    return (char **)env->elts;
}

static void child_fail(const char *what, const char *path)
{
    /* After fork: no Apache logging, one write() of a whole line to the error log. */
    char line[512];
    int n = snprintf(line, sizeof(line), "[wsgi:crit] [pid %d] " WSGILOGNO(01100)
                     "cannot start daemon process: %s %s: %s\n", (int)getpid(), what, path,
                     strerror(errno));
    if (n > 0)
        (void)!write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    _exit(127);
}

/* In the forked child: never returns. */
static void exec_daemon(const char *node, char **argv, char **envp, int listen_fd, int delay)
{
    struct sigaction dfl;
    sigset_t none;
    int sig, devnull;

    /* Apache's parent blocks and catches signals; the daemon starts from a clean slate. */
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; ++sig)
        (void)sigaction(sig, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Restart back-off: waiting here keeps the parent's loop free; SIGTERM still ends us. */
    while (delay > 0)
        delay = (int)sleep((unsigned int)delay);

    if (listen_fd == 3) {
        if (fcntl(3, F_SETFD, 0) < 0)
            child_fail("fcntl", "fd 3");
    }
    else if (dup2(listen_fd, 3) < 0) {
        child_fail("dup2", "fd 3");
    }
    devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(2, 1) < 0)
        child_fail("open", "/dev/null");
    /* Apache's listeners, log pipes and anything else: only 0-3 cross exec. */
    if (close_range(4, ~0U, 0) < 0) {
        long fd, max = sysconf(_SC_OPEN_MAX);
        for (fd = 4; fd < (max > 0 ? max : 65536); ++fd)
            close((int)fd);
    }
    execve(node, argv, envp);
    child_fail("exec", node);
}

apr_status_t wsgi_spawn(wsgi_runtime *rt, wsgi_group *g, int index, int delay, apr_proc_t *proc)
{
    apr_pool_t *p;
    const char *config;
    char **envp, **argv;
    char padding[PADDING_LENGTH + 1];
    pid_t pid;
    int n = 0, nflags = 0;

    apr_pool_create(&p, rt->pconf);
    config = daemon_config_json(p, rt, g, index);
    envp = daemon_environment(p, g, config);
    memset(padding, '-', PADDING_LENGTH);
    padding[PADDING_LENGTH] = '\0';
    while (rt->node_flags && rt->node_flags[nflags])
        ++nflags;
    argv = apr_palloc(p, (size_t)(nflags + 4) * sizeof(char *));
    argv[n++] = apr_psprintf(p, "(wsgi:%s)", g->name);
    if (nflags) {
        memcpy(argv + n, rt->node_flags, (size_t)nflags * sizeof(char *));
        n += nflags;
    }
    argv[n++] = (char *)rt->daemon_main;
    argv[n++] = padding;
    argv[n] = NULL;

    pid = fork();
    if (pid == 0)
        exec_daemon(rt->node, argv, envp, g->listen_fd, delay);
    apr_pool_destroy(p);
    if (pid < 0) {
        apr_status_t rv = errno;
        ap_log_error(APLOG_MARK, APLOG_ALERT, rv, rt->server, WSGILOGNO(01101)
                     "cannot fork daemon process %d of process group '%s'", index, g->name);
        return rv;
    }
    memset(proc, 0, sizeof(*proc));
    proc->pid = pid;
    return APR_SUCCESS;
}
