// The watchdog thread of the runtime, and the interrupter thread of interrupt-timeout.
//
// The watchdog takes every GIL of the process in turn once a second (the main one, and each
// sub-interpreter's own with WSGIPerInterpreterGIL) and stamps the time: the daemon's deadlock-timeout
// reads the stamp, so a GIL held forever, whichever it is, stops the stamps.
//
// The interrupter raises mod_wsgi.RequestTimeout in the thread of a request the daemon asked to
// interrupt (Host::interrupt, from the JavaScript thread, which never waits for a GIL): it enters the
// request's interpreter with a thread state of its own, takes that interpreter's GIL and calls
// PyThreadState_SetAsyncExc on the worker. It is a thread of its own so that it never waits behind the
// watchdog: on CPython 3.12 a thread waiting for the shared GIL with a thread state of one interpreter
// is not heard by a thread computing in another (the GIL's drop request is per interpreter there), and
// only a waiter in the request's own interpreter gets the GIL from a request that computes. Workers
// register the request they run (running_begin) and unregister it (running_end) holding that same GIL,
// so the interrupter sees either a request still in its worker or none: a RequestTimeout can never
// reach the next request of the same thread (one that arrived too late is dropped by running_end).
#include "runtime.h"

#include <time.h>

#include "pool.h"

namespace modwsgi {

namespace {

double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

void *Runtime::watchdog_main(void *arg) {
    static_cast<Runtime *>(arg)->watchdog();
    return nullptr;
}

void *Runtime::interrupter_main(void *arg) {
    static_cast<Runtime *>(arg)->interrupter();
    return nullptr;
}

PyThreadState *Runtime::watch_state(WatchStates &states, PyInterpreterState *interp) {
    auto it = states.find(interp);
    if (it != states.end())
        return it->second;
    // No GIL needed to make one. A sub-interpreter always has its keeper thread state, so this is never
    // the first of its interpreter (3.11 aborts on that).
    PyThreadState *ts = PyThreadState_New(interp);
    if (ts)
        states.emplace(interp, ts);
    return ts;
}

void Runtime::watchdog() {
    WatchStates states;
    PyThreadState *main_ts = watch_state(states, PyInterpreterState_Main());
    std::vector<PyInterpreterState *> gils;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
        lock.unlock();
        PyEval_RestoreThread(main_ts);
        PyEval_SaveThread();
        {
            std::lock_guard<std::mutex> rlock(running_mu_);
            gils = own_gils_;
        }
        for (PyInterpreterState *interp : gils) {
            if (PyThreadState *ts = watch_state(states, interp)) {
                PyEval_RestoreThread(ts);
                PyEval_SaveThread();
            }
        }
        last_gil_ms_.store(now_ms());
        lock.lock();
        cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
    }
    lock.unlock();
    drop_states(states);
    thread_exited();
}

void Runtime::interrupter() {
    WatchStates states;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
        cv_.wait(lock, [this] { return stopping_ || !interrupts_.empty(); });
        if (stopping_)
            break;
        lock.unlock();
        run_interrupts(states);
        lock.lock();
    }
    lock.unlock();
    drop_states(states);
    thread_exited();
}

// Before any interpreter is ended: finalisation waits for these threads to be gone.
void Runtime::drop_states(WatchStates &states) {
    for (auto &s : states) {
        PyEval_RestoreThread(s.second);
        PyThreadState_Clear(s.second);
        PyThreadState_DeleteCurrent();
    }
    states.clear();
}

bool Runtime::interrupt(double id) {
    {
        std::lock_guard<std::mutex> rlock(running_mu_);
        if (running_.find(id) == running_.end())
            return false;
    }
    bool start = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_)
            return false;
        interrupts_.push_back(id);
        cv_.notify_all();
        // Started on first use (JavaScript thread only): most daemons never interrupt a request, and a
        // thread costs a stack.
        start = !interrupter_started_;
        interrupter_started_ = true;
    }
    if (start && !start_thread(interrupter_main, this)) {
        log_.write(LogLevel::kError, kLogThreadFailed, "Unable to start the interrupt-timeout thread.");
        std::lock_guard<std::mutex> lock(mu_);
        interrupter_started_ = false;
        interrupts_.clear();
        return false;
    }
    return true;
}

void Runtime::run_interrupts(WatchStates &states) {
    for (;;) {
        double id;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (interrupts_.empty() || stopping_)
                return;
            id = interrupts_.front();
            interrupts_.pop_front();
        }
        InterpState *st = nullptr;
        {
            std::lock_guard<std::mutex> rlock(running_mu_);
            auto it = running_.find(id);
            if (it != running_.end())
                st = it->second.st;
        }
        PyThreadState *ts = st ? watch_state(states, st->interp) : nullptr;
        if (!ts)
            continue;  // finished meanwhile
        PyEval_RestoreThread(ts);
        {
            std::lock_guard<std::mutex> rlock(running_mu_);
            auto it = running_.find(id);
            // Still the same request in the same interpreter: its worker cannot finish it while we hold
            // this GIL (running_end needs it).
            if (it != running_.end() && it->second.st == st && !it->second.interrupted && st->request_timeout) {
                it->second.interrupted = true;
                PyThreadState_SetAsyncExc(it->second.thread, st->request_timeout);
            }
        }
        PyEval_SaveThread();
    }
}

void Runtime::running_begin(double id, InterpState &st) {
    std::lock_guard<std::mutex> rlock(running_mu_);
    running_[id] = Running{&st, PyThread_get_thread_ident(), false};
}

void Runtime::running_end(double id) {
    bool interrupted = false;
    unsigned long thread = 0;
    {
        std::lock_guard<std::mutex> rlock(running_mu_);
        auto it = running_.find(id);
        if (it == running_.end())
            return;
        interrupted = it->second.interrupted;
        thread = it->second.thread;
        running_.erase(it);
    }
    // A RequestTimeout raised after the application's last bytecode is still pending on this thread
    // state: it must not go off in this thread's next request.
    if (interrupted)
        PyThreadState_SetAsyncExc(thread, nullptr);
}

void Runtime::own_gil_added(PyInterpreterState *interp) {
    std::lock_guard<std::mutex> rlock(running_mu_);
    own_gils_.push_back(interp);
}

}  // namespace modwsgi
