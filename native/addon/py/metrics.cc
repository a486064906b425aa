// Metrics (metrics.h): the workers' accounting, the annotation of stack dumps, and the Python functions
// mod_wsgi.process_metrics() and mod_wsgi.request_metrics() with mod_wsgi 4.8's keys and meanings:
//   process_metrics(): since the process started: pid, request_count, request_busy_time, memory_rss,
//     memory_max_rss, cpu_user_time, cpu_system_time, restart_time, current_time, running_time,
//     request_threads, active_requests, threads [{thread_id, request_count}].
//   request_metrics(): the first call starts a sampling period and returns {}; each later call reports the
//     period since the previous one and starts the next: start_time, stop_time, sample_period, cpu_user_time
//     and cpu_system_time (as fractions of the period), memory_*, request_threads_maximum,
//     request_threads_started, request_threads_active, capacity_utilization, request_count,
//     request_throughput, the averages server_time, queue_time, daemon_time, application_time and their
//     *_buckets (16 counts: up to 5 ms, then doubling), request_threads_buckets (requests per thread).
// The four times of a request, as mod_wsgi splits them: server_time, from Apache reading the request to
// sending it to the daemon; queue_time, from then until the daemon took it from its queue for a thread;
// daemon_time, from then until the application was called; application_time, the call itself.
#include "py_internal.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "metrics.h"
#include "runtime.h"

namespace modwsgi {

namespace {

uint64_t now_us() {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    return static_cast<uint64_t>(tv.tv_sec) * 1000000u + static_cast<uint64_t>(tv.tv_usec);
}

int bucket(double seconds) {
    double threshold = 0.005;
    for (int i = 0; i < 14; ++i, threshold *= 2)
        if (seconds <= threshold)
            return i;
    return 14;
}

double span(uint64_t from, uint64_t to) { return from && to > from ? static_cast<double>(to - from) / 1e6 : 0.0; }

}  // namespace

Metrics::Metrics(int threads)
    : threads_(threads > 0 ? threads : 1), started_at_(static_cast<double>(now_us()) / 1e6) {}

Metrics::Usage Metrics::usage() {
    struct rusage ru;
    Usage u{0, 0, 0, 0};
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        u.user = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
        u.system = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
        u.max_rss = static_cast<long long>(ru.ru_maxrss) * 1024;
    }
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long long size = 0, resident = 0;
        if (fscanf(f, "%lld %lld", &size, &resident) == 2)
            u.rss = resident * sysconf(_SC_PAGESIZE);
        fclose(f);
    }
    return u;
}

Metrics::Worker &Metrics::self() {
    Worker &w = workers_[static_cast<unsigned long>(pthread_self())];
    if (!w.id)
        w.id = static_cast<int>(workers_.size());
    return w;
}

double Metrics::accrue() {
    uint64_t now = now_us();
    if (busy_since_us_)
        busy_ += active_ * span(busy_since_us_, now);
    busy_since_us_ = now;
    return busy_;
}

void Metrics::request_started(std::string_view uri, std::string_view request_id, uint64_t request_start,
                              uint64_t queue_start, uint64_t daemon_start) {
    std::lock_guard<std::mutex> lock(mu_);
    accrue();
    ++active_;
    Worker &w = self();
    w.busy = true;
    w.uri.assign(uri);
    w.request_id.assign(request_id);
    w.since_us = w.application_start_us = now_us();
    w.request_start_us = request_start;
    w.queue_start_us = queue_start ? queue_start : request_start;
    w.daemon_start_us = daemon_start;
}

void Metrics::request_finished() {
    uint64_t end = now_us();
    std::lock_guard<std::mutex> lock(mu_);
    accrue();
    Worker &w = self();
    if (!w.busy)
        return;
    w.busy = false;
    --active_;
    ++requests_;
    ++w.requests;
    if (!sampling_)
        return;
    double t[4] = {span(w.request_start_us, w.queue_start_us), span(w.queue_start_us, w.daemon_start_us),
                   span(w.daemon_start_us, w.application_start_us), span(w.application_start_us, end)};
    ++sampled_;
    for (int i = 0; i < 4; ++i) {
        totals_[i] += t[i];
        ++buckets_[i][bucket(t[i])];
    }
    ++thread_buckets_[w.id];
}

std::string Metrics::annotate(const std::string &dump) {
    std::map<unsigned long, std::string> serving;
    {
        std::lock_guard<std::mutex> lock(mu_);
        uint64_t now = now_us();
        for (auto &kv : workers_) {
            const Worker &w = kv.second;
            if (!w.busy)
                continue;
            char ms[32];
            snprintf(ms, sizeof ms, "%.0f ms", span(w.since_us, now) * 1000);
            serving[kv.first] = " serving " + (w.uri.empty() ? std::string("a request") : w.uri) +
                                (w.request_id.empty() ? std::string() : " [request " + w.request_id + "]") +
                                " for " + ms;
        }
    }
    // faulthandler's lines: "Thread 0x00007f...  (most recent call first):", "Current thread 0x...".
    std::string out;
    size_t start = 0;
    while (start < dump.size()) {
        size_t nl = dump.find('\n', start);
        size_t end = nl == std::string::npos ? dump.size() : nl;
        std::string line = dump.substr(start, end - start);
        size_t at = line.rfind("hread 0x", 12);
        if (at != std::string::npos && (line.compare(0, 6, "Thread") == 0 || line.compare(0, 14, "Current thread") == 0)) {
            unsigned long id = strtoul(line.c_str() + at + 6, nullptr, 16);
            auto it = serving.find(id);
            size_t colon = line.rfind(" (most recent call first):");
            if (it != serving.end() && colon != std::string::npos)
                line.insert(colon, it->second);
        }
        out.append(line).append("\n");
        start = end + 1;
    }
    return out;
}

Metrics::Process Metrics::process() {
    std::lock_guard<std::mutex> lock(mu_);
    Process p{requests_, accrue(), static_cast<int>(workers_.size()), active_, {}};
    for (auto &kv : workers_)
        p.threads.push_back({kv.second.id, kv.second.requests});
    return p;
}

Metrics::Sample Metrics::sample() {
    std::lock_guard<std::mutex> lock(mu_);
    Sample s{};
    double now = static_cast<double>(now_us()) / 1e6;
    double busy = accrue();
    Usage u = usage();
    s.cpu_user = u.user - sample_user_;
    s.cpu_system = u.system - sample_system_;
    sample_user_ = u.user;
    sample_system_ = u.system;
    s.first = !sampling_;
    s.start_time = sampling_ ? sample_start_ : now;
    s.stop_time = now;
    s.busy_time = busy - sample_busy_;
    s.request_count = requests_ - sample_count_start_;
    s.request_threads = static_cast<int>(workers_.size());
    s.threads_maximum = threads_;
    s.sampled = sampled_;
    s.server_time = totals_[0];
    s.queue_time = totals_[1];
    s.daemon_time = totals_[2];
    s.application_time = totals_[3];
    memcpy(s.server_buckets, buckets_[0], sizeof s.server_buckets);
    memcpy(s.queue_buckets, buckets_[1], sizeof s.queue_buckets);
    memcpy(s.daemon_buckets, buckets_[2], sizeof s.daemon_buckets);
    memcpy(s.application_buckets, buckets_[3], sizeof s.application_buckets);
    s.thread_buckets.assign(static_cast<size_t>(threads_), 0);
    for (auto &kv : thread_buckets_)
        if (kv.first >= 1 && kv.first <= threads_)
            s.thread_buckets[static_cast<size_t>(kv.first - 1)] = kv.second;
    // The next period starts now.
    sampling_ = true;
    sample_start_ = now;
    sample_busy_ = busy;
    sample_count_start_ = requests_;
    sampled_ = 0;
    memset(totals_, 0, sizeof totals_);
    memset(buckets_, 0, sizeof buckets_);
    thread_buckets_.clear();
    return s;
}

// --- The Python functions -------------------------------------------------------------------------------

namespace {

// Sets d[key] = v (a new reference, released); false when either failed.
bool put(PyObject *d, const char *key, PyObject *v) {
    if (!v)
        return false;
    int r = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return r == 0;
}

PyObject *int_list(const int *v, size_t n) {
    PyObject *list = PyList_New(static_cast<Py_ssize_t>(n));
    for (size_t i = 0; list && i < n; ++i) {
        PyObject *x = PyLong_FromLong(v[i]);
        if (!x) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), x);
    }
    return list;
}

Runtime *runtime_of(PyObject *capsule) {
    auto *st = static_cast<InterpState *>(PyCapsule_GetPointer(capsule, "mod_wsgi.interp"));
    return st ? st->rt : nullptr;
}

PyObject *process_metrics(PyObject *capsule, PyObject *) {
    Runtime *rt = runtime_of(capsule);
    if (!rt)
        return nullptr;
    Metrics::Process p = rt->metrics().process();
    Metrics::Usage u = Metrics::usage();
    double now = static_cast<double>(now_us()) / 1e6;
    PyRef d(PyDict_New());
    if (!d)
        return nullptr;
    PyObject *o = d.get();
    bool ok = put(o, "pid", PyLong_FromLong(getpid())) && put(o, "request_busy_time", PyFloat_FromDouble(p.request_busy_time)) &&
              put(o, "request_count", PyLong_FromUnsignedLongLong(p.request_count)) &&
              put(o, "memory_max_rss", PyLong_FromLongLong(u.max_rss)) && put(o, "memory_rss", PyLong_FromLongLong(u.rss)) &&
              put(o, "cpu_user_time", PyFloat_FromDouble(u.user)) && put(o, "cpu_system_time", PyFloat_FromDouble(u.system)) &&
              put(o, "restart_time", PyFloat_FromDouble(rt->metrics().started_at())) &&
              put(o, "current_time", PyFloat_FromDouble(now)) &&
              put(o, "running_time", PyLong_FromLongLong(static_cast<long long>(now - rt->metrics().started_at()))) &&
              put(o, "request_threads", PyLong_FromLong(p.request_threads)) &&
              put(o, "active_requests", PyLong_FromLong(p.active_requests));
    PyRef threads(ok ? PyList_New(0) : nullptr);
    for (const auto &t : p.threads) {
        if (!threads)
            break;
        PyRef entry(PyDict_New());
        if (!entry || !put(entry.get(), "thread_id", PyLong_FromLong(t.thread_id)) ||
            !put(entry.get(), "request_count", PyLong_FromUnsignedLongLong(t.requests)) ||
            PyList_Append(threads.get(), entry.get()) < 0)
            threads.reset();
    }
    if (!threads || PyDict_SetItemString(o, "threads", threads.get()) < 0)
        return nullptr;
    return d.release();
}

PyObject *request_metrics(PyObject *capsule, PyObject *) {
    Runtime *rt = runtime_of(capsule);
    if (!rt)
        return nullptr;
    Metrics::Sample s = rt->metrics().sample();
    Metrics::Usage u = Metrics::usage();
    PyRef d(PyDict_New());
    if (!d || s.first)
        return d.release();
    PyObject *o = d.get();
    double period = s.stop_time - s.start_time;
    int active_threads = 0;
    for (int n : s.thread_buckets)
        active_threads += n ? 1 : 0;
    double n = static_cast<double>(s.sampled);
    auto avg = [&](double total) { return s.sampled ? total / n : 0.0; };
    bool ok = put(o, "pid", PyLong_FromLong(getpid())) && put(o, "start_time", PyFloat_FromDouble(s.start_time)) &&
              put(o, "stop_time", PyFloat_FromDouble(s.stop_time)) && put(o, "sample_period", PyFloat_FromDouble(period)) &&
              put(o, "cpu_user_time", PyFloat_FromDouble(period > 0 ? s.cpu_user / period : 0.0)) &&
              put(o, "cpu_system_time", PyFloat_FromDouble(period > 0 ? s.cpu_system / period : 0.0)) &&
              put(o, "memory_max_rss", PyLong_FromLongLong(u.max_rss)) && put(o, "memory_rss", PyLong_FromLongLong(u.rss)) &&
              put(o, "request_threads_maximum", PyLong_FromLong(s.threads_maximum)) &&
              put(o, "request_threads_started", PyLong_FromLong(s.request_threads)) &&
              put(o, "capacity_utilization",
                  PyFloat_FromDouble(period > 0 ? s.busy_time / period / s.threads_maximum : 0.0)) &&
              put(o, "request_count", PyLong_FromUnsignedLongLong(s.request_count)) &&
              put(o, "request_throughput", PyFloat_FromDouble(period > 0 ? s.request_count / period : 0.0)) &&
              put(o, "server_time_buckets", int_list(s.server_buckets, Metrics::kBuckets)) &&
              put(o, "queue_time_buckets", int_list(s.queue_buckets, Metrics::kBuckets)) &&
              put(o, "daemon_time_buckets", int_list(s.daemon_buckets, Metrics::kBuckets)) &&
              put(o, "application_time_buckets", int_list(s.application_buckets, Metrics::kBuckets)) &&
              put(o, "request_threads_buckets", int_list(s.thread_buckets.data(), s.thread_buckets.size())) &&
              put(o, "request_threads_active", PyLong_FromLong(active_threads)) &&
              put(o, "server_time", PyFloat_FromDouble(avg(s.server_time))) &&
              put(o, "queue_time", PyFloat_FromDouble(avg(s.queue_time))) &&
              put(o, "daemon_time", PyFloat_FromDouble(avg(s.daemon_time))) &&
              put(o, "application_time", PyFloat_FromDouble(avg(s.application_time)));
    return ok ? d.release() : nullptr;
}

PyMethodDef metrics_defs[] = {
    {"process_metrics", process_metrics, METH_NOARGS,
     "process_metrics(): this daemon process's counters since it started (mod_wsgi 4.8's keys)."},
    {"request_metrics", request_metrics, METH_NOARGS,
     "request_metrics(): request times and throughput since the previous call; {} on the first."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

bool install_metrics_functions(InterpState &st, PyObject *module) {
    PyRef capsule(PyCapsule_New(&st, "mod_wsgi.interp", nullptr));
    PyRef name(PyUnicode_FromString("mod_wsgi"));
    if (!capsule || !name)
        return false;
    for (PyMethodDef *def = metrics_defs; def->ml_name; ++def) {
        PyRef fn(PyCFunction_NewEx(def, capsule.get(), name.get()));
        if (!fn || PyObject_SetAttrString(module, def->ml_name, fn.get()) < 0)
            return false;
    }
    return true;
}

}  // namespace modwsgi
