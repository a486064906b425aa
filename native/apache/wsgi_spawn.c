/*
 * Starting one daemon process from the Apache parent, exactly as docs/daemon-config.md says:
 *     <node> [MOD_WSGI_NODE_FLAGS] <daemon-main> <padding>     argv[0] "(wsgi:GROUP)"
 * fd 0 /dev/null, fds 1 and 2 the parent's error log, fd 3 the group's listening socket, fd 4 its pool's
 * board segment, fd 5 the doorbell, nothing else inherited; the whole configuration in
 * MOD_WSGI_DAEMON_CONFIG; HOME/USER/LOGNAME for the target user.
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

static void json_server(wsgi_json *j, wsgi_runtime *rt, int with_pid)
{
    server_rec *s = rt->server;
    const char *error_log = s->error_fname;

    if (error_log && *error_log != '|' && strncmp(error_log, "syslog", 6))
        error_log = ap_server_root_relative(rt->pconf, error_log);

    wsgi_json_key(j, "server");
    wsgi_json_object_open(j);
    wsgi_json_string_member(j, "hostname", s->server_hostname ? s->server_hostname : "");
    wsgi_json_string_member(j, "server_root", ap_server_root);
    wsgi_json_string_member(j, "apache_user", ap_unixd_config.user_name);
    wsgi_json_int_member(j, "apache_uid", ap_unixd_config.user_id);
    wsgi_json_int_member(j, "apache_gid", ap_unixd_config.group_id);
    wsgi_json_int_member(j, "timeout", apr_time_sec(s->timeout));
    wsgi_json_string_member(j, "log_level", log_level_name(ap_get_server_module_loglevel(s, APLOG_MODULE_INDEX)));
    wsgi_json_string_member(j, "error_log", error_log);
    if (with_pid) {
        wsgi_json_int_member(j, "parent_pid", getpid());
    }
    wsgi_json_object_close(j);
}

static void json_python(wsgi_json *j, apr_pool_t *p, wsgi_state *st, wsgi_group *g)
{
    const wsgi_import *imports = (const wsgi_import *)st->imports->elts;
    int i;

    wsgi_json_key(j, "python");
    wsgi_json_object_open(j);
    wsgi_json_string_member(j, "home", g->python_home ? g->python_home : st->python_home);
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
    wsgi_json_int_member(j, "optimize", st->python_optimize);
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
    wsgi_json_key(j, "per_interpreter_gil");
    wsgi_json_bool(j, st->per_interpreter_gil == 1);
    wsgi_json_key(j, "import_scripts");
    wsgi_json_array_open(j);
    for (i = 0; i < st->imports->nelts; ++i) {
        if (strcmp(imports[i].process_group, g->name))
            continue;
        wsgi_json_object_open(j);
        wsgi_json_string_member(j, "script", ap_server_root_relative(p, imports[i].script));
        wsgi_json_string_member(j, "application_group", imports[i].application_group);
        wsgi_json_object_close(j);
    }
    wsgi_json_array_close(j);
    wsgi_json_object_close(j);
}


static void json_options(wsgi_json *j, wsgi_state *st, wsgi_group *g)
{
    /* WSGISwitchInterval is the default group's (mod_wsgi 6: embedded mode's). */
    double switch_interval = g->switch_interval > 0 ? g->switch_interval : !*g->name ? st->switch_interval : 0;
    int i;

    wsgi_json_key(j, "options");
    wsgi_json_object_open(j);
    wsgi_json_int_member(j, "processes", g->processes);
    wsgi_json_key(j, "multiprocess");
    wsgi_json_bool(j, g->multiprocess);
    wsgi_json_int_member(j, "threads", g->threads);
    wsgi_json_string_member(j, "user", g->user);
    wsgi_json_int_member(j, "uid", g->uid);
    wsgi_json_string_member(j, "group", g->group);
    wsgi_json_int_member(j, "gid", g->gid);
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
    wsgi_json_string_member(j, "home", g->home);
    wsgi_json_string_member(j, "display_name", g->display_name);
    wsgi_json_string_member(j, "lang", g->lang);
    wsgi_json_string_member(j, "locale", g->locale);
    wsgi_json_int_member(j, "cpu_priority", g->cpu_priority);
    wsgi_json_key(j, "python_path");
    json_strings(j, g->python_path);
    wsgi_json_string_member(j, "python_home", g->python_home);
    wsgi_json_string_member(j, "python_executable", g->python_executable);
    wsgi_json_string_member(j, "python_eggs", g->python_eggs);
    wsgi_json_int_member(j, "stack_size", g->stack_size);
    wsgi_json_int_member(j, "maximum_requests", g->maximum_requests);
    wsgi_json_int_member(j, "shutdown_timeout", g->shutdown_timeout);
    wsgi_json_int_member(j, "deadlock_timeout", g->deadlock_timeout);
    wsgi_json_int_member(j, "inactivity_timeout", g->inactivity_timeout);
    wsgi_json_int_member(j, "request_timeout", g->request_timeout);
    wsgi_json_int_member(j, "interrupt_timeout", g->interrupt_timeout);
    wsgi_json_key(j, "switch_interval");
    if (switch_interval > 0)
        wsgi_json_number(j, switch_interval);
    else
        wsgi_json_null(j);
    wsgi_json_int_member(j, "graceful_timeout", g->graceful_timeout);
    wsgi_json_int_member(j, "cpu_time_limit", g->cpu_time_limit);
    wsgi_json_int_member(j, "memory_limit", g->memory_limit);
    wsgi_json_int_member(j, "virtual_memory_limit", g->virtual_memory_limit);
    wsgi_json_int_member(j, "listen_backlog", g->listen_backlog);
    wsgi_json_int_member(j, "send_buffer_size", g->send_buffer_size);
    wsgi_json_int_member(j, "receive_buffer_size", g->receive_buffer_size);
    wsgi_json_int_member(j, "connect_timeout", g->connect_timeout);
    wsgi_json_int_member(j, "socket_timeout", g->socket_timeout);
    wsgi_json_int_member(j, "queue_timeout", g->queue_timeout);
    wsgi_json_int_member(j, "header_buffer_size", g->header_buffer_size);
    wsgi_json_int_member(j, "restart_interval", g->restart_interval);
    wsgi_json_int_member(j, "startup_timeout", g->startup_timeout);
    wsgi_json_int_member(j, "memory_recycle", g->memory_recycle);
    wsgi_json_string_member(j, "asgi_loop", g->asgi_loop ? g->asgi_loop : "asyncio");
    wsgi_json_int_member(j, "websocket_max_message", g->websocket_max_message);
    wsgi_json_int_member(j, "websocket_ping_interval", g->websocket_ping_interval);
    wsgi_json_int_member(j, "websocket_ping_timeout", g->websocket_ping_timeout);
    wsgi_json_int_member(j, "websocket_idle_timeout", g->websocket_idle_timeout);
    wsgi_json_int_member(j, "websocket_max_lifetime", g->websocket_max_lifetime);
    wsgi_json_object_close(j);
}

/* A string the predecessor's slot holds: at most `max` bytes, none of them NUL or a control character.
 * Returns the bytes after it, or NULL when malformed (a daemon wrote it: nothing is assumed). */
static const unsigned char *slot_string(apr_pool_t *p, const unsigned char *at, const unsigned char *end,
                                        const char **out)
{
    uint32_t n, i;

    if (end - at < 4)
        return NULL;
    n = (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
    at += 4;
    if (n > 4096 || (uint32_t)(end - at) < n)
        return NULL;
    for (i = 0; i < n; ++i)
        if (at[i] < 0x20 || at[i] == 0x7f)
            return NULL;
    *out = apr_pstrmemdup(p, (const char *)at, n);
    return at + n;
}

/* The scripts the predecessor had loaded (WSGI_SLOT_SCRIPTS of wsgi_board.h): the successor imports them
 * before it says it is ready. What does not parse is left out. */
static void json_inherited_scripts(wsgi_json *j, apr_pool_t *p, const unsigned char *area)
{
    const unsigned char *at = area + 4, *end = area + WSGI_SLOT_SCRIPTS_SIZE;
    uint32_t count = area ? (uint32_t)area[0] | (uint32_t)area[1] << 8 | (uint32_t)area[2] << 16 |
                                (uint32_t)area[3] << 24
                          : 0;
    uint32_t i;

    wsgi_json_array_open(j);
    for (i = 0; i < count && i < 64; ++i) {
        const char *script, *group;
        if (!(at = slot_string(p, at, end, &script)) || !(at = slot_string(p, at, end, &group)) || *script != '/')
            break;
        wsgi_json_object_open(j);
        wsgi_json_string_member(j, "script", script);
        wsgi_json_string_member(j, "application_group", group);
        wsgi_json_object_close(j);
    }
    wsgi_json_array_close(j);
}

/* Where the daemon is on the board, and what it replaces. */
static void json_board(wsgi_json *j, apr_pool_t *p, const wsgi_spawn_info *info)
{
    wsgi_json_key(j, "board");
    wsgi_json_object_open(j);
    wsgi_json_int_member(j, "slot", info->slot);
    wsgi_json_int_member(j, "slots", info->pool->seg->slots);
    wsgi_json_key(j, "doorbell");
    wsgi_json_bool(j, info->bell_fd >= 0);
    wsgi_json_object_close(j);
    wsgi_json_key(j, "succession");
    if (!info->predecessor_pid) {
        wsgi_json_null(j);
        return;
    }
    wsgi_json_object_open(j);
    wsgi_json_int_member(j, "predecessor_pid", info->predecessor_pid);
    wsgi_json_string_member(j, "reason", wsgi_reason_name(info->reason));
    wsgi_json_key(j, "scripts");
    json_inherited_scripts(j, p, info->scripts);
    wsgi_json_object_close(j);
}

/* MOD_WSGI_DAEMON_CONFIG for one process of group g; with info NULL, the group's fingerprint: what every
 * process of the group gets, without what differs from one process or generation to the next. */
static const char *daemon_config_json(apr_pool_t *p, wsgi_runtime *rt, wsgi_group *g, const wsgi_spawn_info *info)
{
    wsgi_json j;

    wsgi_json_init(&j, p);
    wsgi_json_object_open(&j);
    wsgi_json_key(&j, "format");
    wsgi_json_int(&j, 1);
    wsgi_json_key(&j, "group");
    wsgi_json_string(&j, g->name);
    if (info) {
        wsgi_json_key(&j, "process_index");
        wsgi_json_int(&j, info->index);
        wsgi_json_key(&j, "generation");
        wsgi_json_int(&j, rt->generation);
        json_board(&j, p, info);
    }
    json_server(&j, rt, info != NULL);
    json_python(&j, p, rt->state, g);
    json_options(&j, rt->state, g);
    wsgi_json_object_close(&j);
    return wsgi_json_text(&j);
}

const char *wsgi_spawn_fingerprint(apr_pool_t *p, wsgi_runtime *rt, wsgi_group *g)
{
    return daemon_config_json(p, rt, g, NULL);
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

void wsgi_reset_signals(void)
{
    struct sigaction dfl;
    sigset_t none;
    int sig;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; ++sig)
        (void)sigaction(sig, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Puts `fd` (above 5) at `target` for the exec: dup2 clears close-on-exec there. -1 leaves it closed. */
static void place_fd(int fd, int target)
{
    if (fd >= 0 && dup2(fd, target) < 0)
        child_fail("dup2", "a descriptor");
}

/* In the forked child: never returns. */
static void exec_daemon(const char *node, char **argv, char **envp, int listen_fd, int board_fd, int bell_fd,
                        int delay)
{
    int fds[3] = { listen_fd, board_fd, bell_fd };
    int devnull, i;

    wsgi_reset_signals();

    /* Restart back-off: waiting here keeps the parent's loop free; SIGTERM still ends us. */
    while (delay > 0)
        delay = (int)sleep((unsigned int)delay);

    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(2, 1) < 0)
        child_fail("open", "/dev/null");
    /* fds 3, 4, 5: the sources first moved above them, so that no placement overwrites another's
     * source; whatever else was there (Apache's) is closed. */
    for (i = 0; i < 3; ++i) {
        if (fds[i] >= 0 && fds[i] <= 5 && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 6)) < 0)
            child_fail("fcntl", "a descriptor");
    }
    for (i = 3; i <= 5; ++i)
        close(i);
    for (i = 0; i < 3; ++i)
        place_fd(fds[i], 3 + i);
    /* Apache's listeners, log pipes and anything else: only 0-5 cross exec. */
    if (close_range(6, ~0U, 0) < 0) {
        long fd, max = sysconf(_SC_OPEN_MAX);
        for (fd = 6; fd < (max > 0 ? max : 65536); ++fd)
            close((int)fd);
    }
    execve(node, argv, envp);
    child_fail("exec", node);
}

apr_status_t wsgi_spawn(wsgi_runtime *rt, wsgi_group *g, const wsgi_spawn_info *info, apr_proc_t *proc)
{
    apr_pool_t *p;
    const char *config;
    char **envp, **argv;
    char padding[PADDING_LENGTH + 1];
    pid_t pid;
    int n = 0, nflags = 0;

    apr_pool_create(&p, rt->pconf);
    config = daemon_config_json(p, rt, g, info);
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
        exec_daemon(rt->node, argv, envp, info->pool->listen_fd, info->pool->seg->fd, info->bell_fd, info->delay);
    apr_pool_destroy(p);
    if (pid < 0) {
        apr_status_t rv = errno;
        ap_log_error(APLOG_MARK, APLOG_ALERT, rv, rt->server, WSGILOGNO(01101)
                     "cannot fork daemon process %d of process group '%s'", info->index, g->name);
        return rv;
    }
    memset(proc, 0, sizeof(*proc));
    proc->pid = pid;
    return APR_SUCCESS;
}
