// mod_ssl.is_https and mod_ssl.var_lookup (release notes 4.1.0, New Features 6): callables in the environ
// of the access, authentication and group hooks, and of applications over SSL. is_https() answers from
// the request's flags; var_lookup(name) asks the Apache child, which calls mod_ssl, through a VAR_LOOKUP
// frame (docs/protocol.md), with the GIL released while it waits.
//
// Reference counts (release notes, Bugs Fixed 3, a refcount bug in var_lookup under Python 3): the name
// is borrowed when bytes and converted into an owned latin-1 copy (a PyRef, released on every path) when
// str; the result is always a new reference (a new str, or None with its count taken).
#include "py_internal.h"

#include <memory>
#include <new>

#include "wsgi_wire.h"

namespace modwsgi {

namespace {

struct SslVarsObject {
    PyObject_HEAD
    std::shared_ptr<Request> *req;  // null once the request is over ("request object has expired")
    SslPrefetch *prefetched;        // values sent ahead by the child (views into req's payload)
    int https;                      // the client connection is SSL
    int lookups;                    // the Apache child answers VAR_LOOKUP
};

bool expired(SslVarsObject *self) {
    if (self->req)
        return false;
    PyErr_SetString(PyExc_RuntimeError, "request object has expired");
    return true;
}

PyObject *ssl_is_https(PyObject *obj, PyObject *) {
    auto *self = reinterpret_cast<SslVarsObject *>(obj);
    if (expired(self))
        return nullptr;
    return PyLong_FromLong(self->https);  // an int, as mod_ssl's ssl_is_https() and mod_wsgi give
}

PyObject *ssl_var_lookup(PyObject *obj, PyObject *arg) {
    auto *self = reinterpret_cast<SslVarsObject *>(obj);
    if (expired(self))
        return nullptr;
    PyRef latin;  // owned only when converted from str
    const char *data;
    Py_ssize_t size;
    if (PyUnicode_Check(arg)) {
        latin.reset(PyUnicode_AsLatin1String(arg));
        if (!latin) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_TypeError,
                                "byte string value expected, value containing non 'latin-1' characters found");
            }
            return nullptr;
        }
        data = PyBytes_AS_STRING(latin.get());
        size = PyBytes_GET_SIZE(latin.get());
    } else if (PyBytes_Check(arg)) {
        data = PyBytes_AS_STRING(arg);
        size = PyBytes_GET_SIZE(arg);
    } else {
        PyErr_Format(PyExc_TypeError, "byte string value expected, value of type %.200s found", Py_TYPE(arg)->tp_name);
        return nullptr;
    }
    std::string_view name(data, static_cast<size_t>(size));
    if (name.find('\0') != std::string_view::npos) {
        PyErr_SetString(PyExc_ValueError, "embedded null character in variable name");
        return nullptr;
    }
    if (name.size() > WSGI_LIMIT_VAR_NAME) {
        PyErr_Format(PyExc_ValueError, "variable name longer than %u bytes", WSGI_LIMIT_VAR_NAME);
        return nullptr;
    }
    // No SSL module in Apache (or an empty name): mod_wsgi's answer without asking.
    if (!self->lookups || name.empty())
        Py_RETURN_NONE;
    for (const auto &[n, v] : *self->prefetched) {
        if (n == name)
            return PyUnicode_DecodeLatin1(v.data(), static_cast<Py_ssize_t>(v.size()), nullptr);
    }
    std::shared_ptr<Request> req = *self->req;  // kept alive while the GIL is released
    std::string value;
    Request::LookupStatus status;
    try {
        Py_BEGIN_ALLOW_THREADS
        status = req->lookup(name, &value);
        Py_END_ALLOW_THREADS
    } catch (const std::bad_alloc &) {
        return PyErr_NoMemory();
    }
    switch (status) {
    case Request::LookupStatus::kValue:
        return PyUnicode_DecodeLatin1(value.data(), static_cast<Py_ssize_t>(value.size()), nullptr);
    case Request::LookupStatus::kMissing:
        Py_RETURN_NONE;
    case Request::LookupStatus::kAborted:
        break;
    }
    PyErr_SetString(PyExc_OSError, "mod_ssl.var_lookup(): the request is over or its connection was closed");
    return nullptr;
}

void ssl_vars_dealloc(PyObject *obj) {
    auto *self = reinterpret_cast<SslVarsObject *>(obj);
    delete self->prefetched;
    delete self->req;
    PyTypeObject *tp = Py_TYPE(obj);
    tp->tp_free(obj);
    Py_DECREF(tp);
}

// The names mod_wsgi gives these callables (bound methods of its Auth object).
PyMethodDef is_https_def = {"ssl_is_https", ssl_is_https, METH_NOARGS,
                            "ssl_is_https(): 1 if the client connection to Apache uses SSL, else 0."};
PyMethodDef var_lookup_def = {"ssl_var_lookup", ssl_var_lookup, METH_O,
                              "ssl_var_lookup(name): the value of an SSL variable from mod_ssl, or None."};

PyType_Slot ssl_vars_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void *>(ssl_vars_dealloc)},
    {Py_tp_doc, const_cast<char *>("The request behind mod_ssl.is_https and mod_ssl.var_lookup.")},
    {0, nullptr},
};

PyType_Spec ssl_vars_spec = {"mod_wsgi.SSLVariables", sizeof(SslVarsObject), 0, Py_TPFLAGS_DEFAULT,
                             ssl_vars_slots};

}  // namespace

PyTypeObject *ssl_vars_type_new() { return reinterpret_cast<PyTypeObject *>(PyType_FromSpec(&ssl_vars_spec)); }

PyObject *ssl_vars_new(InterpState &st, std::shared_ptr<Request> req, bool https, bool lookups,
                       SslPrefetch prefetched) {
    auto *self = PyObject_New(SslVarsObject, st.ssl_vars_type);
    if (!self)
        return nullptr;
    self->https = https ? 1 : 0;
    self->lookups = lookups ? 1 : 0;
    self->req = new (std::nothrow) std::shared_ptr<Request>(std::move(req));
    self->prefetched = new (std::nothrow) SslPrefetch(std::move(prefetched));
    if (!self->req || !self->prefetched) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return reinterpret_cast<PyObject *>(self);
}

bool ssl_vars_install(PyObject *vars, PyObject *environ, PyObject *key_is_https, PyObject *key_var_lookup) {
    PyRef is_https(PyCFunction_New(&is_https_def, vars));
    PyRef var_lookup(PyCFunction_New(&var_lookup_def, vars));
    return is_https && var_lookup && PyDict_SetItem(environ, key_is_https, is_https.get()) == 0 &&
           PyDict_SetItem(environ, key_var_lookup, var_lookup.get()) == 0;
}

void ssl_vars_expire(PyObject *vars) {
    if (!vars)
        return;
    auto *self = reinterpret_cast<SslVarsObject *>(vars);
    delete self->req;
    self->req = nullptr;
    self->prefetched->clear();  // its views point into the request's payload
}

}  // namespace modwsgi
