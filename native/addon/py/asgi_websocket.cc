// ASGI WebSocket (asgiref specs/www.rst, spec 2.4) on the loop (asgi_loop.h), for a REQUEST with the
// UPGRADE flag: the websocket scope of asgi_scope.cc, receive() (websocket.connect, websocket.receive,
// websocket.disconnect) and send() (websocket.accept, websocket.send, websocket.close, and the
// websocket.http.response extension). Framing is not done here: after the accept the daemon's
// JavaScript frames and unframes the messages (src/daemon/websocket/), and they cross as records
// (asgi_ws_records.h) through the request's input and output, with the same backpressure as an HTTP
// body: receive() takes what JavaScript fed, send() waits while JavaScript holds more than
// Request::kOutputHigh of this WebSocket's output.
//
//   connecting --accept--> open (HEAD 101 with WSGI_HEAD_UPGRADE, then records) --close/task end--> over
//   connecting --close--> over (an ordinary 403)
//   connecting --websocket.http.response.start--> responding (HEAD, BODY..., END) --> over
#include "asgi_ws.h"

#include "asgi_frames.h"
#include "asgi_messages.h"
#include "asgi_ws_records.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

using namespace asgi_frames;
using namespace asgi_messages;
using namespace asgi_ws;

namespace {

struct WsObject {
    PyObject_HEAD
    WsState *w;
};

WsState *state_of(PyObject *self) {
    WsState *w = reinterpret_cast<WsObject *>(self)->w;
    if (!w)
        PyErr_SetString(PyExc_RuntimeError, "ASGI WebSocket object is not in use");
    return w;
}

// The client's side is over (connection lost, or what the input said last).
void client_over(WsState &w, int code) {
    if (w.closed_in)
        return;
    w.closed_in = true;
    w.close_code = code;
}

PyObject *disconnect_message(WsState &w, AsgiStrings &s) {
    PyRef m(message(s, s.websocket_disconnect));
    if (!m || !put(m.get(), s.code, PyLong_FromLong(w.close_code)) ||
        !put(m.get(), s.reason,
             PyUnicode_DecodeUTF8(w.close_reason.data(), static_cast<Py_ssize_t>(w.close_reason.size()), "replace")))
        return nullptr;
    return m.release();
}

// The next message for receive(): a new reference; null with *wait (nothing yet: the request tells
// the loop when input comes or the client leaves), or null with an error set.
PyObject *next_message(WsState &w, AsgiStrings &s, bool *wait) {
    *wait = false;
    if (!w.connect_given) {
        w.connect_given = true;
        return message(s, s.websocket_connect);
    }
    if (w.closed_in || w.app_closed || w.phase == Phase::kOver)
        return disconnect_message(w, s);
    if (w.phase != Phase::kOpen) {
        if (w.req->aborted()) {
            client_over(w, 1006);
            return disconnect_message(w, s);
        }
        *wait = true;  // nothing comes before the accept
        return nullptr;
    }
    PyRef bytes;
    uint8_t kind = 0;
    Request::InputStatus st = w.req->take_record(&kind, [&](uint8_t k, size_t n) -> char * {
        if (k == ws_records::kBinary) {
            bytes.reset(PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n)));
            return bytes ? PyBytes_AS_STRING(bytes.get()) : nullptr;
        }
        try {
            w.text.resize(n);
        } catch (const std::bad_alloc &) {
            return nullptr;
        }
        return &w.text[0];
    });
    switch (st) {
    case Request::InputStatus::kAborted:
    case Request::InputStatus::kEof:
        client_over(w, 1006);
        return disconnect_message(w, s);
    case Request::InputStatus::kExpired:
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return nullptr;
    case Request::InputStatus::kData:
        break;
    }
    if (kind == 0) {
        *wait = true;
        return nullptr;
    }
    if (kind == ws_records::kClose) {
        int code = w.text.size() >= 2 ? (static_cast<unsigned char>(w.text[0]) << 8) | static_cast<unsigned char>(w.text[1])
                                      : 1005;
        client_over(w, code);
        w.close_reason.assign(w.text.size() > 2 ? w.text.substr(2) : std::string());
        return disconnect_message(w, s);
    }
    // Only the key that is set: Channels 4.0 breaks on 'text': None beside 'bytes'.
    PyRef m(message(s, s.websocket_receive));
    if (!m)
        return nullptr;
    if (kind == ws_records::kBinary) {
        if (!put(m.get(), s.bytes, bytes.release()))
            return nullptr;
    } else if (!put(m.get(), s.text,
                    PyUnicode_DecodeUTF8(w.text.data(), static_cast<Py_ssize_t>(w.text.size()), "surrogateescape"))) {
        return nullptr;
    }
    return m.release();
}

void feed_receivers(WsState &w, AsgiStrings &s) {
    asgi_messages::feed_receivers(s, w.receivers, [&](bool *wait) { return next_message(w, s, wait); });
}

bool client_gone(WsState &w) { return w.closed_in || w.req->input_ended(); }

// Waiting send() calls go on once there is room, or learn that the client left.
void release_senders(WsState &w, AsgiStrings &s) {
    if (w.senders.empty())
        return;
    bool gone = w.phase == Phase::kOpen && client_gone(w);
    if (!gone && !w.final_posted && !w.req->writable_async())
        return;
    PyRef exc(gone ? PyObject_CallFunction(w.loop->disconnected, "s", "client disconnected") : nullptr);
    if (gone && !exc)
        PyErr_Clear();
    while (!w.senders.empty()) {
        PyObject *fut = w.senders.front();
        w.senders.pop_front();
        settle(s, fut, Py_None, gone ? (exc ? exc.get() : PyExc_OSError) : nullptr);
        Py_DECREF(fut);
    }
}

bool type_is(PyObject *type, PyObject *name) { return PyUnicode_Check(type) && PyUnicode_Compare(type, name) == 0; }

PyObject *unexpected(PyObject *type, const char *expected) {
    return PyErr_Format(PyExc_RuntimeError, "Expected ASGI message %s, but got %R.", expected, type);
}

// --- the Python methods of the base class (glue.WebSocket adds the coroutines around them) ---

PyObject *ws_receive(PyObject *self, PyObject *) {
    WsState *w = state_of(self);
    if (!w)
        return nullptr;
    AsgiStrings &s = w->loop->s;
    return receive(
        *w->loop, w->receivers, [&](bool *wait) { return next_message(*w, s, wait); }, [&] { feed_receivers(*w, s); });
}

PyObject *ws_send(PyObject *self, PyObject *msg) {
    WsState *w = state_of(self);
    if (!w)
        return nullptr;
    AsgiLoop &loop = *w->loop;
    AsgiStrings &s = loop.s;
    PyObject *type = message_type(s, msg);
    if (!type)
        return nullptr;
    bool ok = true;
    try {
        switch (w->phase) {
        case Phase::kConnecting:
            if (w->req->aborted())
                return PyErr_Format(loop.disconnected, "client disconnected");
            if (type_is(type, s.websocket_accept)) {
                ok = accept(*w, s, msg);
                feed_receivers(*w, s);
            } else if (type_is(type, s.websocket_close)) {
                w->app_closed = true;
                PyObject *code = PyDict_GetItemWithError(msg, s.code);
                w->close_code = code && PyLong_Check(code) ? static_cast<int>(PyLong_AsLong(code)) : 1000;
                PyErr_Clear();
                deny(*w);
                feed_receivers(*w, s);
            } else if (type_is(type, s.websocket_http_response_start)) {
                ok = asgi_encode_head(s, msg, &w->head, &w->content_length);
                if (ok)
                    w->phase = Phase::kResponding;
            } else {
                return unexpected(type, "'websocket.accept', 'websocket.close' or 'websocket.http.response.start'");
            }
            break;
        case Phase::kResponding:
            if (!type_is(type, s.websocket_http_response_body))
                return unexpected(type, "'websocket.http.response.body'");
            ok = respond_body(*w, s, msg);
            break;
        case Phase::kOpen:
            if (w->app_closed)
                return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message %R, after sending 'websocket.close'.", type);
            if (type_is(type, s.websocket_send)) {
                if (client_gone(*w))
                    return PyErr_Format(loop.disconnected, "client disconnected");
                ok = send_message(*w, s, msg);
            } else if (type_is(type, s.websocket_close)) {
                ok = close_open(*w, s, msg);
                feed_receivers(*w, s);
            } else {
                return unexpected(type, "'websocket.send' or 'websocket.close'");
            }
            break;
        case Phase::kOver:
            return PyErr_Format(PyExc_RuntimeError,
                                "Unexpected ASGI message %R, after sending 'websocket.close' or response already completed.",
                                type);
        }
    } catch (const std::bad_alloc &) {
        return PyErr_NoMemory();
    }
    if (!ok)
        return nullptr;
    if (w->final_posted || w->req->writable_async())
        Py_RETURN_NONE;
    PyObject *fut = PyObject_CallNoArgs(loop.create_future);
    if (!fut)
        return nullptr;
    Py_INCREF(fut);
    w->senders.push_back(fut);
    return fut;
}

void log_exception_of(WsState &w, PyObject *exc, int code, const std::string &text) {
    log_task_exception(*w.loop, exc, code, text, w.client);
}

void release(AsgiLoop &loop, PyObject *self) {
    WsState &w = *reinterpret_cast<WsObject *>(self)->w;
    for (PyObject *f : w.receivers)
        Py_DECREF(f);
    w.receivers.clear();
    for (PyObject *f : w.senders)
        Py_DECREF(f);
    w.senders.clear();
    Py_CLEAR(w.task);
    w.req->finish();
    w.req->loop_ctx = nullptr;
    if (loop.live.erase(self))
        Py_DECREF(self);
}

// self._ended(exception or None): the last thing the task does (glue's _main).
PyObject *ws_ended(PyObject *self, PyObject *raised) {
    WsState *w = state_of(self);
    if (!w)
        return nullptr;
    AsgiLoop &loop = *w->loop;
    AsgiStrings &s = loop.s;
    Py_INCREF(self);
    PyRef keep(self);
    w->finished = true;
    const Logger &log = runtime_logger(loop.rt);
    bool was_cancelled = raised != Py_None && PyErr_GivenExceptionMatches(raised, loop.cancelled_error);
    bool gone = raised != Py_None && !was_cancelled && PyErr_GivenExceptionMatches(raised, loop.disconnected);
    PyObject *exc = raised != Py_None && !was_cancelled && !gone ? raised : nullptr;
    if (gone)
        log.write(LogLevel::kInfo, kLogWsClientGone,
                  "WebSocket client of ASGI application " + w->label + " left (ClientDisconnected).", w->client);
    switch (w->phase) {
    case Phase::kConnecting:
    case Phase::kResponding:
        if (w->posted) {
            if (exc)
                log_exception_of(*w, exc, kLogWsIncomplete,
                                 "Exception occurred in ASGI application " + w->label + " during its denial response.");
            post_frames(*w, end_frame(WSGI_END_INCOMPLETE), true);
        } else if (exc) {
            log_exception_of(*w, exc, kLogWsException,
                             "Exception occurred processing ASGI application " + w->label + " (WebSocket).");
            post_frames(*w, error_frame(500, "Exception occurred processing ASGI application " + w->label, true), true);
        } else if (was_cancelled && w->cancelled) {
            log.write(LogLevel::kInfo, kLogWsCancelled,
                      "ASGI application " + w->label + " cancelled: request-timeout expired before it accepted the WebSocket.",
                      w->client);
            post_frames(*w, error_frame(504, "Gateway Timeout: request-timeout expired in daemon process"), true);
        } else if (was_cancelled || gone) {
            post_frames(*w, error_frame(503, "Service Unavailable: the daemon process is shutting down"), true);
        } else {
            log.write(LogLevel::kError, kLogWsNoHandshake,
                      "ASGI application " + w->label + " returned without accepting or closing the WebSocket.", w->client);
            post_frames(*w, error_frame(500, "ASGI application " + w->label + " returned without accepting the WebSocket", true),
                        true);
        }
        w->phase = Phase::kOver;
        break;
    case Phase::kOpen: {
        int code = 1000;
        if (exc) {
            code = 1011;
            log_exception_of(*w, exc, kLogWsExceptionOpen,
                             "Exception occurred in ASGI application " + w->label + " after it accepted the WebSocket: "
                             "closed with 1011.");
        } else if (was_cancelled) {
            code = 1001;  // the daemon stops
        }
        std::string rec;
        if (!w->app_closed && !client_gone(*w))
            ws_records::append_close(rec, code, {});
        post_records(*w, std::move(rec), true);
        w->phase = Phase::kOver;
        break;
    }
    case Phase::kOver:
        if (!w->final_posted)
            post_frames(*w, end_frame(WSGI_END_INCOMPLETE), true);
        break;
    }
    feed_receivers(*w, s);
    if (w->final_posted)
        release(loop, self);
    Py_RETURN_NONE;
}

void ws_dealloc(PyObject *self) {
    auto *obj = reinterpret_cast<WsObject *>(self);
    if (WsState *w = obj->w) {
        for (PyObject *f : w->receivers)
            Py_DECREF(f);
        for (PyObject *f : w->senders)
            Py_DECREF(f);
        Py_XDECREF(w->task);
        delete w;
        obj->w = nullptr;
    }
    PyTypeObject *tp = Py_TYPE(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

PyMethodDef ws_methods[] = {
    {"_receive", ws_receive, METH_NOARGS, nullptr},
    {"_send", ws_send, METH_O, nullptr},
    {"_ended", ws_ended, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot ws_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void *>(ws_dealloc)},
    {Py_tp_methods, ws_methods},
    {Py_tp_doc, const_cast<char *>("The C half of an ASGI WebSocket (mod_wsgi).")},
    {0, nullptr},
};

PyType_Spec ws_spec = {"mod_wsgi.AsgiWebSocketBase", sizeof(WsObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
                       ws_slots};

}  // namespace

PyTypeObject *ws_base_type_new() { return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&ws_spec)); }

void ws_start(AsgiLoop &loop, AsgiApp &app, std::shared_ptr<Request> req, HttpVars &vars) {
    auto *tp = reinterpret_cast<PyTypeObject *>(loop.ws_type);
    auto *obj = reinterpret_cast<WsObject *>(tp->tp_alloc(tp, 0));
    if (!obj) {
        PyErr_Clear();
        loop.answer(*req, error_frame(500, "Out of memory."));
        return;
    }
    PyRef self(reinterpret_cast<PyObject *>(obj));
    obj->w = new WsState();
    WsState &w = *obj->w;
    w.loop = &loop;
    w.req = req;
    w.label = app.label;
    w.client = vars.client;
    req->loop_kind = Request::LoopKind::kWebSocket;
    // The client's messages come as input once the WebSocket is accepted.
    req->open_input();
    PyRef scope(http_build_scope(loop, app, vars, true));
    PyObject *args[4] = {self.get(), app.app.get(), scope.get(), app.runner ? app.runner.get() : Py_None};
    PyRef coro(scope ? PyObject_Vectorcall(loop.http_main, args, 4, nullptr) : nullptr);
    PyRef task(coro ? PyObject_CallOneArg(loop.create_task, coro.get()) : nullptr);
    if (!task) {
        runtime_logger(loop.rt).write(LogLevel::kError, kLogWsException,
                                      "Exception occurred processing ASGI application " + app.label + " (WebSocket).",
                                      w.client);
        log_exception(loop.st, {}, w.client);
        loop.answer(*req, error_frame(500, "Exception occurred processing ASGI application " + app.label, true));
        return;
    }
    w.task = task.release();
    req->loop_ctx = self.get();
    loop.live.insert(self.release());
    ws_wake(loop, *req);
}

void ws_wake(AsgiLoop &loop, Request &req) {
    PyObject *self = static_cast<PyObject *>(req.loop_ctx);
    if (!self)
        return;
    Py_INCREF(self);
    PyRef keep(self);
    WsState &w = *reinterpret_cast<WsObject *>(self)->w;
    AsgiStrings &s = loop.s;
    if (!w.cancelled && !w.finished && w.phase == Phase::kConnecting && req.cancelled()) {
        w.cancelled = true;
        PyRef r(PyObject_CallMethodNoArgs(w.task, s.cancel));
        PyErr_Clear();
    }
    if (req.aborted())
        client_over(w, 1006);
    feed_receivers(w, s);
    release_senders(w, s);
    if (w.finished && w.final_posted)
        release(loop, self);
}

}  // namespace modwsgi
