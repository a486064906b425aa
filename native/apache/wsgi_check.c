/*
 * check_config: the checks that need the whole configuration read (it runs for `apache2 -t` and for
 * every real start; -t never runs post_config):
 *  - defaults of process groups that come from other directives (User, Group, Timeout);
 *  - every process group named literally must be defined by a WSGIDaemonProcess visible from where it
 *    is named (the same virtual host, or globally);
 *  - whether the implicit default group "" is needed: only when some request can be routed to it, so
 *    that the usual "WSGIScriptAlias + WSGIProcessGroup in <Directory>" configuration does not start an
 *    idle daemon.
 */
#include "wsgi_auth.h"
#include "wsgi_config.h"
#include "wsgi_options.h"

#include "http_core.h"
#include "http_log.h"
#include "util_cfgtree.h"
#include "mod_unixd.h"
#include "unixd.h"
#include "apr_strings.h"

#include <grp.h>

APLOG_USE_MODULE(wsgi);
extern module AP_MODULE_DECLARE_DATA wsgi_module;

#include "wsgi_log.h"

/* Does the URL-path prefix `loc` (a <Location>) cover every URL under `url`? */
static int url_covers(const char *loc, const char *url)
{
    size_t n = strlen(loc);

    if (strncmp(loc, url, n))
        return 0;
    return n == 0 || loc[n - 1] == '/' || url[n] == '\0' || url[n] == '/';
}

/* Does the <Directory> path `dir` (canonical, ends with '/') contain the file or directory `path`? */
static int dir_covers(const char *dir, const char *path)
{
    size_t n = strlen(dir);

    if (!strncmp(dir, path, n))
        return 1;
    /* "/srv/app/" covers the directory target "/srv/app" itself. */
    return n > 1 && dir[n - 1] == '/' && strlen(path) == n - 1 && !strncmp(dir, path, n - 1);
}

/* Is a process group set for every request of this alias in server s (so it never uses ""?) */
static int alias_has_group(server_rec *s, const wsgi_alias *a)
{
    core_server_config *core = ap_get_core_module_config(s->module_config);
    wsgi_dir_conf *dflt = ap_get_module_config(s->lookup_defaults, &wsgi_module);
    const char *target = a->target;
    ap_conf_vector_t **secs;
    int i;

    if (a->process_group || (dflt && dflt->process_group))
        return 1;
    if (a->regexp) {
        /* Only the part of the target before the first substitution is known. */
        const char *dollar = strchr(target, '$');
        if (dollar) {
            const char *slash = dollar;
            while (slash > target && *slash != '/')
                --slash;
            target = apr_pstrmemdup(s->process->pconf, target, slash - target + 1);
        }
    }
    secs = (ap_conf_vector_t **)core->sec_dir->elts;
    for (i = 0; i < core->sec_dir->nelts; ++i) {
        core_dir_config *cd = ap_get_core_module_config(secs[i]);
        wsgi_dir_conf *dc = ap_get_module_config(secs[i], &wsgi_module);
        if (dc && dc->process_group && !cd->r && cd->d && !cd->d_is_fnmatch &&
            dir_covers(cd->d, target))
            return 1;
    }
    if (a->regexp)
        return 0;
    secs = (ap_conf_vector_t **)core->sec_url->elts;
    for (i = 0; i < core->sec_url->nelts; ++i) {
        core_dir_config *cd = ap_get_core_module_config(secs[i]);
        wsgi_dir_conf *dc = ap_get_module_config(secs[i], &wsgi_module);
        if (dc && dc->process_group && !cd->r && cd->d && url_covers(cd->d, a->location))
            return 1;
    }
    return 0;
}

/* AddHandler/SetHandler wsgi-script anywhere: scripts run outside any WSGIScriptAlias. */
static int handler_configured(const ap_directive_t *d)
{
    for (; d; d = d->next) {
        if ((!strcasecmp(d->directive, "AddHandler") || !strcasecmp(d->directive, "SetHandler") ||
             !strcasecmp(d->directive, "AddType") || !strcasecmp(d->directive, "ForceType")) &&
            d->args && (ap_strcasestr(d->args, "wsgi-script") ||
                        ap_strcasestr(d->args, "application/x-httpd-wsgi")))
            return 1;
        if (d->first_child && handler_configured(d->first_child))
            return 1;
    }
    return 0;
}

static int needs_default_group(wsgi_state *st, server_rec *main_server)
{
    server_rec *s;
    int i;

    if (st->uses_default_group || handler_configured(ap_conftree) || wsgi_auth_needs_default_group(st))
        return 1;
    for (s = main_server; s; s = s->next) {
        wsgi_server_conf *sc = ap_get_module_config(s->module_config, &wsgi_module);
        const wsgi_alias *aliases;
        if (!sc->aliases)
            continue;
        aliases = (const wsgi_alias *)sc->aliases->elts;
        for (i = 0; i < sc->aliases->nelts; ++i) {
            if (!alias_has_group(s, &aliases[i]))
                return 1;
        }
    }
    return 0;
}

/* Fills what depends on User, Group, Timeout and the global WSGIPython* directives, known only once
 * everything is read. */
static void apply_defaults(wsgi_group *g, const wsgi_state *st, server_rec *main_server, apr_pool_t *p)
{
    /* WSGIPythonEggs is the default of python-eggs (WSGIPythonHome and WSGIPythonPath reach the
     * daemon in its "python" section). */
    if (!g->python_eggs)
        g->python_eggs = st->python_eggs;
    if (!g->user) {
        g->user = ap_unixd_config.user_name;
        g->uid = ap_unixd_config.user_id;
    }
    if (!g->group) {
        struct group *gr = getgrgid(ap_unixd_config.group_id);
        g->gid = ap_unixd_config.group_id;
        g->group = gr ? apr_pstrdup(p, gr->gr_name)
                      : apr_psprintf(p, "%ld", (long)ap_unixd_config.group_id);
    }
    if (!g->socket_timeout)
        g->socket_timeout = (int)apr_time_sec(main_server->timeout);
    g->connect_timeout_us = apr_time_from_sec(g->connect_timeout);
    g->socket_timeout_us = apr_time_from_sec(g->socket_timeout);
}

int wsgi_config_check(apr_pool_t *pconf, server_rec *main_server)
{
    wsgi_state *st = wsgi_state_get(pconf);
    const wsgi_group_ref *refs = (const wsgi_group_ref *)st->refs->elts;
    wsgi_group **groups;
    int i, failed = 0;

    if (st->restrict_embedded != 1 && !st->default_group && needs_default_group(st, main_server)) {
        wsgi_group *g = wsgi_group_new(pconf, "", main_server);
        g->defined_at = "(default process group)";
        *(wsgi_group **)apr_array_push(st->groups) = g;
        apr_hash_set(st->group_index, "", APR_HASH_KEY_STRING, g);
        st->default_group = g;
    }

    groups = (wsgi_group **)st->groups->elts;
    for (i = 0; i < st->groups->nelts; ++i)
        apply_defaults(groups[i], st, main_server, pconf);

    for (i = 0; i < st->refs->nelts; ++i) {
        const wsgi_group_ref *ref = &refs[i];
        wsgi_group *g;

        if (!*ref->name)
            continue;   /* %{GLOBAL}: the default group, or a request-time error if embedded is off */
        g = wsgi_group_find(st, ref->name);
        if (!g) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, NULL, WSGILOGNO(01003)
                         "Syntax error on line %d of %s: %s names the process group '%s', but no "
                         "WSGIDaemonProcess defines it", ref->line, ref->file, ref->directive,
                         ref->name);
            failed = 1;
        }
        else if (!wsgi_group_visible(g, ref->server)) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, NULL, WSGILOGNO(01004)
                         "Syntax error on line %d of %s: %s names the process group '%s', which is "
                         "defined in another virtual host (%s); define it globally or in this one",
                         ref->line, ref->file, ref->directive, ref->name, g->defined_at);
            failed = 1;
        }
    }
    return failed ? HTTP_INTERNAL_SERVER_ERROR : OK;
}
