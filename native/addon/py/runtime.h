// The one embedded Python of this process: interpreter startup, the application groups and their
// worker threads, the GIL watchdog, stack dumps and shutdown. Implements Host (host.h).
#ifndef MODWSGI_ADDON_RUNTIME_H
#define MODWSGI_ADDON_RUNTIME_H

#include "metrics.h"
#include "py_internal.h"
#include "script_registry.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace modwsgi {

class Group;
class AsgiHub;

class Runtime final : public Host {
public:
    Runtime(const HostOptions &options, std::shared_ptr<EventSink> sink);
    ~Runtime() override;

    bool init(std::string *error);  // JavaScript thread, once

    Submitted submit(std::shared_ptr<Request> req, bool loop_only) override;
    void submit_auth(std::shared_ptr<Request> req) override;
    void preload(double token, const std::string &script, const std::string &group) override;
    double last_gil_acquired() override;
    double memory_errors() override { return static_cast<double>(memory_errors_.load()); }
    void dump_stacks(const std::string &reason) override;
    bool interrupt(double id) override;
    bool shutdown(int timeout_ms) override;
    std::vector<std::pair<std::string, std::string>> loaded_scripts() override { return scripts_.list(); }
    void accept_script_changes(const std::vector<std::pair<std::string, int64_t>> &versions) override {
        scripts_.accept(versions);
    }
    ScriptRegistry &scripts() { return scripts_; }

    // The registry interrupt() looks in (watchdog.cc): a worker runs request `id` in `st` from now on,
    // or no longer. Both with that interpreter's GIL held; the second also drops a RequestTimeout that
    // was raised too late to reach the application.
    void running_begin(double id, InterpState &st);
    void running_end(double id);
    // A sub-interpreter was made with its own GIL (3.12+): the watchdog takes that GIL too.
    void own_gil_added(PyInterpreterState *interp);

    // A request ended in MemoryError (any thread): the daemon restarts under a memory limit.
    void note_memory_error() { memory_errors_.fetch_add(1); }

    const HostOptions &options() const { return options_; }
    // WSGIPerInterpreterGIL asked for and safe with this CPython: sub-interpreters get their own GIL.
    bool own_gil() const { return own_gil_; }
    const Logger &log() const { return log_; }
    Metrics &metrics() { return metrics_; }
    EventSink &sink() { return *sink_; }
    AsgiHub &asgi() { return *asgi_; }

    // Worker bookkeeping, so that shutdown knows when every thread it started is gone.
    void thread_started();
    void thread_exited();
    bool start_thread(void *(*fn)(void *), void *arg);

private:
    Group &group(const std::string &name);
    static void *watchdog_main(void *arg);
    void watchdog();
    static void *interrupter_main(void *arg);
    void interrupter();
    // The watchdog's thread states, one per interpreter it entered (watchdog.cc).
    using WatchStates = std::unordered_map<PyInterpreterState *, PyThreadState *>;
    PyThreadState *watch_state(WatchStates &states, PyInterpreterState *interp);
    void run_interrupts(WatchStates &states);
    void drop_states(WatchStates &states);
    static void *finalizer_main(void *arg);
    void finalize();

    const HostOptions options_;
    const std::shared_ptr<EventSink> sink_;
    const Logger log_;
    Metrics metrics_;

    PyThreadState *main_tstate_ = nullptr;  // the JavaScript thread's, saved after initialisation
    bool own_gil_ = false;                  // set by init(), read-only afterwards
    std::mutex groups_mu_;
    std::map<std::string, std::unique_ptr<Group>> groups_;
    std::unique_ptr<AsgiHub> asgi_;  // the ASGI event loops (asgi.h)

    ScriptRegistry scripts_;
    std::atomic<double> last_gil_ms_{0};
    std::atomic<uint64_t> memory_errors_{0};

    // Requests running Python now, for interrupt(); and the sub-interpreters with their own GIL.
    struct Running {
        InterpState *st;
        unsigned long thread;  // PyThread_get_thread_ident() of the worker
        bool interrupted;
    };
    std::mutex running_mu_;
    std::unordered_map<double, Running> running_;
    std::vector<PyInterpreterState *> own_gils_;
    std::deque<double> interrupts_;  // under mu_: asked for, not yet raised by the interrupter
    bool interrupter_started_ = false;  // under mu_

    // Thread lifetimes and shutdown. Owned by this instance (never static: see embedding notes).
    std::mutex mu_;
    std::condition_variable cv_;
    int live_threads_ = 0;
    bool stopping_ = false;
    bool finalizing_ = false;
    bool finalized_ = false;
    bool finalize_ok_ = false;
    bool shut_down_ = false;
    bool shutdown_result_ = false;
    std::chrono::steady_clock::time_point deadline_;
};

}  // namespace modwsgi

#endif
