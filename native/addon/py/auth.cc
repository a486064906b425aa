// The access, authentication and group hooks (WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript)
// as mod_wsgi 4.1.0 runs them: the script is loaded once per application group (and reloaded when it
// changes, with WSGIScriptReloading), the function is called with a cut-down environ (the Apache child
// sends it: no SetEnv variables) plus wsgi.errors, mod_wsgi.* and mod_ssl.is_https/var_lookup, and its
// answer becomes an AUTH_RESULT frame (docs/protocol.md, "Hooks"). An exception is logged with its
// traceback and answers ERROR; the Apache child turns that into 500, 401 or 403 as mod_wsgi does.
#include "py_internal.h"

#include <new>
#include <vector>

#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

namespace {

struct Hook {
    const char *function;
    const char *missing;  // mod_wsgi's message when the script lacks the function
};

const Hook *hook_for(uint32_t hook) {
    static const Hook hooks[] = {
        {"allow_access", "Target WSGI host access script '%s' does not provide host validator."},
        {"check_password", "Target WSGI user authentication script '%s' does not provide 'Basic' auth provider."},
        {"get_realm_hash", "Target WSGI user authentication script '%s' does not provide 'Digest' auth provider."},
        {"groups_for_user", "Target WSGI group authentication script '%s' does not provide group provider."},
    };
    return hook >= WSGI_AUTH_ALLOW_ACCESS && hook <= WSGI_AUTH_GROUPS_FOR_USER ? &hooks[hook - 1] : nullptr;
}

std::string replace_script(const char *format, std::string_view script) {
    std::string out(format);
    size_t at = out.find("%s");
    if (at != std::string::npos)
        out.replace(at, 2, script.data(), script.size());
    return out;
}

// The AUTH payload, as views into it.
struct AuthRequest {
    uint32_t flags = 0;
    uint32_t hook = 0;
    std::string_view script, group, arg1, arg2;
    wsgi_reader vars{};  // positioned at the variable count
};

bool parse(const std::vector<uint8_t> &payload, AuthRequest *a) {
    wsgi_reader r;
    wsgi_reader_init(&r, payload.data(), payload.size());
    a->flags = wsgi_read_u32(&r);
    a->hook = wsgi_read_u32(&r);
    wsgi_read_u64(&r);  // request_start: the daemon's queue-timeout used it
    std::string_view *fields[] = {&a->script, &a->group, &a->arg1, &a->arg2};
    for (std::string_view *f : fields) {
        const char *s;
        uint32_t n;
        wsgi_read_string(&r, &s, &n);
        *f = std::string_view(s ? s : "", n);
    }
    a->vars = r;
    return r.ok;
}

// The AUTH_RESULT frame.
std::string result_frame(uint32_t outcome, const std::vector<std::string> &values) {
    size_t size = 8;
    for (const std::string &v : values)
        size += 4 + v.size();
    std::string out(WSGI_WIRE_HEADER_SIZE + size, '\0');
    auto *p = reinterpret_cast<unsigned char *>(&out[0]);
    wsgi_frame_header_pack(p, WSGI_FRAME_AUTH_RESULT, 0, static_cast<uint32_t>(size));
    p += WSGI_WIRE_HEADER_SIZE;
    wsgi_put_u32(p, outcome);
    wsgi_put_u32(p + 4, static_cast<uint32_t>(values.size()));
    p += 8;
    for (const std::string &v : values)
        p += wsgi_write_string(p, v.data(), static_cast<uint32_t>(v.size()));
    return out;
}

// A user name or password as the hook sees it: UTF-8 as mod_wsgi decodes it, latin-1 when it is not
// valid UTF-8 (so that a client's latin-1 password reaches the hook instead of failing the request).
PyObject *decode_arg(std::string_view s) {
    PyObject *v = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
    if (v || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        return v;
    PyErr_Clear();
    return PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
}

// The hook's environ: the child's variables, then what mod_wsgi adds. *ssl and *errors get the objects
// to expire and close afterwards.
PyObject *build_auth_environ(InterpState &st, Request &req, AuthRequest &a, std::string_view client, PyRef *ssl,
                             PyRef *errors) {
    uint32_t count = wsgi_read_u32(&a.vars);
    if (!a.vars.ok || count > a.vars.left / 8) {
        PyErr_SetString(PyExc_ValueError, "malformed AUTH payload");
        return nullptr;
    }
    PyRef env(_PyDict_NewPresized(static_cast<Py_ssize_t>(count) + 8));
    if (!env)
        return nullptr;
    SslPrefetch prefetched;
    for (uint32_t i = 0; i < count; ++i) {
        const char *n, *v;
        uint32_t nlen, vlen;
        wsgi_read_string(&a.vars, &n, &nlen);
        wsgi_read_string(&a.vars, &v, &vlen);
        if (!a.vars.ok) {
            PyErr_SetString(PyExc_ValueError, "malformed AUTH payload");
            return nullptr;
        }
        if ((a.flags & WSGI_AUTH_LOOKUP) && ssl_prefetched(std::string_view(n, nlen))) {
            prefetched.emplace_back(std::string_view(n, nlen).substr(kSslPrefetchPrefix.size()),
                                    std::string_view(v, vlen));
            continue;
        }
        PyRef key(st.keys.get(std::string_view(n, nlen)));
        PyRef value(PyUnicode_DecodeLatin1(v, vlen, nullptr));
        if (!key || !value || PyDict_SetItem(env.get(), key.get(), value.get()) < 0)
            return nullptr;
    }
    const EnvironKeys &k = st.k;
    PyObject *e = env.get();
    errors->reset(log_new(st, LogLevel::kError, client, "<wsgi.errors>"));
    ssl->reset(ssl_vars_new(st, req.shared_from_this(), (a.flags & WSGI_AUTH_SSL) != 0,
                            (a.flags & WSGI_AUTH_LOOKUP) != 0, std::move(prefetched)));
    PyRef reloading(PyLong_FromLong((a.flags & WSGI_AUTH_RELOADING) ? 1 : 0));
    bool ok = *errors && *ssl && reloading && PyDict_SetItem(e, k.mod_wsgi_version, st.mod_wsgi_version) == 0 &&
              PyDict_SetItem(e, k.process_group, st.process_group) == 0 &&
              PyDict_SetItem(e, k.application_group, st.application_group) == 0 &&
              PyDict_SetItem(e, k.script_reloading, reloading.get()) == 0 &&
              PyDict_SetItem(e, k.wsgi_errors, errors->get()) == 0 &&
              ssl_vars_install(ssl->get(), e, k.ssl_is_https, k.ssl_var_lookup);
    return ok ? env.release() : nullptr;
}

// A latin-1 byte string from a str or bytes item; false (nothing set) when it is neither or not latin-1.
bool latin1_bytes(PyObject *item, std::string *out) {
    if (PyBytes_Check(item)) {
        out->assign(PyBytes_AS_STRING(item), static_cast<size_t>(PyBytes_GET_SIZE(item)));
        return true;
    }
    if (!PyUnicode_Check(item))
        return false;
    PyRef latin(PyUnicode_AsLatin1String(item));
    if (!latin) {
        PyErr_Clear();
        return false;
    }
    out->assign(PyBytes_AS_STRING(latin.get()), static_cast<size_t>(PyBytes_GET_SIZE(latin.get())));
    return true;
}

// Turns the hook's answer into an outcome and values. With a Python error set it returns ERROR and
// the caller logs the exception; a bad answer without one is logged here.
uint32_t interpret(InterpState &st, const AuthRequest &a, PyObject *result, std::string_view client,
                   std::vector<std::string> *values) {
    const Logger &log = runtime_logger(*st.rt);
    std::string script(a.script);
    switch (a.hook) {
    case WSGI_AUTH_ALLOW_ACCESS:
        if (result == Py_None)
            return WSGI_AUTH_NOT_FOUND;
        if (PyBool_Check(result))
            return result == Py_True ? WSGI_AUTH_GRANTED : WSGI_AUTH_DENIED;
        log.write(LogLevel::kError, kLogAuthBadResult,
                  "Indicator of host accessibility returned from '" + script + "' must a boolean or None.", client);
        return WSGI_AUTH_ERROR;
    case WSGI_AUTH_CHECK_PASSWORD: {
        if (result == Py_None)
            return WSGI_AUTH_NOT_FOUND;
        if (result == Py_True)
            return WSGI_AUTH_GRANTED;
        if (result == Py_False)
            return WSGI_AUTH_DENIED;
        Py_ssize_t n;
        const char *user = PyUnicode_Check(result) ? PyUnicode_AsUTF8AndSize(result, &n) : nullptr;
        if (user && n > 0 && !memchr(user, '\0', static_cast<size_t>(n))) {
            values->emplace_back(user, static_cast<size_t>(n));  // the authenticated user's name instead
            return WSGI_AUTH_GRANTED;
        }
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Basic auth provider must return True, False None or user name as string");
        return WSGI_AUTH_ERROR;
    }
    case WSGI_AUTH_GET_REALM_HASH: {
        if (result == Py_None)
            return WSGI_AUTH_NOT_FOUND;
        std::string hash;
        if (latin1_bytes(result, &hash) && hash.find('\0') == std::string::npos) {
            values->push_back(std::move(hash));
            return WSGI_AUTH_GRANTED;
        }
        PyErr_SetString(PyExc_TypeError, PyUnicode_Check(result)
                                             ? "Digest auth provider must return None or string object, value "
                                               "containing non 'latin-1' characters found"
                                             : "Digest auth provider must return None or string object");
        return WSGI_AUTH_ERROR;
    }
    case WSGI_AUTH_GROUPS_FOR_USER: {
        const std::string bad = "Groups for user returned from '" + script +
                                "' must be an iterable sequence of byte strings.";
        PyRef it(PyObject_GetIter(result));
        if (!it) {
            PyErr_Clear();
            log.write(LogLevel::kError, kLogAuthBadResult, bad, client);
            return WSGI_AUTH_ERROR;
        }
        size_t size = 8;
        for (;;) {
            PyRef item(PyIter_Next(it.get()));
            if (!item)
                break;
            std::string group;
            if (!latin1_bytes(item.get(), &group) || group.find('\0') != std::string::npos) {
                log.write(LogLevel::kError, kLogAuthBadResult,
                          PyUnicode_Check(item.get()) ? bad.substr(0, bad.size() - 1) +
                                                            ", value containing non 'latin-1' characters found"
                                                      : bad,
                          client);
                return WSGI_AUTH_ERROR;
            }
            size += 4 + group.size();
            if (size > WSGI_LIMIT_AUTH_RESULT) {
                log.write(LogLevel::kError, kLogAuthBadResult,
                          "Groups for user returned from '" + script + "' exceed " +
                              std::to_string(WSGI_LIMIT_AUTH_RESULT) + " bytes.",
                          client);
                return WSGI_AUTH_ERROR;
            }
            values->push_back(std::move(group));
        }
        return PyErr_Occurred() ? WSGI_AUTH_ERROR : WSGI_AUTH_GRANTED;
    }
    }
    return WSGI_AUTH_ERROR;
}

uint32_t call_hook(InterpState &st, Request &req, AuthRequest &a, std::string_view client,
                   std::vector<std::string> *values) {
    const Logger &log = runtime_logger(*st.rt);
    const Hook *hook = hook_for(a.hook);
    std::string script(a.script);
    if (!hook || script.empty()) {
        log.write(LogLevel::kError, kLogAuthMalformed, "Malformed hook request from the Apache child.", client);
        return WSGI_AUTH_ERROR;
    }
    std::string error;
    PyRef module(load_script_module(st, script, (a.flags & WSGI_AUTH_RELOADING) != 0, client, &error));
    if (!module)
        return WSGI_AUTH_ERROR;  // logged with its traceback by the loader
    PyObject *fn = PyDict_GetItemString(PyModule_GetDict(module.get()), hook->function);  // borrowed
    if (!fn) {
        log.write(LogLevel::kError, kLogAuthNoFunction, replace_script(hook->missing, script), client);
        return WSGI_AUTH_ERROR;
    }
    PyRef keep_fn(fn);
    Py_INCREF(fn);  // the module may be reloaded by another thread while this one runs it
    PyRef ssl, errors;
    PyRef environ(build_auth_environ(st, req, a, client, &ssl, &errors));
    uint32_t outcome = WSGI_AUTH_ERROR;
    if (environ) {
        PyRef arg1, arg2;
        if (a.hook == WSGI_AUTH_ALLOW_ACCESS) {
            arg1.reset(a.arg1.empty() ? (Py_INCREF(Py_None), Py_None)
                                      : PyUnicode_DecodeLatin1(a.arg1.data(), static_cast<Py_ssize_t>(a.arg1.size()),
                                                               nullptr));
        } else {
            arg1.reset(decode_arg(a.arg1));
        }
        if (a.hook == WSGI_AUTH_CHECK_PASSWORD || a.hook == WSGI_AUTH_GET_REALM_HASH)
            arg2.reset(decode_arg(a.arg2));
        if (arg1 && (arg2 || (a.hook != WSGI_AUTH_CHECK_PASSWORD && a.hook != WSGI_AUTH_GET_REALM_HASH))) {
            PyObject *args[3] = {environ.get(), arg1.get(), arg2.get()};
            PyRef result(PyObject_Vectorcall(fn, args, arg2 ? 3 : 2, nullptr));
            if (result)
                outcome = interpret(st, a, result.get(), client, values);
        }
    }
    if (PyErr_Occurred()) {
        log_exception(st, script, client);
        outcome = WSGI_AUTH_ERROR;
        values->clear();
    }
    // The callables and wsgi.errors may be kept by the script: they must not reach this request again.
    ssl_vars_expire(ssl.get());
    if (errors) {
        PyRef closed(PyObject_CallMethod(errors.get(), "close", nullptr));
        if (!closed)
            PyErr_Clear();
    }
    return outcome;
}

}  // namespace

bool auth_scan(const std::vector<uint8_t> &payload, std::string *group) {
    AuthRequest a;
    if (payload.size() < WSGI_AUTH_FIXED_SIZE || !parse(payload, &a) || !hook_for(a.hook))
        return false;
    group->assign(a.group);
    return true;
}

std::string run_auth(InterpState &st, Request &req) {
    AuthRequest a;
    std::vector<std::string> values;
    uint32_t outcome = WSGI_AUTH_ERROR;
    std::string client;
    try {
        if (parse(req.payload(), &a)) {
            // The tag of log lines, as for requests.
            wsgi_reader r = a.vars;
            uint32_t count = wsgi_read_u32(&r);
            std::string_view addr, port, id;
            for (uint32_t i = 0; i < count && r.ok; ++i) {
                const char *n, *v;
                uint32_t nlen, vlen;
                wsgi_read_string(&r, &n, &nlen);
                wsgi_read_string(&r, &v, &vlen);
                std::string_view name(n ? n : "", nlen);
                if (name == "REMOTE_ADDR")
                    addr = std::string_view(v, vlen);
                else if (name == "REMOTE_PORT")
                    port = std::string_view(v, vlen);
                else if (name == "mod_wsgi.request_id")
                    id = std::string_view(v, vlen);
            }
            client = request_tag(addr, port, id);
            CurrentRequest current(client);
            outcome = call_hook(st, req, a, client, &values);
        } else {
            runtime_logger(*st.rt).write(LogLevel::kError, kLogAuthMalformed,
                                         "Malformed hook request from the Apache child.");
        }
        return result_frame(outcome, values);
    } catch (const std::bad_alloc &) {
        PyErr_Clear();
        runtime_note_memory_error(*st.rt);
        runtime_logger(*st.rt).write(LogLevel::kError, kLogNoMemory,
                                     "Out of memory running hook script '" + std::string(a.script) + "'.", client);
        return result_frame(WSGI_AUTH_ERROR, {});
    }
}

}  // namespace modwsgi
