// wsgi.errors, sys.stdout and sys.stderr: file-like objects whose text goes to the error log one
// line per line (level error, no message code), and the logging of Python exceptions.
#include "py_internal.h"

#include <structmember.h>

#include <new>

namespace modwsgi {

namespace {

struct LogObject {
    PyObject_HEAD
    InterpState *st;
    std::string *buffer;  // text after the last newline
    std::string *client;  // the request's tag of wsgi.errors lines (request_tag()), or null
    const char *name;
    int level;
    int closed;
};

void emit(LogObject *self, std::string_view line) {
    runtime_logger(*self->st->rt)
        .write(static_cast<LogLevel>(self->level), kLogNone, line,
               self->client ? std::string_view(*self->client) : std::string_view());
}

// Logs every complete line in the buffer; with `all`, the unterminated rest too.
void drain(LogObject *self, bool all) {
    std::string &b = *self->buffer;
    size_t start = 0;
    for (;;) {
        size_t nl = b.find('\n', start);
        if (nl == std::string::npos)
            break;
        emit(self, std::string_view(b).substr(start, nl - start));
        start = nl + 1;
    }
    if (all && start < b.size()) {
        emit(self, std::string_view(b).substr(start));
        start = b.size();
    }
    b.erase(0, start);
}

void log_dealloc(PyObject *obj) {
    auto *self = reinterpret_cast<LogObject *>(obj);
    if (self->buffer && !self->buffer->empty())
        drain(self, true);
    delete self->buffer;
    delete self->client;
    PyTypeObject *tp = Py_TYPE(obj);
    tp->tp_free(obj);
    Py_DECREF(tp);
}

PyObject *log_write(PyObject *obj, PyObject *arg) {
    auto *self = reinterpret_cast<LogObject *>(obj);
    if (!PyUnicode_Check(arg))
        return PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s", Py_TYPE(arg)->tp_name);
    if (self->closed) {
        PyErr_SetString(PyExc_ValueError, "I/O operation on closed file");
        return nullptr;
    }
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(arg, &n);
    PyRef encoded;
    if (!utf8) {
        // Lone surrogates and the like: log them escaped rather than lose the line.
        PyErr_Clear();
        encoded.reset(PyUnicode_AsEncodedString(arg, "utf-8", "backslashreplace"));
        if (!encoded)
            return nullptr;
        utf8 = PyBytes_AS_STRING(encoded.get());
        n = PyBytes_GET_SIZE(encoded.get());
    }
    try {
        self->buffer->append(utf8, static_cast<size_t>(n));
        if (memchr(utf8, '\n', static_cast<size_t>(n)))
            drain(self, false);
    } catch (const std::bad_alloc &) {
        return PyErr_NoMemory();
    }
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

PyObject *log_writelines(PyObject *obj, PyObject *lines) {
    PyRef it(PyObject_GetIter(lines));
    if (!it)
        return nullptr;
    for (;;) {
        PyRef line(PyIter_Next(it.get()));
        if (!line)
            break;
        PyRef r(log_write(obj, line.get()));
        if (!r)
            return nullptr;
    }
    if (PyErr_Occurred())
        return nullptr;
    Py_RETURN_NONE;
}

PyObject *log_flush(PyObject *obj, PyObject *) {
    auto *self = reinterpret_cast<LogObject *>(obj);
    if (!self->buffer->empty())
        drain(self, true);
    Py_RETURN_NONE;
}

PyObject *log_close(PyObject *obj, PyObject *) {
    auto *self = reinterpret_cast<LogObject *>(obj);
    if (!self->buffer->empty())
        drain(self, true);
    self->closed = 1;
    Py_RETURN_NONE;
}

PyObject *log_false(PyObject *, PyObject *) { Py_RETURN_FALSE; }
PyObject *log_true(PyObject *, PyObject *) { Py_RETURN_TRUE; }

PyObject *log_get_name(PyObject *obj, void *) {
    return PyUnicode_FromString(reinterpret_cast<LogObject *>(obj)->name);
}
PyObject *log_get_closed(PyObject *obj, void *) {
    return PyBool_FromLong(reinterpret_cast<LogObject *>(obj)->closed);
}
PyObject *log_get_encoding(PyObject *, void *) { return PyUnicode_FromString("utf-8"); }
PyObject *log_get_errors(PyObject *, void *) { return PyUnicode_FromString("backslashreplace"); }
PyObject *log_get_true(PyObject *, void *) { Py_RETURN_TRUE; }
PyObject *log_get_none(PyObject *, void *) { Py_RETURN_NONE; }

PyMethodDef log_methods[] = {
    {"write", log_write, METH_O, "Writes text to the error log, one line per line."},
    {"writelines", log_writelines, METH_O, "Writes each string of an iterable."},
    {"flush", log_flush, METH_NOARGS, "Logs an unterminated last line."},
    {"close", log_close, METH_NOARGS, "Flushes and refuses further writes."},
    {"isatty", log_false, METH_NOARGS, nullptr},
    {"readable", log_false, METH_NOARGS, nullptr},
    {"seekable", log_false, METH_NOARGS, nullptr},
    {"writable", log_true, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef log_getset[] = {
    {"name", log_get_name, nullptr, nullptr, nullptr},
    {"closed", log_get_closed, nullptr, nullptr, nullptr},
    {"encoding", log_get_encoding, nullptr, nullptr, nullptr},
    {"errors", log_get_errors, nullptr, nullptr, nullptr},
    {"line_buffering", log_get_true, nullptr, nullptr, nullptr},
    {"newlines", log_get_none, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot log_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void *>(log_dealloc)},
    {Py_tp_methods, log_methods},
    {Py_tp_getset, log_getset},
    {Py_tp_doc, const_cast<char *>("mod_wsgi log stream (wsgi.errors, sys.stdout, sys.stderr).")},
    {0, nullptr},
};

PyType_Spec log_spec = {"mod_wsgi.Log", sizeof(LogObject), 0, Py_TPFLAGS_DEFAULT, log_slots};

}  // namespace

PyTypeObject *log_type_new() { return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&log_spec)); }

PyObject *log_new(InterpState &st, LogLevel level, std::string_view client, const char *name) {
    auto *self = PyObject_New(LogObject, st.log_type);
    if (!self)
        return nullptr;
    self->st = &st;
    self->buffer = nullptr;
    self->client = nullptr;
    self->name = name;
    self->level = static_cast<int>(level);
    self->closed = 0;
    try {
        self->buffer = new std::string();
        if (!client.empty())
            self->client = new std::string(client);
    } catch (const std::bad_alloc &) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return reinterpret_cast<PyObject *>(self);
}

void log_object_flush(PyObject *obj) {
    if (!obj)
        return;
    auto *self = reinterpret_cast<LogObject *>(obj);
    if (!self->buffer->empty())
        drain(self, true);
}

std::string request_tag(std::string_view addr, std::string_view port, std::string_view request_id) {
    std::string tag;
    if (!addr.empty()) {
        tag.append("[client ").append(addr);
        if (!port.empty())
            tag.append(":").append(port);
        tag.append("] ");
    }
    if (!request_id.empty())
        tag.append("[request ").append(request_id).append("] ");
    return tag;
}

void log_text_lines(const Logger &log, LogLevel level, std::string_view text, std::string_view client) {
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        size_t end = nl == std::string_view::npos ? text.size() : nl;
        log.write(level, kLogNone, text.substr(start, end - start), client);
        start = end + 1;
    }
}

std::string fetch_error_text() {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    std::string text;
    if (type) {
        PyRef name(PyObject_GetAttrString(type, "__name__"));
        PyRef str(value ? PyObject_Str(value) : nullptr);
        const char *n = name ? PyUnicode_AsUTF8(name.get()) : nullptr;
        const char *s = str ? PyUnicode_AsUTF8(str.get()) : nullptr;
        PyErr_Clear();
        text = std::string(n ? n : "Exception") + (s && *s ? std::string(": ") + s : std::string());
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return text;
}

std::string peek_error_text() {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Py_XINCREF(type);
    Py_XINCREF(value);
    Py_XINCREF(tb);
    PyErr_Restore(type, value, tb);
    std::string text = fetch_error_text();
    PyErr_Restore(type, value, tb);
    return text;
}

void log_exception(InterpState &st, std::string_view script, std::string_view client) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    if (PyErr_GivenExceptionMatches(type, PyExc_MemoryError))
        runtime_note_memory_error(*st.rt);
    const Logger &log = runtime_logger(*st.rt);
    if (!script.empty())
        log.write(LogLevel::kError, kLogException,
                  "Exception occurred processing WSGI script '" + std::string(script) + "'.", client);
    if (!st.format_exception) {
        PyRef traceback(PyImport_ImportModule("traceback"));
        if (traceback)
            st.format_exception = PyObject_GetAttrString(traceback.get(), "format_exception");
    }
    PyRef lines(st.format_exception ? PyObject_CallFunctionObjArgs(st.format_exception, type, value ? value : Py_None,
                                                                    tb ? tb : Py_None, nullptr)
                                    : nullptr);
    std::string text;
    if (lines && PyList_Check(lines.get())) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(lines.get()); ++i) {
            Py_ssize_t n;
            const char *s = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(lines.get(), i), &n);
            if (s)
                text.append(s, static_cast<size_t>(n));
            else
                PyErr_Clear();
        }
    } else {
        // The traceback module itself failed: say at least what was raised.
        PyErr_Clear();
        PyErr_Restore(type, value, tb);
        type = value = tb = nullptr;
        text = fetch_error_text();
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    log_text_lines(log, LogLevel::kError, text, client);
}

}  // namespace modwsgi
