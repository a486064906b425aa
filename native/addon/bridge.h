// The Bridge object handed to the daemon (src/native/types.ts): requests in, frames out through the
// addon's one thread-safe function. Node-API only: the CPython side is reached through py/host.h.
#ifndef MODWSGI_ADDON_BRIDGE_H
#define MODWSGI_ADDON_BRIDGE_H

#include <napi.h>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "py/host.h"
#include "py/request.h"

namespace modwsgi {

// Collects events from worker threads; the first one of a batch schedules the thread-safe function,
// whose callback then takes the whole batch (one crossing for many events under load).
class Bridge;

class Sink final : public EventSink {
public:
    // The bridge that handles events, on the JavaScript thread; null once it is closed.
    Bridge *owner = nullptr;

    bool post(Event &&ev) override;
    std::vector<Event> take();
    // No more events reach JavaScript; queued ones are dropped (their descriptors closed).
    void close();
    void set_tsfn(napi_threadsafe_function tsfn) { tsfn_ = tsfn; }

private:
    std::mutex mu_;
    std::vector<Event> queue_;
    napi_threadsafe_function tsfn_ = nullptr;
    bool scheduled_ = false;
    bool closed_ = false;
};

class Bridge final : public Napi::ObjectWrap<Bridge> {
public:
    static Napi::Function Define(Napi::Env env);
    explicit Bridge(const Napi::CallbackInfo &info);
    ~Bridge() override;

private:
    Napi::Value Submit(const Napi::CallbackInfo &info);
    Napi::Value SubmitAuth(const Napi::CallbackInfo &info);
    Napi::Value VarValue(const Napi::CallbackInfo &info);
    Napi::Value Enqueue(const Napi::CallbackInfo &info, bool auth);
    Napi::Value Input(const Napi::CallbackInfo &info);
    Napi::Value EndInput(const Napi::CallbackInfo &info);
    Napi::Value Abort(const Napi::CallbackInfo &info);
    Napi::Value Cancel(const Napi::CallbackInfo &info);
    Napi::Value Resume(const Napi::CallbackInfo &info);
    Napi::Value Release(const Napi::CallbackInfo &info);
    Napi::Value Preload(const Napi::CallbackInfo &info);
    Napi::Value LastGilAcquired(const Napi::CallbackInfo &info);
    Napi::Value MemoryErrors(const Napi::CallbackInfo &info);
    Napi::Value DumpStacks(const Napi::CallbackInfo &info);
    Napi::Value Interrupt(const Napi::CallbackInfo &info);
    Napi::Value Shutdown(const Napi::CallbackInfo &info);
    Napi::Value LoadedScripts(const Napi::CallbackInfo &info);
    Napi::Value AcceptScriptChanges(const Napi::CallbackInfo &info);

    static void CallJs(napi_env env, napi_value js_callback, void *context, void *data);
    static void CleanupHook(void *arg);
    void Drain(Napi::Env env);
    void Dispatch(Napi::Env env, Event &ev);
    bool Close(napi_env env, int timeout_ms);
    void Hold();
    void Release();
    std::shared_ptr<Request> Find(const Napi::CallbackInfo &info);
    void CheckOpen(Napi::Env env) const;

    napi_env env_;
    std::shared_ptr<Sink> sink_;
    napi_threadsafe_function tsfn_ = nullptr;
    std::unique_ptr<Host> host_;
    Napi::FunctionReference output_;
    Napi::FunctionReference input_resume_;
    Napi::FunctionReference detached_;  // optional: told when a request moved to an event loop
    // JavaScript-thread state: requests submitted and not yet final, preloads not yet answered.
    std::unordered_map<double, std::shared_ptr<Request>> requests_;
    std::unordered_map<double, Napi::Promise::Deferred> preloads_;
    double next_token_ = 1;
    size_t held_ = 0;  // requests + preloads in flight: the thread-safe function keeps the loop alive
    bool closed_ = false;
    bool close_result_ = false;
    bool hook_added_ = false;
    bool self_ref_ = false;
};

}  // namespace modwsgi

#endif
