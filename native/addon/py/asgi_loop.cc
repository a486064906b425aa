// An ASGI event loop's thread (asgi_loop.h): other threads queue work and write one eventfd; the loop,
// which watches it with add_reader, drains everything queued in one batch per wake-up.
#include "asgi_loop.h"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "asgi_frames.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

using namespace asgi_frames;

namespace {

void post_preload_done(Runtime &rt, double token, bool ok, const std::string &error) {
    Event ev;
    ev.kind = Event::Kind::kPreloadDone;
    ev.id = token;
    ev.ok = ok;
    ev.data = error;
    rt.sink().post(std::move(ev));
}

}  // namespace

AsgiLoop::AsgiLoop(AsgiHub &h, Runtime &r, InterpState &state) : hub(h), rt(r), st(state) {
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

// Python objects are released by the loop's thread before it exits (run()); nothing here needs the GIL.
AsgiLoop::~AsgiLoop() {
    if (efd_ >= 0)
        close(efd_);
}

bool AsgiLoop::start() {
    std::string why;
    if (efd_ < 0)
        why = "no eventfd";
    else if (!rt.start_thread(thread_main, this))
        why = "the thread could not be started";
    if (why.empty())
        return true;
    fail_all("Unable to start the ASGI event loop of application group '" + st.group + "': " + why + ".");
    return false;
}

void AsgiLoop::answer(Request &req, std::string &&frames) {
    req.finish();
    req.post_output(std::move(frames), true, -1);
}

void AsgiLoop::fail_all(const std::string &why) {
    std::vector<Item> items;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!failed_)
            rt.log().write(LogLevel::kError, kLogAsgiLoopFailed, why);
        failed_ = true;
        failure_ = why;
        items.swap(items_);
        woken_.clear();
    }
    refuse(items, error_frame(500, why), why);
}

void AsgiLoop::refuse(std::vector<Item> &items, const std::string &error, const std::string &preload_why) {
    for (Item &item : items) {
        if (item.kind == Item::Kind::kRequest)
            answer(*item.req, std::string(error));
        else if (item.kind == Item::Kind::kPreload)
            post_preload_done(rt, item.token, false, preload_why);
    }
}

void AsgiLoop::push(Item &&item) {
    bool pushed = false, wake = false;
    std::string why;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!failed_ && !exited_) {
            items_.push_back(std::move(item));
            pushed = true;
            wake = !signalled_;
            signalled_ = true;
        } else {
            why = failed_ ? failure_ : "Service Unavailable: the daemon process is shutting down";
        }
    }
    if (wake)
        wake_fd();
    if (pushed)
        return;
    // The loop failed or is gone: nothing will run this.
    if (item.kind == Item::Kind::kRequest)
        answer(*item.req, error_frame(why.rfind("Service", 0) == 0 ? 503 : 500, why));
    else if (item.kind == Item::Kind::kPreload)
        post_preload_done(rt, item.token, false, why);
}

void AsgiLoop::push_request(std::shared_ptr<Request> req) {
    Item item{Item::Kind::kRequest, std::move(req)};
    push(std::move(item));
}

void AsgiLoop::push_preload(double token, const std::string &script, const std::string &callable) {
    Item item{Item::Kind::kPreload, nullptr};
    item.token = token;
    item.script = script;
    item.callable = callable;
    push(std::move(item));
}

void AsgiLoop::push_stop(std::chrono::steady_clock::time_point deadline) {
    Item item{Item::Kind::kStop, nullptr};
    item.deadline = deadline;
    push(std::move(item));
}

void AsgiLoop::request_changed(const std::shared_ptr<Request> &req) {
    bool wake = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (req->wake_queued || failed_ || exited_)
            return;
        req->wake_queued = true;
        woken_.push_back(req);
        wake = !signalled_;
        signalled_ = true;
    }
    if (wake)
        wake_fd();
}

void AsgiLoop::wake_fd() {
    uint64_t one = 1;
    while (write(efd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void *AsgiLoop::thread_main(void *arg) {
    // SCHED_BATCH, as the workers (pool.cc): woken for a request, the loop does not preempt the
    // JavaScript thread that woke it, which goes on with the rest of its turn first.
    struct sched_param sp = {};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    static_cast<AsgiLoop *>(arg)->run();
    return nullptr;
}

PyObject *AsgiLoop::drain_entry(PyObject *self, PyObject *) {
    auto *loop = static_cast<AsgiLoop *>(PyCapsule_GetPointer(self, "mod_wsgi.asgi_loop"));
    if (!loop)
        return nullptr;
    loop->drain();
    Py_RETURN_NONE;
}

void AsgiLoop::drain() {
    uint64_t count;
    while (read(efd_, &count, sizeof count) < 0 && errno == EINTR) {
    }
    std::vector<Item> items;
    std::vector<std::shared_ptr<Request>> woken;
    {
        std::lock_guard<std::mutex> lock(mu_);
        items.swap(items_);
        woken.swap(woken_);
        signalled_ = false;
        for (auto &r : woken)
            r->wake_queued = false;
    }
    for (Item &item : items) {
        try {
            handle(item);
        } catch (const std::bad_alloc &) {
            PyErr_Clear();
            runtime_note_memory_error(rt);
            if (item.req)
                answer(*item.req, error_frame(500, "Out of memory."));
        }
        if (PyErr_Occurred()) {
            // A bug of ours, not of the application: say so and go on with the batch.
            runtime_logger(rt).write(LogLevel::kError, kLogAsgiLoopError, "Internal error in the ASGI event loop.");
            log_exception(st, {});
        }
    }
    for (auto &r : woken) {
        if (r->loop_kind == Request::LoopKind::kWebSocket)
            ws_wake(*this, *r);
        else
            http_wake(*this, *r);
        if (PyErr_Occurred()) {
            runtime_logger(rt).write(LogLevel::kError, kLogAsgiLoopError, "Internal error in the ASGI event loop.");
            log_exception(st, {});
        }
    }
}

void AsgiLoop::handle(Item &item) {
    switch (item.kind) {
    case Item::Kind::kRequest:
        apps_request(*this, std::move(item.req));
        break;
    case Item::Kind::kPreload:
        apps_preload(*this, item.token, item.script, item.callable);
        break;
    case Item::Kind::kStop:
        stop_now(item.deadline);
        break;
    }
}

// The daemon stops: lifespans that started get their shutdown within what is left of the time Python
// was given (less a margin for cancelling the rest and finalising), then the loop stops.
void AsgiLoop::stop_now(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count() - 0.4;
    PyRef lifespans(apps_lifespans(*this));
    PyRef stop(PyObject_GetAttrString(glue, "stop"));
    PyRef timeout(PyFloat_FromDouble(left > 0.05 ? left : 0.05));
    PyRef r(stop && lifespans && timeout ? PyObject_CallFunctionObjArgs(stop.get(), lifespans.get(), timeout.get(), nullptr)
                                         : nullptr);
    // Requests still waiting for a startup will not run.
    for (auto &entry : apps) {
        if (!entry.second)
            continue;
        for (auto &req : entry.second->waiting)
            answer(*req, error_frame(503, "Service Unavailable: the daemon process is shutting down"));
        entry.second->waiting.clear();
    }
}

void AsgiLoop::run() {
    PyThreadState *tstate = PyThreadState_New(st.interp);
    PyEval_RestoreThread(tstate);
    std::string failure = serve();
    // Whatever is still queued will not run; requests that were running are over.
    std::vector<Item> items;
    {
        std::lock_guard<std::mutex> lock(mu_);
        exited_ = true;
        if (!failure.empty()) {
            failed_ = true;
            failure_ = failure;
        }
        items.swap(items_);
        woken_.clear();
    }
    const std::string stopping = error_frame(503, "Service Unavailable: the daemon process is shutting down");
    refuse(items, stopping, failure.empty() ? "the daemon process is shutting down" : failure);
    for (auto &entry : apps) {
        if (!entry.second)
            continue;
        for (auto &req : entry.second->waiting)
            answer(*req, std::string(stopping));
        entry.second->waiting.clear();
    }
    apps.clear();
    for (PyObject *obj : live)
        Py_DECREF(obj);
    live.clear();
    for (auto &h : header_names)
        Py_DECREF(h.second);
    header_names.clear();
    Py_CLEAR(create_task);
    Py_CLEAR(create_future);
    Py_CLEAR(pyloop);
    Py_CLEAR(http_type);
    Py_CLEAR(ws_type);
    Py_CLEAR(disconnected);
    Py_CLEAR(http_main);
    Py_CLEAR(cancelled_error);
    Py_CLEAR(glue);
    PyErr_Clear();
    PyThreadState_Clear(tstate);
    PyThreadState_DeleteCurrent();
    rt.thread_exited();
}

// Sets up the interpreter's half (strings, types, the glue module) and runs the loop until it is
// stopped. Returns why it could not, or '' (GIL held; every reference it takes is released here).
std::string AsgiLoop::serve() {
    std::string failure;
    PyTypeObject *base = http_base_type_new();
    PyRef base_ref(reinterpret_cast<PyObject *>(base));
    PyTypeObject *ws_base = base ? ws_base_type_new() : nullptr;
    PyRef ws_base_ref(reinterpret_cast<PyObject *>(ws_base));
    PyRef capsule(PyCapsule_New(this, "mod_wsgi.asgi_loop", nullptr));
    static PyMethodDef drain_def = {"drain", drain_entry, METH_NOARGS, nullptr};
    PyRef drain_fn(capsule ? PyCFunction_New(&drain_def, capsule.get()) : nullptr);
    if (base && ws_base && drain_fn && http_strings_init(s))
        glue = asgi_glue_module(st, base, ws_base, capsule.get());
    PyRef run_fn(glue ? PyObject_GetAttrString(glue, "run") : nullptr);
    if (run_fn) {
        http_type = PyObject_GetAttrString(glue, "Http");
        ws_type = PyObject_GetAttrString(glue, "WebSocket");
        disconnected = PyObject_GetAttrString(glue, "ClientDisconnected");
        http_main = http_type ? PyObject_GetAttrString(http_type, "_main") : nullptr;
        PyRef asyncio(PyImport_ImportModule("asyncio"));
        cancelled_error = asyncio ? PyObject_GetAttrString(asyncio.get(), "CancelledError") : nullptr;
    }
    if (http_type && ws_type && disconnected && http_main && cancelled_error) {
        const HostOptions &o = rt.options();
        PyRef r(PyObject_CallFunction(run_fn.get(), "iOiOs", efd_, drain_fn.get(), o.threads,
                                      o.asgi_uvloop ? Py_True : Py_False,
                                      st.group.empty() ? "%{GLOBAL}" : st.group.c_str()));
        if (!r)
            failure = "the ASGI event loop of application group '" + st.group + "' failed";
    } else {
        failure = "Unable to start the ASGI event loop of application group '" + st.group + "'";
    }
    if (PyErr_Occurred()) {
        failure += ": " + peek_error_text();
        runtime_logger(rt).write(LogLevel::kError, kLogAsgiLoopFailed, failure + ".");
        log_exception(st, {});
    }
    return failure;
}

}  // namespace modwsgi
