// One request between the daemon and a worker thread: its REQUEST payload, the buffered request body
// (wsgi.input) and the accounting of response output not yet seen by JavaScript. Plain C++, no Python:
// the JavaScript thread calls the "JS side" methods, the worker the others; one mutex guards both.
#ifndef MODWSGI_ADDON_REQUEST_H
#define MODWSGI_ADDON_REQUEST_H

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "host.h"

namespace modwsgi {

class Request;

// Whoever runs a request outside a worker thread (the ASGI event loop, asgi_loop.cc) is told through
// this when something it waits for may have happened: input it asked for arrived or ended, room for
// output it holds, the client left, or the request was cancelled. Called on the JavaScript thread,
// never with the request's lock held; it must only note the request and wake its own thread.
class RequestListener {
public:
    virtual ~RequestListener() = default;
    virtual void request_changed(const std::shared_ptr<Request> &req) = 0;
};

class Request : public std::enable_shared_from_this<Request> {
public:
    // Input watermarks of the Bridge contract: the daemon pauses reading above kInputHigh buffered
    // bytes and is told to resume once the application has read it down below kInputLow.
    static constexpr size_t kInputHigh = 256 * 1024;
    static constexpr size_t kInputLow = 64 * 1024;
    // Output bytes a worker may have posted that the JavaScript thread has not handled yet.
    static constexpr size_t kOutputHigh = 1024 * 1024;

    Request(double id, std::vector<uint8_t> payload, bool has_body, std::shared_ptr<EventSink> sink);

    double id() const { return id_; }
    // When the daemon handed it to a worker's queue, µs since the epoch (mod_wsgi's daemon_start).
    uint64_t received_us() const { return received_us_; }
    const std::vector<uint8_t> &payload() const { return payload_; }

    // --- JavaScript thread ---
    size_t input(const uint8_t *data, size_t n);  // returns bytes buffered and unread
    void end_input();
    void abort();
    void pause_output();
    void resume_output();
    void delivered(size_t n);
    // An ASGI request's task is to be cancelled (request-timeout): its listener is told.
    void cancel();

    // --- worker thread ---
    enum class InputStatus { kData, kEof, kAborted, kExpired };
    // Copies into dst up to `max` buffered bytes, stopping after a newline when `line`; *copied is set.
    // Returns kData when it copied something or more may come, kEof/kAborted/kExpired otherwise.
    InputStatus take_into(char *dst, size_t max, bool line, bool *newline, size_t *copied);
    // Bytes buffered and not read yet.
    size_t buffered();
    // Blocks until input is buffered or it ended. The caller has released the GIL.
    void wait_input();
    // True when output may be posted now without waiting.
    bool writable();
    // Blocks until output may be posted; false when the client is gone. GIL released by the caller.
    bool wait_writable();
    bool aborted();
    // Posts frames to JavaScript (fd >= 0: a FILE frame's descriptor, passed on or closed).
    bool post_output(std::string &&frames, bool final, int fd);
    // WSGI_OUT_* bits that are not in the frames, added to the request's final output event.
    void note_info(unsigned bits) { extra_info_ |= bits; }
    // The worker is done with the request: wsgi.input reads fail from now on.
    void finish();

    // --- a request run by an event loop (ASGI) instead of a worker thread ---
    // From now on `l` hears of changes (see RequestListener); it outlives the request.
    void attach_listener(RequestListener *l);
    // Takes up to `max` buffered body bytes into dst (*copied). *more: more body may follow. Returns
    // kData (with *copied 0 when nothing is buffered yet: the listener is told when input comes),
    // kEof (the body is complete and nothing was left), kAborted.
    InputStatus take_async(char *dst, size_t max, size_t *copied, bool *more);
    // True when output may be posted now; false after arranging for the listener to be told once it
    // may (the client gone counts as "may": post_output then reports it).
    bool writable_async();
    bool cancelled();
    // The loop's own per-request object and its place in the loop's wake-up list: touched only by the
    // loop (ctx, kind) or under the loop's lock (wake_queued), never by the request itself.
    void *loop_ctx = nullptr;
    enum class LoopKind : uint8_t { kHttp, kWebSocket } loop_kind = LoopKind::kHttp;
    bool wake_queued = false;

    // --- a WebSocket on the loop (asgi_websocket.cc): the input is the client's messages as records
    // (asgi_ws_records.h), fed by JavaScript after the upgrade; its end means the client is gone ---
    // Input may come although the REQUEST had no body (the WebSocket's messages, after the accept).
    void open_input();
    bool input_ended();
    // Takes the next record if the whole of it is buffered: *kind set (0: not all there yet, the
    // listener is told when more comes) and its payload copied to dst(kind, length) (null: no memory,
    // kExpired). kEof when the input ended with nothing left, kAborted.
    template <class Dst>
    InputStatus take_record(uint8_t *kind, Dst &&dst);
    // Posts WebSocket message records (not frames) for the daemon to frame: info WSGI_OUT_MESSAGES.
    bool post_records(std::string &&records, bool final);

    // --- mod_ssl.var_lookup(): the worker asks the Apache child through a VAR_LOOKUP frame ---
    enum class LookupStatus { kValue, kMissing, kAborted };
    // Posts the lookup and blocks until JavaScript answers (GIL released by the caller). One lookup
    // of a request is in flight at a time; other threads of the application wait their turn.
    LookupStatus lookup(std::string_view name, std::string *value);
    // JavaScript thread: the child's VAR_VALUE (present false: no such variable). False when no
    // lookup was waiting for it.
    bool lookup_answer(bool present, const uint8_t *data, size_t n);

private:
    void post_input_resume();
    // Copies n buffered bytes (n <= buffered_) to dst, consuming them or not. Lock held.
    void copy_out(char *dst, size_t n, bool consume);
    bool post_event(std::string &&data, bool final, int fd, unsigned info);
    // Tells the listener (if any) outside the lock; `l` was read under it.
    void notify(RequestListener *l);

    const double id_;
    const uint64_t received_us_;
    const std::vector<uint8_t> payload_;
    const std::shared_ptr<EventSink> sink_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> chunks_;
    size_t chunk_offset_ = 0;  // bytes of chunks_.front() already read
    size_t buffered_ = 0;
    bool eof_;
    bool aborted_ = false;
    bool finished_ = false;
    bool input_paused_ = false;  // we told the caller to stop feeding input
    bool output_paused_ = false;
    size_t inflight_ = 0;
    int waiters_ = 0;
    // The lookup in flight: asked, answered, and the answer.
    bool lookup_busy_ = false;
    bool lookup_done_ = false;
    bool lookup_present_ = false;
    std::string lookup_value_;
    unsigned extra_info_ = 0;  // worker thread only, read when it posts its final event
    // Run by an event loop: who to tell, and what it waits for.
    RequestListener *listener_ = nullptr;
    bool want_input_ = false;
    bool want_output_ = false;
    bool cancelled_ = false;
};

template <class Dst>
Request::InputStatus Request::take_record(uint8_t *kind, Dst &&dst) {
    bool resume = false;
    *kind = 0;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (aborted_)
            return InputStatus::kAborted;
        unsigned char h[5];
        size_t len = 0;
        if (buffered_ >= 5) {
            copy_out(reinterpret_cast<char *>(h), 5, false);
            len = (size_t(h[1]) << 24) | (size_t(h[2]) << 16) | (size_t(h[3]) << 8) | h[4];
        }
        if (buffered_ < 5 || buffered_ - 5 < len) {
            if (eof_)
                return InputStatus::kEof;  // a record cut short is dropped with the rest
            want_input_ = true;
            return InputStatus::kData;
        }
        char *out = dst(h[0], len);
        if (!out)
            return InputStatus::kExpired;
        copy_out(reinterpret_cast<char *>(h), 5, true);
        copy_out(out, len, true);
        *kind = h[0];
        if (input_paused_ && buffered_ < kInputLow) {
            input_paused_ = false;
            resume = true;
        }
    }
    if (resume)
        post_input_resume();
    return InputStatus::kData;
}

}  // namespace modwsgi

#endif
