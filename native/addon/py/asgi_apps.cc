// The applications of an ASGI loop (asgi_loop.h): each request's script is loaded as for a WSGI request
// (WSGIScriptReloading, reload_required(), a restart of a named process group when it changed), and an
// application's lifespan startup completes before its first request runs: at WSGIImportScript time for
// preloaded scripts, else when its first request arrives (that request, and any arriving meanwhile,
// wait for it). A failed startup answers those requests with 500 and is tried again by the next one;
// a preload's failure stops the daemon before it serves (main.ts).
#include "asgi_loop.h"

#include "asgi_frames.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

using namespace asgi_frames;

namespace {

void preload_done(AsgiLoop &loop, double token, bool ok, bool fatal, const std::string &error) {
    Event ev;
    ev.kind = Event::Kind::kPreloadDone;
    ev.id = token;
    ev.ok = ok;
    ev.fatal = fatal;
    ev.data = error;
    loop.rt.sink().post(std::move(ev));
}

std::string label_of(std::string_view script, std::string_view callable) {
    return "'" + std::string(callable.empty() ? std::string_view("application") : callable) + "' of script '" +
           std::string(script) + "'";
}

// Makes `a` the entry of `app`: a new application, or a script reloaded in place (its new callable
// gets its own lifespan; the old one's is shut down in the background).
void adopt(AsgiLoop &loop, AsgiApp &a, PyObject *app, const std::string &key, std::string label) {
    if (a.lifespan) {
        PyRef shutdown(PyObject_CallMethod(a.lifespan.get(), "shutdown", nullptr));
        PyRef task(shutdown ? PyObject_CallOneArg(loop.create_task, shutdown.get()) : nullptr);
        if (!task)
            PyErr_Clear();
    }
    for (auto &req : a.waiting)
        loop.answer(*req, error_frame(503, "Service Unavailable: the ASGI application was reloaded"));
    a.waiting.clear();
    a.key = key;
    a.label = std::move(label);
    Py_INCREF(app);
    a.app.reset(app);
    a.state.reset();
    a.lifespan.reset();
    a.startup = AsgiApp::Startup::kNone;
    // An application that uses asgiref (Django, Channels): its thread-sensitive sync code gets a
    // thread of the group's pool per request (glue.SyncThreads).
    a.runner.reset();
    if (PyDict_GetItemString(PyImport_GetModuleDict(), "asgiref.sync")) {
        PyRef r(PyObject_CallMethod(loop.glue, "sync_runner", "i", loop.rt.options().threads));
        if (r && r.get() != Py_None)
            a.runner = std::move(r);
        PyErr_Clear();
    }
}

// The entry of `app` under `key`: the one the key has, else one another key has for the same object,
// else a new one. *fresh: the caller must adopt() the object into it.
AsgiApp &entry_for(AsgiLoop &loop, const std::string &key, PyObject *app, bool *fresh) {
    *fresh = false;
    std::shared_ptr<AsgiApp> &slot = loop.apps[key];
    if (slot && slot->app.get() == app)
        return *slot;
    for (auto &e : loop.apps)
        if (e.second && e.second != slot && e.second->app.get() == app) {
            slot = e.second;
            return *slot;
        }
    if (!slot)
        slot = std::make_shared<AsgiApp>();
    *fresh = true;
    return *slot;
}

// An http scope, or a websocket scope for a WebSocket upgrade the Apache child can carry.
void start(AsgiLoop &loop, AsgiApp &a, std::shared_ptr<Request> req, HttpVars &vars) {
    if (vars.flags & WSGI_REQUEST_UPGRADE)
        ws_start(loop, a, std::move(req), vars);
    else
        http_start(loop, a, std::move(req), vars);
}

// Runs the request now that its application is ready.
void run(AsgiLoop &loop, AsgiApp &a, std::shared_ptr<Request> req) {
    HttpVars vars;
    if (!http_vars_parse(req->payload(), &vars)) {
        loop.answer(*req, error_frame(500, "malformed REQUEST payload"));
        return;
    }
    start(loop, a, std::move(req), vars);
}

// Starts the application's lifespan; apps_lifespan_ready() hears how it went.
void begin_startup(AsgiLoop &loop, AsgiApp &a) {
    a.startup = AsgiApp::Startup::kRunning;
    a.state.reset(PyDict_New());
    PyRef cls(a.state ? PyObject_GetAttrString(loop.glue, "Lifespan") : nullptr);
    PyRef label(PyUnicode_DecodeUTF8(a.label.data(), static_cast<Py_ssize_t>(a.label.size()), "replace"));
    PyRef lifespan(cls && label ? PyObject_CallFunctionObjArgs(cls.get(), a.app.get(), a.state.get(), label.get(), nullptr)
                                : nullptr);
    PyRef ready(PyObject_GetAttrString(loop.glue, "_lifespan_ready"));
    PyRef r(lifespan && ready ? PyObject_CallMethod(lifespan.get(), "begin", "O", ready.get()) : nullptr);
    if (r) {
        a.lifespan = std::move(lifespan);
        return;
    }
    // Not even started: serve without lifespan, as for an application that does not support it.
    runtime_logger(loop.rt).write(LogLevel::kError, kLogAsgiStartupFailed,
                                  "Unable to run the ASGI lifespan of " + a.label + "; served without it.");
    log_exception(loop.st, {});
    if (!a.state) {
        PyErr_Clear();
        a.state.reset(PyDict_New());
    }
    a.startup = AsgiApp::Startup::kDone;
    std::vector<std::shared_ptr<Request>> waiting;
    waiting.swap(a.waiting);
    for (auto &req : waiting)
        run(loop, a, std::move(req));
}

}  // namespace

void apps_request(AsgiLoop &loop, std::shared_ptr<Request> req) {
    HttpVars vars;
    if (!http_vars_parse(req->payload(), &vars)) {
        loop.answer(*req, error_frame(500, "malformed REQUEST payload"));
        return;
    }
    // Loaded (or reloaded) exactly as for a WSGI request.
    Call call(loop.st, *req);
    call.resource = vars.script;
    call.handler_script = vars.handler_script;
    call.script = vars.handler_script.empty() ? vars.script : vars.handler_script;
    call.callable = vars.callable.empty() ? std::string_view("application") : vars.callable;
    call.reloading = vars.reloading == "1";
    call.client = vars.client;
    PyRef app(load_application(call));
    if (!app) {
        PyErr_Clear();
        if (call.restart)
            loop.answer(*req, empty_frame(WSGI_FRAME_GOAWAY));  // this process restarts; the child retries
        else
            loop.answer(*req, error_frame(500, call.error_text.empty() ? "Internal Server Error" : call.error_text, true));
        return;
    }
    std::string key = asgi_app_key(call.script, call.callable);
    bool fresh;
    AsgiApp &a = entry_for(loop, key, app.get(), &fresh);
    if (fresh) {
        // First seen here, or reloaded in place: still ASGI?
        int asgi = vars.app_type == "asgi" ? 1 : asgi_is_application(app.get());
        if (asgi != 1) {
            PyErr_Clear();
            runtime_logger(loop.rt).write(LogLevel::kInfo, kLogAsgiKindChanged,
                                          "The callable " + label_of(call.script, call.callable) +
                                              " is not an ASGI application any more: the daemon process restarts to "
                                              "serve it as WSGI.",
                                          vars.client);
            loop.hub.learn(loop.st.group, call.script, call.callable, vars.app_type, false);
            loop.answer(*req, empty_frame(WSGI_FRAME_GOAWAY));
            return;
        }
        adopt(loop, a, app.get(), key, label_of(call.script, call.callable));
    }
    switch (a.startup) {
    case AsgiApp::Startup::kDone:
        start(loop, a, std::move(req), vars);
        return;
    case AsgiApp::Startup::kRunning:
        a.waiting.push_back(std::move(req));
        return;
    case AsgiApp::Startup::kNone:
        a.waiting.push_back(std::move(req));
        begin_startup(loop, a);
        return;
    }
}

void apps_preload(AsgiLoop &loop, double token, const std::string &script, const std::string &callable) {
    std::string error;
    PyRef module(load_script_module(loop.st, script, false, {}, &error));
    PyRef app(module ? PyObject_GetAttrString(module.get(), callable.c_str()) : nullptr);
    if (!app) {
        if (error.empty())
            error = peek_error_text();
        PyErr_Clear();
        preload_done(loop, token, false, false, error);
        return;
    }
    std::string key = asgi_app_key(script, callable);
    bool fresh;
    AsgiApp &a = entry_for(loop, key, app.get(), &fresh);
    if (fresh)
        adopt(loop, a, app.get(), key, label_of(script, callable));
    switch (a.startup) {
    case AsgiApp::Startup::kDone:
        preload_done(loop, token, true, false, {});
        return;
    case AsgiApp::Startup::kRunning:
        a.preloads.push_back(token);
        return;
    case AsgiApp::Startup::kNone:
        a.preloads.push_back(token);
        begin_startup(loop, a);
        return;
    }
}

PyObject *apps_lifespan_ready(AsgiLoop &loop, PyObject *lifespan, PyObject *status, PyObject *message) {
    AsgiApp *a = nullptr;
    for (auto &entry : loop.apps)
        if (entry.second && entry.second->lifespan.get() == lifespan)
            a = entry.second.get();
    if (!a || a->startup != AsgiApp::Startup::kRunning)
        Py_RETURN_NONE;  // an application replaced meanwhile (reloaded)
    const Logger &log = runtime_logger(loop.rt);
    std::vector<std::shared_ptr<Request>> waiting;
    waiting.swap(a->waiting);
    std::vector<double> preloads;
    preloads.swap(a->preloads);
    if (PyUnicode_CompareWithASCIIString(status, "failed") == 0) {
        Py_ssize_t n = 0;
        const char *text = PyUnicode_AsUTF8AndSize(message, &n);
        std::string why = text ? std::string(text, static_cast<size_t>(n)) : std::string();
        PyErr_Clear();
        // The message is often a whole traceback (Starlette's): its lines follow the one that says what.
        log.write(LogLevel::kError, kLogAsgiStartupFailed,
                  "ASGI lifespan startup of " + a->label + " failed" + (why.empty() ? "." : ":"));
        if (!why.empty())
            log_text_lines(log, LogLevel::kError, why);
        for (auto &req : waiting)
            loop.answer(*req, error_frame(500, "ASGI lifespan startup of " + a->label + " failed"));
        for (double token : preloads)
            preload_done(loop, token, false, true, "ASGI lifespan startup of " + a->label + " failed");
        // The next request tries again, with a new lifespan.
        a->startup = AsgiApp::Startup::kNone;
        a->lifespan.reset();
        Py_RETURN_NONE;
    }
    if (PyUnicode_CompareWithASCIIString(status, "complete") == 0)
        log.write(LogLevel::kInfo, kLogAsgiStartupDone, "ASGI lifespan startup of " + a->label + " complete.");
    a->startup = AsgiApp::Startup::kDone;
    for (double token : preloads)
        preload_done(loop, token, true, false, {});
    for (auto &req : waiting)
        run(loop, *a, std::move(req));
    Py_RETURN_NONE;
}

PyObject *apps_lifespans(AsgiLoop &loop) {
    PyRef list(PyList_New(0));
    if (!list)
        return nullptr;
    std::unordered_set<AsgiApp *> seen;
    for (auto &entry : loop.apps) {
        AsgiApp *a = entry.second.get();
        if (!a || !seen.insert(a).second)
            continue;
        if (a->startup == AsgiApp::Startup::kDone && a->lifespan && PyList_Append(list.get(), a->lifespan.get()) < 0)
            return nullptr;
    }
    return list.release();
}

}  // namespace modwsgi
