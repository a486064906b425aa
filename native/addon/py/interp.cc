// Prepares an interpreter (the main one or a new sub-interpreter) for hosting WSGI applications.
#include "py_internal.h"

#include "runtime.h"

namespace modwsgi {

PyObject *KeyCache::get(std::string_view name) {
    auto it = map_.find(name);
    if (it != map_.end()) {
        Py_INCREF(it->second);
        return it->second;
    }
    PyObject *s = PyUnicode_DecodeLatin1(name.data(), static_cast<Py_ssize_t>(name.size()), nullptr);
    if (!s || map_.size() >= kMaxEntries)
        return s;
    PyUnicode_InternInPlace(&s);
    storage_.emplace_back(name);
    map_.emplace(std::string_view(storage_.back()), s);
    Py_INCREF(s);  // the cache's own reference
    return s;
}

namespace {

// sys.path additions: python-path entries go through site.addsitedir (so their .pth files count),
// then move in front of site-packages; '' goes first when the daemon's home= option is used.
const char kSetupPath[] = R"PY(
def setup_path(paths, cwd_first):
    import sys, site
    if paths:
        before = list(sys.path)
        for p in paths:
            site.addsitedir(p)
        added = [p for p in sys.path if p not in before]
        for p in added:
            sys.path.remove(p)
        index = len(sys.path)
        for i, p in enumerate(sys.path):
            if p.endswith(('site-packages', 'dist-packages')):
                index = i
                break
        sys.path[index:index] = added
    if cwd_first:
        sys.path.insert(0, '')
)PY";

bool setup_path(const HostOptions &o) {
    if (o.path.empty() && !o.cwd_first_on_path)
        return true;
    PyRef globals(PyDict_New());
    if (!globals || PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) < 0)
        return false;
    PyRef r(PyRun_String(kSetupPath, Py_file_input, globals.get(), globals.get()));
    if (!r)
        return false;
    PyRef paths(PyList_New(0));
    if (!paths)
        return false;
    for (const std::string &p : o.path) {
        PyRef s(PyUnicode_DecodeFSDefaultAndSize(p.data(), static_cast<Py_ssize_t>(p.size())));
        if (!s || PyList_Append(paths.get(), s.get()) < 0)
            return false;
    }
    PyObject *fn = PyDict_GetItemString(globals.get(), "setup_path");
    PyRef done(PyObject_CallFunction(fn, "OO", paths.get(), o.cwd_first_on_path ? Py_True : Py_False));
    return static_cast<bool>(done);
}

bool intern(PyObject **slot, const char *s) {
    *slot = PyUnicode_InternFromString(s);
    return *slot != nullptr;
}

bool setup_keys(InterpState &st) {
    EnvironKeys &k = st.k;
    return intern(&k.wsgi_version, "wsgi.version") && intern(&k.wsgi_url_scheme, "wsgi.url_scheme") &&
           intern(&k.wsgi_input, "wsgi.input") && intern(&k.wsgi_errors, "wsgi.errors") &&
           intern(&k.wsgi_multithread, "wsgi.multithread") && intern(&k.wsgi_multiprocess, "wsgi.multiprocess") &&
           intern(&k.wsgi_run_once, "wsgi.run_once") && intern(&k.wsgi_file_wrapper, "wsgi.file_wrapper") &&
           intern(&k.mod_wsgi_version, "mod_wsgi.version") && intern(&k.process_group, "mod_wsgi.process_group") &&
           intern(&k.application_group, "mod_wsgi.application_group") &&
           intern(&k.callable_object, "mod_wsgi.callable_object") &&
           intern(&k.request_start, "mod_wsgi.request_start") &&
           intern(&k.apache_version, "apache.version") && intern(&k.ssl_is_https, "mod_ssl.is_https") &&
           intern(&k.ssl_var_lookup, "mod_ssl.var_lookup") &&
           intern(&k.script_reloading, "mod_wsgi.script_reloading") && intern(&st.str_close, "close") &&
           intern(&st.str_fileno, "fileno") && intern(&st.str_tell, "tell") && intern(&st.str_read, "read") &&
           intern(&st.str_http, "http") && intern(&st.str_application, "application");
}

// sys.argv, sys.stdout, sys.stderr and sys.stdin as mod_wsgi sets them up.
bool setup_sys(InterpState &st) {
    const HostOptions &o = runtime_options(*st.rt);
    PyRef argv(Py_BuildValue("[s]", "mod_wsgi"));
    if (!argv || PySys_SetObject("argv", argv.get()) < 0)
        return false;
    st.stderr_obj = log_new(st, LogLevel::kError, {}, "<stderr>");
    if (!st.stderr_obj || PySys_SetObject("stderr", st.stderr_obj) < 0)
        return false;
    st.stdout_obj = o.restrict_stdout ? restricted_new(st, "sys.stdout") : log_new(st, LogLevel::kError, {}, "<stdout>");
    if (!st.stdout_obj || PySys_SetObject("stdout", st.stdout_obj) < 0)
        return false;
    if (o.restrict_stdin) {
        PyRef in(restricted_new(st, "sys.stdin"));
        if (!in || PySys_SetObject("stdin", in.get()) < 0)
            return false;
    }
    return true;
}

}  // namespace

InterpState *interp_setup(Runtime &rt, const std::string &group, std::string *error) {
    const HostOptions &o = rt.options();
    auto st = std::make_unique<InterpState>();
    st->rt = &rt;
    st->group = group;
    st->interp = PyThreadState_GetInterpreter(PyThreadState_Get());

    // Sub-interpreters do not initialise the codec registry by themselves: force it with 'ascii'
    // (release notes 4.1.0, Bugs Fixed 2), or "no codec search functions registered" may follow.
    PyRef encoder(PyCodec_Encoder("ascii"));
    bool ok = static_cast<bool>(encoder);
    if (ok) {
        st->input_type = input_type_new();
        st->log_type = log_type_new();
        st->adapter_type = adapter_type_new();
        st->file_wrapper_type = file_wrapper_type_new();
        st->restricted_type = restricted_type_new();
        st->ssl_vars_type = ssl_vars_type_new();
        ok = st->input_type && st->log_type && st->adapter_type && st->file_wrapper_type && st->restricted_type &&
             st->ssl_vars_type;
    }
    ok = ok && setup_keys(*st);
    if (ok) {
        st->wsgi_version = Py_BuildValue("(ii)", 1, 0);
        st->mod_wsgi_version = Py_BuildValue("(iii)", 4, 1, 0);
        st->process_group = PyUnicode_DecodeLatin1(o.process_group.data(),
                                                   static_cast<Py_ssize_t>(o.process_group.size()), nullptr);
        st->application_group =
            PyUnicode_DecodeLatin1(group.data(), static_cast<Py_ssize_t>(group.size()), nullptr);
        ok = st->wsgi_version && st->mod_wsgi_version && st->process_group && st->application_group;
    }
    ok = ok && setup_sys(*st) && setup_path(o) && install_mod_wsgi_module(*st);
    ok = ok && (!o.restrict_signal || install_signal_restriction(*st));
    if (!ok) {
        *error = PyErr_Occurred() ? fetch_error_text() : std::string("interpreter setup failed");
        // Objects already made (sys.stderr...) point at the state: it is kept, deliberately leaked.
        (void)st.release();
        return nullptr;
    }
    rt.log().step(kLogCreateInterp, "Interpreter '" + (group.empty() ? std::string("%{GLOBAL}") : group) +
                                        "' ready in process '" + o.process_group + "'.");
    return st.release();
}

}  // namespace modwsgi
