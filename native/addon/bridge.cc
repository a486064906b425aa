#include "bridge.h"

#include <unistd.h>

#include <new>
#include <stdexcept>

#include "errors.h"
#include "options.h"

namespace modwsgi {

namespace {

// Above this size a response chunk is handed to JavaScript without a copy.
constexpr size_t kCopyLimit = 64 * 1024;

void DropEvent(Event &ev) {
    if (ev.fd >= 0) {
        close(ev.fd);
        ev.fd = -1;
    }
}

double IdArg(const Napi::CallbackInfo &info) {
    if (!info[0].IsNumber())
        throw CodedError(info.Env(), ErrorCode::kInvalidArgument, "request id must be a number");
    return info[0].As<Napi::Number>().DoubleValue();
}

}  // namespace

// --- Sink ---

bool Sink::post(Event &&ev) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_)
        return false;
    try {
        queue_.push_back(std::move(ev));
    } catch (const std::bad_alloc &) {
        return false;  // the caller treats the event as undeliverable (and closes its descriptor)
    }
    if (!scheduled_) {
        // Under the lock, so that close() cannot release the function between check and call.
        if (napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking) != napi_ok) {
            queue_.pop_back();
            return false;
        }
        scheduled_ = true;
    }
    return true;
}

std::vector<Event> Sink::take() {
    std::vector<Event> batch;
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queue_);
    scheduled_ = false;
    return batch;
}

void Sink::close() {
    std::vector<Event> dropped;
    {
        std::lock_guard<std::mutex> lock(mu_);
        closed_ = true;
        dropped.swap(queue_);
    }
    for (Event &ev : dropped)
        DropEvent(ev);
}

// --- Bridge ---

Napi::Function Bridge::Define(Napi::Env env) {
    return DefineClass(env, "Bridge",
                       {
                           InstanceMethod<&Bridge::Submit>("submit"),
                           InstanceMethod<&Bridge::SubmitAuth>("submitAuth"),
                           InstanceMethod<&Bridge::VarValue>("varValue"),
                           InstanceMethod<&Bridge::Input>("input"),
                           InstanceMethod<&Bridge::EndInput>("endInput"),
                           InstanceMethod<&Bridge::Abort>("abort"),
                           InstanceMethod<&Bridge::Cancel>("cancel"),
                           InstanceMethod<&Bridge::Resume>("resume"),
                           InstanceMethod<&Bridge::Release>("release"),
                           InstanceMethod<&Bridge::Preload>("preload"),
                           InstanceMethod<&Bridge::LastGilAcquired>("lastGilAcquired"),
                           InstanceMethod<&Bridge::MemoryErrors>("memoryErrors"),
                           InstanceMethod<&Bridge::DumpStacks>("dumpStacks"),
                           InstanceMethod<&Bridge::Interrupt>("interrupt"),
                           InstanceMethod<&Bridge::Shutdown>("shutdown"),
                           InstanceMethod<&Bridge::LoadedScripts>("loadedScripts"),
                           InstanceMethod<&Bridge::AcceptScriptChanges>("acceptScriptChanges"),
                       });
}

// new Bridge(options, output, inputResume[, detached])
Bridge::Bridge(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Bridge>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    HostOptions options = ParseOptions(env, info[0]);
    if (!info[1].IsFunction() || !info[2].IsFunction())
        throw CodedError(env, ErrorCode::kInvalidArgument, "BridgeHandlers.output and BridgeHandlers.inputResume must be functions");
    output_ = Napi::Persistent(info[1].As<Napi::Function>());
    input_resume_ = Napi::Persistent(info[2].As<Napi::Function>());
    if (info[3].IsFunction())
        detached_ = Napi::Persistent(info[3].As<Napi::Function>());

    sink_ = std::make_shared<Sink>();
    // The function's finaliser owns a reference to the sink: late callbacks still find it alive.
    auto *keep = new std::shared_ptr<Sink>(sink_);
    napi_status s = napi_create_threadsafe_function(
        env, nullptr, nullptr, Napi::String::New(env, "mod_wsgi.bridge"), 0, 1, keep,
        [](napi_env, void *data, void *) { delete static_cast<std::shared_ptr<Sink> *>(data); }, sink_.get(), CallJs,
        &tsfn_);
    if (s != napi_ok) {
        delete keep;
        throw CodedError(env, ErrorCode::kInternal, "cannot create the thread-safe function");
    }
    sink_->set_tsfn(tsfn_);
    sink_->owner = this;
    napi_unref_threadsafe_function(env, tsfn_);  // only work in flight keeps the loop alive

    std::string error;
    host_ = start_host(options, sink_, &error);
    if (!host_) {
        sink_->owner = nullptr;
        sink_->close();
        napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
        closed_ = true;
        throw CodedError(env, ErrorCode::kPythonStart, "cannot start Python: " + error);
    }
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hook_added_ = true;
    // Python lives until shutdown(): the JavaScript object must not be collected before that.
    Ref();
    self_ref_ = true;
}

Bridge::~Bridge() {
    if (hook_added_)
        napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    if (!closed_)
        Close(nullptr, 2000);
    // A runtime that could not stop cleanly may still have threads using it: leave it allocated.
    if (!close_result_)
        (void)host_.release();
}

void Bridge::CleanupHook(void *arg) {
    auto *self = static_cast<Bridge *>(arg);
    self->hook_added_ = false;
    self->Close(nullptr, 2000);
}

void Bridge::CheckOpen(Napi::Env env) const {
    if (closed_)
        throw CodedError(env, ErrorCode::kClosed, "the Python bridge is shut down");
}

void Bridge::Hold() {
    if (held_++ == 0)
        napi_ref_threadsafe_function(env_, tsfn_);
}

void Bridge::Release() {
    if (held_ && --held_ == 0 && !closed_)
        napi_unref_threadsafe_function(env_, tsfn_);
}

std::shared_ptr<Request> Bridge::Find(const Napi::CallbackInfo &info) {
    auto it = requests_.find(IdArg(info));
    return it == requests_.end() ? nullptr : it->second;
}

// submit(id, payload, hasBody[, loopOnly]): true when the request went straight to an event loop (its
// application is known to be ASGI) and holds no worker thread. With loopOnly a request that would
// need a worker is not taken: false, and nothing else happened.
Napi::Value Bridge::Submit(const Napi::CallbackInfo &info) { return Enqueue(info, false); }

// submitAuth(id, payload): a hook; it ends with one output event carrying AUTH_RESULT (or ERROR).
Napi::Value Bridge::SubmitAuth(const Napi::CallbackInfo &info) { return Enqueue(info, true); }

Napi::Value Bridge::Enqueue(const Napi::CallbackInfo &info, bool auth) {
    Napi::Env env = info.Env();
    const std::string what = auth ? "submitAuth(): " : "submit(): ";
    CheckOpen(env);
    double id = IdArg(info);
    if (!info[1].IsBuffer())
        throw CodedError(env, ErrorCode::kInvalidArgument, what + "request must be a Buffer");
    if (requests_.count(id))
        throw CodedError(env, ErrorCode::kDuplicateId, what + "request id " + std::to_string(id) + " is already in flight");
    auto buf = info[1].As<Napi::Buffer<uint8_t>>();
    Host::Submitted where = Host::Submitted::kWorker;
    try {
        std::vector<uint8_t> payload(buf.Data(), buf.Data() + buf.Length());
        bool has_body = !auth && info[2].ToBoolean().Value();
        bool loop_only = !auth && info[3].ToBoolean().Value();
        auto req = std::make_shared<Request>(id, std::move(payload), has_body, sink_);
        if (auth)
            host_->submit_auth(req);
        else
            where = host_->submit(req, loop_only);
        if (where == Host::Submitted::kDeclined)
            return Napi::Boolean::New(env, false);
        requests_.emplace(id, std::move(req));
    } catch (const std::invalid_argument &e) {
        throw CodedError(env, ErrorCode::kMalformed, what + e.what());
    } catch (const std::bad_alloc &) {
        throw CodedError(env, ErrorCode::kNoMemory, what + "out of memory");
    } catch (const std::runtime_error &e) {
        throw CodedError(env, ErrorCode::kInternal, what + e.what());
    }
    Hold();
    return Napi::Boolean::New(env, where == Host::Submitted::kLoop);
}

// varValue(id, value): the Apache child's answer to the request's VAR_LOOKUP; null when the variable
// does not exist. Returns false when the request was not waiting for one (it ended meanwhile).
Napi::Value Bridge::VarValue(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Request> req = Find(info);
    bool present = !info[1].IsNull() && !info[1].IsUndefined();
    if (present && !info[1].IsBuffer())
        throw CodedError(env, ErrorCode::kInvalidArgument, "varValue(): value must be a Buffer or null");
    if (!req)
        return Napi::Boolean::New(env, false);
    try {
        if (!present)
            return Napi::Boolean::New(env, req->lookup_answer(false, nullptr, 0));
        auto value = info[1].As<Napi::Buffer<uint8_t>>();
        return Napi::Boolean::New(env, req->lookup_answer(true, value.Data(), value.Length()));
    } catch (const std::bad_alloc &) {
        throw CodedError(env, ErrorCode::kNoMemory, "varValue(): out of memory");
    }
}

Napi::Value Bridge::Input(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Request> req = Find(info);
    if (!info[1].IsBuffer())
        throw CodedError(env, ErrorCode::kInvalidArgument, "input(): chunk must be a Buffer");
    if (!req)
        return Napi::Number::New(env, 0);
    auto chunk = info[1].As<Napi::Buffer<uint8_t>>();
    try {
        return Napi::Number::New(env, static_cast<double>(req->input(chunk.Data(), chunk.Length())));
    } catch (const std::bad_alloc &) {
        throw CodedError(env, ErrorCode::kNoMemory, "input(): out of memory");
    }
}

Napi::Value Bridge::EndInput(const Napi::CallbackInfo &info) {
    if (std::shared_ptr<Request> req = Find(info))
        req->end_input();
    return info.Env().Undefined();
}

Napi::Value Bridge::Abort(const Napi::CallbackInfo &info) {
    if (std::shared_ptr<Request> req = Find(info))
        req->abort();
    return info.Env().Undefined();
}

// cancel(id): an ASGI request's task is cancelled (request-timeout); its final event answers 504, or
// ends the response incomplete when it had begun. Ignored for requests on worker threads.
Napi::Value Bridge::Cancel(const Napi::CallbackInfo &info) {
    if (std::shared_ptr<Request> req = Find(info))
        req->cancel();
    return info.Env().Undefined();
}

Napi::Value Bridge::Resume(const Napi::CallbackInfo &info) {
    if (std::shared_ptr<Request> req = Find(info))
        req->resume_output();
    return info.Env().Undefined();
}

// release(data): an output Buffer JavaScript is done with (written to its socket). Its memory is freed
// now rather than when the garbage collector finds the Buffer: V8 counts such memory only loosely, and
// response bodies waiting for a collection held tens of MiB. Only a Buffer that is a whole ArrayBuffer
// of its own (as output events are) is detached; anything else is left alone.
Napi::Value Bridge::Release(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info[0].IsBuffer()) {
        auto buf = info[0].As<Napi::Buffer<uint8_t>>();
        Napi::ArrayBuffer ab = buf.ArrayBuffer();
        if (buf.ByteOffset() == 0 && buf.ByteLength() == ab.ByteLength() && ab.ByteLength() > 0) {
            bool detachable = false;
            napi_value abv = ab;
            if (napi_is_detached_arraybuffer(env, abv, &detachable) == napi_ok && !detachable)
                napi_detach_arraybuffer(env, abv);  // fails harmlessly for a non-detachable buffer
        }
    }
    return env.Undefined();
}

Napi::Value Bridge::Preload(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (!info[0].IsString() || !info[1].IsString())
        throw CodedError(env, ErrorCode::kInvalidArgument, "preload(script, applicationGroup) takes two strings");
    double token = next_token_++;
    auto deferred = Napi::Promise::Deferred::New(env);
    try {
        host_->preload(token, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value());
    } catch (const std::exception &e) {
        throw CodedError(env, ErrorCode::kInternal, std::string("preload(): ") + e.what());
    }
    preloads_.emplace(token, deferred);
    Hold();
    return deferred.Promise();
}

Napi::Value Bridge::LastGilAcquired(const Napi::CallbackInfo &info) {
    return Napi::Number::New(info.Env(), host_->last_gil_acquired());
}

Napi::Value Bridge::DumpStacks(const Napi::CallbackInfo &info) {
    std::string reason = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string("requested");
    if (!closed_)
        host_->dump_stacks(reason);
    return info.Env().Undefined();
}

// interrupt(id): mod_wsgi.RequestTimeout for the request (interrupt-timeout); false when not running.
Napi::Value Bridge::Interrupt(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber())
        throw Napi::TypeError::New(env, "interrupt(id) takes a request id");
    bool done = !closed_ && host_ && host_->interrupt(info[0].As<Napi::Number>().DoubleValue());
    return Napi::Boolean::New(env, done);
}

Napi::Value Bridge::MemoryErrors(const Napi::CallbackInfo &info) {
    return Napi::Number::New(info.Env(), host_ ? host_->memory_errors() : 0);
}

// loadedScripts(): [{ script, applicationGroup }] of every script loaded so far.
Napi::Value Bridge::LoadedScripts(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (closed_)
        return out;
    uint32_t i = 0;
    for (const auto &s : host_->loaded_scripts()) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("script", Napi::String::New(env, s.first));
        o.Set("applicationGroup", Napi::String::New(env, s.second));
        out.Set(i++, o);
    }
    return out;
}

// acceptScriptChanges([{ script, mtimeUs }]): these versions of the scripts are taken as current (a
// successor could not load them): their change no longer makes requests restart the process.
Napi::Value Bridge::AcceptScriptChanges(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray())
        throw CodedError(env, ErrorCode::kInvalidArgument, "acceptScriptChanges(versions): an array of { script, mtimeUs }");
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<std::pair<std::string, int64_t>> versions;
    for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value v = a.Get(i);
        if (!v.IsObject())
            continue;
        Napi::Object o = v.As<Napi::Object>();
        Napi::Value s = o.Get("script"), m = o.Get("mtimeUs");
        if (s.IsString() && m.IsNumber())
            versions.emplace_back(s.As<Napi::String>().Utf8Value(), static_cast<int64_t>(m.As<Napi::Number>().DoubleValue()));
    }
    if (!closed_)
        host_->accept_script_changes(versions);
    return env.Undefined();
}

Napi::Value Bridge::Shutdown(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double timeout = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    if (!(timeout >= 0))
        timeout = 0;
    if (timeout > 86400000)
        timeout = 86400000;
    return Napi::Boolean::New(env, Close(env, static_cast<int>(timeout)));
}

// Stops Python and the event flow. Safe to call twice. With env null (environment teardown) no
// JavaScript is called: pending preload promises are then left unsettled.
bool Bridge::Close(napi_env env, int timeout_ms) {
    if (closed_)
        return close_result_;
    closed_ = true;
    // Nothing reaches JavaScript any more (this thread is busy here, then the events are dropped):
    // requests in flight are aborted, so that a worker waiting to send output or to read input
    // gets OSError and finishes instead of holding up the shutdown.
    sink_->owner = nullptr;
    sink_->close();
    for (auto &r : requests_)
        r.second->abort();
    requests_.clear();
    close_result_ = host_->shutdown(timeout_ms);
    napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
    if (env) {
        Napi::Env e(env);
        for (auto &p : preloads_)
            p.second.Reject(CodedError(e, ErrorCode::kClosed, "the Python bridge was shut down").Value());
    }
    preloads_.clear();
    if (self_ref_ && env) {
        self_ref_ = false;
        Unref();
    }
    return close_result_;
}

void Bridge::CallJs(napi_env env, napi_value, void *context, void *) {
    auto *sink = static_cast<Sink *>(context);
    if (!env || !sink->owner) {
        // Torn down with the environment, or the bridge is closed: nobody will handle these.
        for (Event &ev : sink->take())
            DropEvent(ev);
        return;
    }
    sink->owner->Drain(Napi::Env(env));
}

void Bridge::Drain(Napi::Env env) {
    std::vector<Event> batch = sink_->take();
    Napi::HandleScope scope(env);
    Napi::Value first_error;
    for (Event &ev : batch) {
        try {
            Dispatch(env, ev);
        } catch (const Napi::Error &e) {
            if (first_error.IsEmpty())
                first_error = e.Value();
        } catch (const std::bad_alloc &) {
            if (first_error.IsEmpty())
                first_error = CodedError(env, ErrorCode::kNoMemory, "mod_wsgi bridge: out of memory delivering output").Value();
        }
        DropEvent(ev);
    }
    // A handler threw: report it as an uncaught exception once the batch's bookkeeping is done.
    if (!first_error.IsEmpty())
        napi_fatal_exception(env, first_error);
}

void Bridge::Dispatch(Napi::Env env, Event &ev) {
    switch (ev.kind) {
    case Event::Kind::kOutput: {
        size_t n = ev.data.size();
        if (ev.final) {
            auto it = requests_.find(ev.id);
            if (it != requests_.end() && it->second == ev.req) {
                // Before the handler runs: it may submit the connection's next request with this id.
                requests_.erase(it);
                Release();
            }
        }
        bool pause = false;
        try {
            Napi::Value buffer;
            if (n <= kCopyLimit) {
                buffer = Napi::Buffer<char>::Copy(env, ev.data.data(), n);
            } else {
                auto *owned = new std::string(std::move(ev.data));
                buffer = Napi::Buffer<char>::NewOrCopy(
                    env, &(*owned)[0], owned->size(), [](Napi::Env, char *, std::string *s) { delete s; }, owned);
            }
            int fd = ev.fd;
            ev.fd = -1;  // JavaScript owns the descriptor now
            Napi::Value r = output_.Call({Napi::Number::New(env, ev.id), buffer, Napi::Boolean::New(env, ev.final),
                                          Napi::Number::New(env, fd), Napi::Number::New(env, ev.info)});
            pause = !ev.final && r.ToBoolean().Value();
        } catch (...) {
            ev.req->delivered(n);  // never leave a worker waiting on output JavaScript has seen
            throw;
        }
        if (pause)
            ev.req->pause_output();
        ev.req->delivered(n);
        break;
    }
    case Event::Kind::kInputResume: {
        auto it = requests_.find(ev.id);
        if (it != requests_.end() && it->second == ev.req)
            input_resume_.Call({Napi::Number::New(env, ev.id)});
        break;
    }
    case Event::Kind::kPreloadDone: {
        auto it = preloads_.find(ev.id);
        if (it == preloads_.end())
            break;
        Napi::Promise::Deferred deferred = it->second;
        preloads_.erase(it);
        Release();
        if (ev.ok) {
            deferred.Resolve(env.Undefined());
        } else {
            // A script that failed to load, or an ASGI application whose lifespan startup failed (the
            // daemon must not serve it).
            deferred.Reject(CodedError(env, ev.fatal ? ErrorCode::kAsgiStartup : ErrorCode::kScript, ev.data).Value());
        }
        break;
    }
    case Event::Kind::kDetached: {
        auto it = requests_.find(ev.id);
        if (it != requests_.end() && it->second == ev.req && !detached_.IsEmpty())
            detached_.Call({Napi::Number::New(env, ev.id)});
        break;
    }
    }
}

}  // namespace modwsgi
