#include "request.h"

#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "wsgi_wire.h"

namespace modwsgi {

namespace {
uint64_t wall_us() {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    return static_cast<uint64_t>(tv.tv_sec) * 1000000u + static_cast<uint64_t>(tv.tv_usec);
}
}  // namespace

Request::Request(double id, std::vector<uint8_t> payload, bool has_body, std::shared_ptr<EventSink> sink)
    : id_(id), received_us_(wall_us()), payload_(std::move(payload)), sink_(std::move(sink)), eof_(!has_body) {}

void Request::notify(RequestListener *l) {
    if (l)
        l->request_changed(shared_from_this());
}

size_t Request::input(const uint8_t *data, size_t n) {
    RequestListener *tell = nullptr;
    size_t buffered;
    {
        std::lock_guard<std::mutex> lock(mu_);
        // Once the application is done (or the request ended) nobody will read: drop the bytes and
        // report nothing buffered so the daemon keeps draining the connection.
        if (finished_ || aborted_ || eof_)
            return 0;
        if (n) {
            chunks_.emplace_back(reinterpret_cast<const char *>(data), n);
            buffered_ += n;
            if (waiters_)
                cv_.notify_all();
            if (want_input_) {
                want_input_ = false;
                tell = listener_;
            }
        }
        if (buffered_ > kInputHigh)
            input_paused_ = true;
        buffered = buffered_;
    }
    notify(tell);
    return buffered;
}

void Request::end_input() {
    RequestListener *tell = nullptr;
    {
        std::lock_guard<std::mutex> lock(mu_);
        eof_ = true;
        if (waiters_)
            cv_.notify_all();
        if (want_input_) {
            want_input_ = false;
            tell = listener_;
        }
    }
    notify(tell);
}

void Request::abort() {
    RequestListener *tell;
    {
        std::lock_guard<std::mutex> lock(mu_);
        aborted_ = true;
        cv_.notify_all();
        tell = listener_;
    }
    notify(tell);
}

void Request::cancel() {
    RequestListener *tell;
    {
        std::lock_guard<std::mutex> lock(mu_);
        cancelled_ = true;
        tell = listener_;
    }
    notify(tell);
}

void Request::pause_output() {
    std::lock_guard<std::mutex> lock(mu_);
    output_paused_ = true;
}

void Request::resume_output() {
    RequestListener *tell = nullptr;
    {
        std::lock_guard<std::mutex> lock(mu_);
        output_paused_ = false;
        if (waiters_)
            cv_.notify_all();
        if (want_output_ && inflight_ < kOutputHigh) {
            want_output_ = false;
            tell = listener_;
        }
    }
    notify(tell);
}

void Request::delivered(size_t n) {
    RequestListener *tell = nullptr;
    {
        std::lock_guard<std::mutex> lock(mu_);
        inflight_ = n > inflight_ ? 0 : inflight_ - n;
        if (waiters_ && inflight_ < kOutputHigh)
            cv_.notify_all();
        if (want_output_ && inflight_ < kOutputHigh && !output_paused_) {
            want_output_ = false;
            tell = listener_;
        }
    }
    notify(tell);
}

void Request::attach_listener(RequestListener *l) {
    std::lock_guard<std::mutex> lock(mu_);
    listener_ = l;
}

Request::InputStatus Request::take_async(char *dst, size_t max, size_t *copied_out, bool *more) {
    bool resume = false;
    InputStatus status = InputStatus::kData;
    *copied_out = 0;
    *more = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (aborted_)
            return InputStatus::kAborted;
        size_t copied = 0;
        while (copied < max && !chunks_.empty()) {
            const std::string &c = chunks_.front();
            size_t n = std::min(c.size() - chunk_offset_, max - copied);
            memcpy(dst + copied, c.data() + chunk_offset_, n);
            copied += n;
            chunk_offset_ += n;
            buffered_ -= n;
            if (chunk_offset_ == c.size()) {
                chunks_.pop_front();
                chunk_offset_ = 0;
            }
        }
        if (input_paused_ && buffered_ < kInputLow) {
            input_paused_ = false;
            resume = true;
        }
        *more = !eof_ || buffered_ > 0;
        if (copied == 0 && !*more)
            status = InputStatus::kEof;
        else if (copied == 0)
            want_input_ = true;
        *copied_out = copied;
    }
    if (resume)
        post_input_resume();
    return status;
}

bool Request::writable_async() {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_ || (!output_paused_ && inflight_ < kOutputHigh))
        return true;
    want_output_ = true;
    return false;
}

bool Request::cancelled() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
}

size_t Request::buffered() {
    std::lock_guard<std::mutex> lock(mu_);
    return buffered_;
}

Request::InputStatus Request::take_into(char *dst, size_t max, bool line, bool *newline, size_t *copied_out) {
    bool resume = false;
    InputStatus status;
    *newline = false;
    *copied_out = 0;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (aborted_)
            return InputStatus::kAborted;
        if (finished_)
            return InputStatus::kExpired;
        size_t copied = 0;
        while (copied < max && !chunks_.empty()) {
            const std::string &c = chunks_.front();
            const char *p = c.data() + chunk_offset_;
            size_t n = c.size() - chunk_offset_;
            if (n > max - copied)
                n = max - copied;
            if (line) {
                const void *nl = memchr(p, '\n', n);
                if (nl) {
                    n = static_cast<size_t>(static_cast<const char *>(nl) - p) + 1;
                    *newline = true;
                }
            }
            memcpy(dst + copied, p, n);
            copied += n;
            chunk_offset_ += n;
            buffered_ -= n;
            if (chunk_offset_ == c.size()) {
                chunks_.pop_front();
                chunk_offset_ = 0;
            }
            if (*newline)
                break;
        }
        if (input_paused_ && buffered_ < kInputLow) {
            input_paused_ = false;
            resume = true;
        }
        status = (copied || !eof_ || buffered_) ? InputStatus::kData : InputStatus::kEof;
        *copied_out = copied;
    }
    if (resume)
        post_input_resume();
    return status;
}

void Request::wait_input() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiters_;
    cv_.wait(lock, [this] { return buffered_ || eof_ || aborted_ || finished_; });
    --waiters_;
}

bool Request::writable() {
    std::lock_guard<std::mutex> lock(mu_);
    return aborted_ || (!output_paused_ && inflight_ < kOutputHigh);
}

bool Request::wait_writable() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiters_;
    cv_.wait(lock, [this] { return aborted_ || (!output_paused_ && inflight_ < kOutputHigh); });
    --waiters_;
    return !aborted_;
}

bool Request::aborted() {
    std::lock_guard<std::mutex> lock(mu_);
    return aborted_;
}

bool Request::post_output(std::string &&frames, bool final, int fd) {
    unsigned info = wsgi_output_info(reinterpret_cast<const unsigned char *>(frames.data()), frames.size());
    return post_event(std::move(frames), final, fd, info);
}

bool Request::post_records(std::string &&records, bool final) {
    return post_event(std::move(records), final, -1, WSGI_OUT_MESSAGES);
}

bool Request::post_event(std::string &&data, bool final, int fd, unsigned info) {
    size_t n = data.size();
    {
        std::lock_guard<std::mutex> lock(mu_);
        inflight_ += n;
    }
    Event ev;
    ev.kind = Event::Kind::kOutput;
    ev.id = id_;
    ev.req = shared_from_this();
    ev.data = std::move(data);
    ev.final = final;
    ev.fd = fd;
    ev.info = info;
    if (final)
        ev.info |= extra_info_;
    if (sink_->post(std::move(ev)))
        return true;
    // The bridge is closed: nobody will ever see this output, so nothing may wait for it.
    if (fd >= 0)
        close(fd);
    std::lock_guard<std::mutex> lock(mu_);
    inflight_ = 0;
    aborted_ = true;
    cv_.notify_all();
    return false;
}

void Request::open_input() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_ && !aborted_)
        eof_ = false;
}

bool Request::input_ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return eof_ || aborted_;
}

void Request::copy_out(char *dst, size_t n, bool consume) {
    size_t offset = chunk_offset_;
    auto it = chunks_.begin();
    while (n) {
        size_t k = std::min(it->size() - offset, n);
        memcpy(dst, it->data() + offset, k);
        dst += k;
        n -= k;
        offset += k;
        if (offset == it->size()) {
            ++it;
            offset = 0;
        }
        if (consume) {
            buffered_ -= k;
            chunk_offset_ = offset;
            if (offset == 0)
                chunks_.pop_front(), it = chunks_.begin();
        }
    }
}

void Request::finish() {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    chunks_.clear();
    buffered_ = 0;
    cv_.notify_all();
}

Request::LookupStatus Request::lookup(std::string_view name, std::string *value) {
    {
        std::unique_lock<std::mutex> lock(mu_);
        ++waiters_;
        cv_.wait(lock, [this] { return !lookup_busy_ || aborted_ || finished_; });
        --waiters_;
        // After finish() the request's `final` may already be out: nobody would answer.
        if (aborted_ || finished_)
            return LookupStatus::kAborted;
        lookup_busy_ = true;
        lookup_done_ = false;
    }
    // The frame goes out with the request's other output, in order (docs/protocol.md).
    std::string frame(WSGI_WIRE_HEADER_SIZE + 4 + name.size(), '\0');
    auto *p = reinterpret_cast<unsigned char *>(&frame[0]);
    wsgi_frame_header_pack(p, WSGI_FRAME_VAR_LOOKUP, 0, static_cast<uint32_t>(4 + name.size()));
    wsgi_write_string(p + WSGI_WIRE_HEADER_SIZE, name.data(), static_cast<uint32_t>(name.size()));
    bool posted = post_output(std::move(frame), false, -1);
    std::unique_lock<std::mutex> lock(mu_);
    if (posted) {
        ++waiters_;
        cv_.wait(lock, [this] { return lookup_done_ || aborted_ || finished_; });
        --waiters_;
    }
    LookupStatus status = LookupStatus::kAborted;
    if (posted && lookup_done_) {
        status = lookup_present_ ? LookupStatus::kValue : LookupStatus::kMissing;
        value->swap(lookup_value_);
    }
    lookup_value_.clear();
    lookup_busy_ = false;
    lookup_done_ = false;
    cv_.notify_all();  // the next thread waiting to look something up
    return status;
}

bool Request::lookup_answer(bool present, const uint8_t *data, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!lookup_busy_ || lookup_done_)
        return false;
    if (n)
        lookup_value_.assign(reinterpret_cast<const char *>(data), n);
    else
        lookup_value_.clear();  // an empty Buffer may have no data pointer
    lookup_present_ = present;
    lookup_done_ = true;
    cv_.notify_all();
    return true;
}

void Request::post_input_resume() {
    Event ev;
    ev.kind = Event::Kind::kInputResume;
    ev.id = id_;
    ev.req = shared_from_this();
    sink_->post(std::move(ev));
}

}  // namespace modwsgi
