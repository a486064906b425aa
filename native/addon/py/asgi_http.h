// The state of one ASGI HTTP request (asgi_http.cc: receive(), send(), the task's end, wake-ups) and
// the response frames its messages become (asgi_http_send.cc), queued until JavaScript has room.
#ifndef MODWSGI_ADDON_ASGI_HTTP_H
#define MODWSGI_ADDON_ASGI_HTTP_H

#include "asgi_loop.h"

#include <vector>

namespace modwsgi {
namespace asgi_http {

// Body bytes per BODY frame and per output event: a worker's kPiece (response.cc).
constexpr size_t kPiece = 256 * 1024;

struct Piece {
    std::string data;  // whole frames
    int fd = -1;       // a FILE frame's descriptor: such a piece holds that frame alone
};

// A first-in first-out list that allocates nothing until used (std::deque allocates when made, and
// there are three per request).
template <class T>
class Fifo {
public:
    bool empty() const { return head_ == v_.size(); }
    size_t size() const { return v_.size() - head_; }
    T &front() { return v_[head_]; }
    T &back() { return v_.back(); }
    void push_back(T &&x) { v_.push_back(std::move(x)); }
    void push_back(const T &x) { v_.push_back(x); }
    void pop_front() {
        if (++head_ == v_.size())
            clear();
    }
    void clear() {
        v_.clear();
        head_ = 0;
    }
    typename std::vector<T>::iterator begin() { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
    typename std::vector<T>::iterator end() { return v_.end(); }

private:
    std::vector<T> v_;
    size_t head_ = 0;
};

struct HttpState {
    AsgiLoop *loop = nullptr;
    std::shared_ptr<Request> req;
    std::string label;  // "'app' of script '...'"
    std::string client;
    PyObject *task = nullptr;
    Fifo<PyObject *> receivers;  // futures of receive() calls waiting for a message
    Fifo<PyObject *> senders;    // futures of send() calls waiting for their output to go
    Fifo<Piece> out;             // frames not posted yet (no room in JavaScript)
    std::string head;                  // HEAD payload from http.response.start
    int64_t content_length = -1;
    uint64_t body_bytes = 0;
    bool head_method = false;
    bool started = false;       // http.response.start came
    bool head_queued = false;   // its HEAD frame is in `out` or posted
    bool posted = false;        // something went to JavaScript: no ERROR can replace the response now
    bool body_done = false;     // the last http.request message was given to the application
    bool complete = false;      // the application sent its last body message (or a pathsend)
    bool end_queued = false;    // END is the last frame in `out`
    bool final_posted = false;  // the request's final event went out
    bool over_length = false;
    bool client_gone = false;
    bool cancelled = false;     // task.cancel() for request-timeout
    bool finished = false;      // the task is done
};

// --- the response's frames (asgi_http_send.cc) ---

// Appends whole frames to the output queue: to its last piece while that stays small, else as a new one.
void queue(HttpState &h, std::string &&frames, int fd = -1);
// The HEAD frame of http.response.start.
void queue_head(HttpState &h);
// http.response.body: HEAD (first time), BODY frames, END when more_body is false.
bool queue_body_message(HttpState &h, AsgiStrings &s, PyObject *msg);
// http.response.pathsend: HEAD (first time), FILE, END.
bool queue_file(HttpState &h, AsgiStrings &s, PyObject *msg);
// The response is complete: END, after a Content-Length check.
void queue_end(HttpState &h);

}  // namespace asgi_http
}  // namespace modwsgi

#endif
