// What mod_wsgi puts into each interpreter for applications: the `mod_wsgi` module, restricted
// sys.stdin/sys.stdout (WSGIRestrictStdin/Stdout) and the signal.signal() guard (WSGIRestrictSignal).
#include "py_internal.h"

#include "runtime.h"

namespace modwsgi {

namespace {

struct RestrictedObject {
    PyObject_HEAD
    const char *what;
};

PyObject *restricted_getattro(PyObject *obj, PyObject *name) {
    // Interpreter shutdown asks whether the stream is closed before flushing it: say yes.
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "closed") == 0)
        Py_RETURN_TRUE;
    return PyErr_Format(PyExc_OSError, "%s access restricted by mod_wsgi", reinterpret_cast<RestrictedObject *>(obj)->what);
}

void restricted_dealloc(PyObject *obj) {
    PyTypeObject *tp = Py_TYPE(obj);
    tp->tp_free(obj);
    Py_DECREF(tp);
}

PyType_Slot restricted_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void *>(restricted_dealloc)},
    {Py_tp_getattro, reinterpret_cast<void *>(restricted_getattro)},
    {0, nullptr},
};

PyType_Spec restricted_spec = {"mod_wsgi.Restricted", sizeof(RestrictedObject), 0, Py_TPFLAGS_DEFAULT,
                               restricted_slots};

// signal.signal(signum, handler) under WSGIRestrictSignal: log, show who asked, install nothing.
PyObject *signal_intercept(PyObject *capsule, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "signal() takes exactly 2 arguments (%zd given)", nargs);
        return nullptr;
    }
    long signum = PyLong_AsLong(args[0]);
    if (signum == -1 && PyErr_Occurred())
        return nullptr;
    auto *st = static_cast<InterpState *>(PyCapsule_GetPointer(capsule, "mod_wsgi.interp"));
    if (!st)
        return nullptr;
    const Logger &log = runtime_logger(*st->rt);
    log.write(LogLevel::kWarn, kLogSignalIgnored,
              "Callback registration for signal " + std::to_string(signum) + " ignored.");
    PyRef traceback(PyImport_ImportModule("traceback"));
    PyRef stack(traceback ? PyObject_CallMethod(traceback.get(), "format_stack", nullptr) : nullptr);
    if (stack && PyList_Check(stack.get())) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(stack.get()); ++i) {
            Py_ssize_t n;
            const char *s = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(stack.get(), i), &n);
            if (s)
                log_text_lines(log, LogLevel::kWarn, std::string_view(s, static_cast<size_t>(n)));
        }
    }
    PyErr_Clear();
    Py_INCREF(args[1]);
    return args[1];
}

PyMethodDef signal_def = {"signal", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(signal_intercept)),
                          METH_FASTCALL, "signal.signal() as restricted by mod_wsgi (WSGIRestrictSignal)."};

}  // namespace

PyTypeObject *restricted_type_new() { return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&restricted_spec)); }

PyObject *restricted_new(InterpState &st, const char *what) {
    auto *self = PyObject_New(RestrictedObject, st.restricted_type);
    if (self)
        self->what = what;
    return reinterpret_cast<PyObject *>(self);
}

bool install_mod_wsgi_module(InterpState &st) {
    const HostOptions &o = runtime_options(*st.rt);
    // As mod_wsgi does: an installed `mod_wsgi` Python package (python/mod_wsgi, whose mod_wsgi.server
    // Django lists in INSTALLED_APPS) is imported and extended; only without one is a bare module made.
    PyRef module(PyImport_ImportModule("mod_wsgi"));
    if (!module) {
        PyErr_Clear();
        module.reset(PyModule_New("mod_wsgi"));
    }
    if (!module)
        return false;
    PyObject *m = module.get();
    Py_INCREF(st.mod_wsgi_version);
    Py_INCREF(st.process_group);
    Py_INCREF(st.application_group);
    if (PyModule_AddObject(m, "version", st.mod_wsgi_version) < 0 ||
        PyModule_AddObject(m, "process_group", st.process_group) < 0 ||
        PyModule_AddObject(m, "application_group", st.application_group) < 0 ||
        PyModule_AddIntConstant(m, "threads_per_process", o.threads) < 0 || !request_timeout_install(st, m) ||
        !install_metrics_functions(st, m) || !install_log_handler(st, m))
        return false;
    return PyDict_SetItemString(PyImport_GetModuleDict(), "mod_wsgi", m) == 0;
}

bool install_signal_restriction(InterpState &st) {
    PyRef signal(PyImport_ImportModule("signal"));
    PyRef capsule(PyCapsule_New(&st, "mod_wsgi.interp", nullptr));
    if (!signal || !capsule)
        return false;
    PyRef fn(PyCFunction_New(&signal_def, capsule.get()));
    return fn && PyObject_SetAttrString(signal.get(), "signal", fn.get()) == 0;
}

}  // namespace modwsgi
