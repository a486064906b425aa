// What this process's worker threads do, kept for Python code and for stack dumps (metrics.cc):
//   mod_wsgi.process_metrics() and mod_wsgi.request_metrics(), with mod_wsgi 4.8's key names, so that
//   monitoring code written for mod_wsgi runs unchanged;
//   which request each worker thread serves, and since when (the stack dumps of SIGUSR2 and the timeouts
//   name it beside the thread's stack).
// Updated by the workers as each request starts and ends, under one mutex (held for a few assignments).
// Prometheus and the status pages take their numbers from the board instead (src/daemon/request-stats.ts).
#ifndef MODWSGI_ADDON_METRICS_H
#define MODWSGI_ADDON_METRICS_H

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace modwsgi {

class Metrics {
public:
    // mod_wsgi's buckets: the first for up to 5 ms, each next one twice as long, the 15th for the rest.
    static constexpr int kBuckets = 16;

    explicit Metrics(int threads);

    // When the process (its Python) started, seconds since the epoch.
    double started_at() const { return started_at_; }

    // The process's CPU seconds (user, system), resident and peak resident bytes.
    struct Usage {
        double user, system;
        long long rss, max_rss;
    };
    static Usage usage();

    // A worker starts a request: `uri`, `request_id` name it in stack dumps; the times are µs since the
    // epoch: when Apache read it, sent it (mod_wsgi.queue_start), when this daemon took it.
    void request_started(std::string_view uri, std::string_view request_id, uint64_t request_start,
                         uint64_t queue_start, uint64_t daemon_start);
    void request_finished();

    // "Thread 0x7f.. (most recent call first):" lines of a stack dump get what that thread serves.
    std::string annotate(const std::string &dump);

    // Snapshots for the Python functions (metrics.cc builds the dicts).
    struct ThreadCount {
        int thread_id;
        uint64_t requests;
    };
    struct Process {
        uint64_t request_count;
        double request_busy_time;  // seconds of threads running requests, summed
        int request_threads;       // worker threads that have run a request
        int active_requests;
        std::vector<ThreadCount> threads;
    };
    Process process();

    struct Sample {
        bool first;  // the first call: sampling starts, nothing to report yet
        double start_time, stop_time;
        double busy_time;
        uint64_t request_count;
        int request_threads;
        int threads_maximum;
        uint64_t sampled;
        double server_time, queue_time, daemon_time, application_time;  // totals, seconds
        double cpu_user, cpu_system;  // CPU seconds the process used in the period
        int server_buckets[kBuckets], queue_buckets[kBuckets], daemon_buckets[kBuckets],
            application_buckets[kBuckets];
        std::vector<int> thread_buckets;  // requests per worker thread in the period
    };
    // Ends the current sampling period and starts the next (mod_wsgi.request_metrics()).
    Sample sample();

private:
    struct Worker {
        int id = 0;  // 1.. in the order threads first ran a request
        uint64_t requests = 0;
        bool busy = false;
        std::string uri;
        std::string request_id;
        uint64_t since_us = 0;
        uint64_t application_start_us = 0;
        uint64_t request_start_us = 0, queue_start_us = 0, daemon_start_us = 0;
    };
    Worker &self();    // the calling thread's (mutex held)
    double accrue();   // busy time up to now (mutex held)

    const int threads_;
    const double started_at_;
    std::mutex mu_;
    std::map<unsigned long, Worker> workers_;  // by pthread id (faulthandler prints it)
    uint64_t requests_ = 0;
    int active_ = 0;
    double busy_ = 0;
    uint64_t busy_since_us_ = 0;

    bool sampling_ = false;
    double sample_start_ = 0, sample_busy_ = 0, sample_user_ = 0, sample_system_ = 0;
    uint64_t sample_count_start_ = 0;
    uint64_t sampled_ = 0;
    double totals_[4] = {0, 0, 0, 0};
    int buckets_[4][kBuckets] = {};
    std::map<int, int> thread_buckets_;
};

}  // namespace modwsgi

#endif
