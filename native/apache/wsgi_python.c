/*
 * Which CPython each process group embeds, checked at configuration time (check_config: `apache2 -t`
 * and every start), so that a Python that cannot be embedded is one clear line instead of daemons that
 * die at start: a group's Python is the one its python-executable names, else the one its python-home
 * (or WSGIPythonHome) virtualenv was made from (pyvenv.cfg), else the one installed under that prefix
 * (its only lib/python3.N); without either, Debian's 3.11 of the default build. It must be CPython 3.8
 * to 3.13 with a shared libpython3.N.so.1.0, and the addon must be built for its version
 * (build/py3.N/, or the default build/Release/ when its python-version says 3.N).
 * The daemon makes the same choice (src/native/python-select.ts): keep the two in step.
 * Also: WSGIPerInterpreterGIL's warning on Pythons before 3.12, and WSGISwitchInterval.
 */
#include "wsgi_python.h"

#include "http_log.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

APLOG_USE_MODULE(wsgi);

#include "wsgi_log.h"

#ifndef MOD_WSGI_DAEMON_MAIN
#define MOD_WSGI_DAEMON_MAIN "/usr/lib/mod_wsgi/lib/daemon/main.js"
#endif

#define MIN_MINOR 8
#define MAX_MINOR 13

typedef struct {
    const char *version;        /* "3.12", or "3.13t" for a free-threaded build */
    const char *prefix;         /* the installation (a virtualenv's base) */
    const char *venv;           /* the virtualenv, or NULL */
    const char *executable;     /* what to give scripts/build.sh --python */
} wsgi_python;

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static const char *dir_of(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ".";
    return slash == path ? "/" : apr_pstrmemdup(p, path, slash - path);
}

/* "3.12" from "3.12.1", "3.12.1.final.0" or "3.12"; NULL otherwise. */
static const char *minor_version(apr_pool_t *p, const char *text)
{
    const char *s = text;

    if (!text || !apr_isdigit(*s))
        return NULL;
    while (apr_isdigit(*s))
        ++s;
    if (*s != '.' || !apr_isdigit(s[1]))
        return NULL;
    ++s;
    while (apr_isdigit(*s))
        ++s;
    return apr_pstrmemdup(p, text, s - text);
}

static int by_minor(const void *a, const void *b)
{
    return atoi(*(const char *const *)a + 2) - atoi(*(const char *const *)b + 2);
}

/* The versions with a standard library under prefix/lib, oldest first: "3.11, 3.13t"... */
static const char *prefix_versions(apr_pool_t *p, const char *prefix, int *count)
{
    const char *lib = apr_pstrcat(p, prefix, "/lib", NULL);
    apr_array_header_t *found = apr_array_make(p, 2, sizeof(const char *));
    const char *out;
    DIR *d = opendir(lib);
    struct dirent *e;
    int i;

    *count = 0;
    if (!d)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        const char *v;
        if (strncmp(n, "python3.", 8) || !apr_isdigit(n[8]))
            continue;
        v = n + 8;
        while (apr_isdigit(*v))
            ++v;
        if (*v && strcmp(v, "t"))
            continue;
        if (is_file(apr_pstrcat(p, lib, "/", n, "/os.py", NULL)))
            *(const char **)apr_array_push(found) = apr_pstrdup(p, n + 6);
    }
    closedir(d);
    *count = found->nelts;
    if (!found->nelts)
        return NULL;
    qsort(found->elts, found->nelts, sizeof(const char *), by_minor);
    out = APR_ARRAY_IDX(found, 0, const char *);
    for (i = 1; i < found->nelts; ++i)
        out = apr_pstrcat(p, out, ", ", APR_ARRAY_IDX(found, i, const char *), NULL);
    return out;
}

static int prefix_has(apr_pool_t *p, const char *prefix, const char *version)
{
    return is_file(apr_pstrcat(p, prefix, "/lib/python", version, "/os.py", NULL));
}

/* prefix/lib, lib64 or lib/<multiarch>: libpython3.N.so.1.0, or NULL. */
static const char *find_libpython(apr_pool_t *p, const char *prefix, const char *version)
{
    const char *name = apr_pstrcat(p, "libpython", version, ".so.1.0", NULL);
    const char *lib = apr_pstrcat(p, prefix, "/lib", NULL);
    const char *found = NULL;
    DIR *d;
    struct dirent *e;

    if (is_file(apr_pstrcat(p, lib, "/", name, NULL)))
        return apr_pstrcat(p, lib, "/", name, NULL);
    if (is_file(apr_pstrcat(p, prefix, "/lib64/", name, NULL)))
        return apr_pstrcat(p, prefix, "/lib64/", name, NULL);
    if ((d = opendir(lib)) == NULL)
        return NULL;
    while (!found && (e = readdir(d)) != NULL) {
        if (strstr(e->d_name, "-linux-gnu") && is_file(apr_pstrcat(p, lib, "/", e->d_name, "/", name, NULL)))
            found = apr_pstrcat(p, lib, "/", e->d_name, "/", name, NULL);
    }
    closedir(d);
    return found;
}

/* The project root, from the daemon's main.js (<root>/lib/daemon/main.js). */
static const char *project_root(apr_pool_t *p)
{
    const char *env = getenv("MOD_WSGI_DAEMON_MAIN");
    const char *main_js = env && *env ? env : MOD_WSGI_DAEMON_MAIN;
    return dir_of(p, dir_of(p, dir_of(p, main_js)));
}

/* Is the addon built for `version`? */
static int addon_built(apr_pool_t *p, const char *root, const char *version)
{
    const char *own = apr_pstrcat(p, root, "/build/py", version, NULL);
    const char *dflt = apr_pstrcat(p, root, "/build/Release", NULL);
    char built[32] = "";
    FILE *f;

    if (is_file(apr_pstrcat(p, own, "/wsgi_bridge.node", NULL)) &&
        is_file(apr_pstrcat(p, own, "/python_preload.node", NULL)))
        return 1;
    if ((f = fopen(apr_pstrcat(p, dflt, "/python-version", NULL), "r")) != NULL) {
        if (!fgets(built, sizeof built, f))
            built[0] = '\0';
        fclose(f);
    }
    built[strcspn(built, " \t\r\n")] = '\0';
    return !strcmp(built, version) && is_file(apr_pstrcat(p, dflt, "/wsgi_bridge.node", NULL)) &&
           is_file(apr_pstrcat(p, dflt, "/python_preload.node", NULL));
}

/* pyvenv.cfg's value for `key` (case-insensitive), or NULL. */
static const char *cfg_value(apr_pool_t *p, const char *text, const char *key)
{
    const char *line = text;
    size_t klen = strlen(key);

    while (line && *line) {
        const char *end = strchr(line, '\n');
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            ++s;
        if (!strncasecmp(s, key, klen)) {
            const char *v = s + klen;
            while (*v == ' ' || *v == '\t')
                ++v;
            if (*v == '=') {
                const char *stop = end ? end : v + strlen(v);
                ++v;
                while (*v == ' ' || *v == '\t')
                    ++v;
                while (stop > v && apr_isspace(stop[-1]))
                    --stop;
                return apr_pstrmemdup(p, v, stop - v);
            }
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

static const char *read_text(apr_pool_t *p, const char *path)
{
    char buf[8192];
    size_t n;
    FILE *f = fopen(path, "r");

    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return apr_pstrdup(p, buf);
}

/* A virtualenv: its pyvenv.cfg names the base installation and its version. */
static const char *from_venv(apr_pool_t *p, const char *venv, const char *program, wsgi_python *py)
{
    const char *cfg_path = apr_pstrcat(p, venv, "/pyvenv.cfg", NULL);
    const char *cfg = read_text(p, cfg_path);
    const char *home, *version, *candidates[3];
    char real[PATH_MAX];
    int i;

    if (!cfg)
        return apr_psprintf(p, "cannot read %s: %s", cfg_path, strerror(errno));
    home = cfg_value(p, cfg, "home");
    if (!home || *home != '/')
        return apr_psprintf(p, "%s has no absolute 'home' (the base Python's directory): recreate the "
                            "virtualenv", cfg_path);
    version = minor_version(p, cfg_value(p, cfg, "version"));
    if (!version)
        version = minor_version(p, cfg_value(p, cfg, "version_info"));
    if (!version) {
        int n;
        const char *names = NULL;
        DIR *d = opendir(apr_pstrcat(p, venv, "/lib", NULL));
        struct dirent *e;
        n = 0;
        while (d && (e = readdir(d)) != NULL) {
            if (!strncmp(e->d_name, "python3.", 8)) {
                names = apr_pstrdup(p, e->d_name + 6);
                ++n;
            }
        }
        if (d)
            closedir(d);
        if (n != 1)
            return apr_psprintf(p, "%s names no Python version and %s/lib has no single python3.N: "
                                "recreate the virtualenv", cfg_path, venv);
        version = names;
    }
    if (version[strlen(version) - 1] != 't' &&
        is_dir(apr_pstrcat(p, venv, "/lib/python", version, "t", NULL)))
        version = apr_pstrcat(p, version, "t", NULL);
    candidates[0] = dir_of(p, home);
    candidates[1] = home;
    candidates[2] = NULL;
    if (realpath(apr_pstrcat(p, home, "/", strrchr(program, '/') + 1, NULL), real))
        candidates[2] = dir_of(p, dir_of(p, real));
    for (i = 0; i < 3; ++i) {
        if (candidates[i] && prefix_has(p, candidates[i], version)) {
            py->version = version;
            py->prefix = candidates[i];
            py->venv = venv;
            py->executable = program;
            return NULL;
        }
    }
    return apr_psprintf(p, "the Python %s that virtualenv %s was made from is gone (no %s/lib/python%s): "
                        "reinstall it or recreate the virtualenv", version, venv, candidates[0], version);
}

static const char *from_prefix(apr_pool_t *p, const char *prefix, wsgi_python *py)
{
    int count;
    const char *versions;

    if (!is_dir(prefix))
        return apr_psprintf(p, "python-home %s is not a directory", prefix);
    versions = prefix_versions(p, prefix, &count);
    if (count == 0)
        return apr_psprintf(p, "python-home %s is neither a virtualenv (no pyvenv.cfg) nor a Python "
                            "installation (no lib/python3.N/os.py)", prefix);
    if (count > 1)
        return apr_psprintf(p, "python-home %s holds several Pythons (%s): name one with "
                            "python-executable=%s/bin/python3.N", prefix, versions, prefix);
    py->version = versions;
    py->prefix = prefix;
    py->venv = NULL;
    py->executable = apr_pstrcat(p, prefix, "/bin/python", versions, NULL);
    return NULL;
}

static const char *from_executable(apr_pool_t *p, const char *exe, wsgi_python *py)
{
    const char *venv = dir_of(p, dir_of(p, exe));
    const char *prefix, *base, *version = NULL;
    char real[PATH_MAX];
    int count;

    if (*exe != '/')
        return apr_psprintf(p, "python-executable %s is not an absolute path", exe);
    if (!is_file(exe))
        return apr_psprintf(p, "python-executable %s does not exist", exe);
    if (is_file(apr_pstrcat(p, venv, "/pyvenv.cfg", NULL)))
        return from_venv(p, venv, exe, py);
    if (!realpath(exe, real))
        return apr_psprintf(p, "python-executable %s: %s", exe, strerror(errno));
    prefix = dir_of(p, dir_of(p, real));
    base = strrchr(real, '/') + 1;
    if (!strncmp(base, "python3.", 8) && apr_isdigit(base[8]))
        version = apr_pstrdup(p, base + 6);
    else if (prefix_versions(p, prefix, &count) && count == 1)
        version = prefix_versions(p, prefix, &count);
    if (!version || !prefix_has(p, prefix, version))
        return apr_psprintf(p, "python-executable %s is not a Python installation's bin/python3.N (no "
                            "%s/lib/python3.N/os.py)", exe, prefix);
    py->version = version;
    py->prefix = prefix;
    py->venv = NULL;
    py->executable = exe;
    return NULL;
}

/* NULL when group g's Python can be embedded (*py says which), else the one-line reason. */
static const char *check_group(apr_pool_t *p, const char *home, const char *exe, wsgi_python *py)
{
    const char *what, *err, *root = project_root(p);
    size_t len;
    int minor;

    if (exe)
        err = from_executable(p, exe, py);
    else {
        len = strlen(home);
        while (len > 1 && home[len - 1] == '/')
            --len;
        home = apr_pstrmemdup(p, home, len);
        err = is_file(apr_pstrcat(p, home, "/pyvenv.cfg", NULL))
            ? from_venv(p, home, apr_pstrcat(p, home, is_file(apr_pstrcat(p, home, "/bin/python", NULL)) ||
                                                   !is_file(apr_pstrcat(p, home, "/bin/python3", NULL))
                                                   ? "/bin/python" : "/bin/python3", NULL), py)
            : from_prefix(p, home, py);
    }
    if (err)
        return err;
    what = py->venv ? apr_psprintf(p, "virtualenv %s (Python %s of %s)", py->venv, py->version, py->prefix)
                    : apr_psprintf(p, "Python %s under %s", py->version, py->prefix);
    if (py->version[strlen(py->version) - 1] == 't')
        return apr_psprintf(p, "%s is a free-threaded build, which cannot be embedded: use its default "
                            "(GIL) build", what);
    minor = atoi(py->version + 2);
    if (strncmp(py->version, "3.", 2) || minor < MIN_MINOR || minor > MAX_MINOR)
        return apr_psprintf(p, "%s: this mod_wsgi embeds CPython 3.%d to 3.%d", what, MIN_MINOR, MAX_MINOR);
    if (!find_libpython(p, py->prefix, py->version))
        return apr_psprintf(p, "%s has no shared library libpython%s.so.1.0 and cannot be embedded: "
                            "rebuild that Python with --enable-shared (pyenv: env "
                            "PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install %s), or use one that has "
                            "it (Debian/Ubuntu or deadsnakes packages, uv python install)",
                            what, py->version, py->version);
    if (!addon_built(p, root, py->version))
        return apr_psprintf(p, "the addon for Python %s is not built (for %s): run sh %s/scripts/build.sh "
                            "addon --python %s", py->version, what, root, py->executable);
    return NULL;
}

int wsgi_python_check(apr_pool_t *pconf, server_rec *main_server)
{
    wsgi_state *st = wsgi_state_get(pconf);
    wsgi_group **groups = (wsgi_group **)st->groups->elts;
    int i, failed = 0;

    for (i = 0; i < st->groups->nelts; ++i) {
        wsgi_group *g = groups[i];
        const char *home = g->python_home ? g->python_home : st->python_home;
        const char *label = *g->name ? apr_psprintf(pconf, "WSGIDaemonProcess '%s' (%s)", g->name, g->defined_at)
                                     : "The default process group";
        wsgi_python py = { "3.11", "/usr", NULL, NULL };
        const char *err = NULL;

        if (g->python_executable || home)
            err = check_group(pconf, home, g->python_executable, &py);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, NULL, WSGILOGNO(01400)
                         "%s cannot embed its Python: %s", label, err);
            failed = 1;
            continue;
        }
        if (st->per_interpreter_gil == 1 && atoi(py.version + 2) < 12)
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_WARNING, 0, NULL, WSGILOGNO(01401)
                         "WSGIPerInterpreterGIL On has no effect in %s: its Python %s has one GIL for "
                         "all interpreters (a GIL per interpreter needs CPython 3.12 or later)",
                         *g->name ? apr_psprintf(pconf, "process group '%s'", g->name)
                                  : "the default process group", py.version);
    }
    return failed ? HTTP_INTERNAL_SERVER_ERROR : OK;
}

const char *wsgi_parse_switch_interval(apr_pool_t *p, const char *value, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = *value ? strtod(value, &end) : NAN;
    if (!*value || errno || !end || *end || !(v >= WSGI_SWITCH_INTERVAL_MIN && v <= WSGI_SWITCH_INTERVAL_MAX))
        return apr_psprintf(p, "a number of seconds from 0.000001 to %d (as sys.setswitchinterval()), not '%s'",
                            (int)WSGI_SWITCH_INTERVAL_MAX, value);
    *out = v;
    return NULL;
}

/* WSGISwitchInterval seconds: sys.setswitchinterval() in the default process group (mod_wsgi 6 applies
 * it to embedded mode, which that group stands for); process groups have switch-interval=. */
const char *wsgi_cmd_switch_interval(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    double v;

    if (err)
        return err;
    if ((err = wsgi_parse_switch_interval(cmd->pool, arg, &v)) != NULL)
        return apr_pstrcat(cmd->pool, "WSGISwitchInterval must be ", err, NULL);
    wsgi_state_get(cmd->pool)->switch_interval = v;
    return NULL;
}
