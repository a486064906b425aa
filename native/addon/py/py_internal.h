// Shared declarations of the CPython side (native/addon/py). Python.h comes first, as CPython requires.
// Everything here runs with the GIL held unless a comment says otherwise.
#ifndef MODWSGI_ADDON_PY_INTERNAL_H
#define MODWSGI_ADDON_PY_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "py_compat.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "host.h"
#include "log.h"
#include "request.h"

namespace modwsgi {

class Runtime;

// An owned reference, released when it goes out of scope (with the GIL held).
class PyRef {
public:
    PyRef() = default;
    explicit PyRef(PyObject *p) : p_(p) {}
    ~PyRef() { Py_XDECREF(p_); }
    PyRef(const PyRef &) = delete;
    PyRef &operator=(const PyRef &) = delete;
    PyRef(PyRef &&o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    PyRef &operator=(PyRef &&o) noexcept {
        if (this != &o) {
            Py_XDECREF(p_);
            p_ = o.p_;
            o.p_ = nullptr;
        }
        return *this;
    }
    PyObject *get() const { return p_; }
    PyObject *release() {
        PyObject *p = p_;
        p_ = nullptr;
        return p;
    }
    void reset(PyObject *p = nullptr) {
        Py_XDECREF(p_);
        p_ = p;
    }
    explicit operator bool() const { return p_ != nullptr; }

private:
    PyObject *p_ = nullptr;
};

// Interned str objects for environ keys, made once per interpreter and reused for every request.
class KeyCache {
public:
    static constexpr size_t kMaxEntries = 1024;  // arbitrary header names must not grow it forever
    PyObject *get(std::string_view name);         // new reference, or null with an exception set

private:
    std::deque<std::string> storage_;  // stable bytes behind the string_view keys
    std::unordered_map<std::string_view, PyObject *> map_;
};

struct ScriptEntry {
    PyObject *module_name = nullptr;  // "_mod_wsgi_<md5 of the path>", owned
    int64_t mtime_us = 0;             // what mod_wsgi stores as the module's __mtime__
    uint64_t loads = 0;               // how many times it was (re)loaded
    bool served = false;              // a request ran it since it was (re)loaded: until then (a preload,
                                      // a successor's import) reload_required() is not asked, as in a
                                      // process that loads the script for its first request
};

// The environ keys the addon adds itself, interned once per interpreter.
struct EnvironKeys {
    PyObject *wsgi_version, *wsgi_url_scheme, *wsgi_input, *wsgi_errors, *wsgi_multithread,
        *wsgi_multiprocess, *wsgi_run_once, *wsgi_file_wrapper, *mod_wsgi_version, *process_group,
        *application_group, *callable_object, *request_start, *apache_version, *ssl_is_https,
        *ssl_var_lookup, *script_reloading;
};

// One interpreter (application group) and what the addon keeps in it. Its fields are used only by
// threads holding the GIL with a thread state of this interpreter, except `load_mu`.
struct InterpState {
    Runtime *rt = nullptr;
    std::string group;
    PyInterpreterState *interp = nullptr;

    PyTypeObject *input_type = nullptr;
    PyTypeObject *log_type = nullptr;
    PyTypeObject *adapter_type = nullptr;
    PyTypeObject *file_wrapper_type = nullptr;
    PyTypeObject *restricted_type = nullptr;
    PyTypeObject *ssl_vars_type = nullptr;

    EnvironKeys k{};
    PyObject *process_group = nullptr;      // str values of this process and interpreter
    PyObject *application_group = nullptr;
    PyObject *wsgi_version = nullptr;      // (1, 0)
    PyObject *mod_wsgi_version = nullptr;  // (4, 1, 0)
    PyObject *apache_version = nullptr;    // apache.version, from the text below
    std::string apache_version_text;
    PyObject *str_close = nullptr;
    PyObject *str_fileno = nullptr;
    PyObject *str_tell = nullptr;
    PyObject *str_read = nullptr;
    PyObject *str_http = nullptr;
    PyObject *str_application = nullptr;
    PyObject *format_exception = nullptr;  // traceback.format_exception, imported on first use
    PyObject *stdout_obj = nullptr;        // what sys.stdout / sys.stderr were set to
    PyObject *stderr_obj = nullptr;
    PyObject *request_timeout = nullptr;   // mod_wsgi.RequestTimeout of this interpreter (interrupt.cc)

    KeyCache keys;
    std::unordered_map<std::string, ScriptEntry> scripts;  // by SCRIPT_FILENAME
    std::mutex load_mu;                                     // taken with the GIL released
};

// SSL variables the Apache child sent ahead ("mod_ssl.var:NAME" variables): name and value, views into
// the request's payload.
using SslPrefetch = std::vector<std::pair<std::string_view, std::string_view>>;
constexpr std::string_view kSslPrefetchPrefix = "mod_ssl.var:";

inline bool ssl_prefetched(std::string_view name) {
    return name.size() > kSslPrefetchPrefix.size() && name.compare(0, kSslPrefetchPrefix.size(), kSslPrefetchPrefix) == 0;
}

// What a worker knows about the request it runs (wsgi_call.cc, response.cc, environ.cc, script.cc).
struct Call {
    Call(InterpState &s, Request &r) : st(s), req(r) {}
    InterpState &st;
    Request &req;

    // From the REQUEST variables (views into the request payload).
    std::string_view script;          // the script to run: SCRIPT_FILENAME, or the handler script
    std::string_view handler_script;  // mod_wsgi.handler_script ('' when none)
    std::string_view resource;        // SCRIPT_FILENAME: what reload_required(resource) is asked about
    std::string_view callable;
    std::string_view application_type;  // mod_wsgi.application_type: '', 'asgi' or 'wsgi' (asgi_hub.cc)
    std::string_view method;
    std::string_view url_scheme;
    std::string_view remote_addr;
    std::string_view remote_port;
    bool reloading = false;
    bool head_method = false;  // REQUEST_METHOD HEAD: no body bytes are sent
    std::string_view request_id;      // mod_wsgi.request_id: names the request in log lines
    std::string_view uri;             // REQUEST_URI, for stack dumps
    uint64_t queue_start = 0;         // mod_wsgi.queue_start: when the Apache child sent it (µs)
    bool metered = false;             // counted as started in Metrics (metrics.h)
    uint64_t request_start = 0;
    std::string client;  // "[client addr:port] [request ID] ": the tag of the request's log lines

    // The response (response.cc).
    bool status_set = false;
    std::string head;  // HEAD payload, encoded and validated by start_response
    int64_t content_length = -1;
    bool head_queued = false;  // a HEAD frame is in `pending` or was posted
    bool head_posted = false;  // JavaScript has (or will have) the HEAD: an ERROR can no longer replace it
    uint64_t body_bytes = 0;
    bool over_length = false;
    bool failed = false;
    bool client_gone = false;
    bool expired = false;  // the request is over: start_response/write refuse
    bool restart = false;  // not run: its script changed and this daemon process restarts (GOAWAY)
    bool streamed = false; // REQUEST flag STREAMED: the child cannot send it again
    bool reload_wanted = false;  // run with a changed script's old code (streamed): the process restarts
    bool handed_off = false;  // an ASGI application: its group's event loop runs it (asgi_hub.cc)
    std::string pending;   // frames not yet posted
    std::string error_text;
    uint32_t error_status = 500;  // the ERROR frame's status (504: interrupted by RequestTimeout)
    PyRef errors;  // wsgi.errors as created (the app may replace it in environ)
    PyRef ssl;     // behind mod_ssl.is_https/var_lookup over SSL (expired when the call ends)
    SslPrefetch ssl_prefetch;
};

// --- interp.cc ---
// Creates the addon's state in the current interpreter (just created or the main one).
InterpState *interp_setup(Runtime &rt, const std::string &group, std::string *error);

// --- environ.cc ---
PyObject *build_environ(Call &call);

// --- script.cc ---
// The WSGI callable for the request's script (new reference), loading or reloading the script as
// needed. On failure returns null, logs why and sets call.error_text — or, in a named process group
// whose script changed, returns null with call.restart set (mod_wsgi restarts the daemon process).
PyObject *load_application(Call &call);
// WSGIImportScript: loads `script` into this interpreter; false with *error on failure.
bool preload_script(InterpState &st, const std::string &script, std::string *error);
// The module of a script, loaded or reloaded as for a request (new reference); null after logging
// why and setting *error.
PyObject *load_script_module(InterpState &st, const std::string &script, bool reloading, std::string_view client,
                             std::string *error);

// --- response.cc ---
PyObject *adapter_new(InterpState &st, Call *call);
void adapter_expire(PyObject *adapter);
// Body bytes from the application: 0 ok, -1 Python error set, 1 client gone.
int response_body(Call &call, const char *data, size_t n, bool flush);
int response_flush(Call &call);
// wsgi.file_wrapper fast path: 1 sent as a FILE frame, 0 not applicable (iterate it), -1 error set.
int response_send_file(Call &call, PyObject *wrapper);
// The last frames of the response (END, or ERROR when nothing was sent yet).
std::string response_finish(Call &call);
// A Content-Length value (digits, blanks around them, at most 18 digits); false when it is not one.
bool parse_content_length(std::string_view v, int64_t *out);

// --- interrupt.cc: mod_wsgi.RequestTimeout (interrupt-timeout) ---
// Creates this interpreter's RequestTimeout class (st.request_timeout) and adds it to the module.
bool request_timeout_install(InterpState &st, PyObject *module);
// When the pending exception is RequestTimeout: clears it, makes the request end with 504 (or, once
// its response began, truncated), logs one line and returns true. Otherwise false, exception kept.
bool request_timeout_caught(Call &call);

// --- wsgi_call.cc ---
// Runs one request (GIL held); returns the final frames for the caller to post once it released it:
// none when the group's ASGI event loop took the request over (asgi_hub.cc).
std::string run_request(InterpState &st, Request &req);

// --- ssl_vars.cc: mod_ssl.is_https and mod_ssl.var_lookup ---
PyTypeObject *ssl_vars_type_new();
// The object behind the two callables; `lookups`: the Apache child answers VAR_LOOKUP for `req`;
// `prefetched`: values it sent ahead (answered without asking; views into req's payload).
PyObject *ssl_vars_new(InterpState &st, std::shared_ptr<Request> req, bool https, bool lookups,
                       SslPrefetch prefetched = {});
// Puts its two callables into an environ under the given keys.
bool ssl_vars_install(PyObject *vars, PyObject *environ, PyObject *key_is_https, PyObject *key_var_lookup);
// The request is over: the callables raise "request object has expired" from now on.
void ssl_vars_expire(PyObject *vars);

// --- auth.cc: WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript ---
// The application group an AUTH payload names; false when the payload is malformed.
bool auth_scan(const std::vector<uint8_t> &payload, std::string *group);
// Runs the hook (GIL held); returns the AUTH_RESULT (or ERROR) frame for the caller to post.
std::string run_auth(InterpState &st, Request &req);

// --- input.cc ---
PyObject *input_new(InterpState &st, std::shared_ptr<Request> req);

// --- log_object.cc ---
// The tag of a request's log lines, "[client ADDR:PORT] [request ID] " (parts that are unknown left out).
std::string request_tag(std::string_view addr, std::string_view port, std::string_view request_id);
PyObject *log_new(InterpState &st, LogLevel level, std::string_view client, const char *name);
// Logs the unterminated last line of a log object made by log_new.
void log_object_flush(PyObject *log);
// Logs the pending Python exception: "Exception occurred processing WSGI script '...'." (when
// script is given) then its traceback, one line per line. Clears the exception.
void log_exception(InterpState &st, std::string_view script, std::string_view client = {});
// Logs the lines of a Python str (used for tracebacks and stack dumps).
void log_text_lines(const Logger &log, LogLevel level, std::string_view text, std::string_view client = {});

// Text of the pending exception ("Type: message"), for one-line messages: fetch clears it, peek keeps it.
std::string fetch_error_text();
std::string peek_error_text();

// --- file_wrapper.cc ---
PyTypeObject *file_wrapper_type_new();
PyObject *file_wrapper_filelike(PyObject *wrapper);  // borrowed

// --- the per-interpreter types, each in its file (input.cc, log_object.cc, response.cc, module.cc) ---
PyTypeObject *input_type_new();
PyTypeObject *log_type_new();
PyTypeObject *adapter_type_new();
PyTypeObject *restricted_type_new();

// --- module.cc ---
PyObject *restricted_new(InterpState &st, const char *what);
bool install_mod_wsgi_module(InterpState &st);

// --- metrics.cc: mod_wsgi.process_metrics() and mod_wsgi.request_metrics() ---
bool install_metrics_functions(InterpState &st, PyObject *module);

// --- log_handler.cc: mod_wsgi.LogHandler, Python logging at Apache's levels ---
bool install_log_handler(InterpState &st, PyObject *module);
// The tag of the request the calling worker thread runs ("" when none): LogHandler's lines carry it.
// Set for the duration of a request or hook by CurrentRequest.
class CurrentRequest {
public:
    explicit CurrentRequest(const std::string &tag);
    ~CurrentRequest();
    static const std::string *tag();
};
bool install_signal_restriction(InterpState &st);

// Accessors the Python objects need from the runtime (runtime.cc).
const Logger &runtime_logger(Runtime &rt);
class Metrics;
Metrics &runtime_metrics(Runtime &rt);
// The scripts this process loaded, across interpreters (script.cc records them, runtime.cc keeps them).
class ScriptRegistry;
ScriptRegistry &runtime_scripts(Runtime &rt);
const HostOptions &runtime_options(Runtime &rt);
// An application or hook ran out of memory (counted for Host::memory_errors()).
void runtime_note_memory_error(Runtime &rt);

// Converts a str to its latin-1 bytes without copying; false if it is not a str or not latin-1.
inline bool latin1_view(PyObject *s, std::string_view *out) {
    if (!PyUnicode_Check(s) || PyUnicode_READY(s) < 0 || PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND)
        return false;
    *out = std::string_view(reinterpret_cast<const char *>(PyUnicode_1BYTE_DATA(s)),
                            static_cast<size_t>(PyUnicode_GET_LENGTH(s)));
    return true;
}

}  // namespace modwsgi

#endif
