// WSGI script files, loaded as mod_wsgi does: once per interpreter, from the file (not through import),
// as a module named "_mod_wsgi_" + md5(path) with __file__ and __mtime__ set. With script reloading on,
// a script is out of date when its modification time changed, or when its module's
// reload_required(resource) returns true (resource: the requested SCRIPT_FILENAME, which differs from
// the script for a WSGIHandlerScript). An out-of-date script is reloaded in the implicit default group
// (mod_wsgi's embedded mode); in a named process group the daemon process restarts instead, as mod_wsgi
// does in daemon mode, so that everything the application imported is loaded afresh too.
#include "py_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "runtime.h"
#include "script_registry.h"

namespace modwsgi {

namespace {

bool file_mtime_us(const std::string &path, int64_t *mtime) {
    struct stat sb;
    if (stat(path.c_str(), &sb) != 0)
        return false;
    *mtime = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000 + sb.st_mtim.tv_nsec / 1000;
    return true;
}

// "_mod_wsgi_" + hex md5 of the path, as mod_wsgi names script modules. CPython's own built-in _md5
// rather than hashlib, which would load OpenSSL's libcrypto into every daemon (+2 MiB resident) just
// for this; hashlib only where _md5 is not built in.
PyObject *module_name_for(const std::string &path) {
    PyRef module(PyImport_ImportModule("_md5"));
    if (!module) {
        PyErr_Clear();
        module.reset(PyImport_ImportModule("hashlib"));
    }
    if (!module)
        return nullptr;
    PyRef md5(PyObject_GetAttrString(module.get(), "md5"));
    PyRef data(PyBytes_FromStringAndSize(path.data(), static_cast<Py_ssize_t>(path.size())));
    if (!md5 || !data)
        return nullptr;
    PyRef args(PyTuple_Pack(1, data.get()));
#if PY_VERSION_HEX >= 0x03090000
    PyRef kwargs(Py_BuildValue("{s:O}", "usedforsecurity", Py_False));
#else
    PyRef kwargs(PyDict_New());  // 3.8's md5() has no usedforsecurity
#endif
    if (!args || !kwargs)
        return nullptr;
    PyRef digest(PyObject_Call(md5.get(), args.get(), kwargs.get()));
    PyRef hex(digest ? PyObject_CallMethod(digest.get(), "hexdigest", nullptr) : nullptr);
    if (!hex)
        return nullptr;
    PyObject *name = PyUnicode_FromFormat("_mod_wsgi_%U", hex.get());
    if (name)
        PyUnicode_InternInPlace(&name);
    return name;
}

bool read_file(const std::string &path, std::string *out) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return false;
        }
        if (n == 0)
            break;
        out->append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return true;
}

// Compiles and runs the file as module `name` (replacing any previous one). New reference or null.
PyObject *exec_script(const std::string &path, PyObject *name, int64_t *mtime) {
    PyObject *modules = PyImport_GetModuleDict();
    if (PyDict_GetItemWithError(modules, name) && PyDict_DelItem(modules, name) < 0)
        return nullptr;
    if (PyErr_Occurred())
        return nullptr;
    std::string source;
    if (!file_mtime_us(path, mtime) || !read_file(path, &source))
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path.c_str());
    if (source.find('\0') != std::string::npos) {
        PyErr_SetString(PyExc_ValueError, "source code string cannot contain null bytes");
        return nullptr;
    }
    PyRef code(Py_CompileStringExFlags(source.c_str(), path.c_str(), Py_file_input, nullptr, -1));
    if (!code)
        return nullptr;
    PyRef file(PyUnicode_DecodeFSDefaultAndSize(path.data(), static_cast<Py_ssize_t>(path.size())));
    if (!file)
        return nullptr;
    // Puts the module in sys.modules, sets __file__, and removes it again if the code raises.
    PyRef module(PyImport_ExecCodeModuleObject(name, code.get(), file.get(), nullptr));
    if (!module)
        return nullptr;
    PyRef stamp(PyLong_FromLongLong(*mtime));
    if (!stamp || PyObject_SetAttrString(module.get(), "__mtime__", stamp.get()) < 0)
        return nullptr;
    return module.release();
}

// The module's reload_required(resource), as mod_wsgi calls it: true asks for a reload; an exception
// is logged and counts as false.
bool reload_hook_says_reload(InterpState &st, PyObject *module, std::string_view resource, std::string_view client) {
    // Most scripts define no hook: say so from the module's dict, without the AttributeError a failed
    // getattr() makes on every request (a module-level __getattr__ may still provide one).
    PyObject *dict = PyModule_Check(module) ? PyModule_GetDict(module) : nullptr;
    if (dict && !PyDict_GetItemString(dict, "reload_required") && !PyDict_GetItemString(dict, "__getattr__"))
        return false;
    PyRef hook(PyObject_GetAttrString(module, "reload_required"));
    if (!hook) {
        PyErr_Clear();
        return false;
    }
    PyRef arg(PyUnicode_DecodeFSDefaultAndSize(resource.data(), static_cast<Py_ssize_t>(resource.size())));
    PyRef result(arg ? PyObject_CallOneArg(hook.get(), arg.get()) : nullptr);
    int truth = result ? PyObject_IsTrue(result.get()) : -1;
    if (truth < 0) {
        runtime_logger(*st.rt).write(LogLevel::kError, kLogReloadHookFailed,
                                     "reload_required() of WSGI script module failed for '" + std::string(resource) + "'.",
                                     client);
        log_exception(st, {}, client);
        return false;
    }
    return truth == 1;
}

enum class Freshness { kAbsent, kCurrent, kOutOfDate };

// Whether the script's module is loaded and current; *module gets it (new reference) when current.
Freshness check_module(InterpState &st, const std::string &path, bool reloading, std::string_view resource,
                       std::string_view client, PyObject **module) {
    *module = nullptr;
    auto it = st.scripts.find(path);
    if (it == st.scripts.end())
        return Freshness::kAbsent;
    PyObject *m = PyDict_GetItemWithError(PyImport_GetModuleDict(), it->second.module_name);
    if (!m) {
        PyErr_Clear();
        return Freshness::kAbsent;  // the application removed it from sys.modules: load it again
    }
    if (reloading) {
        int64_t mtime;
        if (!file_mtime_us(path, &mtime))
            return Freshness::kOutOfDate;
        if (mtime != it->second.mtime_us) {
            // A change a successor could not load is taken as it is (runtime_scripts): the old code
            // serves on until the script changes again.
            if (!runtime_scripts(*st.rt).accepted(path, mtime))
                return Freshness::kOutOfDate;
            it->second.mtime_us = mtime;
        }
        Py_INCREF(m);
        PyRef keep(m);
        if (!resource.empty() && it->second.served && reload_hook_says_reload(st, m, resource, client))
            return Freshness::kOutOfDate;
        *module = keep.release();
        return Freshness::kCurrent;
    }
    Py_INCREF(m);
    *module = m;
    return Freshness::kCurrent;
}

// The module loaded for `path`, as it is (new reference), or null.
PyObject *loaded_module(InterpState &st, const std::string &path) {
    auto it = st.scripts.find(path);
    PyObject *m = it == st.scripts.end() ? nullptr : PyDict_GetItemWithError(PyImport_GetModuleDict(), it->second.module_name);
    if (!m)
        PyErr_Clear();
    Py_XINCREF(m);
    return m;
}

// Loads or reloads the script under the interpreter's load lock. New reference, or null with the
// failure logged and described in *error — or null with *restart set when the script is out of date
// in a named process group (the caller answers GOAWAY and the process is replaced). A request that
// cannot be sent again (`keep_old` not null: its body is streaming) runs with the code already loaded
// instead, and *keep_old is set: the process is replaced all the same.
PyObject *load_module(InterpState &st, const std::string &path, bool reloading, std::string_view resource,
                      std::string_view client, std::string *error, bool *restart, bool *keep_old = nullptr) {
    const Logger &log = runtime_logger(*st.rt);
    const HostOptions &o = runtime_options(*st.rt);
    PyObject *module;
    auto seen = st.scripts.find(path);
    uint64_t loads_seen = seen == st.scripts.end() ? 0 : seen->second.loads;
    Freshness fresh = check_module(st, path, reloading, resource, client, &module);
    if (fresh == Freshness::kCurrent)
        return module;
    if (fresh == Freshness::kOutOfDate && !o.process_group.empty() && restart) {
        if (keep_old) {
            PyObject *old = loaded_module(st, path);
            if (old) {
                log.write(LogLevel::kInfo, kLogRestartForScript,
                          "WSGI script '" + path + "' has changed: daemon process '" + o.process_group +
                              "' is replaced to load it afresh; this request, whose body cannot be sent again, "
                              "runs with the code already loaded.",
                          client);
                *keep_old = true;
                return old;
            }
        }
        log.write(LogLevel::kInfo, kLogRestartForScript,
                  "WSGI script '" + path + "' has changed: daemon process '" + o.process_group +
                      "' restarts to load it afresh (WSGIScriptReloading).",
                  client);
        *restart = true;
        return nullptr;
    }
    // Serialise loading in this interpreter; wait for the lock with the GIL released, since the
    // thread holding it may need the GIL to finish.
    std::unique_lock<std::mutex> lock(st.load_mu, std::defer_lock);
    Py_BEGIN_ALLOW_THREADS
    lock.lock();
    Py_END_ALLOW_THREADS
    // Another thread may have (re)loaded it while this one waited: then it is used as it is.
    auto it = st.scripts.find(path);
    if (it != st.scripts.end() && it->second.loads != loads_seen &&
        check_module(st, path, reloading, {}, client, &module) == Freshness::kCurrent)
        return module;
    PyRef name;
    if (it != st.scripts.end()) {
        log.write(LogLevel::kInfo, kLogReloadScript, "Reloading WSGI script '" + path + "'.", client);
        name.reset(it->second.module_name);
        Py_INCREF(name.get());
    } else {
        name.reset(module_name_for(path));
    }
    log.write(LogLevel::kInfo, kLogLoadScript,
              "Loading Python script file '" + path + "' (process '" + o.process_group + "', application '" +
                  st.group + "').",
              client);
    int64_t mtime = 0;
    module = name ? exec_script(path, name.get(), &mtime) : nullptr;
    if (!module) {
        *error = "Target WSGI script '" + path + "' cannot be loaded as Python module.";
        log.write(LogLevel::kError, kLogScriptLoadFailed, *error, client);
        std::string why = peek_error_text();
        log_exception(st, path, client);
        if (!why.empty())
            *error += " " + why;
        return nullptr;
    }
    ScriptEntry &entry = st.scripts[path];
    if (entry.module_name != name.get()) {
        Py_XDECREF(entry.module_name);
        entry.module_name = name.release();
    }
    entry.mtime_us = mtime;
    entry.served = false;
    ++entry.loads;
    runtime_scripts(*st.rt).loaded(path, st.group);
    return module;
}

}  // namespace

PyObject *load_application(Call &call) {
    InterpState &st = call.st;
    const Logger &log = runtime_logger(*st.rt);
    if (call.script.empty()) {
        call.error_text = "No WSGI script given (SCRIPT_FILENAME is missing).";
        log.write(LogLevel::kError, kLogScriptLoadFailed, call.error_text, call.client);
        return nullptr;
    }
    std::string path(call.script);
    PyRef module(load_module(st, path, call.reloading, call.resource, call.client, &call.error_text, &call.restart,
                             call.streamed ? &call.reload_wanted : nullptr));
    if (!module)
        return nullptr;
    auto entry = st.scripts.find(path);
    if (entry != st.scripts.end())
        entry->second.served = true;
    PyRef name(PyUnicode_DecodeLatin1(call.callable.data(), static_cast<Py_ssize_t>(call.callable.size()), nullptr));
    PyObject *app = name ? PyObject_GetAttr(module.get(), name.get()) : nullptr;
    if (!app) {
        PyErr_Clear();
        call.error_text = "Target WSGI script '" + path + "' does not contain WSGI application '" +
                          std::string(call.callable) + "'.";
        log.write(LogLevel::kError, kLogNoCallable, call.error_text, call.client);
    }
    return app;
}

PyObject *load_script_module(InterpState &st, const std::string &script, bool reloading, std::string_view client,
                             std::string *error) {
    return load_module(st, script, reloading, {}, client, error, nullptr);  // hooks: reloaded in place
}

bool preload_script(InterpState &st, const std::string &script, std::string *error) {
    PyRef module(load_module(st, script, true, {}, {}, error, nullptr));
    return static_cast<bool>(module);
}

}  // namespace modwsgi
