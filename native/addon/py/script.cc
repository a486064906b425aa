// WSGI script files, loaded as mod_wsgi does: once per interpreter, from the file (not through import),
// as a module named "_mod_wsgi_" + md5(path) with __file__ and __mtime__ set; reloaded on the next
// request when script reloading is on and the file's modification time changed.
#include "py_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "runtime.h"

namespace modwsgi {

namespace {

bool file_mtime_us(const std::string &path, int64_t *mtime) {
    struct stat sb;
    if (stat(path.c_str(), &sb) != 0)
        return false;
    *mtime = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000 + sb.st_mtim.tv_nsec / 1000;
    return true;
}

// "_mod_wsgi_" + hex md5 of the path, as mod_wsgi names script modules.
PyObject *module_name_for(const std::string &path) {
    PyRef hashlib(PyImport_ImportModule("hashlib"));
    if (!hashlib)
        return nullptr;
    PyRef md5(PyObject_GetAttrString(hashlib.get(), "md5"));
    PyRef data(PyBytes_FromStringAndSize(path.data(), static_cast<Py_ssize_t>(path.size())));
    if (!md5 || !data)
        return nullptr;
    PyRef args(PyTuple_Pack(1, data.get()));
    PyRef kwargs(Py_BuildValue("{s:O}", "usedforsecurity", Py_False));
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

// The loaded module if it is current (new reference), else null without an exception.
PyObject *current_module(InterpState &st, const std::string &path, bool reloading) {
    auto it = st.scripts.find(path);
    if (it == st.scripts.end())
        return nullptr;
    PyObject *module = PyDict_GetItemWithError(PyImport_GetModuleDict(), it->second.module_name);
    if (!module) {
        PyErr_Clear();
        return nullptr;
    }
    if (reloading) {
        int64_t mtime;
        if (!file_mtime_us(path, &mtime) || mtime != it->second.mtime_us)
            return nullptr;
    }
    Py_INCREF(module);
    return module;
}

// Loads or reloads the script under the interpreter's load lock. New reference, or null with the
// failure logged and described in *error.
PyObject *load_module(InterpState &st, const std::string &path, bool reloading, std::string_view client,
                      std::string *error) {
    PyObject *module = current_module(st, path, reloading);
    if (module)
        return module;
    // Serialise loading in this interpreter; wait for the lock with the GIL released, since the
    // thread holding it may need the GIL to finish.
    std::unique_lock<std::mutex> lock(st.load_mu, std::defer_lock);
    Py_BEGIN_ALLOW_THREADS
    lock.lock();
    Py_END_ALLOW_THREADS
    module = current_module(st, path, reloading);
    if (module)
        return module;
    const Logger &log = runtime_logger(*st.rt);
    const HostOptions &o = runtime_options(*st.rt);
    auto it = st.scripts.find(path);
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
    PyRef module(load_module(st, path, call.reloading, call.client, &call.error_text));
    if (!module)
        return nullptr;
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
    return load_module(st, script, reloading, client, error);
}

bool preload_script(InterpState &st, const std::string &script, std::string *error) {
    PyRef module(load_module(st, script, true, {}, error));
    return static_cast<bool>(module);
}

}  // namespace modwsgi
