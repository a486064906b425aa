// An application group: its interpreter (made by its first worker) and its own worker threads, at
// most `threads`, started on demand. A worker's first thread state belongs to the group's
// interpreter, so PyGILState callbacks (ctypes, C libraries) on that thread land in the right one.
#ifndef MODWSGI_ADDON_POOL_H
#define MODWSGI_ADDON_POOL_H

#include "py_internal.h"

#include <semaphore.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace modwsgi {

class Runtime;

struct Job {
    enum class Kind { kRequest, kPreload, kAuth };
    Kind kind = Kind::kRequest;
    std::shared_ptr<Request> req;
    double token = 0;
    std::string script;
};

// Where a worker sleeps: its own semaphore, posted once by whoever takes it off the idle list (when
// idle) or out of the Turnstile's line (when waiting for its turn at the GIL); never both at once.
// Unlike a condition variable shared by all workers, waking one costs one futex call on each side and
// the woken thread never contends for the group's mutex with the thread that woke it.
class Parker {
public:
    Parker() { sem_init(&sem_, 0, 0); }
    ~Parker() { sem_destroy(&sem_); }
    Parker(const Parker &) = delete;
    Parker &operator=(const Parker &) = delete;
    void post() { sem_post(&sem_); }
    void wait() {
        while (sem_wait(&sem_) != 0) {
        }  // EINTR: the post is still to come
    }

private:
    sem_t sem_;
};

// Where workers queue to take the GIL for a job, in arrival order. CPython lets a thread that has just
// released the GIL take it straight back, ahead of a thread woken to take it: a worker that finished a
// request and started the next one did exactly that, and while the GIL was saturated (a Django view on
// every thread) an unlucky request waited out several 5 ms switch intervals: p99 30 ms for a p50 of
// 5 ms at 16 connections (the original mod_wsgi: 12-16 ms). The worker at the head of the line waits
// for the GIL itself and lets the next one in once it has it: p99 8 ms, for 10-15 % of that view's
// throughput (the GIL now waits for a thread to wake instead of going to the one already running;
// letting workers jump the line while the head had waited under 1 ms won the throughput back but
// doubled p99). Mid-request waits (body, backpressure) do not queue here. There is one per GIL: the
// process-wide one, shared by every interpreter, and one per sub-interpreter that has its own GIL
// (WSGIPerInterpreterGIL, CPython 3.12+).
class Turnstile {
public:
    // Returns when it is this thread's turn to take the GIL; `self` is where it sleeps till then.
    void enter(Parker &self);
    // Called holding the GIL just taken: the next worker in line goes on to wait for it.
    void leave();

private:
    std::mutex mu_;
    bool busy_ = false;
    std::deque<Parker *> line_;
};

class Group {
public:
    Group(Runtime &rt, std::string name);

    const std::string &name() const { return name_; }
    // JavaScript thread: queues a job, waking an idle worker or starting one.
    void push(Job &&job);
    // Asks every worker to exit once the queue is empty.
    void stop();
    // The addon's state in the interpreter, once ready (null before or when setup failed).
    InterpState *state();
    // The sub-interpreter made for this group, even if its setup failed (null for the main one).
    PyInterpreterState *interpreter();
    // A spare thread state of the sub-interpreter, used by nobody until finalisation (which ends
    // the interpreter with it). It also keeps the interpreter from ever having no thread state:
    // CPython 3.11 aborts ("thread state already initialized") when a thread state is made for
    // an interpreter that has none left.
    PyThreadState *keeper();

private:
    static void *thread_main(void *arg);
    void run();
    bool attach(PyThreadState **tstate);
    bool create_interpreter(PyThreadState **tstate);
    void run_job(InterpState &st, PyThreadState *tstate, Job &job, Parker &parker);
    void fail_job(Job &job, const std::string &why);

    Runtime &rt_;
    const std::string name_;
    // Where this group's workers queue for their GIL: the shared one's, or the group's own when its
    // interpreter has its own GIL. Set before the interpreter is ready, read only after.
    Turnstile *turnstile_;
    std::unique_ptr<Turnstile> own_turnstile_;

    std::mutex mu_;
    std::condition_variable ready_cv_;  // interpreter creation finished
    std::deque<Job> queue_;
    int workers_ = 0;
    // Workers asleep, the most recently idle last: it is woken first, its caches still warm, and the
    // others sleep on. Each one on the list is owed exactly one post() by whoever takes it off.
    std::vector<Parker *> idle_;
    bool stopping_ = false;
    enum class InterpStatus { kNone, kCreating, kReady, kFailed } status_ = InterpStatus::kNone;
    InterpState *st_ = nullptr;
    PyInterpreterState *interp_ = nullptr;
    PyThreadState *keeper_ = nullptr;
    std::string failure_;
};

}  // namespace modwsgi

#endif
