// The ASGI engine of the CPython side: ASGI 3 applications behind an ordinary WSGIScriptAlias, served
// from the same daemons as WSGI ones. Beside the WSGI path, not inside it:
//
//   asgi_hub.cc       which applications are ASGI (per group, script and callable); routing a request
//                     to its group's loop at submit(), or handing it over from the worker that loaded
//                     the script; one loop per application group, started on first use
//   asgi_loop.cc      the loop's thread: one fd wakes it, each wake-up drains a batch of work (new
//                     requests, input, room for output, clients gone, cancellations)
//   asgi_apps.cc      an application on the loop: loading, its lifespan before its first request
//   asgi_scope.cc     the http scope, from the REQUEST variables
//   asgi_http.cc      receive()/send() of an http request and its response frames
//   asgi_websocket.cc receive()/send() of a websocket scope (REQUEST flag UPGRADE): the accept, its
//                     messages as records the daemon frames (asgi_ws_records.h), the denial response
//   asgi_head.cc      a response's status and headers, validated, as a HEAD payload
//   asgi_frames.h     response frames as strings
//   asgi_glue.cc      the Python half: loop runner, executors, lifespan protocol, shutdown
//
// The JavaScript thread never takes the GIL: it only queues work and writes the wake-up fd. Output goes
// to JavaScript through the same Sink as WSGI output, as complete frames (one event per send() that
// must reach the client, and one final event per response). WebSocket is another scope type of the
// same loop, apps and message bridge.
#ifndef MODWSGI_ADDON_ASGI_H
#define MODWSGI_ADDON_ASGI_H

#include "py_internal.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace modwsgi {

// Log lines of the ASGI engine (docs/logging.md, WSGI03200-03299).
enum AsgiLogCode : int {
    kLogAsgiException = 3200,       // the application raised before its response started (500)
    kLogAsgiNoResponse = 3201,      // it returned without starting a response (500)
    kLogAsgiIncomplete = 3202,      // it returned or raised with its response begun but not complete
    kLogAsgiClientGone = 3203,      // the client left before the response was complete
    kLogAsgiAfterResponse = 3204,   // it raised after its response was complete
    kLogAsgiTooLong = 3205,         // more body than Content-Length
    kLogAsgiTooShort = 3206,        // less body than Content-Length
    kLogAsgiCancelled = 3207,       // cancelled by request-timeout
    kLogAsgiKindChanged = 3208,     // a reloaded script's callable is no longer ASGI
    kLogAsgiLifespanNone = 3210,    // the lifespan protocol is not supported by the application
    kLogAsgiStartupFailed = 3211,   // lifespan.startup.failed, or the loop could not start it
    kLogAsgiShutdownFailed = 3212,  // lifespan.shutdown.failed, an exception, or shutdown timed out
    kLogAsgiStartupDone = 3213,     // lifespan startup complete (info)
    kLogAsgiLoopStarted = 3220,     // an event loop runs for an application group (info)
    kLogAsgiLoopFailed = 3221,      // an event loop could not be started
    kLogAsgiNoUvloop = 3222,        // asgi-loop=uvloop but uvloop cannot be imported
    kLogAsgiLoopError = 3223,       // an exception reached the event loop itself
};

// What a REQUEST payload says about where the request goes (runtime.cc scans it at submit()).
struct RequestRoute {
    std::string group;                // mod_wsgi.application_group
    std::string_view script;          // SCRIPT_FILENAME, or mod_wsgi.handler_script when set
    std::string_view callable;        // mod_wsgi.callable_object ('' = application)
    std::string_view app_type;        // mod_wsgi.application_type: '', 'asgi' or 'wsgi'
};

// Notes one REQUEST variable in a route (runtime.cc calls it for each).
void route_note(RequestRoute &route, std::string_view name, std::string_view value);

// Whether an object is an ASGI 3 application: a coroutine function, or an object whose __call__ is
// one (marked ones too: asgiref's markcoroutinefunction). -1 with a Python error set on failure.
int asgi_is_application(PyObject *app);

// The key of an application in its group: "script\0callable".
std::string asgi_app_key(std::string_view script, std::string_view callable);

class AsgiLoop;

// Every ASGI event loop of the process, and which applications are ASGI. Owned by the Runtime.
class AsgiHub {
public:
    explicit AsgiHub(Runtime &rt);
    ~AsgiHub();

    // JavaScript thread: when the request's application is known to be ASGI (or the alias says so and
    // a loop runs it already), its group's loop takes it. No GIL.
    bool route(const RequestRoute &route, const std::shared_ptr<Request> &req);
    // Worker, GIL held, `app` just loaded for `call`: when it is ASGI, its group's loop takes the request
    // (a kDetached event tells JavaScript it no longer holds a thread) and this returns true.
    bool take_over(Call &call, PyObject *app);
    // Worker, GIL held, after WSGIImportScript loaded `script`: when its `application` is ASGI, the loop
    // runs its lifespan startup and answers the preload (`token`) once it is complete.
    bool take_preload(InterpState &st, const std::string &script, double token);
    // Any thread: what a loop learnt (a reloaded script's callable is no longer ASGI, say).
    void learn(const std::string &group, std::string_view script, std::string_view callable,
               std::string_view app_type, bool asgi);
    // JavaScript thread, at shutdown: each loop shuts its applications' lifespans down, cancels what
    // still runs and stops, by `deadline`.
    void stop(std::chrono::steady_clock::time_point deadline);

private:
    AsgiLoop *loop_for(InterpState &st);

    Runtime &rt_;
    std::mutex mu_;
    // group -> app key -> ASGI or not, as found by the worker that loaded it; `app` is the identity of
    // the object looked at (0: look again), so that a script reloaded in place is looked at afresh.
    struct Kind {
        bool asgi = false;
        uintptr_t app = 0;
    };
    std::unordered_map<std::string, std::unordered_map<std::string, Kind>> kinds_;
    std::map<std::string, std::unique_ptr<AsgiLoop>> loops_;  // by group; leaked at exit, never freed
    bool stopping_ = false;
};

// The runtime's hub (runtime.cc).
AsgiHub &runtime_asgi(Runtime &rt);

// --- asgi_glue.cc: the Python half, executed once per interpreter on its loop thread ---
// Returns the module (new reference) with the C helpers installed; `http_base` and `ws_base` are the
// base types of its Http and WebSocket classes.
PyObject *asgi_glue_module(InterpState &st, PyTypeObject *http_base, PyTypeObject *ws_base, PyObject *helpers_self);

}  // namespace modwsgi

#endif
