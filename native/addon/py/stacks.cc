// Python stacks of every thread of every interpreter, written to a file descriptor for the error log
// (request-timeout, deadlock-timeout). Preferably without the GIL, with faulthandler's own writer
// (_Py_DumpTracebackThreads: async-signal-safe, safe while a thread holds a GIL forever). libpython
// exports it in 3.8, 3.11 and 3.12 but not in 3.9, 3.10 or 3.13, so it is looked up at run time; where
// it is missing, a helper thread takes each interpreter's GIL in turn and formats the frames of that
// interpreter's threads itself, in faulthandler's layout (faulthandler cannot be imported into a 3.13
// sub-interpreter with its own GIL, and sys._current_frames() would reach into other interpreters),
// and the caller waits for it a bounded time: a GIL held forever then costs the stacks, never the
// caller.
#include "stacks.h"

#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "runtime.h"

namespace modwsgi {

namespace {

using DumpThreads = const char *(*)(int fd, PyInterpreterState *interp, PyThreadState *current);

DumpThreads exported_writer() {
    // libpython is global in this process (promoted, or preloaded RTLD_GLOBAL): the default scope sees it.
    return reinterpret_cast<DumpThreads>(dlsym(RTLD_DEFAULT, "_Py_DumpTracebackThreads"));
}

void write_all(int fd, const std::string &s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = write(fd, s.data() + off, s.size() - off);
        if (n <= 0)
            return;
        off += static_cast<size_t>(n);
    }
}

std::string title(const StackTarget &t) {
    return "Interpreter '" + (t.name.empty() ? std::string("%{GLOBAL}") : t.name) + "':\n";
}

// The helper's work, shared with the caller that may stop waiting for it: whoever ends last frees it.
struct Job {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int fd = -1;  // the helper's own duplicate: still valid if the caller gave up and closed its own
    std::vector<StackTarget> targets;
    Runtime *rt = nullptr;
};

#if PY_VERSION_HEX >= 0x03090000
// One thread's frames, innermost first, as faulthandler writes them. Holding the interpreter's GIL: its
// other threads are not running Python, so their frames hold still.
void format_thread(std::string &out, PyThreadState *ts, PyThreadState *self, PyObject *extract) {
    char head[96];
    snprintf(head, sizeof head, "%s 0x%016lx (most recent call first):\n", ts == self ? "Current thread" : "Thread",
             static_cast<unsigned long>(ts->thread_id));
    out += head;
    PyObject *frame = reinterpret_cast<PyObject *>(PyThreadState_GetFrame(ts));
    PyRef entries(frame && extract ? PyObject_CallOneArg(extract, frame) : nullptr);
    Py_XDECREF(frame);
    Py_ssize_t n = entries && PyList_Check(entries.get()) ? PyList_GET_SIZE(entries.get()) : 0;
    if (n == 0)
        out += "  <no Python frame>\n";
    for (Py_ssize_t i = n - 1; i >= 0; --i) {
        PyObject *fs = PyList_GET_ITEM(entries.get(), i);
        PyRef file(PyObject_GetAttrString(fs, "filename"));
        PyRef line(PyObject_GetAttrString(fs, "lineno"));
        PyRef name(PyObject_GetAttrString(fs, "name"));
        const char *f = file && PyUnicode_Check(file.get()) ? PyUnicode_AsUTF8(file.get()) : nullptr;
        const char *nm = name && PyUnicode_Check(name.get()) ? PyUnicode_AsUTF8(name.get()) : nullptr;
        long l = line && PyLong_Check(line.get()) ? PyLong_AsLong(line.get()) : -1;
        out += std::string("  File \"") + (f ? f : "???") + "\", line " + std::to_string(l) + " in " + (nm ? nm : "???") + "\n";
    }
    PyErr_Clear();
    out += "\n";
}
#endif

void *helper_main(void *arg) {
    auto job = *static_cast<std::shared_ptr<Job> *>(arg);
    delete static_cast<std::shared_ptr<Job> *>(arg);
    for (const StackTarget &t : job->targets) {
        write_all(job->fd, title(t));
        PyThreadState *self = PyThreadState_New(t.interp);
        if (!self)
            continue;
        PyEval_RestoreThread(self);
        std::string out;
#if PY_VERSION_HEX >= 0x03090000
        {  // references released before the thread state goes
            PyRef traceback(PyImport_ImportModule("traceback"));
            PyRef extract(traceback ? PyObject_GetAttrString(traceback.get(), "extract_stack") : nullptr);
            PyErr_Clear();
            for (PyThreadState *ts = PyInterpreterState_ThreadHead(t.interp); ts; ts = PyThreadState_Next(ts))
                format_thread(out, ts, self, extract.get());
        }
#else
        out = "  (unavailable)\n";  // 3.8 exports the GIL-free writer: not reached
#endif
        PyThreadState_Clear(self);
        PyThreadState_DeleteCurrent();
        write_all(job->fd, out);
    }
    {
        std::lock_guard<std::mutex> lock(job->mu);
        job->done = true;
        close(job->fd);
        job->fd = -1;
    }
    job->cv.notify_all();
    Runtime *rt = job->rt;
    job.reset();
    rt->thread_exited();
    return nullptr;
}

}  // namespace

void write_stacks(Runtime &rt, int fd, const std::vector<StackTarget> &targets, int wait_ms) {
    if (DumpThreads writer = exported_writer()) {
        for (const StackTarget &t : targets) {
            write_all(fd, title(t));
            if (const char *err = writer(fd, t.interp, nullptr))
                write_all(fd, std::string("  (") + err + ")\n");
        }
        return;
    }
    auto job = std::make_shared<Job>();
    job->fd = dup(fd);
    job->targets = targets;
    job->rt = &rt;
    if (job->fd < 0) {
        write_all(fd, "(stacks unavailable: no file descriptor)\n");
        return;
    }
    auto *arg = new std::shared_ptr<Job>(job);
    if (!rt.start_thread(helper_main, arg)) {
        delete arg;
        close(job->fd);
        write_all(fd, "(stacks unavailable: no thread)\n");
        return;
    }
    std::unique_lock<std::mutex> lock(job->mu);
    if (!job->cv.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return job->done; }))
        write_all(fd, "(the rest of the stacks is unavailable: a GIL was not obtained within " + std::to_string(wait_ms) +
                          " ms, and this Python's libpython does not export the writer that needs none)\n");
}

}  // namespace modwsgi
