// wsgi.input: the request body as the daemon streams it in. Reads take what is buffered and wait on
// the request's condition variable, GIL released, for the rest.
#include "py_internal.h"

#include <algorithm>
#include <limits>
#include <new>

namespace modwsgi {

namespace {

struct InputObject {
    PyObject_HEAD
    std::shared_ptr<Request> *req;
};

constexpr size_t kAll = std::numeric_limits<size_t>::max();
// read(n) of at most this much gets its whole bytes object at once (as io.FileIO.read does): the
// usual read(CONTENT_LENGTH) then costs one allocation and one copy of each byte.
constexpr size_t kUpfront = 4 * 1024 * 1024;
// readline() starts small: lines are short, and each call would otherwise size a buffer for the body.
constexpr size_t kLineStart = 8 * 1024;
constexpr size_t kReadStart = 64 * 1024;

// Up to `max` bytes (kAll: to the end), stopping after a newline when `line`. The bytes object is
// filled in place and grown as data comes, then cut to what was read.
PyObject *input_read_bytes(InputObject *self, size_t max, bool line) {
    Request &req = **self->req;
    size_t cap = line ? std::min(max, kLineStart)
                      : max <= kUpfront ? max : std::min(max, std::max(req.buffered(), kReadStart));
    PyObject *out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(cap));
    if (!out)
        return nullptr;
    size_t have = 0;
    for (;;) {
        if (have == cap && cap < max) {
            cap = max - cap > cap ? cap * 2 : max;  // doubling, never past max
            if (_PyBytes_Resize(&out, static_cast<Py_ssize_t>(cap)) < 0)
                return nullptr;
        }
        bool newline = false;
        size_t copied = 0;
        Request::InputStatus status =
            req.take_into(PyBytes_AS_STRING(out) + have, cap - have, line, &newline, &copied);
        have += copied;
        if (status == Request::InputStatus::kAborted || status == Request::InputStatus::kExpired) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_OSError, status == Request::InputStatus::kAborted
                                               ? "request data read error: client connection closed"
                                               : "request data read error: request has expired");
            return nullptr;
        }
        if (newline || have >= max || status == Request::InputStatus::kEof)
            break;
        if (copied == 0 || have < cap) {
            Py_BEGIN_ALLOW_THREADS
            req.wait_input();
            Py_END_ALLOW_THREADS
        }
    }
    if (have != cap && _PyBytes_Resize(&out, static_cast<Py_ssize_t>(have)) < 0)
        return nullptr;
    return out;
}

// A size argument: absent, None or negative means "no limit".
bool parse_size(PyObject *const *args, Py_ssize_t nargs, const char *fname, size_t *size) {
    *size = kAll;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", fname, nargs);
        return false;
    }
    if (nargs == 0 || args[0] == Py_None)
        return true;
    Py_ssize_t n = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return false;
    if (n >= 0)
        *size = static_cast<size_t>(n);
    return true;
}

PyObject *input_read(PyObject *obj, PyObject *const *args, Py_ssize_t nargs) {
    size_t size;
    if (!parse_size(args, nargs, "read", &size))
        return nullptr;
    return input_read_bytes(reinterpret_cast<InputObject *>(obj), size, false);
}

PyObject *input_readline(PyObject *obj, PyObject *const *args, Py_ssize_t nargs) {
    size_t size;
    if (!parse_size(args, nargs, "readline", &size))
        return nullptr;
    return input_read_bytes(reinterpret_cast<InputObject *>(obj), size, true);
}

PyObject *input_readlines(PyObject *obj, PyObject *const *args, Py_ssize_t nargs) {
    size_t hint;
    if (!parse_size(args, nargs, "readlines", &hint))
        return nullptr;
    if (hint == 0)
        hint = kAll;
    PyRef lines(PyList_New(0));
    if (!lines)
        return nullptr;
    size_t total = 0;
    while (total < hint) {
        PyRef line(input_read_bytes(reinterpret_cast<InputObject *>(obj), kAll, true));
        if (!line)
            return nullptr;
        Py_ssize_t n = PyBytes_GET_SIZE(line.get());
        if (n == 0)
            break;
        if (PyList_Append(lines.get(), line.get()) < 0)
            return nullptr;
        total += static_cast<size_t>(n);
    }
    return lines.release();
}

PyObject *input_iternext(PyObject *obj) {
    PyObject *line = input_read_bytes(reinterpret_cast<InputObject *>(obj), kAll, true);
    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return nullptr;  // StopIteration
    }
    return line;
}

PyObject *input_close(PyObject *, PyObject *) { Py_RETURN_NONE; }

void input_dealloc(PyObject *obj) {
    auto *self = reinterpret_cast<InputObject *>(obj);
    delete self->req;
    PyTypeObject *tp = Py_TYPE(obj);
    tp->tp_free(obj);
    Py_DECREF(tp);
}

PyMethodDef input_methods[] = {
    {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(input_read)), METH_FASTCALL,
     "read([size]) -> bytes: up to size bytes, or all that remain."},
    {"readline", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(input_readline)), METH_FASTCALL,
     "readline([size]) -> bytes: one line, at most size bytes."},
    {"readlines", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(input_readlines)), METH_FASTCALL,
     "readlines([hint]) -> list of lines."},
    {"close", input_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot input_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void *>(input_dealloc)},
    {Py_tp_methods, input_methods},
    {Py_tp_iter, reinterpret_cast<void *>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void *>(input_iternext)},
    {Py_tp_doc, const_cast<char *>("mod_wsgi request body (wsgi.input).")},
    {0, nullptr},
};

PyType_Spec input_spec = {"mod_wsgi.Input", sizeof(InputObject), 0, Py_TPFLAGS_DEFAULT, input_slots};

}  // namespace

PyTypeObject *input_type_new() { return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&input_spec)); }

PyObject *input_new(InterpState &st, std::shared_ptr<Request> req) {
    auto *self = PyObject_New(InputObject, st.input_type);
    if (!self)
        return nullptr;
    self->req = nullptr;
    try {
        self->req = new std::shared_ptr<Request>(std::move(req));
    } catch (const std::bad_alloc &) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return reinterpret_cast<PyObject *>(self);
}

}  // namespace modwsgi
