// Making and ending sub-interpreters (application groups) across CPython 3.8 to 3.13, with the shared
// GIL or, with WSGIPerInterpreterGIL on 3.12+, a GIL of their own (PEP 684), as mod_wsgi 6 does:
// Py_NewInterpreterFromConfig with _PyInterpreterConfig_INIT (own GIL, own object allocator,
// extensions checked for multi-interpreter support, no fork/exec, no daemon threads) or
// _PyInterpreterConfig_LEGACY_INIT (what Py_NewInterpreter always made).
#include "subinterp.h"

namespace modwsgi {

PyThreadState *subinterp_create(PyThreadState *borrowed, bool want_own_gil, bool *own_gil, std::string *error) {
    *own_gil = false;
    PyThreadState *ts = nullptr;
#if PY_VERSION_HEX >= 0x030C0000
    PyInterpreterConfig config = _PyInterpreterConfig_LEGACY_INIT;
    if (want_own_gil) {
        PyInterpreterConfig own = _PyInterpreterConfig_INIT;
        config = own;
    }
    PyStatus status = Py_NewInterpreterFromConfig(&ts, &config);
    if (PyStatus_Exception(status) || !ts) {
        *error = std::string("Py_NewInterpreterFromConfig() failed") +
                 (status.err_msg ? std::string(": ") + status.err_msg : std::string());
        ts = nullptr;
    } else {
        *own_gil = want_own_gil;
    }
#else
    (void)want_own_gil;
    ts = Py_NewInterpreter();
    if (!ts)
        *error = "Py_NewInterpreter() failed";
#endif
    if (!ts) {
        // The borrowed thread state is current again, holding the main GIL.
        PyThreadState_Clear(borrowed);
        PyThreadState_DeleteCurrent();
        return nullptr;
    }
    if (*own_gil) {
        // The main GIL was released for us: take it back to delete the borrowed thread state of the
        // main interpreter, then return to the new interpreter under its own GIL.
        PyEval_SaveThread();
        PyEval_RestoreThread(borrowed);
        PyThreadState_Clear(borrowed);
        PyThreadState_DeleteCurrent();
        PyEval_RestoreThread(ts);
    } else {
        // One GIL for both, held: the borrowed thread state is not current any more.
        PyThreadState_Clear(borrowed);
        PyThreadState_Delete(borrowed);
    }
    return ts;
}

std::string own_gil_unsafe() {
#if PY_VERSION_HEX >= 0x030C0000
    if (Py_Version >= 0x030C0000 && Py_Version < 0x030C0400)
        return "Python 3.12." + std::to_string((Py_Version >> 8) & 0xff) +
               " shares objects between interpreters that have their own GIL (CPython issue gh-119213, fixed "
               "in 3.12.4)";
    return "";
#else
    return "a GIL per interpreter needs CPython 3.12 or later";
#endif
}

PyThreadState *subinterp_keeper(PyInterpreterState *interp) {
    PyThreadState *keeper = _PyThreadState_Prealloc(interp);
#if PY_VERSION_HEX < 0x030C0000
    // Before 3.12 a thread state takes its thread's id when made (3.12+ when first used): the keeper
    // would share the creating worker's, and PyThreadState_SetAsyncExc (interrupt-timeout), which
    // stops at the newest thread state with that id, would raise RequestTimeout in the keeper instead.
    if (keeper)
        keeper->thread_id = 0;
#endif
    return keeper;
}

bool apply_switch_interval(const Logger &log, double seconds, const std::string &where) {
    PyRef sys(PyImport_ImportModule("sys"));
    PyRef r(sys ? PyObject_CallMethod(sys.get(), "setswitchinterval", "d", seconds) : nullptr);
    if (!r) {
        std::string why = fetch_error_text();
        log.write(LogLevel::kError, kLogSwitchIntervalFailed,
                  "Unable to set the switch interval to " + std::to_string(seconds) + " s for " + where + ": " + why);
        return false;
    }
    log.write(LogLevel::kInfo, kLogSwitchInterval, "Switch interval set to " + std::to_string(seconds) + " s for " + where + ".");
    return true;
}

void switch_to(PyThreadState *to) {
    PyEval_SaveThread();
    PyEval_RestoreThread(to);
}

void end_subinterpreter(PyThreadState *keeper, PyThreadState *main_ts) {
    Py_EndInterpreter(keeper);
#if PY_VERSION_HEX >= 0x030C0000
    // 3.12+: it returns with no thread state and no GIL held (shared or its own, now gone).
    PyEval_RestoreThread(main_ts);
#else
    // Up to 3.11: it returns holding the (shared) GIL with no thread state current.
    PyThreadState_Swap(main_ts);
#endif
}

}  // namespace modwsgi
