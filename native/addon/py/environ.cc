// The WSGI environ, built straight from the REQUEST payload's variables: ISO-8859-1 str keys and
// values (PEP 3333), keys interned once per interpreter, plus the wsgi.* and mod_wsgi.* entries.
#include "py_internal.h"

#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

namespace {

bool set(PyObject *env, PyObject *key, PyObject *value) {
    // Takes the value's reference.
    if (!value)
        return false;
    int r = PyDict_SetItem(env, key, value);
    Py_DECREF(value);
    return r == 0;
}

bool set_borrowed(PyObject *env, PyObject *key, PyObject *value) { return PyDict_SetItem(env, key, value) == 0; }

// Remembers the variables the worker itself needs (views into the payload, which outlives the call).
void note(Call &call, std::string_view name, std::string_view value) {
    switch (name.size()) {
    case 19:
        if (name == "mod_wsgi.request_id")
            call.request_id = value;
        break;
    case 11:
        if (name == "REMOTE_ADDR")
            call.remote_addr = value;
        else if (name == "REMOTE_PORT")
            call.remote_port = value;
        else if (name == "REQUEST_URI")
            call.uri = value;
        break;
    case 20:
        if (name == "mod_wsgi.queue_start")
            call.queue_start = strtoull(std::string(value).c_str(), nullptr, 10);
        break;
    case 14:
        if (name == "REQUEST_METHOD")
            call.method = value;
        break;
    case 15:
        if (name == "SCRIPT_FILENAME")
            call.script = call.resource = value;
        break;
    case 23:
        if (name == "mod_wsgi.handler_script")
            call.handler_script = value;
        break;
    case 24:
        if (name == "mod_wsgi.callable_object")
            call.callable = value;
        break;
    case 25:
        if (name == "mod_wsgi.script_reloading")
            call.reloading = value == "1";
        else if (name == "mod_wsgi.application_type")
            call.application_type = value;
        break;
    default:
        break;
    }
}

// The tuple for an "X.Y.Z" version string (borrowed, cached per interpreter: it never changes).
PyObject *apache_version(InterpState &st, std::string_view text) {
    if (st.apache_version && text == st.apache_version_text)
        return st.apache_version;
    int part[3] = {0, 0, 0};
    size_t i = 0;
    for (char ch : text) {
        if (ch == '.' && i < 2)
            ++i;
        else if (ch >= '0' && ch <= '9')
            part[i] = part[i] * 10 + (ch - '0');
    }
    PyObject *t = Py_BuildValue("(iii)", part[0], part[1], part[2]);
    if (!t)
        return nullptr;
    Py_XDECREF(st.apache_version);
    st.apache_version = t;
    st.apache_version_text.assign(text);
    return t;
}

}  // namespace

PyObject *build_environ(Call &call) {
    InterpState &st = call.st;
    const HostOptions &o = runtime_options(*st.rt);
    const std::vector<uint8_t> &payload = call.req.payload();
    wsgi_reader r;
    wsgi_reader_init(&r, payload.data(), payload.size());
    uint32_t flags = wsgi_read_u32(&r);  // BODY_FOLLOWS is passed to submit() separately
    call.streamed = (flags & WSGI_REQUEST_STREAMED) != 0;
    call.request_start = wsgi_read_u64(&r);
    uint32_t count = wsgi_read_u32(&r);
    if (!r.ok || count > payload.size() / 8) {
        PyErr_SetString(PyExc_ValueError, "malformed REQUEST payload");
        return nullptr;
    }
    PyRef env(_PyDict_NewPresized(static_cast<Py_ssize_t>(count) + 16));
    if (!env)
        return nullptr;
    for (uint32_t i = 0; i < count; ++i) {
        const char *n, *v;
        uint32_t nlen, vlen;
        wsgi_read_string(&r, &n, &nlen);
        wsgi_read_string(&r, &v, &vlen);
        if (!r.ok) {
            PyErr_SetString(PyExc_ValueError, "malformed REQUEST payload");
            return nullptr;
        }
        std::string_view name(n, nlen), value(v, vlen);
        if (name == "mod_wsgi.url_scheme") {
            call.url_scheme = value;  // becomes wsgi.url_scheme, not an environ entry of its own
            continue;
        }
        if (name == "apache.version") {
            // "2.4.71" from the Apache module becomes (2, 4, 71), as mod_wsgi has it.
            PyObject *version = apache_version(st, value);
            if (!version || !set_borrowed(env.get(), st.k.apache_version, version))
                return nullptr;
            continue;
        }
        if ((flags & WSGI_REQUEST_SSL) && ssl_prefetched(name)) {
            // An SSL variable sent ahead for mod_ssl.var_lookup(), not an environ entry.
            call.ssl_prefetch.emplace_back(name.substr(kSslPrefetchPrefix.size()), value);
            continue;
        }
        note(call, name, value);
        PyRef key(st.keys.get(name));
        if (!key || !set(env.get(), key.get(), PyUnicode_DecodeLatin1(v, vlen, nullptr)))
            return nullptr;
    }
    // A WSGIHandlerScript runs in place of the resource: SCRIPT_FILENAME stays the resource, as in mod_wsgi.
    if (!call.handler_script.empty())
        call.script = call.handler_script;
    if (call.callable.empty())
        call.callable = "application";
    call.head_method = call.method == "HEAD";
    call.client = request_tag(call.remote_addr, call.remote_port, call.request_id);

    PyObject *e = env.get();
    const EnvironKeys &k = st.k;
    PyRef scheme(call.url_scheme.empty() ? (Py_INCREF(st.str_http), st.str_http) : st.keys.get(call.url_scheme));
    call.errors.reset(log_new(st, LogLevel::kError, call.client, "<wsgi.errors>"));
    bool ok = scheme && call.errors && set_borrowed(e, k.wsgi_version, st.wsgi_version) &&
              set_borrowed(e, k.wsgi_url_scheme, scheme.get()) &&
              set(e, k.wsgi_input, input_new(st, call.req.shared_from_this())) &&
              set_borrowed(e, k.wsgi_errors, call.errors.get()) &&
              set_borrowed(e, k.wsgi_multithread, o.multithread ? Py_True : Py_False) &&
              set_borrowed(e, k.wsgi_multiprocess, o.multiprocess ? Py_True : Py_False) &&
              set_borrowed(e, k.wsgi_run_once, o.run_once ? Py_True : Py_False) &&
              set_borrowed(e, k.wsgi_file_wrapper, reinterpret_cast<PyObject *>(st.file_wrapper_type)) &&
              set_borrowed(e, k.mod_wsgi_version, st.mod_wsgi_version) &&
              set(e, k.request_start, PyUnicode_FromFormat("%llu", static_cast<unsigned long long>(call.request_start)));
    // Apache always sends these; a direct caller may not.
    ok = ok && PyDict_SetDefault(e, k.process_group, st.process_group) &&
         PyDict_SetDefault(e, k.application_group, st.application_group);
    if (ok && !PyDict_GetItemWithError(e, k.callable_object))
        ok = !PyErr_Occurred() && set_borrowed(e, k.callable_object, st.str_application);
    // Over SSL only: mod_ssl.is_https and mod_ssl.var_lookup (plain HTTP pays nothing for them).
    if (ok && (flags & WSGI_REQUEST_SSL)) {
        call.ssl.reset(ssl_vars_new(st, call.req.shared_from_this(), true, true, std::move(call.ssl_prefetch)));
        ok = call.ssl && ssl_vars_install(call.ssl.get(), e, k.ssl_is_https, k.ssl_var_lookup);
    }
    return ok ? env.release() : nullptr;
}

}  // namespace modwsgi
