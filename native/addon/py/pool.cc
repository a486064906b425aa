#include "pool.h"

#include <pthread.h>
#include <sched.h>

#include "asgi.h"
#include "runtime.h"
#include "subinterp.h"
#include "wsgi_wire.h"

namespace modwsgi {

namespace {

// An ERROR frame: the request failed before any HEAD.
std::string error_frame(uint32_t status, const std::string &text) {
    std::string out(WSGI_WIRE_HEADER_SIZE + 4 + 4 + text.size(), '\0');
    auto *p = reinterpret_cast<unsigned char *>(&out[0]);
    wsgi_frame_header_pack(p, WSGI_FRAME_ERROR, 0, static_cast<uint32_t>(out.size() - WSGI_WIRE_HEADER_SIZE));
    wsgi_put_u32(p + WSGI_WIRE_HEADER_SIZE, status);
    wsgi_write_string(p + WSGI_WIRE_HEADER_SIZE + 4, text.data(), static_cast<uint32_t>(text.size()));
    return out;
}

}  // namespace

namespace {
Turnstile gil_turnstile;  // the shared GIL's
}  // namespace

Group::Group(Runtime &rt, std::string name) : rt_(rt), name_(std::move(name)), turnstile_(&gil_turnstile) {}

InterpState *Group::state() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_ == InterpStatus::kReady ? st_ : nullptr;
}

void Turnstile::enter(Parker &self) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!busy_) {
            busy_ = true;
            return;
        }
        line_.push_back(&self);
    }
    self.wait();  // posted by leave(), which handed the turn over (busy_ stays true)
}

void Turnstile::leave() {
    Parker *next = nullptr;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (line_.empty()) {
            busy_ = false;
            return;
        }
        next = line_.front();
        line_.pop_front();
    }
    next->post();
}

void Group::push(Job &&job) {
    bool spawn = false;
    Parker *wake = nullptr;
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(job));
        if (!idle_.empty()) {
            wake = idle_.back();
            idle_.pop_back();
        } else if (workers_ < rt_.options().threads) {
            ++workers_;
            spawn = true;
        }
    }
    // Outside the lock: the woken worker takes it at once instead of sleeping again on it.
    if (wake) {
        wake->post();
        return;
    }
    if (!spawn || rt_.start_thread(thread_main, this))
        return;
    rt_.log().write(LogLevel::kError, kLogThreadFailed,
                    "Unable to start a worker thread for application group '" + name_ + "'.");
    // With no worker at all nobody would ever take the queue: answer its jobs now.
    std::deque<Job> orphans;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (--workers_ == 0)
            orphans.swap(queue_);
    }
    for (Job &j : orphans)
        fail_job(j, "Unable to start a worker thread.");
}

void Group::stop() {
    std::vector<Parker *> sleeping;
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
        sleeping.swap(idle_);
    }
    for (Parker *p : sleeping)
        p->post();
}

void *Group::thread_main(void *arg) {
    // SCHED_BATCH (same nice value): a worker woken for a request does not preempt the JavaScript
    // thread that woke it, which goes on reading and submitting the other requests of its event-loop
    // turn and then sleeps; without it each request cost that thread a switch out and back in.
    struct sched_param sp = {};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    static_cast<Group *>(arg)->run();
    return nullptr;
}

void Group::run() {
    PyThreadState *tstate = nullptr;
    Parker parker;  // on the idle list only while this thread sleeps in parker.wait()
    const bool ready = attach(&tstate);
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
        if (queue_.empty()) {
            if (stopping_)
                break;
            idle_.push_back(&parker);
            lock.unlock();
            parker.wait();  // posted by push() or stop(), which took us off the list
            lock.lock();
            continue;  // the job may have gone to a worker that finished meanwhile: idle again then
        }
        Job job = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        if (ready)
            run_job(*st_, tstate, job, parker);
        else
            fail_job(job, failure_);
        lock.lock();
    }
    --workers_;
    lock.unlock();
    if (tstate) {
        PyEval_RestoreThread(tstate);
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent();
    }
    rt_.thread_exited();
}

void Group::run_job(InterpState &st, PyThreadState *tstate, Job &job, Parker &parker) {
    auto take_gil = [&] {
        turnstile_->enter(parker);
        PyEval_RestoreThread(tstate);
        turnstile_->leave();
    };
    if (job.kind == Job::Kind::kPreload) {
        std::string error;
        take_gil();
        bool ok;
        bool asgi = false;
        try {
            ok = preload_script(st, job.script, &error);
            // An ASGI application's lifespan starts now; its loop answers the preload once it has.
            asgi = ok && runtime_asgi(rt_).take_preload(st, job.script, job.token);
        } catch (const std::bad_alloc &) {
            PyErr_Clear();
            ok = false;
            error = "out of memory";
        }
        PyEval_SaveThread();
        if (asgi)
            return;
        Event ev;
        ev.kind = Event::Kind::kPreloadDone;
        ev.id = job.token;
        ev.ok = ok;
        ev.data = std::move(error);
        rt_.sink().post(std::move(ev));
        return;
    }
    take_gil();
    rt_.running_begin(job.req->id(), st);  // interrupt-timeout may raise RequestTimeout in it from now
    std::string frames = job.kind == Job::Kind::kAuth ? run_auth(st, *job.req) : run_request(st, *job.req);
    rt_.running_end(job.req->id());
    PyEval_SaveThread();
    if (frames.empty())
        return;  // an ASGI application: its event loop finishes the request (asgi_hub.cc)
    job.req->finish();
    // Not under the group lock: the next request may then start another worker (at most `threads`,
    // as mod_wsgi has from the start), but submit() never waits for this post's system call.
    job.req->post_output(std::move(frames), true, -1);
}

void Group::fail_job(Job &job, const std::string &why) {
    if (job.kind == Job::Kind::kPreload) {
        Event ev;
        ev.kind = Event::Kind::kPreloadDone;
        ev.id = job.token;
        ev.ok = false;
        ev.data = why;
        rt_.sink().post(std::move(ev));
        return;
    }
    job.req->finish();
    job.req->post_output(error_frame(500, why), true, -1);
}

bool Group::attach(PyThreadState **tstate) {
    std::unique_lock<std::mutex> lock(mu_);
    ready_cv_.wait(lock, [this] { return status_ != InterpStatus::kCreating; });
    if (status_ == InterpStatus::kReady) {
        PyInterpreterState *interp = st_->interp;
        lock.unlock();
        // The GIL is not needed to make a thread state; this is the first one on this OS thread.
        *tstate = PyThreadState_New(interp);
        return *tstate != nullptr;
    }
    if (status_ == InterpStatus::kFailed)
        return false;
    status_ = InterpStatus::kCreating;
    lock.unlock();
    bool ok = create_interpreter(tstate);
    lock.lock();
    status_ = ok ? InterpStatus::kReady : InterpStatus::kFailed;
    ready_cv_.notify_all();
    return ok;
}

bool Group::create_interpreter(PyThreadState **tstate) {
    const Logger &log = rt_.log();
    PyInterpreterState *main_interp = PyInterpreterState_Main();
    std::string error;
    if (name_.empty()) {
        PyThreadState *ts = PyThreadState_New(main_interp);
        PyEval_RestoreThread(ts);
        st_ = interp_setup(rt_, name_, &error);
        PyEval_SaveThread();
        *tstate = ts;
    } else {
        // Py_NewInterpreter needs the GIL. Take it with a thread state that is not registered for
        // PyGILState, so that the new interpreter's thread state is this thread's first one.
        PyThreadState *borrowed = _PyThreadState_Prealloc(main_interp);
        PyEval_RestoreThread(borrowed);
        log.step(kLogCreateInterp, "Create interpreter '" + name_ + "'.");
        const HostOptions &o = rt_.options();
        bool own_gil = false;
        PyThreadState *ts = subinterp_create(borrowed, rt_.own_gil(), &own_gil, &error);
        if (!ts) {
            if (rt_.own_gil())
                log.write(LogLevel::kError, kLogOwnGilFailed,
                          "Unable to create interpreter '" + name_ + "' with its own GIL: " + error);
            *tstate = nullptr;
        } else {
            interp_ = PyThreadState_GetInterpreter(ts);
            keeper_ = subinterp_keeper(interp_);  // not registered for PyGILState either
            if (own_gil) {
                own_turnstile_ = std::make_unique<Turnstile>();
                turnstile_ = own_turnstile_.get();
                rt_.own_gil_added(interp_);
                log.write(LogLevel::kInfo, kLogOwnGil, "Interpreter '" + name_ + "' created with its own GIL.");
                // The switch interval belongs to a GIL: this one's is its own.
                if (o.switch_interval > 0)
                    apply_switch_interval(log, o.switch_interval, "interpreter '" + name_ + "'");
            }
            st_ = interp_setup(rt_, name_, &error);
            PyEval_SaveThread();
            *tstate = ts;
        }
    }
    if (st_)
        return true;
    failure_ = "Failed to create Python interpreter for application group '" + name_ + "'.";
    log.write(LogLevel::kError, kLogInterpFailed, failure_ + " " + error);
    return false;
}

PyInterpreterState *Group::interpreter() {
    std::lock_guard<std::mutex> lock(mu_);
    return interp_;
}

PyThreadState *Group::keeper() {
    std::lock_guard<std::mutex> lock(mu_);
    return keeper_;
}

}  // namespace modwsgi
