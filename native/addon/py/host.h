// The seam between the two halves of the addon. Plain C++ only: neither Python.h nor napi.h.
//
// The Node-API side (native/addon/*.cc) turns JavaScript values into these structs and calls Host; the
// CPython side (native/addon/py/*.cc) implements Host and reports back through an EventSink, which the
// Node-API side implements with its one thread-safe function.
#ifndef MODWSGI_ADDON_HOST_H
#define MODWSGI_ADDON_HOST_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace modwsgi {

class Request;

// Apache's level names, most severe first; a line is written when its level <= the configured one.
enum class LogLevel : int { kEmerg = 0, kAlert, kCrit, kError, kWarn, kNotice, kInfo, kDebug };

// Everything the CPython side needs, already validated by src/native/index.ts.
struct HostOptions {
    std::string program_name;
    std::string home;  // empty: none
    std::vector<std::string> path;
    bool cwd_first_on_path = false;
    enum class HashSeed { kDefault, kRandom, kFixed } hash_seed_mode = HashSeed::kDefault;
    uint32_t hash_seed = 0;
    bool dont_write_bytecode = false;
    int optimize = 0;
    std::vector<std::string> warnings;
    bool restrict_signal = true;
    bool restrict_stdin = false;
    bool restrict_stdout = false;
    std::string process_group;
    int threads = 1;
    size_t stack_size = 0;
    bool multithread = false;
    bool multiprocess = false;
    bool run_once = false;
    LogLevel log_level = LogLevel::kWarn;
    bool verbose = false;
    bool per_interpreter_gil = false;  // WSGIPerInterpreterGIL (3.12+)
    double switch_interval = 0;        // seconds; 0: Python's default
    bool asgi_uvloop = false;  // ASGI event loops are uvloop's (when it can be imported), else asyncio's
};

// One thing for the JavaScript thread to do. Output events carry complete wire frames.
struct Event {
    // kDetached: the request no longer holds a worker thread; it runs on its group's event loop (ASGI).
    enum class Kind : uint8_t { kOutput, kInputResume, kPreloadDone, kDetached };
    Kind kind = Kind::kOutput;
    double id = 0;                  // request id, or the preload token
    std::shared_ptr<Request> req;   // kOutput, kInputResume
    std::string data;               // kOutput: frames; kPreloadDone: error text when !ok
    bool final = false;             // kOutput
    unsigned info = 0;              // kOutput: what `data` carries, WSGI_OUT_* of wsgi_wire.h
    int fd = -1;                    // kOutput: descriptor travelling with a FILE frame, owned by the event
    bool ok = true;                 // kPreloadDone
    bool fatal = false;             // kPreloadDone, !ok: an ASGI lifespan startup failed (do not serve)
};

// Implemented by the Node-API side. post() may be called from any thread; it returns false once the
// sink is closed, and the caller then still owns whatever the event held (e.g. closes its fd).
class EventSink {
public:
    virtual ~EventSink() = default;
    virtual bool post(Event &&ev) = 0;
};

// The embedded Python of this process, implemented by the CPython side (runtime.cc).
class Host {
public:
    virtual ~Host() = default;
    // Queues a request for a worker of its application group (JavaScript thread) — or, when its
    // application is already known to be ASGI, hands it to the group's event loop (asgi_hub.cc). With
    // loop_only, a request that would need a worker is declined (left untouched) instead.
    enum class Submitted { kWorker, kLoop, kDeclined };
    virtual Submitted submit(std::shared_ptr<Request> req, bool loop_only) = 0;
    // Queues a hook (its payload is an AUTH payload) for a worker of its application group.
    virtual void submit_auth(std::shared_ptr<Request> req) = 0;
    // Loads a script into an application group; answers with a kPreloadDone event carrying `token`.
    virtual void preload(double token, const std::string &script, const std::string &group) = 0;
    // Milliseconds since the epoch of the watchdog's last GIL acquisition.
    virtual double last_gil_acquired() = 0;
    // How many times an application or hook ran out of memory: a MemoryError escaped it, or an
    // allocation failed in native code (memory-limit). The daemon restarts the process on it.
    virtual double memory_errors() = 0;
    // Python stacks of every thread of every interpreter to the error log, without the GIL.
    virtual void dump_stacks(const std::string &reason) = 0;
    // interrupt-timeout: raise mod_wsgi.RequestTimeout in the thread running request `id` (done by an
    // addon thread; this returns at once). False when the request is not running Python now.
    virtual bool interrupt(double id) = 0;
    // Stops workers and finalises Python within timeout_ms; false when it had to give up.
    virtual bool shutdown(int timeout_ms) = 0;
    // The scripts loaded so far: (script, application group) pairs (what a successor imports first).
    virtual std::vector<std::pair<std::string, std::string>> loaded_scripts() = 0;
    // Takes these versions of scripts (path, modification time in µs) as current: such a change no longer
    // asks for a restart, until the script changes again.
    virtual void accept_script_changes(const std::vector<std::pair<std::string, int64_t>> &versions) = 0;
};

// Starts Python (once per process). On failure returns null and sets *error.
std::unique_ptr<Host> start_host(const HostOptions &options, std::shared_ptr<EventSink> sink,
                                 std::string *error);

}  // namespace modwsgi

#endif
