// An application group: its interpreter (made by its first worker) and its own worker threads, at
// most `threads`, started on demand. A worker's first thread state belongs to the group's
// interpreter, so PyGILState callbacks (ctypes, C libraries) on that thread land in the right one.
#ifndef MODWSGI_ADDON_POOL_H
#define MODWSGI_ADDON_POOL_H

#include "py_internal.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace modwsgi {

class Runtime;

struct Job {
    enum class Kind { kRequest, kPreload, kAuth };
    Kind kind = Kind::kRequest;
    std::shared_ptr<Request> req;
    double token = 0;
    std::string script;
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
    void run_job(InterpState &st, PyThreadState *tstate, Job &job);
    void fail_job(Job &job, const std::string &why);

    Runtime &rt_;
    const std::string name_;

    std::mutex mu_;
    std::condition_variable cv_;        // jobs and stop
    std::condition_variable ready_cv_;  // interpreter creation finished
    std::deque<Job> queue_;
    int workers_ = 0;
    int idle_ = 0;     // workers waiting and not yet claimed by a queued job
    int wakeups_ = 0;  // claims handed to waiting workers
    bool stopping_ = false;
    enum class InterpStatus { kNone, kCreating, kReady, kFailed } status_ = InterpStatus::kNone;
    InterpState *st_ = nullptr;
    PyInterpreterState *interp_ = nullptr;
    PyThreadState *keeper_ = nullptr;
    std::string failure_;
};

}  // namespace modwsgi

#endif
