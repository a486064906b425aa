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
#include "asgi_loop.h"

#include <algorithm>
#include <deque>

#include "asgi_frames.h"
#include "asgi_ws_records.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

using namespace asgi_frames;

namespace {

// Log lines (docs/asgi.md, WSGI03400-03449).
enum WsLogCode : int {
    kLogWsException = 3400,     // the application raised before accepting or denying (500)
    kLogWsExceptionOpen = 3401, // it raised after accepting: closed with 1011
    kLogWsNoHandshake = 3402,   // it returned without accepting or denying (500)
    kLogWsClientGone = 3403,    // it ended on ClientDisconnected (the client had left)
    kLogWsIncomplete = 3404,    // its denial response is incomplete
    kLogWsCancelled = 3405,     // cancelled by request-timeout before it accepted (504)
};

constexpr size_t kPiece = 256 * 1024;

enum class Phase { kConnecting, kOpen, kResponding, kOver };

struct WsState {
    AsgiLoop *loop = nullptr;
    std::shared_ptr<Request> req;
    std::string label;
    std::string client;
    PyObject *task = nullptr;
    std::deque<PyObject *> receivers;  // futures of receive() calls waiting for a message
    std::deque<PyObject *> senders;    // futures of send() calls waiting for room
    Phase phase = Phase::kConnecting;
    bool connect_given = false;   // websocket.connect was received
    bool closed_in = false;       // the client's side is over: what websocket.disconnect says is known
    int close_code = 1006;
    std::string close_reason;
    bool app_closed = false;      // the application sent websocket.close
    bool posted = false;          // output went to JavaScript: an ERROR can no longer replace it
    bool final_posted = false;
    bool finished = false;        // the task is done
    bool cancelled = false;
    // The denial response (websocket.http.response.*).
    std::string head;
    int64_t content_length = -1;
    uint64_t body_bytes = 0;
    std::string text;             // a text record's bytes, decoded into a str
};

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

PyObject *message(AsgiStrings &s, PyObject *type) {
    PyObject *d = PyDict_New();
    if (d && PyDict_SetItem(d, s.type, type) < 0)
        Py_CLEAR(d);
    return d;
}

// Sets d[key] = value, stealing value.
bool put(PyObject *d, PyObject *key, PyObject *value) {
    if (!value)
        return false;
    int r = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return r == 0;
}

bool future_done(AsgiStrings &s, PyObject *fut) {
    PyRef r(PyObject_CallMethodNoArgs(fut, s.str_done));
    if (!r) {
        PyErr_Clear();
        return true;
    }
    return PyObject_IsTrue(r.get()) == 1;
}

void settle(AsgiStrings &s, PyObject *fut, PyObject *value, PyObject *exc) {
    if (future_done(s, fut))
        return;
    PyRef r(exc ? PyObject_CallMethodOneArg(fut, s.set_exception, exc) : PyObject_CallMethodOneArg(fut, s.set_result, value));
    if (!r)
        PyErr_Clear();
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
    while (!w.receivers.empty()) {
        PyObject *fut = w.receivers.front();
        if (future_done(s, fut)) {  // cancelled by the application
            w.receivers.pop_front();
            Py_DECREF(fut);
            continue;
        }
        bool wait;
        PyRef m(next_message(w, s, &wait));
        if (!m && wait)
            break;
        if (m) {
            settle(s, fut, m.get(), nullptr);
        } else {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            settle(s, fut, nullptr, value ? value : PyExc_RuntimeError);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        }
        w.receivers.pop_front();
        Py_DECREF(fut);
    }
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

void post_frames(WsState &w, std::string &&frames, bool final) {
    w.posted = true;
    w.req->post_output(std::move(frames), final, -1);
    if (final)
        w.final_posted = true;
}

void post_records(WsState &w, std::string &&records, bool final) {
    w.posted = true;
    w.req->post_records(std::move(records), final);
    if (final)
        w.final_posted = true;
}

std::string head_frame(const std::string &payload, uint16_t flags) {
    std::string f(WSGI_WIRE_HEADER_SIZE, '\0');
    wsgi_frame_header_pack(reinterpret_cast<unsigned char *>(&f[0]), WSGI_FRAME_HEAD, flags,
                           static_cast<uint32_t>(payload.size()));
    f.append(payload);
    return f;
}

// websocket.accept: the HEAD 101 (the Apache child adds Upgrade, Connection and Sec-WebSocket-Accept).
bool accept(WsState &w, AsgiStrings &s, PyObject *msg) {
    PyObject *sub = PyDict_GetItemWithError(msg, s.subprotocol);
    if (!sub && PyErr_Occurred())
        return false;
    PyObject *headers = PyDict_GetItemWithError(msg, s.headers);
    if (!headers && PyErr_Occurred())
        return false;
    PyRef list(headers && headers != Py_None ? PySequence_List(headers) : PyList_New(0));
    if (!list)
        return false;
    if (sub && sub != Py_None) {
        if (!PyUnicode_Check(sub)) {
            PyErr_Format(PyExc_TypeError, "websocket.accept 'subprotocol' must be a str, not %.100s", Py_TYPE(sub)->tp_name);
            return false;
        }
        PyRef value(PyUnicode_AsLatin1String(sub));
        PyRef pair(value ? Py_BuildValue("(y O)", "sec-websocket-protocol", value.get()) : nullptr);
        if (!pair || PyList_Append(list.get(), pair.get()) < 0)
            return false;
    }
    PyRef start(PyDict_New());
    PyRef status(PyLong_FromLong(101));
    if (!start || !status || PyDict_SetItem(start.get(), s.status, status.get()) < 0 ||
        PyDict_SetItem(start.get(), s.headers, list.get()) < 0)
        return false;
    std::string head;
    int64_t ignored;
    if (!asgi_encode_head(s, start.get(), &head, &ignored))
        return false;
    post_frames(w, head_frame(head, WSGI_HEAD_ASGI | WSGI_HEAD_UPGRADE), false);
    w.phase = Phase::kOpen;
    return true;
}

// websocket.close before the accept: an ordinary 403.
void deny(WsState &w) {
    std::string head;
    append_u32(head, 403);
    append_string(head, "403 Forbidden");
    append_u32(head, 0);
    std::string frames = head_frame(head, WSGI_HEAD_ASGI);
    frames += end_frame(WSGI_END_COMPLETE);
    post_frames(w, std::move(frames), true);
    w.phase = Phase::kOver;
}

// websocket.http.response.body: the denial response's HEAD (first time), BODY frames, END at the end.
bool respond_body(WsState &w, AsgiStrings &s, PyObject *msg) {
    PyObject *body = PyDict_GetItemWithError(msg, s.body);
    if (!body && PyErr_Occurred())
        return false;
    PyObject *more = PyDict_GetItemWithError(msg, s.more_body);
    if (!more && PyErr_Occurred())
        return false;
    int more_body = more ? PyObject_IsTrue(more) : 0;
    if (more_body < 0)
        return false;
    std::string frames;
    if (!w.posted)
        frames = head_frame(w.head, WSGI_HEAD_ASGI);
    if (body && body != Py_None) {
        Py_buffer view;
        if (PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0)
            return false;
        const char *p = static_cast<const char *>(view.buf);
        size_t n = static_cast<size_t>(view.len);
        if (w.content_length >= 0)
            n = std::min<uint64_t>(n, static_cast<uint64_t>(w.content_length) - std::min<uint64_t>(w.body_bytes, w.content_length));
        w.body_bytes += n;
        for (size_t off = 0; off < n; off += kPiece)
            append_frame(frames, WSGI_FRAME_RBODY, p + off, std::min(kPiece, n - off));
        PyBuffer_Release(&view);
    }
    if (!more_body) {
        bool short_body = w.content_length >= 0 && w.body_bytes < static_cast<uint64_t>(w.content_length);
        if (short_body)
            runtime_logger(w.loop->rt).write(LogLevel::kWarn, kLogWsIncomplete,
                                             "Denial response of ASGI application " + w.label +
                                                 " is shorter than its content-length: the connection is closed.",
                                             w.client);
        frames += end_frame(short_body ? WSGI_END_INCOMPLETE : WSGI_END_COMPLETE);
        w.phase = Phase::kOver;
    }
    if (!frames.empty())
        post_frames(w, std::move(frames), !more_body);
    return true;
}

// websocket.send: exactly one of 'bytes' and 'text'.
bool send_message(WsState &w, AsgiStrings &s, PyObject *msg) {
    PyObject *b = PyDict_GetItemWithError(msg, s.bytes);
    if (!b && PyErr_Occurred())
        return false;
    PyObject *t = PyDict_GetItemWithError(msg, s.text);
    if (!t && PyErr_Occurred())
        return false;
    std::string rec;
    if (b && b != Py_None) {
        Py_buffer view;
        if (PyObject_GetBuffer(b, &view, PyBUF_SIMPLE) < 0)
            return false;
        ws_records::append(rec, ws_records::kBinary, static_cast<const char *>(view.buf), static_cast<size_t>(view.len));
        PyBuffer_Release(&view);
    } else if (t && t != Py_None) {
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError, "websocket.send 'text' must be a str, not %.100s", Py_TYPE(t)->tp_name);
            return false;
        }
        Py_ssize_t n;
        const char *u = PyUnicode_AsUTF8AndSize(t, &n);
        if (!u)
            return false;
        ws_records::append(rec, ws_records::kText, u, static_cast<size_t>(n));
    } else {
        PyErr_SetString(PyExc_ValueError, "websocket.send needs 'bytes' or 'text'");
        return false;
    }
    post_records(w, std::move(rec), false);
    return true;
}

// websocket.close after the accept: a close frame with the code (1000) and reason ('').
bool close_open(WsState &w, AsgiStrings &s, PyObject *msg) {
    PyObject *code = PyDict_GetItemWithError(msg, s.code);
    if (!code && PyErr_Occurred())
        return false;
    PyObject *reason = PyDict_GetItemWithError(msg, s.reason);
    if (!reason && PyErr_Occurred())
        return false;
    long c = 1000;
    if (code && code != Py_None) {
        c = PyLong_Check(code) ? PyLong_AsLong(code) : -1;
        // RFC 6455 7.4: what may be sent in a close frame.
        bool valid = (c >= 1000 && c <= 1014 && c != 1004 && c != 1005 && c != 1006) || (c >= 3000 && c <= 4999);
        if (!valid) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "websocket.close 'code' must be a WebSocket close code, not %R", code);
            return false;
        }
    }
    std::string_view why;
    if (reason && reason != Py_None) {
        Py_ssize_t n = 0;
        const char *u = PyUnicode_Check(reason) ? PyUnicode_AsUTF8AndSize(reason, &n) : nullptr;
        if (!u) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "websocket.close 'reason' must be a str");
            return false;
        }
        if (n > 123) {
            PyErr_SetString(PyExc_ValueError, "websocket.close 'reason' is longer than 123 bytes in UTF-8");
            return false;
        }
        why = std::string_view(u, static_cast<size_t>(n));
    }
    w.app_closed = true;
    if (!w.closed_in) {
        w.close_code = static_cast<int>(c);
        w.close_reason.assign(why.data(), why.size());
    }
    std::string rec;
    ws_records::append_close(rec, static_cast<int>(c), why);
    post_records(w, std::move(rec), false);
    return true;
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
    if (w->receivers.empty()) {
        bool wait;
        PyObject *m = next_message(*w, s, &wait);
        if (m || !wait)
            return m;
    }
    PyObject *fut = PyObject_CallNoArgs(w->loop->create_future);
    if (!fut)
        return nullptr;
    Py_INCREF(fut);
    w->receivers.push_back(fut);
    feed_receivers(*w, s);
    return fut;
}

PyObject *ws_send(PyObject *self, PyObject *msg) {
    WsState *w = state_of(self);
    if (!w)
        return nullptr;
    AsgiLoop &loop = *w->loop;
    AsgiStrings &s = loop.s;
    if (!PyDict_Check(msg))
        return PyErr_Format(PyExc_TypeError, "ASGI message must be a dict, not %.100s", Py_TYPE(msg)->tp_name);
    PyObject *type = PyDict_GetItemWithError(msg, s.type);
    if (!type) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "ASGI message without 'type'");
        return nullptr;
    }
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
    runtime_logger(w.loop->rt).write(LogLevel::kError, code, text, w.client);
    Py_INCREF(Py_TYPE(exc));
    Py_INCREF(exc);
    PyErr_Restore(reinterpret_cast<PyObject *>(Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
    log_exception(w.loop->st, {}, w.client);
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
