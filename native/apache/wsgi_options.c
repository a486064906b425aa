/*
 * WSGIDaemonProcess option parsing (mod_wsgi 4.1.0 syntax). Every value is checked here, at
 * configuration time, so that `apache2 -t` names the directive, the option and what is allowed, and
 * the daemon receives only normalised values (docs/daemon-config.md).
 */
#include "wsgi_options.h"
#include "wsgi_python.h"

#include "http_log.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

/* Integer options that are plain bounded ints in wsgi_group. */
typedef struct {
    const char *name;
    size_t offset;
    int min;
    int max;
} wsgi_int_option;

#define GROUP_INT(field) offsetof(wsgi_group, field)

static const wsgi_int_option int_options[] = {
    { "processes",          GROUP_INT(processes),          1,   10000 },
    { "threads",            GROUP_INT(threads),            1,   10000 },
    { "maximum-requests",   GROUP_INT(maximum_requests),   0,   INT_MAX },
    { "shutdown-timeout",   GROUP_INT(shutdown_timeout),   0,   INT_MAX },
    { "deadlock-timeout",   GROUP_INT(deadlock_timeout),   0,   INT_MAX },
    { "inactivity-timeout", GROUP_INT(inactivity_timeout), 0,   INT_MAX },
    { "request-timeout",    GROUP_INT(request_timeout),    0,   INT_MAX },
    { "interrupt-timeout",  GROUP_INT(interrupt_timeout),  0,   INT_MAX },
    { "graceful-timeout",   GROUP_INT(graceful_timeout),   0,   INT_MAX },
    { "cpu-time-limit",     GROUP_INT(cpu_time_limit),     0,   INT_MAX },
    { "connect-timeout",    GROUP_INT(connect_timeout),    0,   INT_MAX },
    { "socket-timeout",     GROUP_INT(socket_timeout),     0,   INT_MAX },
    { "queue-timeout",      GROUP_INT(queue_timeout),      0,   INT_MAX },
    { "listen-backlog",     GROUP_INT(listen_backlog),     0,   65535 },
    { "cpu-priority",       GROUP_INT(cpu_priority),       -20, 20 },
    { "restart-interval",   GROUP_INT(restart_interval),   0,   INT_MAX },
    { "startup-timeout",    GROUP_INT(startup_timeout),    0,   INT_MAX },
    { "websocket-ping-interval", GROUP_INT(websocket_ping_interval), 0, INT_MAX },
    { "websocket-ping-timeout",  GROUP_INT(websocket_ping_timeout),  1, INT_MAX },
    { "websocket-idle-timeout",  GROUP_INT(websocket_idle_timeout),  0, INT_MAX },
    { "websocket-max-lifetime",  GROUP_INT(websocket_max_lifetime),  0, INT_MAX },
    { NULL, 0, 0, 0 }
};

/* Options of later mod_wsgi versions or of features that cannot apply here: accepted, logged, unused. */
static const char *const ignored_options[] = {
    "newrelic-config-file", "newrelic-environment", NULL
};

static const char *bad_value(cmd_parms *cmd, const wsgi_group *g, const char *option,
                             const char *value, const char *allowed)
{
    return apr_psprintf(cmd->pool, "%s '%s': option '%s' must be %s, not '%s'",
                        cmd->cmd->name, g->name, option, allowed, value);
}

/* A decimal integer filling the whole string, within [min, max]. */
static int parse_int64(const char *value, apr_int64_t min, apr_int64_t max, apr_int64_t *out)
{
    char *end = NULL;
    apr_int64_t v;

    if (!*value || apr_isspace(*value))
        return 0;
    errno = 0;
    v = apr_strtoi64(value, &end, 10);
    if (errno || *end || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

const char *wsgi_next_option(cmd_parms *cmd, const char **line, const char **name, const char **value)
{
    const char *s = *line;
    const char *end;

    while (*s && apr_isspace(*s))
        ++s;
    end = s;
    while (*end && *end != '=' && !apr_isspace(*end))
        ++end;
    if (*end != '=' || end == s) {
        const char *word = ap_getword_conf(cmd->temp_pool, &s);
        *line = s;
        return apr_psprintf(cmd->pool, "%s: '%s' is not an option of the form name=value",
                            cmd->cmd->name, word);
    }
    *name = apr_pstrmemdup(cmd->pool, s, end - s);
    *line = end + 1;
    *value = ap_getword_conf(cmd->pool, line);
    return NULL;
}

static const char *parse_script_option(cmd_parms *cmd, const wsgi_script_option *o, const char *value,
                                       void *target)
{
    void *field = (char *)target + o->offset;

    if (o->kind == WSGI_OPT_ON_OFF)
        return wsgi_parse_on_off(cmd, o->name, value, (int *)field);
    if (!*value)
        return apr_psprintf(cmd->pool, "%s: option '%s' needs a non-empty value", cmd->cmd->name, o->name);
    switch (o->kind) {
    case WSGI_OPT_PROCESS_GROUP:
        value = wsgi_note_process_group(cmd, value);
        break;
    case WSGI_OPT_GROUP_NAME:
    case WSGI_OPT_APPLICATION_GROUP:
        if (!strcmp(value, "%{GLOBAL}"))
            value = "";
        break;
    case WSGI_OPT_APPLICATION_TYPE:
        /* ASGI or WSGI: recognised from the callable (auto), or said here for odd callables. */
        if (strcmp(value, "auto") && strcmp(value, "asgi") && strcmp(value, "wsgi"))
            return apr_psprintf(cmd->pool, "%s: option '%s' must be auto, asgi or wsgi, not '%s'",
                                cmd->cmd->name, o->name, value);
        if (!strcmp(value, "auto"))
            value = NULL;
        break;
    default:
        break;
    }
    *(const char **)field = value;
    return NULL;
}

const char *wsgi_parse_script_options(cmd_parms *cmd, const char *args, const wsgi_script_option *table,
                                      void *target)
{
    const char *option, *value, *err;
    const wsgi_script_option *o;

    while (*args) {
        if ((err = wsgi_next_option(cmd, &args, &option, &value)) != NULL)
            return err;
        for (o = table; o->name && strcmp(o->name, option); ++o)
            ;
        if (!o->name) {
            const char *allowed = table->name;
            for (o = table + 1; o->name; ++o)
                allowed = apr_pstrcat(cmd->temp_pool, allowed, ", ", o->name, NULL);
            return apr_psprintf(cmd->pool, "%s: unknown option '%s' (allowed: %s)", cmd->cmd->name,
                                option, allowed);
        }
        if ((err = parse_script_option(cmd, o, value, target)) != NULL)
            return err;
        while (*args && apr_isspace(*args))
            ++args;
    }
    return NULL;
}

const char *wsgi_parse_on_off(cmd_parms *cmd, const char *option, const char *value, int *out)
{
    if (!strcasecmp(value, "On"))
        *out = 1;
    else if (!strcasecmp(value, "Off"))
        *out = 0;
    else if (option)
        return apr_psprintf(cmd->pool, "%s: option '%s' must be On or Off, not '%s'",
                            cmd->cmd->name, option, value);
    else
        return apr_psprintf(cmd->pool, "%s must be On or Off, not '%s'", cmd->cmd->name, value);
    return NULL;
}

wsgi_group *wsgi_group_new(apr_pool_t *p, const char *name, server_rec *s)
{
    wsgi_group *g = apr_pcalloc(p, sizeof(*g));

    g->name = name;
    g->server = s;
    g->processes = 1;
    g->threads = WSGI_DEFAULT_THREADS;
    g->umask = -1;
    g->shutdown_timeout = WSGI_DEFAULT_SHUTDOWN_TIMEOUT;
    g->deadlock_timeout = WSGI_DEFAULT_DEADLOCK_TIMEOUT;
    g->connect_timeout = WSGI_DEFAULT_CONNECT_TIMEOUT;
    g->listen_backlog = WSGI_DEFAULT_LISTEN_BACKLOG;
    g->header_buffer_size = WSGI_DEFAULT_HEADER_BUFFER_SIZE;
    g->websocket_max_message = WSGI_DEFAULT_WEBSOCKET_MAX_MESSAGE;
    g->websocket_ping_interval = WSGI_DEFAULT_WEBSOCKET_PING_INTERVAL;
    g->websocket_ping_timeout = WSGI_DEFAULT_WEBSOCKET_PING_TIMEOUT;
    return g;
}

/* user=NAME or user=#UID: must exist, must not be root. */
static const char *parse_user(cmd_parms *cmd, wsgi_group *g, const char *value)
{
    struct passwd *pw;
    apr_int64_t id;

    if (*value == '#') {
        if (!parse_int64(value + 1, 0, INT_MAX, &id))
            return bad_value(cmd, g, "user", value, "a user name or #uid");
        pw = getpwuid((uid_t)id);
        if (!pw)
            return apr_psprintf(cmd->pool, "%s '%s': option 'user': no user has uid %s",
                                cmd->cmd->name, g->name, value + 1);
    }
    else {
        if (!*value)
            return bad_value(cmd, g, "user", value, "a user name or #uid");
        pw = getpwnam(value);
        if (!pw)
            return apr_psprintf(cmd->pool, "%s '%s': option 'user': unknown user '%s'",
                                cmd->cmd->name, g->name, value);
    }
    if (pw->pw_uid == 0)
        return apr_psprintf(cmd->pool, "%s '%s': option 'user': daemon processes may not run "
                            "as root (uid 0), '%s' given", cmd->cmd->name, g->name, value);
    g->user = apr_pstrdup(cmd->pool, pw->pw_name);
    g->uid = pw->pw_uid;
    return NULL;
}

/* A group NAME or #GID for the option `option`. */
static const char *parse_gid(cmd_parms *cmd, wsgi_group *g, const char *option, const char *value,
                             gid_t *gid, const char **name)
{
    struct group *gr;
    apr_int64_t id;

    if (*value == '#') {
        if (!parse_int64(value + 1, 0, INT_MAX, &id))
            return bad_value(cmd, g, option, value, "a group name or #gid");
        gr = getgrgid((gid_t)id);
        *gid = (gid_t)id;
        *name = gr ? apr_pstrdup(cmd->pool, gr->gr_name) : apr_pstrdup(cmd->pool, value + 1);
        return NULL;
    }
    if (!*value)
        return bad_value(cmd, g, option, value, "a group name or #gid");
    gr = getgrnam(value);
    if (!gr)
        return apr_psprintf(cmd->pool, "%s '%s': option '%s': unknown group '%s'",
                            cmd->cmd->name, g->name, option, value);
    *gid = gr->gr_gid;
    *name = apr_pstrdup(cmd->pool, gr->gr_name);
    return NULL;
}

/* supplementary-groups=a,b,#12: the list that replaces initgroups(user). */
static const char *parse_supplementary(cmd_parms *cmd, wsgi_group *g, const char *value)
{
    const char *items = value;
    apr_array_header_t *gids = apr_array_make(cmd->pool, 4, sizeof(gid_t));

    while (*items) {
        const char *word = ap_getword(cmd->temp_pool, &items, ',');
        const char *err, *name;
        gid_t gid;

        if (!*word)
            continue;
        err = parse_gid(cmd, g, "supplementary-groups", word, &gid, &name);
        if (err)
            return err;
        *(gid_t *)apr_array_push(gids) = gid;
    }
    if (gids->nelts > NGROUPS_MAX)
        return apr_psprintf(cmd->pool, "%s '%s': option 'supplementary-groups' lists more than "
                            "%d groups", cmd->cmd->name, g->name, NGROUPS_MAX);
    g->supplementary_groups = gids;
    return NULL;
}

static const char *substitute_group(apr_pool_t *p, const char *display, const char *group)
{
    const char *mark;
    const char *out = "";

    while ((mark = strstr(display, "%{GROUP}")) != NULL) {
        out = apr_pstrcat(p, out, apr_pstrmemdup(p, display, mark - display),
                          "(wsgi:", group, ")", NULL);
        display = mark + 8;
    }
    return apr_pstrcat(p, out, display, NULL);
}

static const char *parse_size(cmd_parms *cmd, wsgi_group *g, const char *option, const char *value,
                              int minimum, int *out)
{
    apr_int64_t v;

    if (!parse_int64(value, 0, INT_MAX, &v) || (v != 0 && v < minimum))
        return bad_value(cmd, g, option, value,
                         apr_psprintf(cmd->pool, "0 (the default) or a size in bytes >= %d", minimum));
    *out = (int)v;
    return NULL;
}

/* An option of later mod_wsgi versions that has no effect here: a debug line, once per use. */
static void log_ignored(cmd_parms *cmd, const wsgi_group *g, const char *option)
{
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, cmd->server, WSGILOGNO(01001)
                 "%s '%s': option '%s' has no effect here and is ignored",
                 cmd->cmd->name, g->name, option);
}

/* A size: bytes, or with a K, M or G suffix (binary units), at most max. Sets *bytes; 0 when malformed. */
static int parse_suffixed_size(apr_pool_t *p, const char *value, apr_int64_t max, apr_int64_t *bytes)
{
    apr_int64_t v = 0, unit = 1;
    size_t n = strlen(value);
    char last = n ? value[n - 1] : '\0';
    const char *digits = value;

    if (last == 'K' || last == 'k' || last == 'M' || last == 'm' || last == 'G' || last == 'g') {
        unit = last == 'K' || last == 'k' ? 1024 : last == 'M' || last == 'm' ? WSGI_MIB : 1024 * WSGI_MIB;
        digits = apr_pstrmemdup(p, value, n - 1);
    }
    if (!parse_int64(digits, 0, max / unit, &v) || v * unit > max)
        return 0;
    *bytes = v * unit;
    return 1;
}

/* memory-recycle=SIZE: 0, or at least what a daemon holds before its application (Node.js and Python:
 * about 45 MiB), else it would recycle forever. */
static const char *parse_recycle(cmd_parms *cmd, wsgi_group *g, const char *option, const char *value)
{
    apr_int64_t bytes;

    if (!parse_suffixed_size(cmd->temp_pool, value, APR_INT64_MAX, &bytes) || (bytes != 0 && bytes < WSGI_MIN_MEMORY_RECYCLE))
        return bad_value(cmd, g, option, value,
                         "0 (the default) or a size of at least 64M (bytes, or with a K, M or G suffix)");
    g->memory_recycle = bytes;
    return NULL;
}

/* websocket-max-message=SIZE: 0 for no limit; at most 2 GiB - 1 (the daemon's WebSocket receiver counts
 * in 32 bits). */
static const char *parse_max_message(cmd_parms *cmd, wsgi_group *g, const char *option, const char *value)
{
    apr_int64_t bytes;

    if (!parse_suffixed_size(cmd->temp_pool, value, WSGI_MAX_WEBSOCKET_MAX_MESSAGE, &bytes))
        return bad_value(cmd, g, option, value,
                         "a size in bytes, or with a K, M or G suffix, below 2G (0 for no limit)");
    g->websocket_max_message = bytes;
    return NULL;
}

static const char *parse_one(cmd_parms *cmd, wsgi_group *g, const char *option, const char *value)
{
    const wsgi_int_option *io;
    const char *const *ign;
    apr_int64_t v;
    char *end;

    for (io = int_options; io->name; ++io) {
        if (strcmp(option, io->name))
            continue;
        if (!parse_int64(value, io->min, io->max, &v))
            return bad_value(cmd, g, option, value,
                             apr_psprintf(cmd->pool, "an integer from %d to %d", io->min, io->max));
        *(int *)((char *)g + io->offset) = (int)v;
        if (!strcmp(option, "processes"))
            g->multiprocess = 1;
        return NULL;
    }

    if (!strcmp(option, "user"))
        return parse_user(cmd, g, value);
    if (!strcmp(option, "group"))
        return parse_gid(cmd, g, "group", value, &g->gid, &g->group);
    if (!strcmp(option, "supplementary-groups"))
        return parse_supplementary(cmd, g, value);
    if (!strcmp(option, "umask")) {
        errno = 0;
        v = *value ? strtol(value, &end, 8) : -1;
        if (!*value || errno || *end || v < 0 || v > 0777)
            return bad_value(cmd, g, option, value, "an octal number from 0 to 0777");
        g->umask = (long)v;
        return NULL;
    }
    if (!strcmp(option, "home")) {
        if (*value != '/')
            return bad_value(cmd, g, option, value, "an absolute directory path");
        g->home = value;
        return NULL;
    }
    if (!strcmp(option, "display-name")) {
        g->display_name = substitute_group(cmd->pool, value, g->name);
        return NULL;
    }
    if (!strcmp(option, "lang")) {
        g->lang = value;
        return NULL;
    }
    if (!strcmp(option, "locale")) {
        g->locale = value;
        return NULL;
    }
    if (!strcmp(option, "python-path")) {
        const char *items = value;
        g->python_path = apr_array_make(cmd->pool, 4, sizeof(const char *));
        while (*items) {
            const char *entry = ap_getword(cmd->pool, &items, ':');
            if (*entry)
                *(const char **)apr_array_push(g->python_path) = entry;
        }
        return NULL;
    }
    if (!strcmp(option, "python-home")) {
        if (*value != '/')
            return bad_value(cmd, g, option, value, "an absolute directory path");
        g->python_home = value;
        return NULL;
    }
    if (!strcmp(option, "python-executable")) {
        if (*value != '/')
            return bad_value(cmd, g, option, value, "the absolute path of a Python's bin/python3.N");
        g->python_executable = value;
        return NULL;
    }
    if (!strcmp(option, "switch-interval")) {
        const char *allowed = wsgi_parse_switch_interval(cmd->pool, value, &g->switch_interval);
        return allowed ? apr_psprintf(cmd->pool, "%s '%s': option 'switch-interval' must be %s",
                                      cmd->cmd->name, g->name, allowed)
                       : NULL;
    }
    if (!strcmp(option, "python-eggs")) {
        g->python_eggs = value;
        return NULL;
    }
    if (!strcmp(option, "stack-size")) {
        if (!parse_int64(value, 1, APR_INT64_C(1) << 40, &g->stack_size))
            return bad_value(cmd, g, option, value, "a size in bytes greater than 0");
        return NULL;
    }
    if (!strcmp(option, "memory-recycle"))
        return parse_recycle(cmd, g, option, value);
    if (!strcmp(option, "websocket-max-message"))
        return parse_max_message(cmd, g, option, value);
    if (!strcmp(option, "memory-limit") || !strcmp(option, "virtual-memory-limit")) {
        if (!parse_int64(value, 0, APR_INT64_MAX, &v))
            return bad_value(cmd, g, option, value, "a size in bytes (0 for no limit)");
        if (option[0] == 'm')
            g->memory_limit = v;
        else
            g->virtual_memory_limit = v;
        return NULL;
    }
    if (!strcmp(option, "send-buffer-size"))
        return parse_size(cmd, g, option, value, 512, &g->send_buffer_size);
    if (!strcmp(option, "receive-buffer-size"))
        return parse_size(cmd, g, option, value, 512, &g->receive_buffer_size);
    if (!strcmp(option, "header-buffer-size")) {
        const char *err = parse_size(cmd, g, option, value, WSGI_MIN_HEADER_BUFFER_SIZE,
                                     &g->header_buffer_size);
        if (!err && g->header_buffer_size == 0)
            g->header_buffer_size = WSGI_DEFAULT_HEADER_BUFFER_SIZE;
        return err;
    }
    if (!strcmp(option, "asgi-loop")) {
        /* The event loop of the group's ASGI applications (docs/asgi.md). */
        if (strcmp(value, "asyncio") && strcmp(value, "uvloop"))
            return bad_value(cmd, g, option, value, "asyncio or uvloop");
        g->asgi_loop = value;
        return NULL;
    }
    if (!strcmp(option, "script-user")) {
        struct passwd *pw = *value != '#' ? getpwnam(value)
                          : parse_int64(value + 1, 0, INT_MAX, &v) ? getpwuid((uid_t)v) : NULL;
        if (!pw)
            return bad_value(cmd, g, option, value, "an existing user name or #uid");
        g->script_user = apr_pstrdup(cmd->pool, pw->pw_name);
        g->script_uid = pw->pw_uid;
        return NULL;
    }
    if (!strcmp(option, "script-group")) {
        struct group *gr = *value != '#' ? getgrnam(value)
                         : parse_int64(value + 1, 0, INT_MAX, &v) ? getgrgid((gid_t)v) : NULL;
        if (!gr)
            return bad_value(cmd, g, option, value, "an existing group name or #gid");
        g->script_group = apr_pstrdup(cmd->pool, gr->gr_name);
        g->script_gid = gr->gr_gid;
        return NULL;
    }
    if (!strcmp(option, "chroot")) {
        /* A chroot cannot hold Node.js plus Python; refusing silently would be worse than saying so. */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server, WSGILOGNO(01000)
                     "%s '%s': option 'chroot' is not supported by this mod_wsgi and is ignored "
                     "(%s:%d)", cmd->cmd->name, g->name, cmd->directive->filename,
                     cmd->directive->line_num);
        return NULL;
    }
    if (!strcmp(option, "server-metrics")) {
        /* Of later mod_wsgi versions (Apache's scoreboard for Python): checked, then ignored. */
        int flag;
        const char *err = wsgi_parse_on_off(cmd, option, value, &flag);
        if (!err)
            log_ignored(cmd, g, option);
        return err;
    }
    for (ign = ignored_options; *ign; ++ign) {
        if (!strcmp(option, *ign)) {
            log_ignored(cmd, g, option);
            return NULL;
        }
    }
    return apr_psprintf(cmd->pool, "%s '%s': unknown option '%s'", cmd->cmd->name, g->name, option);
}

/*
 * memory-limit / virtual-memory-limit below what Node.js and Python need would leave a daemon that
 * cannot start (V8 aborts, Apache restarts it forever). mod_wsgi accepts such values, so refusing the
 * configuration would break one that worked: the limit is raised to the floor and the reason logged
 * (at `apache2 -t` too). See README, "Memory limits".
 */
static void raise_to_floor(cmd_parms *cmd, wsgi_group *g, const char *option, apr_int64_t *limit,
                           apr_int64_t floor)
{
    if (*limit <= 0 || *limit >= floor)
        return;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server, WSGILOGNO(01005)
                 "%s '%s': option '%s=%" APR_INT64_T_FMT "' is below the %" APR_INT64_T_FMT
                 " MiB that Node.js and Python need with threads=%d; using %" APR_INT64_T_FMT
                 " (%s:%d)", cmd->cmd->name, g->name, option, *limit, floor / WSGI_MIB, g->threads,
                 floor, cmd->directive->filename, cmd->directive->line_num);
    *limit = floor;
}

const char *wsgi_parse_daemon_options(cmd_parms *cmd, wsgi_group *g, const char *args)
{
    const char *option, *value, *err;

    while (*args) {
        err = wsgi_next_option(cmd, &args, &option, &value);
        if (err)
            return err;
        err = parse_one(cmd, g, option, value);
        if (err)
            return err;
        while (*args && apr_isspace(*args))
            ++args;
    }
    if (g->python_home && g->python_executable)
        return apr_psprintf(cmd->pool, "%s '%s': options 'python-home' and 'python-executable' cannot "
                            "both be given (python-home for a virtualenv or prefix, python-executable for "
                            "a Python without one)", cmd->cmd->name, g->name);
    if (g->script_user && g->script_group)
        return apr_psprintf(cmd->pool, "%s '%s': options 'script-user' and 'script-group' "
                            "cannot both be given", cmd->cmd->name, g->name);
    {
        apr_int64_t stack = g->stack_size ? g->stack_size : WSGI_DEFAULT_THREAD_STACK;
        raise_to_floor(cmd, g, "virtual-memory-limit", &g->virtual_memory_limit,
                       WSGI_FLOOR_AS_BASE + g->threads * (stack + WSGI_FLOOR_AS_PER_THREAD));
        raise_to_floor(cmd, g, "memory-limit", &g->memory_limit,
                       WSGI_FLOOR_DATA_BASE + g->threads * (stack + WSGI_FLOOR_DATA_PER_THREAD));
    }
    return NULL;
}
