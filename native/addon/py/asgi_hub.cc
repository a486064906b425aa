// Which applications are ASGI, and where their requests go (asgi.h). A script's callable is looked at
// once, by the worker that loads it for its first request (or for WSGIImportScript): an ASGI one takes
// that request to its group's event loop, and later requests for it are routed there at submit(), on
// the JavaScript thread, without the GIL and without holding a worker thread.
#include "asgi_loop.h"

#include "runtime.h"

namespace modwsgi {

void route_note(RequestRoute &route, std::string_view name, std::string_view value) {
    switch (name.size()) {
    case 15:
        if (name == "SCRIPT_FILENAME" && route.script.empty())
            route.script = value;
        break;
    case 23:
        if (name == "mod_wsgi.handler_script" && !value.empty())
            route.script = value;  // a WSGIHandlerScript runs in place of the resource
        break;
    case 24:
        if (name == "mod_wsgi.callable_object")
            route.callable = value;
        break;
    case 25:
        if (name == "mod_wsgi.application_type")
            route.app_type = value;
        break;
    case 26:
        if (name == "mod_wsgi.application_group")
            route.group.assign(value);
        break;
    default:
        break;
    }
}

std::string asgi_app_key(std::string_view script, std::string_view callable) {
    std::string key;
    key.reserve(script.size() + 1 + callable.size() + 11);
    key.append(script).push_back('\0');
    key.append(callable.empty() ? std::string_view("application") : callable);
    return key;
}

namespace {

// The hub's key: an application as one alias sees it (application-type=asgi is remembered apart from
// auto, so that an alias that forces ASGI does not decide for another that does not).
std::string kind_key(std::string_view script, std::string_view callable, std::string_view app_type) {
    std::string key = asgi_app_key(script, callable);
    if (app_type == "asgi")
        key.append("\0asgi", 5);
    return key;
}

bool code_is_coroutine(PyObject *fn) {
    PyObject *code = PyFunction_GET_CODE(fn);
    return code && (reinterpret_cast<PyCodeObject *>(code)->co_flags & CO_COROUTINE) != 0;
}

// asyncio.iscoroutinefunction(obj), when asyncio is imported (it knows asgiref's and inspect's marks).
int marked_coroutine(PyObject *obj) {
    PyObject *asyncio = PyDict_GetItemString(PyImport_GetModuleDict(), "asyncio");
    if (!asyncio)
        return 0;
    PyRef fn(PyObject_GetAttrString(asyncio, "iscoroutinefunction"));
    PyRef r(fn ? PyObject_CallOneArg(fn.get(), obj) : nullptr);
    return r ? PyObject_IsTrue(r.get()) : -1;
}

}  // namespace

int asgi_is_application(PyObject *app) {
    // A coroutine function, or a bound method or functools.partial of one.
    PyObject *f = app;
    PyRef hold;
    for (int depth = 0; depth < 8; ++depth) {
        if (PyMethod_Check(f)) {
            f = PyMethod_GET_FUNCTION(f);
            continue;
        }
        if (PyFunction_Check(f)) {
            if (code_is_coroutine(f))
                return 1;
            break;
        }
        if (strcmp(Py_TYPE(f)->tp_name, "functools.partial") == 0) {
            PyObject *inner = PyObject_GetAttrString(f, "func");
            if (!inner)
                return -1;
            hold.reset(inner);
            f = inner;
            continue;
        }
        break;
    }
    int r = marked_coroutine(app);
    if (r != 0 || PyFunction_Check(app) || PyMethod_Check(app))
        return r;
    // An object whose __call__ is a coroutine function (Starlette, FastAPI, Django's ASGIHandler,
    // Channels' ProtocolTypeRouter).
    PyRef call(PyObject_GetAttrString(reinterpret_cast<PyObject *>(Py_TYPE(app)), "__call__"));
    if (!call) {
        PyErr_Clear();
        return 0;
    }
    if (PyFunction_Check(call.get()) && code_is_coroutine(call.get()))
        return 1;
    PyRef bound(PyObject_GetAttrString(app, "__call__"));
    if (!bound) {
        PyErr_Clear();
        return 0;
    }
    return marked_coroutine(bound.get());
}

AsgiHub::AsgiHub(Runtime &rt) : rt_(rt) {}

// Loops are ended by stop() and their threads are gone before the runtime is destroyed (it is leaked
// otherwise): nothing of Python is touched here.
AsgiHub::~AsgiHub() = default;

bool AsgiHub::route(const RequestRoute &route, const std::shared_ptr<Request> &req) {
    if (route.app_type == "wsgi" || route.script.empty())
        return false;
    AsgiLoop *loop;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_)
            return false;
        auto g = kinds_.find(route.group);
        if (g == kinds_.end())
            return false;
        auto k = g->second.find(kind_key(route.script, route.callable, route.app_type));
        if (k == g->second.end() || !k->second.asgi)
            return false;
        auto l = loops_.find(route.group);
        if (l == loops_.end())
            return false;
        loop = l->second.get();
    }
    req->attach_listener(loop);
    loop->push_request(req);
    return true;
}

void AsgiHub::learn(const std::string &group, std::string_view script, std::string_view callable,
                    std::string_view app_type, bool asgi) {
    std::string key = kind_key(script, callable, app_type);
    std::lock_guard<std::mutex> lock(mu_);
    Kind &k = kinds_[group][key];
    k.asgi = asgi;
    k.app = 0;  // a worker that loads it looks at it again
}

AsgiLoop *AsgiHub::loop_for(InterpState &st) {
    // `threading` takes the thread that first imports it for the interpreter's main thread: let that
    // be this worker, never the loop's thread, which uvloop would then take for the main thread (and
    // fail in signal.set_wakeup_fd()). Before the lock: an import may let another thread take the GIL,
    // and that one may be waiting for the lock.
    PyRef threading(PyImport_ImportModule("threading"));
    if (!threading)
        PyErr_Clear();
    std::lock_guard<std::mutex> lock(mu_);  // held with the GIL, around no Python call
    auto it = loops_.find(st.group);
    if (it != loops_.end())
        return it->second.get();
    auto loop = std::make_unique<AsgiLoop>(*this, rt_, st);
    AsgiLoop *p = loop.get();
    loops_.emplace(st.group, std::move(loop));
    // If it cannot start, it answers whatever it is given with a 500 (logged once).
    p->start();
    return p;
}

bool AsgiHub::take_over(Call &call, PyObject *app) {
    if (call.application_type == "wsgi")
        return false;
    InterpState &st = call.st;
    std::string key = kind_key(call.script, call.callable, call.application_type);
    const auto id = reinterpret_cast<uintptr_t>(app);
    int asgi = -1;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto g = kinds_.find(st.group);
        if (g != kinds_.end()) {
            auto k = g->second.find(key);
            if (k != g->second.end() && k->second.app == id)
                asgi = k->second.asgi ? 1 : 0;
        }
    }
    // Known WSGI: the common case, decided without looking at the object again. A new object (the
    // script was reloaded in place) is looked at afresh.
    if (asgi < 0) {
        asgi = call.application_type == "asgi" ? 1 : asgi_is_application(app);
        if (asgi < 0) {
            PyErr_Clear();
            asgi = 0;
        }
        std::lock_guard<std::mutex> lock(mu_);
        kinds_[st.group][key] = Kind{asgi == 1, id};
    }
    if (asgi != 1)
        return false;
    AsgiLoop *loop = loop_for(st);
    std::shared_ptr<Request> req = call.req.shared_from_this();
    // JavaScript learns first that the request holds no thread any more, then the loop may answer it.
    Event ev;
    ev.kind = Event::Kind::kDetached;
    ev.id = req->id();
    ev.req = req;
    rt_.sink().post(std::move(ev));
    req->attach_listener(loop);
    loop->push_request(std::move(req));
    return true;
}

bool AsgiHub::take_preload(InterpState &st, const std::string &script, double token) {
    std::string error;
    PyRef module(load_script_module(st, script, false, {}, &error));
    if (!module) {
        PyErr_Clear();
        return false;
    }
    PyRef app(PyObject_GetAttrString(module.get(), "application"));
    int asgi = app ? asgi_is_application(app.get()) : 0;
    if (asgi != 1) {
        PyErr_Clear();
        return false;
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        kinds_[st.group][kind_key(script, "application", "")] = Kind{true, reinterpret_cast<uintptr_t>(app.get())};
    }
    loop_for(st)->push_preload(token, script, "application");
    return true;
}

void AsgiHub::stop(std::chrono::steady_clock::time_point deadline) {
    std::vector<AsgiLoop *> loops;
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
        for (auto &l : loops_)
            loops.push_back(l.second.get());
    }
    for (AsgiLoop *l : loops)
        l->push_stop(deadline);
}

}  // namespace modwsgi
