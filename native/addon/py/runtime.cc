#include "runtime.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "asgi.h"
#include "crash_trace.h"
#include "pool.h"
#include "stacks.h"
#include "subinterp.h"
#include "wsgi_wire.h"

namespace modwsgi {

namespace {

// CPython supports one runtime per process, and not a second initialisation after finalising: this
// flag is the only process-wide state of the addon, forced by CPython itself.
std::atomic<bool> python_claimed{false};

double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Node loads addons RTLD_LOCAL, which hides libpython's symbols from the C extension modules Python
// loads later (_json, _ctypes, _ssl...). Reopen the already loaded libpython RTLD_GLOBAL.
bool promote_libpython(std::string *error) {
    Dl_info info;
    if (!dladdr(reinterpret_cast<void *>(&Py_InitializeFromConfig), &info) || !info.dli_fname) {
        *error = "cannot locate libpython (dladdr failed)";
        return false;
    }
    // The handle is deliberately never closed: libpython stays global for the life of the process.
    if (!dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) {
        const char *e = dlerror();
        *error = std::string("cannot make libpython global: ") + (e ? e : info.dli_fname);
        return false;
    }
    return true;
}

bool status_failed(const PyStatus &status, const char *what, std::string *error) {
    if (!PyStatus_Exception(status))
        return false;
    *error = std::string(what) + ": " + (status.err_msg ? status.err_msg : "failed");
    if (status.func)
        *error += std::string(" (") + status.func + ")";
    return true;
}

// Checks the structure of a REQUEST payload and finds its application group, script and callable.
bool scan_request(const std::vector<uint8_t> &payload, RequestRoute *route) {
    wsgi_reader r;
    wsgi_reader_init(&r, payload.data(), payload.size());
    wsgi_read_u32(&r);
    wsgi_read_u64(&r);
    uint32_t count = wsgi_read_u32(&r);
    for (uint32_t i = 0; i < count && r.ok; ++i) {
        const char *name, *value;
        uint32_t nlen, vlen;
        wsgi_read_string(&r, &name, &nlen);
        wsgi_read_string(&r, &value, &vlen);
        if (r.ok)
            route_note(*route, std::string_view(name, nlen), std::string_view(value, vlen));
    }
    return r.ok && r.left == 0;
}

}  // namespace

std::unique_ptr<Host> start_host(const HostOptions &options, std::shared_ptr<EventSink> sink,
                                 std::string *error) {
    bool expected = false;
    if (!python_claimed.compare_exchange_strong(expected, true)) {
        *error = "Python is already initialised in this process (one bridge per process)";
        return nullptr;
    }
    auto rt = std::make_unique<Runtime>(options, std::move(sink));
    if (!rt->init(error)) {
        // A half-initialised CPython cannot be retried or torn down safely: leave it be.
        (void)rt.release();
        return nullptr;
    }
    return rt;
}

const Logger &runtime_logger(Runtime &rt) { return rt.log(); }
Metrics &runtime_metrics(Runtime &rt) { return rt.metrics(); }
const HostOptions &runtime_options(Runtime &rt) { return rt.options(); }
void runtime_note_memory_error(Runtime &rt) { rt.note_memory_error(); }
ScriptRegistry &runtime_scripts(Runtime &rt) { return rt.scripts(); }
AsgiHub &runtime_asgi(Runtime &rt) { return rt.asgi(); }

Runtime::Runtime(const HostOptions &options, std::shared_ptr<EventSink> sink)
    : options_(options), sink_(std::move(sink)), log_(options.log_level, options.verbose), metrics_(options.threads),
      asgi_(std::make_unique<AsgiHub>(*this)) {}

Runtime::~Runtime() = default;

bool Runtime::init(std::string *error) {
    log_.step(kLogInitializing, "Initializing Python.");
    if (!promote_libpython(error)) {
        log_.write(LogLevel::kError, kLogInitFailed, "Python initialisation failed: " + *error);
        return false;
    }

    // Like mod_wsgi's Py_Initialize(): the locale comes from LANG/LC_* (the daemon's lang/locale
    // options), no UTF-8 mode forced. Everything else is isolated from the environment.
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.configure_locale = 1;
    pre.utf8_mode = 0;
    if (status_failed(Py_PreInitialize(&pre), "Py_PreInitialize", error)) {
        log_.write(LogLevel::kError, kLogInitFailed, "Python initialisation failed: " + *error);
        return false;
    }

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;  // Node owns the signal handlers
    config.parse_argv = 0;
    config.site_import = 1;
    config.optimization_level = options_.optimize;
    config.write_bytecode = options_.dont_write_bytecode ? 0 : 1;
    if (options_.hash_seed_mode == HostOptions::HashSeed::kFixed) {
        config.use_hash_seed = 1;
        config.hash_seed = options_.hash_seed;
    }
    bool ok = !status_failed(PyConfig_SetBytesString(&config, &config.program_name, options_.program_name.c_str()),
                             "program name", error);
    if (ok && !options_.home.empty()) {
        // A virtualenv is found through its bin/python (program_name) and pyvenv.cfg; setting home
        // to it would lose the standard library. Anything else is a real prefix: that is home.
        struct stat sb;
        if (stat((options_.home + "/pyvenv.cfg").c_str(), &sb) != 0)
            ok = !status_failed(PyConfig_SetBytesString(&config, &config.home, options_.home.c_str()), "python home",
                                error);
    }
    for (size_t i = 0; ok && i < options_.warnings.size(); ++i) {
        wchar_t *w = Py_DecodeLocale(options_.warnings[i].c_str(), nullptr);
        if (!w) {
            *error = "cannot decode warning option '" + options_.warnings[i] + "'";
            ok = false;
            break;
        }
        ok = !status_failed(PyWideStringList_Append(&config.warnoptions, w), "warnings", error);
        PyMem_RawFree(w);
    }
    if (ok)
        ok = !status_failed(Py_InitializeFromConfig(&config), "Py_InitializeFromConfig", error);
    PyConfig_Clear(&config);
    if (!ok) {
        log_.write(LogLevel::kError, kLogInitFailed, "Python initialisation failed: " + *error);
        return false;
    }
    if (options_.per_interpreter_gil && kOwnGilSupported) {
        const std::string why = own_gil_unsafe();
        own_gil_ = why.empty();
        if (!own_gil_)
            log_.write(LogLevel::kWarn, kLogOwnGilUnsafe,
                       "WSGIPerInterpreterGIL On is ignored: " + why + "; sub-interpreters share the GIL.");
    }
    // switch-interval: the main GIL's (a sub-interpreter with its own GIL gets it when made).
    if (options_.switch_interval > 0)
        apply_switch_interval(log_, options_.switch_interval, "process '" + options_.process_group + "'");
    // The JavaScript thread never holds the GIL again: workers and the watchdog take it as needed.
    main_tstate_ = PyEval_SaveThread();
    last_gil_ms_.store(now_ms());
    if (!start_thread(watchdog_main, this))
        log_.write(LogLevel::kError, kLogThreadFailed, "Unable to start the GIL watchdog thread.");

    return true;
}

bool Runtime::start_thread(void *(*fn)(void *), void *arg) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (options_.stack_size)
        pthread_attr_setstacksize(&attr, std::max<size_t>(options_.stack_size, PTHREAD_STACK_MIN));
    // Asynchronous signals belong to Node's main thread: the new thread starts with them blocked.
    sigset_t all, old;
    sigfillset(&all);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS})
        sigdelset(&all, s);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    thread_started();
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        thread_exited();
        return false;
    }
    return true;
}

void Runtime::thread_started() {
    std::lock_guard<std::mutex> lock(mu_);
    ++live_threads_;
}

void Runtime::thread_exited() {
    std::lock_guard<std::mutex> lock(mu_);
    --live_threads_;
    cv_.notify_all();
}

Group &Runtime::group(const std::string &name) {
    std::lock_guard<std::mutex> lock(groups_mu_);
    auto it = groups_.find(name);
    if (it == groups_.end())
        it = groups_.emplace(name, std::make_unique<Group>(*this, name)).first;
    return *it->second;
}

Host::Submitted Runtime::submit(std::shared_ptr<Request> req, bool loop_only) {
    RequestRoute route;
    if (!scan_request(req->payload(), &route))
        throw std::invalid_argument("malformed REQUEST payload");
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_)
            throw std::runtime_error("the Python bridge is shut down");
    }
    // An application known to be ASGI: its group's event loop takes the request (asgi_hub.cc).
    if (asgi_->route(route, req))
        return Submitted::kLoop;
    if (loop_only)
        return Submitted::kDeclined;
    Job job;
    job.kind = Job::Kind::kRequest;
    job.req = std::move(req);
    group(route.group).push(std::move(job));
    return Submitted::kWorker;
}

void Runtime::submit_auth(std::shared_ptr<Request> req) {
    std::string group_name;
    if (!auth_scan(req->payload(), &group_name))
        throw std::invalid_argument("malformed AUTH payload");
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_)
            throw std::runtime_error("the Python bridge is shut down");
    }
    Job job;
    job.kind = Job::Kind::kAuth;
    job.req = std::move(req);
    group(group_name).push(std::move(job));
}

void Runtime::preload(double token, const std::string &script, const std::string &group_name) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_)
            throw std::runtime_error("the Python bridge is shut down");
    }
    Job job;
    job.kind = Job::Kind::kPreload;
    job.token = token;
    job.script = script;
    group(group_name).push(std::move(job));
}

double Runtime::last_gil_acquired() { return last_gil_ms_.load(); }

void Runtime::dump_stacks(const std::string &reason) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (finalizing_)
            return;
    }
    log_.write(LogLevel::kError, kLogStackDump, "Dump of Python stacks requested: " + reason);
    int fd = memfd_create("mod_wsgi-stacks", MFD_CLOEXEC);
    if (fd < 0) {
        log_.write(LogLevel::kError, kLogStackDumpFailed, "Unable to dump Python stacks: no temporary file.");
        return;
    }
    std::vector<StackTarget> targets;
    {
        std::lock_guard<std::mutex> lock(groups_mu_);
        for (auto &g : groups_) {
            PyInterpreterState *interp = g.first.empty() ? PyInterpreterState_Main() : g.second->interpreter();
            if (interp)
                targets.push_back({interp, g.first});
        }
    }
    // The main interpreter has threads of ours (the watchdog) even when no request used it.
    if (targets.empty() || targets.front().interp != PyInterpreterState_Main())
        targets.insert(targets.begin(), StackTarget{PyInterpreterState_Main(), ""});
    write_stacks(*this, fd, targets, 2000);
    std::string text;
    char buf[8192];
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        text.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    // Each busy worker's "Thread 0x..." line says which request it serves and for how long.
    log_text_lines(log_, LogLevel::kError, metrics_.annotate(text));
}

bool Runtime::shutdown(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    if (shut_down_)
        return shutdown_result_;
    shut_down_ = true;
    stopping_ = true;
    // Idle workers need a moment to notice, even with a zero timeout.
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 200));
    cv_.notify_all();
    lock.unlock();
    // The finaliser starts before any worker is told to stop. Started after one exited, it could be
    // given that worker's thread id, and `threading` would then take it for its main thread.
    if (!start_thread(finalizer_main, this)) {
        log_.write(LogLevel::kError, kLogThreadFailed, "Unable to start the finalisation thread.");
        return false;
    }
    // ASGI event loops: lifespan shutdowns, then they stop, within the deadline (asgi_loop.cc).
    asgi_->stop(deadline_);
    {
        std::lock_guard<std::mutex> glock(groups_mu_);
        for (auto &g : groups_)
            g.second->stop();
    }
    lock.lock();
    // A little past the deadline, so that a finaliser giving up at the deadline is heard from.
    if (!cv_.wait_until(lock, deadline_ + std::chrono::milliseconds(50), [this] { return finalized_; })) {
        lock.unlock();
        log_.write(LogLevel::kWarn, kLogShutdownTimeout,
                   "Python finalisation did not finish within the shutdown timeout (an application thread may "
                   "still be running).");
        return false;
    }
    shutdown_result_ = finalize_ok_;
    return shutdown_result_;
}

void *Runtime::finalizer_main(void *arg) {
    static_cast<Runtime *>(arg)->finalize();
    return nullptr;
}

namespace {

// Calls module.function() if the module was imported; errors are printed and cleared.
void call_if_imported(const char *module, const char *function) {
    PyObject *modules = PyImport_GetModuleDict();
    PyObject *m = PyDict_GetItemString(modules, module);
    if (!m)
        return;
    PyObject *r = PyObject_CallMethod(m, function, nullptr);
    if (!r)
        PyErr_Print();
    Py_XDECREF(r);
}

bool only_thread(PyInterpreterState *interp, PyThreadState *tstate) {
    return PyInterpreterState_ThreadHead(interp) == tstate && PyThreadState_Next(tstate) == nullptr;
}

}  // namespace

// Runs on its own thread so that shutdown() can give up on it: ends each sub-interpreter, then
// finalises the main one. Every worker has already deleted its thread states.
void Runtime::finalize() {
    {
        std::unique_lock<std::mutex> lock(mu_);
        // Every other thread of ours (workers, watchdog) must be gone: finalising under a running
        // worker would pull its thread state away mid-request.
        if (!cv_.wait_until(lock, deadline_, [this] { return live_threads_ == 1; })) {
            int busy = live_threads_ - 1;
            finalized_ = true;
            finalize_ok_ = false;
            --live_threads_;
            cv_.notify_all();
            lock.unlock();
            log_.write(LogLevel::kWarn, kLogShutdownBusy,
                       std::to_string(busy) + " worker thread(s) still busy at shutdown: Python is not finalised.");
            return;
        }
        finalizing_ = true;
    }
    crash_trace_arm("Python finalisation (ending interpreters, Py_FinalizeEx)");
    PyThreadState *tstate = PyThreadState_New(PyInterpreterState_Main());
    PyEval_RestoreThread(tstate);
    struct Sub {
        std::string name;
        PyInterpreterState *interp;
        PyThreadState *keeper;
    };
    std::vector<Sub> subs;
    {
        std::lock_guard<std::mutex> lock(groups_mu_);
        for (auto &g : groups_)
            if (!g.first.empty() && g.second->interpreter() && g.second->keeper())
                subs.push_back({g.first, g.second->interpreter(), g.second->keeper()});
    }
    bool all_ended = true;
    for (Sub &sub : subs) {
        switch_to(sub.keeper);  // its GIL may be its own
        if (!only_thread(sub.interp, sub.keeper))
            call_if_imported("threading", "_shutdown");  // joins non-daemon threads, as Py_EndInterpreter would
        if (!only_thread(sub.interp, sub.keeper)) {
            // Daemon threads still run Python here; ending the interpreter would abort the process.
            call_if_imported("atexit", "_run_exitfuncs");
            log_.write(LogLevel::kWarn, kLogInterpNotEnded,
                       "Interpreter '" + sub.name + "' still has running threads: it is not destroyed.");
            all_ended = false;
            switch_to(tstate);
            continue;
        }
        log_.step(kLogDestroyInterp, "Destroy interpreter '" + sub.name + "'.");
        end_subinterpreter(sub.keeper, tstate);
    }
    bool ok = false;
    if (all_ended) {
        log_.step(kLogDestroyInterp, "Destroy interpreter '%{GLOBAL}' (finalising Python).");
#if PY_VERSION_HEX >= 0x030D0000
        // CPython 3.13 finalises with the runtime's main thread state (resolve_final_tstate), the one
        // Py_InitializeFromConfig made on the JavaScript thread, whichever thread calls Py_FinalizeEx:
        // it would free ours, still current, as "another thread's" and then use it (a crash at exit
        // now and then, when the freed memory was reused). So finalise with that one current.
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent();
        // Made this thread's PyGILState thread state as it is attached (it was the JavaScript
        // thread's, which never calls into Python again): an extension that calls PyGILState_Ensure
        // while Python is finalised (an atexit function, a destructor) finds it instead of making a
        // second thread state, which would be a fatal error with this one current.
        main_tstate_->_status.bound_gilstate = 0;
        PyEval_RestoreThread(main_tstate_);
#endif
        ok = Py_FinalizeEx() == 0;
    } else {
        // Py_FinalizeEx would abort on the remaining sub-interpreters: run the exit functions only.
        call_if_imported("threading", "_shutdown");
        call_if_imported("atexit", "_run_exitfuncs");
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent();
    }
    std::lock_guard<std::mutex> lock(mu_);
    finalized_ = true;
    finalize_ok_ = ok && all_ended;
    cv_.notify_all();
    --live_threads_;
}

}  // namespace modwsgi
