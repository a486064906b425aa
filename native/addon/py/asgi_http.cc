// ASGI HTTP (asgiref specs/www.rst, spec 2.4) on the loop (asgi_loop.h): with the scope of
// asgi_scope.cc, receive() (http.request with more_body as the body arrives, http.disconnect) and
// send() (http.response.start, http.response.body, the http.response.pathsend extension), turned into
// the same HEAD/BODY/FILE/END/ERROR frames as a WSGI response. Output is posted to JavaScript as it is
// sent (server-sent events reach the client message by message); send() waits while JavaScript holds
// more than Request::kOutputHigh of it, receive() while no body is buffered.
#include "asgi_loop.h"

#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "asgi_frames.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

using namespace asgi_frames;

namespace {

// Body bytes per BODY frame and per output event: a worker's kPiece (response.cc).
constexpr size_t kPiece = 256 * 1024;

struct Piece {
    std::string data;  // whole frames
    int fd = -1;       // a FILE frame's descriptor: such a piece holds that frame alone
};

// A first-in first-out list that allocates nothing until used (std::deque allocates when made, and
// there are three per request).
template <class T>
class Fifo {
public:
    bool empty() const { return head_ == v_.size(); }
    size_t size() const { return v_.size() - head_; }
    T &front() { return v_[head_]; }
    T &back() { return v_.back(); }
    void push_back(T &&x) { v_.push_back(std::move(x)); }
    void push_back(const T &x) { v_.push_back(x); }
    void pop_front() {
        if (++head_ == v_.size())
            clear();
    }
    void clear() {
        v_.clear();
        head_ = 0;
    }
    typename std::vector<T>::iterator begin() { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
    typename std::vector<T>::iterator end() { return v_.end(); }

private:
    std::vector<T> v_;
    size_t head_ = 0;
};

struct HttpState {
    AsgiLoop *loop = nullptr;
    std::shared_ptr<Request> req;
    std::string label;  // "'app' of script '...'"
    std::string client;
    PyObject *task = nullptr;
    Fifo<PyObject *> receivers;  // futures of receive() calls waiting for a message
    Fifo<PyObject *> senders;    // futures of send() calls waiting for their output to go
    Fifo<Piece> out;             // frames not posted yet (no room in JavaScript)
    std::string head;                  // HEAD payload from http.response.start
    int64_t content_length = -1;
    uint64_t body_bytes = 0;
    bool head_method = false;
    bool started = false;       // http.response.start came
    bool head_queued = false;   // its HEAD frame is in `out` or posted
    bool posted = false;        // something went to JavaScript: no ERROR can replace the response now
    bool body_done = false;     // the last http.request message was given to the application
    bool complete = false;      // the application sent its last body message (or a pathsend)
    bool end_queued = false;    // END is the last frame in `out`
    bool final_posted = false;  // the request's final event went out
    bool over_length = false;
    bool client_gone = false;
    bool cancelled = false;     // task.cancel() for request-timeout
    bool finished = false;      // the task is done
};

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

// --- output frames ---

// Appends whole frames to the output queue: to its last piece while that stays small, else as a new one.
void queue(HttpState &h, std::string &&frames, int fd = -1) {
    if (fd < 0 && !h.out.empty() && h.out.back().fd < 0 && h.out.back().data.size() + frames.size() <= kPiece) {
        h.out.back().data.append(frames);
        return;
    }
    h.out.push_back(Piece{std::move(frames), fd});
}

// The HEAD frame carries WSGI_HEAD_ASGI: the Apache child then leaves out, for this script's later
// requests, what only a WSGI environ uses (wsgi_asgi.c).
void queue_head(HttpState &h) {
    std::string f(WSGI_WIRE_HEADER_SIZE, '\0');
    wsgi_frame_header_pack(reinterpret_cast<unsigned char *>(&f[0]), WSGI_FRAME_HEAD, WSGI_HEAD_ASGI,
                           static_cast<uint32_t>(h.head.size()));
    f.append(h.head);
    queue(h, std::move(f));
    h.head_queued = true;
}

// --- messages to the application ---

PyObject *message(AsgiStrings &s, PyObject *type) {
    PyObject *d = PyDict_New();
    if (d && PyDict_SetItem(d, s.type, type) < 0)
        Py_CLEAR(d);
    return d;
}

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

bool future_done(AsgiStrings &s, PyObject *fut) {
    PyRef r(PyObject_CallMethodNoArgs(fut, s.str_done));
    if (!r) {
        PyErr_Clear();
        return true;
    }
    return PyObject_IsTrue(r.get()) == 1;
}

void resolve(AsgiStrings &s, PyObject *fut, PyObject *value) {
    if (future_done(s, fut))
        return;
    PyRef r(PyObject_CallMethodOneArg(fut, s.set_result, value));
    if (!r)
        PyErr_Clear();
}

void fail_future(AsgiStrings &s, PyObject *fut, PyObject *exc) {
    if (future_done(s, fut))
        return;
    PyRef r(PyObject_CallMethodOneArg(fut, s.set_exception, exc));
    if (!r)
        PyErr_Clear();
}

// Gives waiting receive() calls what there is, in order.
void feed_receivers(HttpState &h, AsgiStrings &s) {
    while (!h.receivers.empty()) {
        PyObject *fut = h.receivers.front();
        if (future_done(s, fut)) {  // cancelled by the application
            h.receivers.pop_front();
            Py_DECREF(fut);
            continue;
        }
        bool wait;
        PyRef m(next_message(h, s, &wait));
        if (!m) {
            if (wait)
                break;
            // A Python error (out of memory, say): the receive() call raises it.
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            fail_future(s, fut, value ? value : PyExc_RuntimeError);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        } else {
            resolve(s, fut, m.get());
        }
        h.receivers.pop_front();
        Py_DECREF(fut);
    }
}

void release_senders(HttpState &h, AsgiStrings &s, PyObject *exc) {
    while (!h.senders.empty()) {
        PyObject *fut = h.senders.front();
        h.senders.pop_front();
        if (exc)
            fail_future(s, fut, exc);
        else
            resolve(s, fut, Py_None);
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

// The response is complete: END, after a Content-Length check.
void queue_end(HttpState &h) {
    uint32_t outcome = WSGI_END_COMPLETE;
    if (h.content_length >= 0 && !h.head_method && h.body_bytes < static_cast<uint64_t>(h.content_length)) {
        runtime_logger(h.loop->rt)
            .write(LogLevel::kWarn, kLogAsgiTooShort,
                   "Response of ASGI application " + h.label + " is shorter than its content-length (" +
                       std::to_string(h.body_bytes) + " of " + std::to_string(h.content_length) +
                       " bytes): the connection is closed.",
                   h.client);
        outcome = WSGI_END_INCOMPLETE;
    }
    queue(h, end_frame(outcome));
    h.end_queued = true;
    h.complete = true;
}

void queue_body(HttpState &h, const char *data, size_t n) {
    if (h.content_length >= 0) {
        uint64_t room = static_cast<uint64_t>(h.content_length) > h.body_bytes
                            ? static_cast<uint64_t>(h.content_length) - h.body_bytes
                            : 0;
        if (n > room) {
            if (!h.over_length)
                runtime_logger(h.loop->rt)
                    .write(LogLevel::kWarn, kLogAsgiTooLong,
                           "Response of ASGI application " + h.label + " is longer than its content-length (" +
                               std::to_string(h.content_length) + " bytes): the extra output is dropped.",
                           h.client);
            h.over_length = true;
            n = static_cast<size_t>(room);
        }
    }
    h.body_bytes += n;
    if (h.head_method)
        return;
    while (n) {
        size_t piece = std::min(n, kPiece);
        std::string f;
        append_frame(f, WSGI_FRAME_RBODY, data, piece);
        queue(h, std::move(f));
        data += piece;
        n -= piece;
    }
}

// http.response.pathsend: the file goes to Apache as a FILE frame with its descriptor (sent with
// sendfile when WSGIEnableSendfile is On), as wsgi.file_wrapper's do.
bool queue_file(HttpState &h, AsgiStrings &s, PyObject *msg) {
    PyObject *path = PyDict_GetItemString(msg, "path");
    if (!path || !PyUnicode_Check(path)) {
        PyErr_SetString(PyExc_TypeError, "http.response.pathsend needs a 'path' string");
        return false;
    }
    PyRef fs(PyUnicode_EncodeFSDefault(path));
    if (!fs)
        return false;
    int fd = open(PyBytes_AS_STRING(fs.get()), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        return false;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        PyErr_Format(PyExc_ValueError, "http.response.pathsend: %R is not a regular file", path);
        return false;
    }
    uint64_t count = static_cast<uint64_t>(sb.st_size);
    if (h.content_length >= 0)
        count = std::min(count, static_cast<uint64_t>(h.content_length) > h.body_bytes
                                    ? static_cast<uint64_t>(h.content_length) - h.body_bytes
                                    : 0);
    if (!h.head_queued)
        queue_head(h);
    h.body_bytes += count;
    if (count == 0 || h.head_method) {
        close(fd);
    } else {
        unsigned char payload[16];
        wsgi_put_u64(payload, 0);
        wsgi_put_u64(payload + 8, count);
        std::string f;
        append_frame(f, WSGI_FRAME_FILE, reinterpret_cast<const char *>(payload), sizeof payload);
        queue(h, std::move(f), fd);
    }
    (void)s;
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
    if (h->receivers.empty()) {
        bool wait;
        PyObject *m = next_message(*h, s, &wait);
        if (m || !wait)
            return m;
    }
    PyObject *fut = PyObject_CallNoArgs(h->loop->create_future);
    if (!fut)
        return nullptr;
    Py_INCREF(fut);
    h->receivers.push_back(fut);
    feed_receivers(*h, s);
    return fut;
}

PyObject *http_send(PyObject *self, PyObject *msg) {
    HttpState *h = state_of(self);
    if (!h)
        return nullptr;
    AsgiLoop &loop = *h->loop;
    AsgiStrings &s = loop.s;
    if (!PyDict_Check(msg))
        return PyErr_Format(PyExc_TypeError, "ASGI message must be a dict, not %.100s", Py_TYPE(msg)->tp_name);
    PyObject *type = PyDict_GetItemWithError(msg, s.type);
    if (!type) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "ASGI message without 'type'");
        return nullptr;
    }
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
        if (file) {
            if (!queue_file(*h, s, msg))
                return nullptr;
            queue_end(*h);
        } else {
            PyObject *data = PyDict_GetItemWithError(msg, s.body);
            if (!data && PyErr_Occurred())
                return nullptr;
            PyObject *more = PyDict_GetItemWithError(msg, s.more_body);
            if (!more && PyErr_Occurred())
                return nullptr;
            int more_body = more ? PyObject_IsTrue(more) : 0;
            if (more_body < 0)
                return nullptr;
            if (!h->head_queued)
                queue_head(*h);
            if (data && data != Py_None) {
                Py_buffer view;
                if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
                    return nullptr;
                queue_body(*h, static_cast<const char *>(view.buf), static_cast<size_t>(view.len));
                PyBuffer_Release(&view);
            }
            if (!more_body)
                queue_end(*h);
        }
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
    const Logger &log = runtime_logger(h.loop->rt);
    log.write(LogLevel::kError, code, text, h.client);
    Py_INCREF(Py_TYPE(exc));
    Py_INCREF(exc);
    PyErr_Restore(reinterpret_cast<PyObject *>(Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
    log_exception(h.loop->st, {}, h.client);
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
