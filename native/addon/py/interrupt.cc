// mod_wsgi.RequestTimeout (mod_wsgi 6's interrupt-timeout): the exception the watchdog raises in the
// thread of a request that ran past request-timeout (watchdog.cc), and what a request that unwinds
// with it ends as: 504 Gateway Timeout, with one line saying where it was interrupted; the worker and
// the process carry on. It derives from BaseException, so `except Exception:` does not swallow it.
#include "py_internal.h"

#include "runtime.h"

namespace modwsgi {

namespace {

// "file:line in function" of the innermost frame of a traceback object, or "".
std::string where(PyObject *tb) {
    if (!tb || tb == Py_None)
        return "";
    PyRef cur(tb);
    Py_INCREF(tb);
    for (;;) {
        PyRef next(PyObject_GetAttrString(cur.get(), "tb_next"));
        if (!next || next.get() == Py_None)
            break;
        cur = std::move(next);
    }
    PyRef line(PyObject_GetAttrString(cur.get(), "tb_lineno"));
    PyRef frame(PyObject_GetAttrString(cur.get(), "tb_frame"));
    PyRef code(frame ? PyObject_GetAttrString(frame.get(), "f_code") : nullptr);
    PyRef file(code ? PyObject_GetAttrString(code.get(), "co_filename") : nullptr);
    PyRef name(code ? PyObject_GetAttrString(code.get(), "co_name") : nullptr);
    std::string out;
    if (file && name && line && PyUnicode_Check(file.get()) && PyUnicode_Check(name.get())) {
        const char *f = PyUnicode_AsUTF8(file.get());
        const char *n = PyUnicode_AsUTF8(name.get());
        long l = PyLong_AsLong(line.get());
        if (f && n)
            out = std::string(f) + ":" + std::to_string(l) + " in " + n;
    }
    PyErr_Clear();
    return out;
}

}  // namespace

bool request_timeout_install(InterpState &st, PyObject *module) {
    if (!st.request_timeout) {
        st.request_timeout = PyErr_NewExceptionWithDoc(
            "mod_wsgi.RequestTimeout",
            "Raised by mod_wsgi in a request that ran past request-timeout when interrupt-timeout is set. "
            "Derives from BaseException so that 'except Exception:' does not catch it; code may catch it "
            "to clean up but should re-raise it, so that the request ends with 504 Gateway Timeout.",
            PyExc_BaseException, nullptr);
        if (!st.request_timeout)
            return false;
    }
    Py_INCREF(st.request_timeout);
    if (PyModule_AddObject(module, "RequestTimeout", st.request_timeout) < 0) {
        Py_DECREF(st.request_timeout);
        return false;
    }
    return true;
}

bool request_timeout_caught(Call &call) {
    if (!call.st.request_timeout || !PyErr_ExceptionMatches(call.st.request_timeout))
        return false;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    std::string at = where(tb);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    call.failed = true;
    std::string text = "Request of WSGI script '" + std::string(call.script) +
                       "' interrupted by mod_wsgi.RequestTimeout (request-timeout, interrupt-timeout)" +
                       (at.empty() ? std::string() : " at " + at);
    if (call.head_posted) {
        // The status line is gone: the response can only be cut short.
        runtime_logger(*call.st.rt)
            .write(LogLevel::kError, kLogRequestTimeoutLate, text + " after its response began: response truncated.",
                   call.client);
        return true;
    }
    // The ERROR frame carries it; the Apache child logs it with the request (WSGI01224) and answers 504.
    call.error_status = 504;
    call.error_text = text + ".";
    return true;
}

}  // namespace modwsgi
