// ASGI HTTP (asgiref specs/www.rst, spec 2.4) on the loop (asgi_loop.h): with the scope of
// asgi_scope.cc, receive() (http.request with more_body as the body arrives, http.disconnect) and
// send() (http.response.start, http.response.body, the http.response.pathsend extension), turned into
// the same HEAD/BODY/FILE/END/ERROR frames as a WSGI response. Output is posted to JavaScript as it is
// sent (server-sent events reach the client message by message); send() waits while JavaScript holds
// more than Request::kOutputHigh of it, receive() while no body is buffered.
#include "asgi_http.h"

#include <unistd.h>

#include "asgi_frames.h"
#include "asgi_messages.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

using namespace asgi_frames;
using namespace asgi_messages;
using namespace asgi_http;

namespace {

struct HttpObject {
    PyObject_HEAD
    HttpState *h;
};

HttpState *state_of(PyObject *self) {
    HttpState *h = reinterpret_cast<HttpObject *>(self)->h;
    if (!h)
        PyErr_SetString(PyExc_RuntimeError, "ASGI request object is not in use");
    return h;
}

// --- messages to the application ---

// The next message for receive(): a new reference, or null with *wait set (nothing yet; the request
// tells the loop when input comes or the client leaves), or null with an error set.
PyObject *next_message(HttpState &h, AsgiStrings &s, bool *wait) {
    *wait = false;
    if (h.final_posted || h.client_gone)
        return message(s, s.http_disconnect);
    size_t size = h.req->buffered();
    PyRef body(PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size)));
    if (!body)
        return nullptr;
    size_t copied = 0;
    bool more = false;
    Request::InputStatus st = h.req->take_async(PyBytes_AS_STRING(body.get()), size, &copied, &more);
    if (st == Request::InputStatus::kAborted)
        return message(s, s.http_disconnect);
    if (st == Request::InputStatus::kEof && h.body_done) {
        *wait = true;  // the whole body was given: the next message is http.disconnect, when it comes
        return nullptr;
    }
    if (st == Request::InputStatus::kData && copied == 0) {
        *wait = true;
        return nullptr;
    }
    if (copied < size) {
        PyObject *b = body.release();
        if (_PyBytes_Resize(&b, static_cast<Py_ssize_t>(copied)) < 0)
            return nullptr;
        body.reset(b);
    }
    PyRef m(message(s, s.http_request));
    if (!m || PyDict_SetItem(m.get(), s.body, body.get()) < 0 ||
        PyDict_SetItem(m.get(), s.more_body, more ? Py_True : Py_False) < 0)
        return nullptr;
    if (!more)
        h.body_done = true;
    return m.release();
}

// Gives waiting receive() calls what there is, in order.
void feed_receivers(HttpState &h, AsgiStrings &s) {
    asgi_messages::feed_receivers(s, h.receivers, [&](bool *wait) { return next_message(h, s, wait); });
}

void release_senders(HttpState &h, AsgiStrings &s, PyObject *exc) {
    while (!h.senders.empty()) {
        PyObject *fut = h.senders.front();
        h.senders.pop_front();
        settle(s, fut, Py_None, exc);
        Py_DECREF(fut);
    }
}

// --- output ---

void post(HttpState &h, Piece &&p, bool final) {
    h.posted = true;
    h.req->post_output(std::move(p.data), final, p.fd);
    if (final)
        h.final_posted = true;
}

// The client is gone (or the bridge closed): output is dropped; waiting calls learn it.
void gone(HttpState &h, AsgiStrings &s, PyObject *disconnected) {
    h.client_gone = true;
    for (Piece &p : h.out)
        if (p.fd >= 0)
            close(p.fd);
    h.out.clear();
    if (h.end_queued && !h.final_posted)
        post(h, Piece{end_frame(WSGI_END_INCOMPLETE)}, true);
    feed_receivers(h, s);
    PyRef exc(PyObject_CallFunction(disconnected, "s", "client disconnected"));
    if (!exc)
        PyErr_Clear();
    release_senders(h, s, exc ? exc.get() : PyExc_OSError);
}

// Posts queued output while JavaScript has room; the last piece goes out final once the response
// ended. True when nothing is left.
bool pump(HttpState &h, AsgiStrings &s, PyObject *disconnected) {
    while (!h.out.empty()) {
        if (h.req->aborted()) {
            gone(h, s, disconnected);
            return true;
        }
        bool final = h.out.size() == 1 && h.end_queued;
        if (!final && !h.req->writable_async())
            return false;
        Piece p = std::move(h.out.front());
        h.out.pop_front();
        post(h, std::move(p), final);
    }
    if (h.final_posted)
        feed_receivers(h, s);  // receive() after the response: http.disconnect
    return true;
}

// The task is done and its final event out: the object lets go of the request.
void release(AsgiLoop &loop, PyObject *self) {
    HttpState &h = *reinterpret_cast<HttpObject *>(self)->h;
    for (PyObject *f : h.receivers)
        Py_DECREF(f);
    h.receivers.clear();
    for (PyObject *f : h.senders)
        Py_DECREF(f);
    h.senders.clear();
    Py_CLEAR(h.task);
    h.req->finish();
    h.req->loop_ctx = nullptr;
    if (loop.live.erase(self))
        Py_DECREF(self);
}

// --- the Python methods of the base class (glue.Http adds the coroutines around them) ---

PyObject *http_receive(PyObject *self, PyObject *) {
    HttpState *h = state_of(self);
    if (!h)
        return nullptr;
    AsgiStrings &s = h->loop->s;
    return receive(
        *h->loop, h->receivers, [&](bool *wait) { return next_message(*h, s, wait); }, [&] { feed_receivers(*h, s); });
}

PyObject *http_send(PyObject *self, PyObject *msg) {
    HttpState *h = state_of(self);
    if (!h)
        return nullptr;
    AsgiLoop &loop = *h->loop;
    AsgiStrings &s = loop.s;
    PyObject *type = message_type(s, msg);
    if (!type)
        return nullptr;
    if (!h->client_gone && h->req->aborted())
        gone(*h, s, loop.disconnected);
    if (h->client_gone)
        return PyErr_Format(loop.disconnected, "client disconnected");
    if (PyUnicode_Check(type) && PyUnicode_Compare(type, s.http_response_start) == 0) {
        if (h->started)
            return PyErr_Format(PyExc_RuntimeError,
                                "Unexpected ASGI message 'http.response.start' sent, after response already started.");
        if (!asgi_encode_head(s, msg, &h->head, &h->content_length))
            return nullptr;
        h->started = true;
        Py_RETURN_NONE;
    }
    bool body = PyUnicode_Check(type) && PyUnicode_Compare(type, s.http_response_body) == 0;
    bool file = !body && PyUnicode_Check(type) && PyUnicode_Compare(type, s.http_response_pathsend) == 0;
    if (!body && !file)
        return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message %R sent for an http scope.", type);
    if (!h->started)
        return PyErr_Format(PyExc_RuntimeError, "Expected ASGI message 'http.response.start', but got %R.", type);
    if (h->complete)
        return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message %R sent, after response already completed.",
                            type);
    try {
        if (!(file ? queue_file(*h, s, msg) : queue_body_message(*h, s, msg)))
            return nullptr;
    } catch (const std::bad_alloc &) {
        return PyErr_NoMemory();
    }
    if (pump(*h, s, loop.disconnected)) {
        if (h->client_gone)
            return PyErr_Format(loop.disconnected, "client disconnected");
        Py_RETURN_NONE;
    }
    PyObject *fut = PyObject_CallNoArgs(loop.create_future);
    if (!fut)
        return nullptr;
    Py_INCREF(fut);
    h->senders.push_back(fut);
    return fut;
}

void log_task_exception(HttpState &h, PyObject *exc, int code, const std::string &text) {
    asgi_messages::log_task_exception(*h.loop, exc, code, text, h.client);
}

// The final event of a request whose response did not end normally: ERROR while nothing was posted,
// else what is queued and END "incomplete".
void finish_abnormally(HttpState &h, AsgiStrings &s, PyObject *disconnected, uint32_t status, std::string_view text,
                       bool logged = false) {
    if (h.final_posted || h.end_queued)
        return;
    if (h.client_gone) {
        post(h, Piece{end_frame(WSGI_END_INCOMPLETE)}, true);
        return;
    }
    if (!h.posted) {
        for (Piece &p : h.out)
            if (p.fd >= 0)
                close(p.fd);
        h.out.clear();
        post(h, Piece{error_frame(status, text, logged)}, true);
        return;
    }
    queue(h, end_frame(WSGI_END_INCOMPLETE));
    h.end_queued = true;
    h.complete = true;
    pump(h, s, disconnected);
}

// self._ended(exception or None): the last thing the request's task does (glue.Http._main).
PyObject *http_ended(PyObject *self, PyObject *raised) {
    HttpState *h = state_of(self);
    if (!h)
        return nullptr;
    AsgiLoop &loop = *h->loop;
    AsgiStrings &s = loop.s;
    Py_INCREF(self);
    PyRef keep(self);
    h->finished = true;
    bool was_cancelled = raised != Py_None && PyErr_GivenExceptionMatches(raised, loop.cancelled_error);
    PyRef exc;
    if (raised != Py_None && !was_cancelled) {
        Py_INCREF(raised);
        exc.reset(raised);
    }
    const Logger &log = runtime_logger(loop.rt);
    if (!h->client_gone && h->req->aborted())
        gone(*h, s, loop.disconnected);
    if (exc) {
        if (h->client_gone || PyErr_GivenExceptionMatches(exc.get(), loop.disconnected)) {
            log.write(LogLevel::kInfo, kLogAsgiClientGone,
                      "Client connection closed before the response of ASGI application " + h->label +
                          " was complete.",
                      h->client);
            finish_abnormally(*h, s, loop.disconnected, 500, "client disconnected");
        } else if (h->end_queued || h->final_posted) {
            log_task_exception(*h, exc.get(), kLogAsgiAfterResponse,
                               "Exception occurred in ASGI application " + h->label + " after its response was complete.");
        } else if (!h->posted) {
            log_task_exception(*h, exc.get(), kLogAsgiException,
                               "Exception occurred processing ASGI application " + h->label + ".");
            finish_abnormally(*h, s, loop.disconnected, 500, "Exception occurred processing ASGI application " + h->label, true);
        } else {
            log_task_exception(*h, exc.get(), kLogAsgiIncomplete,
                               "Exception occurred in ASGI application " + h->label +
                                   " after its response started: the response is incomplete.");
            finish_abnormally(*h, s, loop.disconnected, 500, "");
        }
    } else if (was_cancelled) {
        if (h->cancelled) {
            log.write(LogLevel::kInfo, kLogAsgiCancelled,
                      "ASGI application " + h->label + " cancelled: request-timeout expired.", h->client);
            finish_abnormally(*h, s, loop.disconnected, 504, "Gateway Timeout: request-timeout expired in daemon process");
        } else {
            finish_abnormally(*h, s, loop.disconnected, 503, "Service Unavailable: the daemon process is shutting down");
        }
    } else if (!h->end_queued && !h->final_posted && !h->client_gone) {
        if (!h->started) {
            log.write(LogLevel::kError, kLogAsgiNoResponse,
                      "ASGI application " + h->label + " returned without starting a response.", h->client);
            finish_abnormally(*h, s, loop.disconnected, 500,
                              "ASGI application " + h->label + " returned without starting a response", true);
        } else {
            log.write(LogLevel::kError, kLogAsgiIncomplete,
                      "ASGI application " + h->label + " returned without completing its response.", h->client);
            finish_abnormally(*h, s, loop.disconnected, 500,
                              "ASGI application " + h->label + " returned without completing its response", true);
        }
    } else if (h->client_gone && !h->final_posted) {
        post(*h, Piece{end_frame(WSGI_END_INCOMPLETE)}, true);
    }
    if (h->final_posted)
        release(loop, self);
    Py_RETURN_NONE;
}

void http_dealloc(PyObject *self) {
    auto *obj = reinterpret_cast<HttpObject *>(self);
    if (HttpState *h = obj->h) {
        for (PyObject *f : h->receivers)
            Py_DECREF(f);
        for (PyObject *f : h->senders)
            Py_DECREF(f);
        Py_XDECREF(h->task);
        for (Piece &p : h->out)
            if (p.fd >= 0)
                close(p.fd);
        delete h;
        obj->h = nullptr;
    }
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

PyMethodDef http_methods[] = {
    {"_receive", http_receive, METH_NOARGS, nullptr},
    {"_send", http_send, METH_O, nullptr},
    {"_ended", http_ended, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot http_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void *>(http_dealloc)},
    {Py_tp_methods, http_methods},
    {Py_tp_doc, const_cast<char *>("The C half of an ASGI HTTP request (mod_wsgi).")},
    {0, nullptr},
};

PyType_Spec http_spec = {"mod_wsgi.AsgiHttpBase", sizeof(HttpObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
                         http_slots};

}  // namespace

PyTypeObject *http_base_type_new() { return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&http_spec)); }


void http_start(AsgiLoop &loop, AsgiApp &app, std::shared_ptr<Request> req, HttpVars &vars) {
    AsgiStrings &s = loop.s;
    auto *obj = reinterpret_cast<HttpObject *>(reinterpret_cast<PyTypeObject *>(loop.http_type)->tp_alloc(
        reinterpret_cast<PyTypeObject *>(loop.http_type), 0));
    if (!obj) {
        PyErr_Clear();
        loop.answer(*req, error_frame(500, "Out of memory."));
        return;
    }
    PyRef self(reinterpret_cast<PyObject *>(obj));
    obj->h = new HttpState();
    HttpState &h = *obj->h;
    h.loop = &loop;
    h.req = req;
    h.label = app.label;
    h.client = vars.client;
    h.head_method = vars.method == "HEAD";
    PyRef scope(http_build_scope(loop, app, vars));
    PyObject *args[4] = {self.get(), app.app.get(), scope.get(), app.runner ? app.runner.get() : Py_None};
    PyRef coro(scope ? PyObject_Vectorcall(loop.http_main, args, 4, nullptr) : nullptr);
    PyRef task(coro ? PyObject_CallOneArg(loop.create_task, coro.get()) : nullptr);
    if (!task) {
        runtime_logger(loop.rt).write(LogLevel::kError, kLogAsgiException,
                                      "Exception occurred processing ASGI application " + app.label + ".", h.client);
        log_exception(loop.st, {}, h.client);
        if (task) {
            PyRef r(PyObject_CallMethodNoArgs(task.get(), s.cancel));
            PyErr_Clear();
        }
        loop.answer(*req, error_frame(500, "Exception occurred processing ASGI application " + app.label, true));
        return;
    }
    h.task = task.release();
    req->loop_ctx = self.get();
    loop.live.insert(self.release());
    // What happened before the loop had an object to tell (input, the client leaving) is looked at now.
    http_wake(loop, *req);
}

void http_wake(AsgiLoop &loop, Request &req) {
    PyObject *self = static_cast<PyObject *>(req.loop_ctx);
    if (!self)
        return;
    Py_INCREF(self);
    PyRef keep(self);
    HttpState &h = *reinterpret_cast<HttpObject *>(self)->h;
    AsgiStrings &s = loop.s;
    if (!h.cancelled && !h.finished && req.cancelled()) {
        h.cancelled = true;
        PyRef r(PyObject_CallMethodNoArgs(h.task, s.cancel));
        PyErr_Clear();
    }
    if (!h.client_gone && req.aborted()) {
        gone(h, s, loop.disconnected);
    } else {
        feed_receivers(h, s);
        if (!h.out.empty() && pump(h, s, loop.disconnected))
            release_senders(h, s, nullptr);
        else if (h.out.empty())
            release_senders(h, s, nullptr);
    }
    if (h.finished && h.final_posted)
        release(loop, self);
}

}  // namespace modwsgi
