// ASGI HTTP (asgiref specs/www.rst, spec 2.4) on the loop (asgi_loop.h): the http scope built from the
// REQUEST variables, receive() (http.request with more_body as the body arrives, http.disconnect) and
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

#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

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

// --- frames ---

void append_u32(std::string &out, uint32_t v) {
    unsigned char b[4];
    wsgi_put_u32(b, v);
    out.append(reinterpret_cast<const char *>(b), 4);
}

void append_string(std::string &out, std::string_view s) {
    append_u32(out, static_cast<uint32_t>(s.size()));
    out.append(s.data(), s.size());
}

void append_frame(std::string &out, uint8_t type, const char *payload, size_t n) {
    unsigned char h[WSGI_WIRE_HEADER_SIZE];
    wsgi_frame_header_pack(h, type, 0, static_cast<uint32_t>(n));
    out.append(reinterpret_cast<const char *>(h), sizeof h);
    if (n)
        out.append(payload, n);
}

std::string error_frame(uint32_t status, std::string_view text) {
    std::string payload;
    append_u32(payload, status);
    append_string(payload, text.substr(0, WSGI_LIMIT_ERROR - 8));
    std::string out;
    append_frame(out, WSGI_FRAME_ERROR, payload.data(), payload.size());
    return out;
}

std::string end_frame(uint32_t outcome) {
    unsigned char b[4];
    wsgi_put_u32(b, outcome);
    std::string out;
    append_frame(out, WSGI_FRAME_END, reinterpret_cast<const char *>(b), 4);
    return out;
}

// Appends whole frames to the output queue: to its last piece while that stays small, else as a new one.
void queue(HttpState &h, std::string &&frames, int fd = -1) {
    if (fd < 0 && !h.out.empty() && h.out.back().fd < 0 && h.out.back().data.size() + frames.size() <= kPiece) {
        h.out.back().data.append(frames);
        return;
    }
    h.out.push_back(Piece{std::move(frames), fd});
}

void queue_head(HttpState &h) {
    std::string f;
    append_frame(f, WSGI_FRAME_HEAD, h.head.data(), h.head.size());
    queue(h, std::move(f));
    h.head_queued = true;
}

const char *reason_phrase(long code) {
    switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    default: return "";
    }
}

bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Apache owns the connection: these are its to set (it drops the first three itself).
bool is_hop_by_hop(std::string_view name) {
    static const char *const names[] = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"};
    for (const char *n : names)
        if (name.size() == strlen(n) && strncasecmp(name.data(), n, name.size()) == 0)
            return true;
    return false;
}

// bytes, bytearray or a latin-1 str, as a view (valid while `o` lives).
bool header_bytes(PyObject *o, std::string_view *out) {
    if (PyBytes_Check(o)) {
        *out = std::string_view(PyBytes_AS_STRING(o), static_cast<size_t>(PyBytes_GET_SIZE(o)));
        return true;
    }
    if (PyByteArray_Check(o)) {
        *out = std::string_view(PyByteArray_AS_STRING(o), static_cast<size_t>(PyByteArray_GET_SIZE(o)));
        return true;
    }
    return latin1_view(o, out);
}

bool parse_length(std::string_view v, int64_t *out) {
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

// http.response.start: validates status and headers and encodes the HEAD payload.
bool encode_head(HttpState &h, AsgiStrings &s, PyObject *message) {
    PyObject *status = PyDict_GetItemWithError(message, s.status);
    if (!status) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "http.response.start message without 'status'");
        return false;
    }
    long code = PyLong_Check(status) ? PyLong_AsLong(status) : -1;
    if (!PyLong_Check(status) || code < 100 || code > 999) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "ASGI response status must be an integer from 100 to 999, not %R", status);
        return false;
    }
    std::string head;
    append_u32(head, static_cast<uint32_t>(code));
    std::string line = std::to_string(code) + " " + reason_phrase(code);
    append_string(head, line);
    size_t count_at = head.size();
    append_u32(head, 0);
    uint32_t count = 0;
    h.content_length = -1;
    PyObject *headers = PyDict_GetItemWithError(message, s.headers);
    if (!headers && PyErr_Occurred())
        return false;
    if (headers && headers != Py_None) {
        PyRef it(PyObject_GetIter(headers));
        if (!it)
            return false;
        for (;;) {
            PyRef item(PyIter_Next(it.get()));
            if (!item) {
                if (PyErr_Occurred())
                    return false;
                break;
            }
            PyRef pair(PySequence_Fast(item.get(), "ASGI response headers must be [name, value] pairs"));
            if (!pair)
                return false;
            if (PySequence_Fast_GET_SIZE(pair.get()) != 2) {
                PyErr_SetString(PyExc_ValueError, "ASGI response headers must be [name, value] pairs");
                return false;
            }
            PyObject *name = PySequence_Fast_GET_ITEM(pair.get(), 0);
            PyObject *value = PySequence_Fast_GET_ITEM(pair.get(), 1);
            std::string_view n, v;
            if (!header_bytes(name, &n) || !header_bytes(value, &v)) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_TypeError, "ASGI response header names and values must be bytes, not %.100s",
                                 Py_TYPE(header_bytes(name, &n) ? value : name)->tp_name);
                return false;
            }
            bool ok = !n.empty();
            for (unsigned char c : n)
                ok = ok && is_tchar(c);
            if (!ok) {
                PyErr_Format(PyExc_ValueError, "invalid ASGI response header name %R", name);
                return false;
            }
            if (v.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
                PyErr_Format(PyExc_ValueError, "invalid character (CR, LF or NUL) in ASGI response header %R", name);
                return false;
            }
            if (is_hop_by_hop(n))
                continue;
            if (n.size() == 14 && strncasecmp(n.data(), "content-length", 14) == 0 &&
                !parse_length(v, &h.content_length)) {
                PyErr_Format(PyExc_ValueError, "invalid content-length in ASGI response headers: %R", value);
                return false;
            }
            append_string(head, n);
            append_string(head, v);
            ++count;
        }
    }
    wsgi_put_u32(reinterpret_cast<unsigned char *>(&head[count_at]), count);
    h.head = std::move(head);
    return true;
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
        if (!encode_head(*h, s, msg))
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
void finish_abnormally(HttpState &h, AsgiStrings &s, PyObject *disconnected, uint32_t status, std::string_view text) {
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
        post(h, Piece{error_frame(status, text)}, true);
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
            finish_abnormally(*h, s, loop.disconnected, 500, "Exception occurred processing ASGI application " + h->label);
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
                              "ASGI application " + h->label + " returned without starting a response");
        } else {
            log.write(LogLevel::kError, kLogAsgiIncomplete,
                      "ASGI application " + h->label + " returned without completing its response.", h->client);
            finish_abnormally(*h, s, loop.disconnected, 500,
                              "ASGI application " + h->label + " returned without completing its response");
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

// --- the scope ---

bool set(PyObject *d, PyObject *key, PyObject *value) {
    if (!value)
        return false;
    int r = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return r == 0;
}

// b"user-agent" for HTTP_USER_AGENT, b"content-type" for CONTENT_TYPE (new reference).
PyObject *header_name(AsgiLoop &loop, std::string_view var) {
    auto it = loop.header_names.find(std::string(var));
    if (it != loop.header_names.end()) {
        Py_INCREF(it->second);
        return it->second;
    }
    std::string_view bare = var.substr(0, 5) == "HTTP_" ? var.substr(5) : var;
    std::string name(bare);
    for (char &c : name)
        c = c == '_' ? '-' : static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    PyObject *b = PyBytes_FromStringAndSize(name.data(), static_cast<Py_ssize_t>(name.size()));
    if (b && loop.header_names.size() < KeyCache::kMaxEntries) {
        Py_INCREF(b);
        loop.header_names.emplace(std::string(var), b);
    }
    return b;
}

PyObject *decode_path(std::string_view s) {
    return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
}

PyObject *bytes_of(std::string_view s) { return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size())); }

PyObject *address(std::string_view host, std::string_view port) {
    if (host.empty())
        Py_RETURN_NONE;
    long p = 0;
    for (char c : port)
        p = (c >= '0' && c <= '9' && p < 100000) ? p * 10 + (c - '0') : p;
    return Py_BuildValue("(Nl)", PyUnicode_DecodeLatin1(host.data(), static_cast<Py_ssize_t>(host.size()), nullptr), p);
}

// raw_path: the request target's path as the client sent it (REQUEST_URI up to '?', an absolute-form
// target's scheme and authority removed).
std::string_view raw_path(const HttpVars &v) {
    std::string_view u = v.request_uri;
    if (u.empty() || u.front() != '/') {
        size_t scheme = u.find("://");
        if (scheme != std::string_view::npos) {
            size_t slash = u.find('/', scheme + 3);
            u = slash == std::string_view::npos ? std::string_view("/") : u.substr(slash);
        }
    }
    size_t q = u.find('?');
    return q == std::string_view::npos ? u : u.substr(0, q);
}

PyObject *build_scope(AsgiLoop &loop, AsgiApp &app, const HttpVars &v) {
    AsgiStrings &s = loop.s;
    PyRef scope(_PyDict_NewPresized(16));
    if (!scope)
        return nullptr;
    PyObject *d = scope.get();
    PyObject *version = v.protocol == "HTTP/1.1" ? s.v11 : v.protocol == "HTTP/1.0" ? s.v10
                        : v.protocol.substr(0, 6) == "HTTP/2"                         ? s.v2
                                                                                      : nullptr;
    PyRef other;
    if (!version) {
        std::string_view p = v.protocol.substr(0, 5) == "HTTP/" ? v.protocol.substr(5) : v.protocol;
        other.reset(PyUnicode_DecodeLatin1(p.data(), static_cast<Py_ssize_t>(p.size()), nullptr));
        version = other.get();
    }
    PyRef method(loop.st.keys.get(v.method.empty() ? std::string_view("GET") : v.method));
    PyRef headers(PyList_New(static_cast<Py_ssize_t>(v.headers.size())));
    if (!version || !method || !headers)
        return nullptr;
    for (size_t i = 0; i < v.headers.size(); ++i) {
        PyObject *pair = PyTuple_New(2);
        if (!pair)
            return nullptr;
        PyList_SET_ITEM(headers.get(), static_cast<Py_ssize_t>(i), pair);
        PyObject *n = header_name(loop, v.headers[i].first);
        PyObject *val = n ? bytes_of(v.headers[i].second) : nullptr;
        if (!val) {
            Py_XDECREF(n);
            return nullptr;
        }
        PyTuple_SET_ITEM(pair, 0, n);
        PyTuple_SET_ITEM(pair, 1, val);
    }
    std::string_view raw = raw_path(v);
    std::string joined;
    if (raw.empty()) {
        joined.assign(v.script_name).append(v.path_info);
        raw = joined;
    }
    bool ok = PyDict_SetItem(d, s.type, s.http) == 0 && PyDict_SetItem(d, s.asgi, s.asgi_dict) == 0 &&
              PyDict_SetItem(d, s.http_version, version) == 0 && PyDict_SetItem(d, s.method, method.get()) == 0 &&
              PyDict_SetItem(d, s.scheme, v.scheme == "https" ? s.https : s.http) == 0 &&
              set(d, s.path, decode_path(v.path_info)) && set(d, s.raw_path, bytes_of(raw)) &&
              set(d, s.query_string, bytes_of(v.query_string)) && set(d, s.root_path, decode_path(v.script_name)) &&
              PyDict_SetItem(d, s.headers, headers.get()) == 0 &&
              set(d, s.client, address(v.remote_addr, v.remote_port)) &&
              set(d, s.server, address(v.server_addr, v.listener_port)) &&
              set(d, s.state, app.state ? PyDict_Copy(app.state.get()) : PyDict_New()) &&
              PyDict_SetItem(d, s.extensions, s.extensions_dict) == 0;
    return ok ? scope.release() : nullptr;
}

bool intern(PyObject **slot, const char *text) {
    *slot = PyUnicode_InternFromString(text);
    return *slot != nullptr;
}

}  // namespace

bool http_vars_parse(const std::vector<uint8_t> &payload, HttpVars *v) {
    wsgi_reader r;
    wsgi_reader_init(&r, payload.data(), payload.size());
    v->flags = wsgi_read_u32(&r);
    wsgi_read_u64(&r);
    uint32_t count = wsgi_read_u32(&r);
    if (!r.ok || count > payload.size() / 8)
        return false;
    v->headers.reserve(count / 2);
    for (uint32_t i = 0; i < count; ++i) {
        const char *n, *val;
        uint32_t nlen, vlen;
        wsgi_read_string(&r, &n, &nlen);
        wsgi_read_string(&r, &val, &vlen);
        if (!r.ok)
            return false;
        std::string_view name(n, nlen), value(val, vlen);
        if (nlen > 5 && name.substr(0, 5) == "HTTP_") {
            v->headers.emplace_back(name, value);
            continue;
        }
        switch (nlen) {
        case 9:
            if (name == "PATH_INFO")
                v->path_info = value;
            break;
        case 11:
            if (name == "SCRIPT_NAME")
                v->script_name = value;
            else if (name == "REQUEST_URI")
                v->request_uri = value;
            else if (name == "REMOTE_ADDR")
                v->remote_addr = value;
            else if (name == "REMOTE_PORT")
                v->remote_port = value;
            else if (name == "SERVER_ADDR")
                v->server_addr = value;
            break;
        case 12:
            if (name == "QUERY_STRING")
                v->query_string = value;
            else if (name == "CONTENT_TYPE")
                v->headers.emplace_back(name, value);
            break;
        case 14:
            if (name == "REQUEST_METHOD")
                v->method = value;
            else if (name == "CONTENT_LENGTH")
                v->headers.emplace_back(name, value);
            break;
        case 15:
            if (name == "SERVER_PROTOCOL")
                v->protocol = value;
            else if (name == "SCRIPT_FILENAME")
                v->script = value;
            break;
        case 19:
            if (name == "mod_wsgi.url_scheme")
                v->scheme = value;
            break;
        case 22:
            if (name == "mod_wsgi.listener_port")
                v->listener_port = value;
            break;
        case 23:
            if (name == "mod_wsgi.handler_script")
                v->handler_script = value;
            break;
        case 24:
            if (name == "mod_wsgi.callable_object")
                v->callable = value;
            break;
        case 25:
            if (name == "mod_wsgi.script_reloading")
                v->reloading = value;
            else if (name == "mod_wsgi.application_type")
                v->app_type = value;
            break;
        default:
            break;
        }
    }
    if (!v->remote_addr.empty()) {
        v->client.assign(v->remote_addr);
        if (!v->remote_port.empty())
            v->client.append(":").append(v->remote_port);
    }
    return r.left == 0;
}

PyTypeObject *http_base_type_new() { return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&http_spec)); }

bool http_strings_init(AsgiStrings &s) {
    bool ok = intern(&s.type, "type") && intern(&s.asgi, "asgi") && intern(&s.version, "version") &&
              intern(&s.spec_version, "spec_version") && intern(&s.http_version, "http_version") &&
              intern(&s.method, "method") && intern(&s.scheme, "scheme") && intern(&s.path, "path") &&
              intern(&s.raw_path, "raw_path") && intern(&s.query_string, "query_string") &&
              intern(&s.root_path, "root_path") && intern(&s.headers, "headers") && intern(&s.client, "client") &&
              intern(&s.server, "server") && intern(&s.state, "state") && intern(&s.extensions, "extensions") &&
              intern(&s.body, "body") && intern(&s.more_body, "more_body") && intern(&s.status, "status") &&
              intern(&s.message, "message") && intern(&s.trailers, "trailers") && intern(&s.http, "http") &&
              intern(&s.http_request, "http.request") && intern(&s.http_disconnect, "http.disconnect") &&
              intern(&s.http_response_start, "http.response.start") &&
              intern(&s.http_response_body, "http.response.body") &&
              intern(&s.http_response_pathsend, "http.response.pathsend") &&
              intern(&s.pathsend_ext, "http.response.pathsend") && intern(&s.v10, "1.0") && intern(&s.v11, "1.1") &&
              intern(&s.v2, "2") && intern(&s.https, "https") && intern(&s.receive, "receive") &&
              intern(&s.send, "send") && intern(&s.done, "_done") && intern(&s.cancel, "cancel") &&
              intern(&s.add_done_callback, "add_done_callback") && intern(&s.result, "result") &&
              intern(&s.set_result, "set_result") && intern(&s.set_exception, "set_exception") &&
              intern(&s.cancelled, "cancelled") && intern(&s.exception, "exception") && intern(&s.str_done, "done");
    if (!ok)
        return false;
    s.empty_bytes = PyBytes_FromStringAndSize("", 0);
    s.asgi_dict = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4");
    // Shared by every scope, as `asgi` is: the extensions this server supports.
    s.extensions_dict = Py_BuildValue("{s:{}}", "http.response.pathsend");
    return s.empty_bytes && s.asgi_dict && s.extensions_dict;
}

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
    PyRef scope(build_scope(loop, app, vars));
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
        loop.answer(*req, error_frame(500, "Exception occurred processing ASGI application " + app.label));
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
