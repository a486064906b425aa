// The state of one ASGI WebSocket (asgi_websocket.cc: receive(), the task's end, wake-ups) and the
// messages the application sends, turned into output (asgi_ws_send.cc: the accept's HEAD 101, the
// records of websocket.send and websocket.close, the denial response of websocket.http.response.*).
#ifndef MODWSGI_ADDON_ASGI_WS_H
#define MODWSGI_ADDON_ASGI_WS_H

#include "asgi_loop.h"

#include <deque>

namespace modwsgi {
namespace asgi_ws {

// Log lines (docs/asgi.md, WSGI03400-03449).
enum WsLogCode : int {
    kLogWsException = 3400,     // the application raised before accepting or denying (500)
    kLogWsExceptionOpen = 3401, // it raised after accepting: closed with 1011
    kLogWsNoHandshake = 3402,   // it returned without accepting or denying (500)
    kLogWsClientGone = 3403,    // it ended on ClientDisconnected (the client had left)
    kLogWsIncomplete = 3404,    // its denial response is incomplete
    kLogWsCancelled = 3405,     // cancelled by request-timeout before it accepted (504)
};

constexpr size_t kPiece = 256 * 1024;

enum class Phase { kConnecting, kOpen, kResponding, kOver };

struct WsState {
    AsgiLoop *loop = nullptr;
    std::shared_ptr<Request> req;
    std::string label;
    std::string client;
    PyObject *task = nullptr;
    std::deque<PyObject *> receivers;  // futures of receive() calls waiting for a message
    std::deque<PyObject *> senders;    // futures of send() calls waiting for room
    Phase phase = Phase::kConnecting;
    bool connect_given = false;   // websocket.connect was received
    bool closed_in = false;       // the client's side is over: what websocket.disconnect says is known
    int close_code = 1006;
    std::string close_reason;
    bool app_closed = false;      // the application sent websocket.close
    bool posted = false;          // output went to JavaScript: an ERROR can no longer replace it
    bool final_posted = false;
    bool finished = false;        // the task is done
    bool cancelled = false;
    // The denial response (websocket.http.response.*).
    std::string head;
    int64_t content_length = -1;
    uint64_t body_bytes = 0;
    std::string text;             // a text record's bytes, decoded into a str
};

// --- output (asgi_ws_send.cc) ---

void post_frames(WsState &w, std::string &&frames, bool final);
void post_records(WsState &w, std::string &&records, bool final);
// websocket.accept: the HEAD 101 (the Apache child adds Upgrade, Connection and Sec-WebSocket-Accept).
bool accept(WsState &w, AsgiStrings &s, PyObject *msg);
// websocket.close before the accept: an ordinary 403.
void deny(WsState &w);
// websocket.http.response.body: the denial response's HEAD (first time), BODY frames, END at the end.
bool respond_body(WsState &w, AsgiStrings &s, PyObject *msg);
// websocket.send: exactly one of 'bytes' and 'text'.
bool send_message(WsState &w, AsgiStrings &s, PyObject *msg);
// websocket.close after the accept: a close frame with the code (1000) and reason ('').
bool close_open(WsState &w, AsgiStrings &s, PyObject *msg);

}  // namespace asgi_ws
}  // namespace modwsgi

#endif
