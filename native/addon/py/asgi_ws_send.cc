// What an ASGI WebSocket application sends (asgi_ws.h), as the output of its request: frames of
// docs/protocol.md until the accept and for a denial response, WebSocket records (asgi_ws_records.h)
// after it, which the daemon's JavaScript frames for the client.
#include "asgi_ws.h"

#include <algorithm>

#include "asgi_frames.h"
#include "asgi_messages.h"
#include "asgi_ws_records.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {
namespace asgi_ws {

using namespace asgi_frames;

namespace {

std::string head_frame(const std::string &payload, uint16_t flags) {
    std::string f(WSGI_WIRE_HEADER_SIZE, '\0');
    wsgi_frame_header_pack(reinterpret_cast<unsigned char *>(&f[0]), WSGI_FRAME_HEAD, flags,
                           static_cast<uint32_t>(payload.size()));
    f.append(payload);
    return f;
}

}  // namespace

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

bool respond_body(WsState &w, AsgiStrings &s, PyObject *msg) {
    PyObject *body;
    bool more_body;
    if (!asgi_messages::body_fields(s, msg, &body, &more_body))
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

}  // namespace asgi_ws
}  // namespace modwsgi
