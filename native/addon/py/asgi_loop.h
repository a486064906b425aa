// One ASGI event loop: an asyncio (or uvloop) loop on a thread of its own, for one application group
// (asgi.h). Shared by asgi_loop.cc (the thread, the wake-up fd, the batch), asgi_apps.cc (applications
// and their lifespans) and asgi_http.cc (requests). Everything below "loop thread" is touched only by
// the loop's thread, holding the GIL with a thread state of the group's interpreter.
#ifndef MODWSGI_ADDON_ASGI_LOOP_H
#define MODWSGI_ADDON_ASGI_LOOP_H

#include "asgi.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <unordered_set>

namespace modwsgi {

// The REQUEST variables an ASGI request needs (views into its payload).
struct HttpVars {
    uint32_t flags = 0;
    std::string_view method, protocol, scheme, path_info, script_name, request_uri, query_string;
    std::string_view remote_addr, remote_port, server_addr, listener_port;
    std::string_view script, handler_script, callable, app_type, reloading, request_id;
    // The request headers in arrival order: CONTENT_TYPE, CONTENT_LENGTH and HTTP_* (name as sent).
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    std::string client;  // "[client addr:port] [request ID] ": the tag of the request's log lines
};

// Parses a REQUEST payload; false when it is malformed (asgi_scope.cc).
bool http_vars_parse(const std::vector<uint8_t> &payload, HttpVars *out);

// Interned keys and constant values used to build scopes and read messages.
struct AsgiStrings {
    PyObject *type, *asgi, *version, *spec_version, *http_version, *method, *scheme, *path, *raw_path,
        *query_string, *root_path, *headers, *client, *server, *state, *extensions, *body, *more_body,
        *status, *message, *trailers;
    PyObject *http, *http_request, *http_disconnect, *http_response_start, *http_response_body,
        *http_response_pathsend, *pathsend_ext, *asgi_dict, *extensions_dict, *v10, *v11, *v2, *https, *empty_bytes,
        *receive, *send, *done, *cancel, *add_done_callback, *result, *set_result, *set_exception, *cancelled,
        *exception, *str_done;
    // WebSocket (asgi_websocket.cc)
    PyObject *websocket, *ws, *wss, *subprotocols, *subprotocol, *ws_extensions_dict, *text, *bytes, *code,
        *reason, *websocket_connect, *websocket_receive, *websocket_disconnect, *websocket_accept, *websocket_send,
        *websocket_close, *websocket_http_response_start, *websocket_http_response_body;
};

// An application of the group (a script's callable) as the loop knows it.
struct AsgiApp {
    std::string key;       // asgi_app_key(script, callable)
    std::string label;     // "callable" of script '...', for log lines
    PyRef app;             // the callable; a reloaded script brings a new one (and a new lifespan)
    PyRef state;           // the lifespan state dict, shallow-copied into every scope
    PyRef lifespan;        // the glue's Lifespan object while one runs or ran
    PyRef runner;          // glue.SyncThreads.run when the application uses asgiref, else null
    enum class Startup { kNone, kRunning, kDone } startup = Startup::kNone;
    std::vector<std::shared_ptr<Request>> waiting;  // requests that arrived before startup completed
    std::vector<double> preloads;                   // WSGIImportScript tokens waiting for the same
};

class AsgiLoop final : public RequestListener {
public:
    AsgiLoop(AsgiHub &hub, Runtime &rt, InterpState &st);
    ~AsgiLoop() override;

    // Starts the loop's thread; false (logged) when it cannot. Called once, by the hub.
    bool start();

    // --- any thread ---
    void push_request(std::shared_ptr<Request> req);
    void push_preload(double token, const std::string &script, const std::string &callable);
    void push_stop(std::chrono::steady_clock::time_point deadline);
    // RequestListener: JavaScript thread (input, room for output, abort, cancel).
    void request_changed(const std::shared_ptr<Request> &req) override;

    // --- loop thread ---
    AsgiHub &hub;
    Runtime &rt;
    InterpState &st;
    AsgiStrings s{};
    PyObject *glue = nullptr;         // the glue module
    PyObject *http_type = nullptr;    // glue.Http (subclass of the C base in asgi_http.cc)
    PyObject *disconnected = nullptr; // glue.ClientDisconnected
    PyObject *http_main = nullptr;    // glue.Http._main (unbound): a request's task
    PyObject *ws_type = nullptr;      // glue.WebSocket (subclass of the C base in asgi_websocket.cc)
    PyObject *cancelled_error = nullptr;  // asyncio.CancelledError
    PyObject *pyloop = nullptr;       // the running event loop
    PyObject *create_task = nullptr;  // pyloop.create_task
    PyObject *create_future = nullptr;
    // By key ("script\0callable"); two keys for one callable object (WSGIImportScript preloads
    // `application`, a WSGIHandlerScript calls `handle_request` = application) share one entry.
    std::unordered_map<std::string, std::shared_ptr<AsgiApp>> apps;
    std::unordered_set<PyObject *> live;  // Http objects whose task has not finished (owned refs)
    // "HTTP_USER_AGENT" -> b"user-agent", owned (asgi_http.cc); bounded like KeyCache
    std::unordered_map<std::string, PyObject *> header_names;

    // Posts frames for a request that ends now (ERROR, GOAWAY...): its final event.
    void answer(Request &req, std::string &&frames);

private:
    struct Item {
        enum class Kind { kRequest, kPreload, kStop } kind;
        std::shared_ptr<Request> req;
        double token = 0;
        std::string script, callable;
        std::chrono::steady_clock::time_point deadline;
    };

    static void *thread_main(void *arg);
    void run();
    std::string serve();
    void push(Item &&item);
    void wake_fd();
    void fail_all(const std::string &why);
    // Answers queued work that will not run: requests with `error` (an ERROR frame), preloads as failed.
    void refuse(std::vector<Item> &items, const std::string &error, const std::string &preload_why);
    static PyObject *drain_entry(PyObject *self, PyObject *);
    void drain();
    void handle(Item &item);
    void stop_now(std::chrono::steady_clock::time_point deadline);

    int efd_ = -1;
    std::mutex mu_;
    std::vector<Item> items_;
    std::vector<std::shared_ptr<Request>> woken_;
    bool signalled_ = false;
    bool failed_ = false;  // the loop could not start: work is answered at once
    bool exited_ = false;
    std::string failure_;
    PyObject *capsule_ = nullptr;  // self, for the C functions the glue calls
};

// --- asgi_apps.cc (loop thread) ---
// A request for this loop: loads its application (reloading as WSGI requests do), runs its lifespan
// startup first if needed, then starts it.
void apps_request(AsgiLoop &loop, std::shared_ptr<Request> req);
// A WSGIImportScript preload of an ASGI application: its lifespan startup, then the answer.
void apps_preload(AsgiLoop &loop, double token, const std::string &script, const std::string &callable);
// The glue's Lifespan reports its startup: status 'complete', 'unsupported' or 'failed' (message).
PyObject *apps_lifespan_ready(AsgiLoop &loop, PyObject *lifespan, PyObject *status, PyObject *message);
// Lifespan objects that completed startup (for the shutdown), as a new list.
PyObject *apps_lifespans(AsgiLoop &loop);

// --- asgi_scope.cc (loop thread) ---
bool http_strings_init(AsgiStrings &s);
// The http scope of a request, or (`websocket`) its websocket scope (new reference).
PyObject *http_build_scope(AsgiLoop &loop, AsgiApp &app, const HttpVars &vars, bool websocket = false);

// --- asgi_head.cc: http.response.start's status and headers, validated, as a HEAD payload ---
bool asgi_encode_head(AsgiStrings &s, PyObject *message, std::string *head, int64_t *content_length);

// --- asgi_http.cc (loop thread) ---
PyTypeObject *http_base_type_new();
// Starts the application's task for a request.
void http_start(AsgiLoop &loop, AsgiApp &app, std::shared_ptr<Request> req, HttpVars &vars);
// Something the request's object waits for may have happened (Request::loop_ctx is the object).
void http_wake(AsgiLoop &loop, Request &req);

// --- asgi_websocket.cc (loop thread): a request with the UPGRADE flag, as a websocket scope ---
PyTypeObject *ws_base_type_new();
void ws_start(AsgiLoop &loop, AsgiApp &app, std::shared_ptr<Request> req, HttpVars &vars);
void ws_wake(AsgiLoop &loop, Request &req);

}  // namespace modwsgi

#endif
