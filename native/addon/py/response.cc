// The response side of a WSGI call: start_response (validation and encoding of the HEAD frame), the
// write() callable, body frames with backpressure, the wsgi.file_wrapper FILE frame and the end.
#include "py_internal.h"

#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <new>

#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

namespace {

// Body bytes per BODY frame, and how much is gathered before it is posted. Small enough that a
// worker never gets far ahead of JavaScript, big enough that a 64 KiB response is one event.
constexpr size_t kPiece = 256 * 1024;

struct AdapterObject {
    PyObject_HEAD
    Call *call;
    PyObject *write;  // the write() callable, made on the first start_response
};

void append_frame(std::string &out, uint8_t type, const char *payload, size_t n, uint16_t flags = 0) {
    unsigned char h[WSGI_WIRE_HEADER_SIZE];
    wsgi_frame_header_pack(h, type, flags, static_cast<uint32_t>(n));
    out.append(reinterpret_cast<const char *>(h), sizeof h);
    if (n)
        out.append(payload, n);
}

void append_u32(std::string &out, uint32_t v) {
    unsigned char b[4];
    wsgi_put_u32(b, v);
    out.append(reinterpret_cast<const char *>(b), 4);
}

void append_string(std::string &out, std::string_view s) {
    append_u32(out, static_cast<uint32_t>(s.size()));
    out.append(s.data(), s.size());
}

// Adds one header to an encoded HEAD payload (status, status line, count, pairs): the count grows by one
// and the pair goes at the end, after the application's own headers.
void head_add_header(std::string &head, std::string_view name, std::string_view value) {
    auto *p = reinterpret_cast<unsigned char *>(&head[0]);
    size_t at = 8 + wsgi_get_u32(p + 4);
    wsgi_put_u32(p + at, wsgi_get_u32(p + at) + 1);
    append_string(head, name);
    append_string(head, value);
}

bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_hop_by_hop(std::string_view name) {
    static const char *const names[] = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                                        "te",         "trailer",    "trailers",           "transfer-encoding",
                                        "upgrade"};
    for (const char *h : names)
        if (name.size() == strlen(h) && strncasecmp(name.data(), h, name.size()) == 0)
            return true;
    return false;
}


// Validates status and headers as PEP 3333 and mod_wsgi require and encodes the HEAD payload.
bool encode_head(PyObject *status, PyObject *headers, std::string *head, int64_t *content_length) {
    std::string_view line;
    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "expected unicode object for status, value of type %.200s found",
                     Py_TYPE(status)->tp_name);
        return false;
    }
    if (!latin1_view(status, &line)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "status must be encodable as latin-1");
        return false;
    }
    // mod_wsgi's checks and words: three digits (the first 1-9), a space, a reason without control
    // characters (it may be empty). A bare "200" is refused, as mod_wsgi refuses it.
    auto digit = [&](size_t i) { return i < line.size() && line[i] >= '0' && line[i] <= '9'; };
    const char *problem = nullptr;
    if (!digit(0) || line[0] == '0' || !digit(1) || !digit(2) || digit(3))
        problem = "status code is not a 3 digit integer";
    else if (line.size() < 4 || line[3] != ' ')
        problem = "no space following status code";
    for (size_t i = 4; !problem && i < line.size(); ++i)
        if (static_cast<unsigned char>(line[i]) < 0x20 || line[i] == 0x7f)
            problem = "control character present in reason phrase";
    if (problem) {
        PyErr_Format(PyExc_ValueError, "%s: %R", problem, status);
        return false;
    }
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "response headers must be a list, not %.200s", Py_TYPE(headers)->tp_name);
        return false;
    }
    uint32_t code = static_cast<uint32_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
    *content_length = -1;
    head->clear();
    append_u32(*head, code);
    append_string(*head, line);
    Py_ssize_t count = PyList_GET_SIZE(headers);
    append_u32(*head, static_cast<uint32_t>(count));
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "list of tuple values expected for response headers, value of type %.200s found",
                         Py_TYPE(item)->tp_name);
            return false;
        }
        PyObject *name = PyTuple_GET_ITEM(item, 0);
        PyObject *value = PyTuple_GET_ITEM(item, 1);
        std::string_view n, v;
        if (!PyUnicode_Check(name) || !PyUnicode_Check(value)) {
            PyErr_Format(PyExc_TypeError, "expected unicode object for response header %s, value of type %.200s found",
                         PyUnicode_Check(name) ? "value" : "name",
                         Py_TYPE(PyUnicode_Check(name) ? value : name)->tp_name);
            return false;
        }
        if (!latin1_view(name, &n) || !latin1_view(value, &v)) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "response header '%U' must be encodable as latin-1", name);
            return false;
        }
        bool name_ok = !n.empty();
        for (unsigned char c : n)
            name_ok = name_ok && is_tchar(c);
        if (!name_ok) {
            PyErr_Format(PyExc_ValueError, "invalid response header name '%U'", name);
            return false;
        }
        if (v.find_first_of("\r\n") != std::string_view::npos) {
            PyErr_Format(PyExc_ValueError, "embedded newline in response header with name '%U' and value '%U'", name,
                         value);
            return false;
        }
        if (v.find('\0') != std::string_view::npos) {
            // Apache cannot send it (its headers are C strings): refused here rather than by the child.
            PyErr_Format(PyExc_ValueError, "embedded null character in response header with name '%U'", name);
            return false;
        }
        if (is_hop_by_hop(n)) {
            PyErr_Format(PyExc_ValueError, "hop-by-hop header '%U' is not allowed in a WSGI response", name);
            return false;
        }
        if (n.size() == 14 && strncasecmp(n.data(), "content-length", 14) == 0 &&
            !parse_content_length(v, content_length)) {
            PyErr_Format(PyExc_ValueError, "invalid Content-Length response header value '%U'", value);
            return false;
        }
        append_string(*head, n);
        append_string(*head, v);
    }
    return true;
}

PyObject *write_callable(PyObject *self, PyObject *data);

PyMethodDef write_def = {"write", write_callable, METH_O, "write(data): sends bytes as part of the response."};

PyObject *start_response(PyObject *obj, PyObject *args, PyObject *kwargs) {
    static const char *keywords[] = {"status", "response_headers", "exc_info", nullptr};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", const_cast<char **>(keywords), &status,
                                     &headers, &exc_info))
        return nullptr;
    auto *self = reinterpret_cast<AdapterObject *>(obj);
    Call *call = self->call;
    if (!call || call->expired) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after the request finished");
        return nullptr;
    }
    // As mod_wsgi: the headers count as sent once output has started. Before that a second call
    // replaces the first, with or without exc_info (mod_wsgi is more tolerant than PEP 3333 there).
    bool sent = call->head_queued;
    if (exc_info != Py_None) {
        if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
            PyErr_SetString(PyExc_RuntimeError, "exception info must be a tuple of 3 items");
            return nullptr;
        }
        if (sent) {
            // Too late to change the response: re-raise the application's exception (PEP 3333).
            PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2);
            if (tb == Py_None)
                tb = nullptr;
            Py_INCREF(t);
            Py_INCREF(v);
            Py_XINCREF(tb);
            PyErr_Restore(t, v, tb);
            return nullptr;
        }
    } else if (sent) {
        PyErr_SetString(PyExc_RuntimeError, "headers have already been sent");
        return nullptr;
    }
    std::string head;
    int64_t content_length;
    try {
        if (!encode_head(status, headers, &head, &content_length))
            return nullptr;
    } catch (const std::bad_alloc &) {
        return PyErr_NoMemory();
    }
    call->head = std::move(head);
    call->content_length = content_length;
    call->status_set = true;
    if (!self->write) {
        self->write = PyCFunction_New(&write_def, obj);
        if (!self->write)
            return nullptr;
    }
    Py_INCREF(self->write);
    return self->write;
}

PyObject *write_callable(PyObject *obj, PyObject *data) {
    Call *call = reinterpret_cast<AdapterObject *>(obj)->call;
    if (!call || call->expired) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after the request finished");
        return nullptr;
    }
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "byte string value expected, value of type %.200s found",
                     Py_TYPE(data)->tp_name);
        return nullptr;
    }
    int r;
    try {
        r = response_body(*call, PyBytes_AS_STRING(data), static_cast<size_t>(PyBytes_GET_SIZE(data)), true);
    } catch (const std::bad_alloc &) {
        return PyErr_NoMemory();
    }
    if (r < 0)
        return nullptr;
    if (r > 0) {
        PyErr_SetString(PyExc_OSError, "failed to write data: client connection closed");
        return nullptr;
    }
    Py_RETURN_NONE;
}

void adapter_dealloc(PyObject *obj) {
    auto *self = reinterpret_cast<AdapterObject *>(obj);
    PyObject_GC_UnTrack(obj);
    Py_CLEAR(self->write);
    PyTypeObject *tp = Py_TYPE(obj);
    tp->tp_free(obj);
    Py_DECREF(tp);
}

// The write callable holds the adapter and the adapter holds it: a cycle the GC must see.
int adapter_traverse(PyObject *obj, visitproc visit, void *arg) {
    Py_VISIT(reinterpret_cast<AdapterObject *>(obj)->write);
    Py_VISIT(Py_TYPE(obj));
    return 0;
}

int adapter_clear(PyObject *obj) {
    Py_CLEAR(reinterpret_cast<AdapterObject *>(obj)->write);
    return 0;
}

PyType_Slot adapter_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void *>(adapter_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void *>(adapter_traverse)},
    {Py_tp_clear, reinterpret_cast<void *>(adapter_clear)},
    {Py_tp_call, reinterpret_cast<void *>(start_response)},
    {Py_tp_doc, const_cast<char *>("start_response(status, response_headers, exc_info=None)")},
    {0, nullptr},
};

PyType_Spec adapter_spec = {"mod_wsgi.StartResponse", sizeof(AdapterObject), 0,
                            Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, adapter_slots};

void queue_head(Call &call) {
    append_frame(call.pending, WSGI_FRAME_HEAD, call.head.data(), call.head.size());
    call.head_queued = true;
}

// Posts `pending` (and a FILE frame's descriptor) once JavaScript has room. 1: the client is gone.
int post_pending(Call &call, int fd) {
    if (!call.req.writable()) {
        bool ok;
        Py_BEGIN_ALLOW_THREADS
        ok = call.req.wait_writable();
        Py_END_ALLOW_THREADS
        (void)ok;
    }
    if (call.req.aborted()) {
        if (fd >= 0)
            close(fd);
        call.pending.clear();
        call.client_gone = true;
        return 1;
    }
    if (call.head_queued)
        call.head_posted = true;
    std::string frames;
    frames.swap(call.pending);
    call.req.post_output(std::move(frames), false, fd);
    return 0;
}

}  // namespace

bool parse_content_length(std::string_view v, int64_t *out) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
        v.remove_suffix(1);
    if (v.empty() || v.size() > 18)
        return false;
    int64_t n = 0;
    for (char c : v) {
        if (c < '0' || c > '9')
            return false;
        n = n * 10 + (c - '0');
    }
    *out = n;
    return true;
}

PyTypeObject *adapter_type_new() { return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&adapter_spec)); }

PyObject *adapter_new(InterpState &st, Call *call) {
    auto *self = PyObject_GC_New(AdapterObject, st.adapter_type);
    if (!self)
        return nullptr;
    self->call = call;
    self->write = nullptr;
    PyObject_GC_Track(self);
    return reinterpret_cast<PyObject *>(self);
}

void adapter_expire(PyObject *adapter) { reinterpret_cast<AdapterObject *>(adapter)->call = nullptr; }

int response_flush(Call &call) {
    if (call.pending.empty())
        return call.client_gone ? 1 : 0;
    return post_pending(call, -1);
}

int response_body(Call &call, const char *data, size_t n, bool flush) {
    if (n == 0)
        return 0;  // PEP 3333: empty output sends nothing, not even the headers
    if (!call.status_set) {
        PyErr_SetString(PyExc_RuntimeError, "response has not been started");
        return -1;
    }
    if (call.client_gone)
        return 1;
    size_t take = n;
    if (call.content_length >= 0) {
        uint64_t room = static_cast<uint64_t>(call.content_length) > call.body_bytes
                            ? static_cast<uint64_t>(call.content_length) - call.body_bytes
                            : 0;
        if (take > room) {
            take = static_cast<size_t>(room);
            if (!call.over_length)
                runtime_logger(*call.st.rt)
                    .write(LogLevel::kWarn, kLogOutputTooLong,
                           "Response of WSGI script '" + std::string(call.script) +
                               "' is longer than its Content-Length (" + std::to_string(call.content_length) +
                               " bytes): the extra output is dropped.",
                           call.client);
            call.over_length = true;
        }
    }
    if (!call.head_queued)
        queue_head(call);
    call.body_bytes += take;
    if (!call.head_method) {
        while (take) {
            size_t piece = std::min(take, kPiece);
            append_frame(call.pending, WSGI_FRAME_RBODY, data, piece);
            data += piece;
            take -= piece;
            if (call.pending.size() >= kPiece) {
                int r = post_pending(call, -1);
                if (r)
                    return r;
            }
        }
    }
    return flush ? response_flush(call) : 0;
}

int response_send_file(Call &call, PyObject *wrapper) {
    if (!call.status_set)
        return 0;  // iterating gives the usual "response has not been started" error
    InterpState &st = call.st;
    PyObject *filelike = file_wrapper_filelike(wrapper);
    PyRef fileno(PyObject_CallMethodNoArgs(filelike, st.str_fileno));
    long fd = fileno ? PyLong_AsLong(fileno.get()) : -1;
    struct stat sb;
    // Only plain files with a size: /proc files claim size 0 and pipes have none; those are read
    // through the iterator instead.
    if (fd < 0 || fstat(static_cast<int>(fd), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) {
        PyErr_Clear();
        return 0;
    }
    PyRef tell(PyObject_CallMethodNoArgs(filelike, st.str_tell));
    long long offset = tell ? PyLong_AsLongLong(tell.get()) : -1;
    if (offset < 0) {
        PyErr_Clear();
        return 0;
    }
    uint64_t count = static_cast<uint64_t>(sb.st_size) > static_cast<uint64_t>(offset)
                         ? static_cast<uint64_t>(sb.st_size) - static_cast<uint64_t>(offset)
                         : 0;
    if (call.content_length >= 0) {
        uint64_t room = static_cast<uint64_t>(call.content_length) > call.body_bytes
                            ? static_cast<uint64_t>(call.content_length) - call.body_bytes
                            : 0;
        count = std::min(count, room);
    } else if (!call.head_queued) {
        // As mod_wsgi: a file sent whole, from where the application left it, has a known length.
        head_add_header(call.head, "Content-Length", std::to_string(count));
        call.content_length = static_cast<int64_t>(count);
    }
    if (!call.head_queued)
        queue_head(call);
    call.body_bytes += count;
    if (count == 0 || call.head_method)
        return 1;
    if (int r = response_flush(call))
        return r;
    // JavaScript passes the descriptor to the Apache child and closes it; the app keeps its own.
    int dup = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    unsigned char payload[16];
    wsgi_put_u64(payload, static_cast<uint64_t>(offset));
    wsgi_put_u64(payload + 8, count);
    append_frame(call.pending, WSGI_FRAME_FILE, reinterpret_cast<const char *>(payload), sizeof payload);
    post_pending(call, dup);  // the file is handled either way, even if the client just left
    return 1;
}

std::string response_finish(Call &call) {
    const Logger &log = runtime_logger(*call.st.rt);
    std::string out;
    if (call.restart) {
        // Not run: the Apache child sends it again, to the process that replaces this one.
        append_frame(out, WSGI_FRAME_GOAWAY, nullptr, 0);
        return out;
    }
    if ((call.failed || !call.status_set) && !call.head_posted) {
        std::string text = call.error_text.empty() ? std::string("Internal Server Error") : call.error_text;
        if (text.size() > WSGI_LIMIT_ERROR - 8)
            text.resize(WSGI_LIMIT_ERROR - 8);
        std::string payload;
        append_u32(payload, call.error_status);
        append_string(payload, text);
        // Every way here was logged, naming the request (a traceback, no start_response()...).
        append_frame(out, WSGI_FRAME_ERROR, payload.data(), payload.size(), WSGI_ERROR_F_LOGGED);
        return out;
    }
    if (!call.head_queued)
        queue_head(call);  // nothing was output: the response is its HEAD alone
    out.swap(call.pending);
    uint32_t outcome = (call.failed || call.client_gone) ? WSGI_END_INCOMPLETE : WSGI_END_COMPLETE;
    if (outcome == WSGI_END_COMPLETE && call.content_length >= 0 && !call.head_method &&
        call.body_bytes < static_cast<uint64_t>(call.content_length)) {
        log.write(LogLevel::kWarn, kLogOutputTooShort,
                  "Response of WSGI script '" + std::string(call.script) + "' is shorter than its Content-Length (" +
                      std::to_string(call.body_bytes) + " of " + std::to_string(call.content_length) +
                      " bytes): the connection is closed.",
                  call.client);
        outcome = WSGI_END_INCOMPLETE;
    }
    unsigned char b[4];
    wsgi_put_u32(b, outcome);
    append_frame(out, WSGI_FRAME_END, reinterpret_cast<const char *>(b), 4);
    return out;
}

}  // namespace modwsgi
