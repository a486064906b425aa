// mod_wsgi.LogHandler: a logging.Handler that sends each record to the error log at the Apache level of
// its Python level (CRITICAL crit, ERROR error, WARNING warn, INFO info, DEBUG and anything lower debug;
// a level between two rounds down), so that `LogLevel wsgi:LEVEL` filters application logging as it
// filters mod_wsgi's own messages, as in mod_wsgi 6. A record the LogLevel drops is not even formatted.
// Each line of a record is its own log line; records logged while a request runs carry its tag
// ("[client ...] [request ...]"). print() and sys.stderr stay at error, as in mod_wsgi.
//
// The class is made the first time `mod_wsgi.LogHandler` is looked up (the module's __getattr__), so
// that `logging` is imported only by applications that use it.
#include "py_internal.h"

namespace modwsgi {

namespace {

thread_local const std::string *current_tag = nullptr;

// Python's level to Apache's.
LogLevel apache_level(long python_level) {
    if (python_level >= 50)
        return LogLevel::kCrit;
    if (python_level >= 40)
        return LogLevel::kError;
    if (python_level >= 30)
        return LogLevel::kWarn;
    if (python_level >= 20)
        return LogLevel::kInfo;
    return LogLevel::kDebug;
}

InterpState *state_of(PyObject *capsule) {
    return static_cast<InterpState *>(PyCapsule_GetPointer(capsule, "mod_wsgi.interp"));
}

// _level(levelno) -> the Apache level (int) that a record of this Python level is logged at, or None
// when the LogLevel drops it.
PyObject *py_level(PyObject *capsule, PyObject *arg) {
    InterpState *st = state_of(capsule);
    long levelno = PyLong_AsLong(arg);
    if (!st || (levelno == -1 && PyErr_Occurred()))
        return nullptr;
    LogLevel level = apache_level(levelno);
    if (!runtime_logger(*st->rt).enabled(level))
        Py_RETURN_NONE;
    return PyLong_FromLong(static_cast<long>(level));
}

// _emit(level, text): one error-log line per line of text, at that Apache level.
PyObject *py_emit(PyObject *capsule, PyObject *const *args, Py_ssize_t nargs) {
    InterpState *st = state_of(capsule);
    if (!st)
        return nullptr;
    if (nargs != 2 || !PyLong_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_emit(level, text)");
        return nullptr;
    }
    long level = PyLong_AsLong(args[0]);
    if (level < 0 || level > static_cast<long>(LogLevel::kDebug)) {
        PyErr_SetString(PyExc_ValueError, "_emit: no such level");
        return nullptr;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(args[1], &n);
    PyRef escaped;
    if (!s) {
        PyErr_Clear();
        escaped.reset(PyUnicode_AsEncodedString(args[1], "utf-8", "backslashreplace"));
        if (!escaped)
            return nullptr;
        s = PyBytes_AS_STRING(escaped.get());
        n = PyBytes_GET_SIZE(escaped.get());
    }
    const std::string *tag = CurrentRequest::tag();
    Py_BEGIN_ALLOW_THREADS
    log_text_lines(runtime_logger(*st->rt), static_cast<LogLevel>(level), std::string_view(s, static_cast<size_t>(n)),
                   tag ? std::string_view(*tag) : std::string_view());
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyMethodDef level_def = {"_level", py_level, METH_O, nullptr};
PyMethodDef emit_def = {"_emit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(py_emit)),
                        METH_FASTCALL, nullptr};

const char kSource[] = R"(
import logging

class LogHandler(logging.Handler):
    """Sends logging records to Apache's error log at the matching level ([wsgi:warn], [wsgi:info]...),
    so that LogLevel wsgi:LEVEL filters them. One log line per line of a record."""

    def emit(self, record):
        try:
            level = _level(record.levelno)
            if level is None:
                return
            _emit(level, self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

LogHandler.__module__ = 'mod_wsgi'
)";

// The module's __getattr__ (PEP 562): makes LogHandler on first use.
PyObject *module_getattr(PyObject *capsule, PyObject *name) {
    InterpState *st = state_of(capsule);
    if (!st)
        return nullptr;
    if (!PyUnicode_Check(name) || PyUnicode_CompareWithASCIIString(name, "LogHandler") != 0) {
        PyErr_Format(PyExc_AttributeError, "module 'mod_wsgi' has no attribute '%U'", name);
        return nullptr;
    }
    PyRef globals(PyDict_New());
    PyRef level(PyCFunction_New(&level_def, capsule));
    PyRef emit(PyCFunction_New(&emit_def, capsule));
    PyRef modname(PyUnicode_FromString("mod_wsgi"));
    if (!globals || !level || !emit || !modname ||
        PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(globals.get(), "__name__", modname.get()) < 0 ||
        PyDict_SetItemString(globals.get(), "_level", level.get()) < 0 ||
        PyDict_SetItemString(globals.get(), "_emit", emit.get()) < 0)
        return nullptr;
    PyRef result(PyRun_String(kSource, Py_file_input, globals.get(), globals.get()));
    if (!result)
        return nullptr;
    PyObject *cls = PyDict_GetItemString(globals.get(), "LogHandler");  // borrowed
    PyRef module(PyImport_ImportModule("mod_wsgi"));
    if (!cls || !module || PyObject_SetAttrString(module.get(), "LogHandler", cls) < 0)
        return nullptr;
    Py_INCREF(cls);
    return cls;
}

PyMethodDef getattr_def = {"__getattr__", module_getattr, METH_O, nullptr};

}  // namespace

CurrentRequest::CurrentRequest(const std::string &tag) { current_tag = &tag; }
CurrentRequest::~CurrentRequest() { current_tag = nullptr; }
const std::string *CurrentRequest::tag() { return current_tag; }

bool install_log_handler(InterpState &st, PyObject *module) {
    PyRef capsule(PyCapsule_New(&st, "mod_wsgi.interp", nullptr));
    if (!capsule)
        return false;
    PyRef fn(PyCFunction_New(&getattr_def, capsule.get()));
    // An installed mod_wsgi package with a __getattr__ of its own keeps it.
    if (!fn || (PyObject_HasAttrString(module, "__getattr__") ? 0 : PyObject_SetAttrString(module, "__getattr__", fn.get())) < 0)
        return false;
    return true;
}

}  // namespace modwsgi
