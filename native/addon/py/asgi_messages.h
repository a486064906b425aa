// What ASGI HTTP (asgi_http.cc) and WebSocket (asgi_websocket.cc) share on the loop thread: message
// dicts for receive(), the futures of waiting receive() and send() calls, and the log line of a task
// that raised.
#ifndef MODWSGI_ADDON_ASGI_MESSAGES_H
#define MODWSGI_ADDON_ASGI_MESSAGES_H

#include "asgi_loop.h"
#include "runtime.h"

namespace modwsgi {
namespace asgi_messages {

// {'type': type}, a new reference (null with an error set).
inline PyObject *message(AsgiStrings &s, PyObject *type) {
    PyObject *d = PyDict_New();
    if (d && PyDict_SetItem(d, s.type, type) < 0)
        Py_CLEAR(d);
    return d;
}

// Sets d[key] = value, stealing value.
inline bool put(PyObject *d, PyObject *key, PyObject *value) {
    if (!value)
        return false;
    int r = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return r == 0;
}

inline bool future_done(AsgiStrings &s, PyObject *fut) {
    PyRef r(PyObject_CallMethodNoArgs(fut, s.str_done));
    if (!r) {
        PyErr_Clear();
        return true;
    }
    return PyObject_IsTrue(r.get()) == 1;
}

// Gives a waiting call its result (value) or its exception (exc); a future already done (the
// application cancelled it) is left alone.
inline void settle(AsgiStrings &s, PyObject *fut, PyObject *value, PyObject *exc) {
    if (future_done(s, fut))
        return;
    PyRef r(exc ? PyObject_CallMethodOneArg(fut, s.set_exception, exc) : PyObject_CallMethodOneArg(fut, s.set_result, value));
    if (!r)
        PyErr_Clear();
}

// The Python error set now (out of memory, say) becomes the exception of a waiting receive() call.
inline void settle_with_error(AsgiStrings &s, PyObject *fut) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    settle(s, fut, nullptr, value ? value : PyExc_RuntimeError);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

// Gives waiting receive() calls (futures, oldest first) what next(&wait) has for them, in order, until
// it has nothing yet (wait set); a call the application cancelled is dropped.
template <class Futures, class Next>
void feed_receivers(AsgiStrings &s, Futures &receivers, Next next) {
    while (!receivers.empty()) {
        PyObject *fut = receivers.front();
        if (future_done(s, fut)) {
            receivers.pop_front();
            Py_DECREF(fut);
            continue;
        }
        bool wait;
        PyRef m(next(&wait));
        if (!m && wait)
            break;
        if (m)
            settle(s, fut, m.get(), nullptr);
        else
            settle_with_error(s, fut);  // a Python error (out of memory, say): the receive() call raises it
        receivers.pop_front();
        Py_DECREF(fut);
    }
}

// receive(): the message itself when one is there and no earlier call waits, else a future that
// feed() settles (now, or when the loop is told of input).
template <class Futures, class Next, class Feed>
PyObject *receive(AsgiLoop &loop, Futures &receivers, Next next, Feed feed) {
    if (receivers.empty()) {
        bool wait;
        PyObject *m = next(&wait);
        if (m || !wait)
            return m;
    }
    PyObject *fut = PyObject_CallNoArgs(loop.create_future);
    if (!fut)
        return nullptr;
    Py_INCREF(fut);
    receivers.push_back(fut);
    feed();
    return fut;
}

// A message given to send(): its 'type' (borrowed), or null with TypeError or KeyError set.
inline PyObject *message_type(AsgiStrings &s, PyObject *msg) {
    if (!PyDict_Check(msg))
        return PyErr_Format(PyExc_TypeError, "ASGI message must be a dict, not %.100s", Py_TYPE(msg)->tp_name);
    PyObject *type = PyDict_GetItemWithError(msg, s.type);
    if (!type && !PyErr_Occurred())
        PyErr_SetString(PyExc_KeyError, "ASGI message without 'type'");
    return type;
}

// The 'body' (borrowed, may be null or None) and 'more_body' of a response body message.
inline bool body_fields(AsgiStrings &s, PyObject *msg, PyObject **body, bool *more_body) {
    *body = PyDict_GetItemWithError(msg, s.body);
    if (!*body && PyErr_Occurred())
        return false;
    PyObject *more = PyDict_GetItemWithError(msg, s.more_body);
    if (!more && PyErr_Occurred())
        return false;
    int m = more ? PyObject_IsTrue(more) : 0;
    if (m < 0)
        return false;
    *more_body = m == 1;
    return true;
}

// One error line naming the request, then the traceback of exc (the exception the task ended with).
inline void log_task_exception(AsgiLoop &loop, PyObject *exc, int code, const std::string &text,
                               const std::string &client) {
    runtime_logger(loop.rt).write(LogLevel::kError, code, text, client);
    Py_INCREF(Py_TYPE(exc));
    Py_INCREF(exc);
    PyErr_Restore(reinterpret_cast<PyObject *>(Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
    log_exception(loop.st, {}, client);
}

}  // namespace asgi_messages
}  // namespace modwsgi

#endif
