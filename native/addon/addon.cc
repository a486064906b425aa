// Module initialisation of wsgi_bridge.node. Loaded only by src/native/index.ts, which validates
// options before calling in. Exports openBridge() and the ProcessControl functions.
#include <napi.h>

#include "bridge.h"
#include "process_control.h"

namespace modwsgi {

namespace {

// Per-environment data (no globals): the Bridge constructor.
struct AddonData {
    Napi::FunctionReference bridge;
};

// openBridge(options, output, inputResume[, detached]) -> Bridge
Napi::Value OpenBridge(const Napi::CallbackInfo &info) {
    auto *data = info.Env().GetInstanceData<AddonData>();
    return data->bridge.New({info[0], info[1], info[2], info[3]});
}

}  // namespace

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
    auto *data = new AddonData();
    data->bridge = Napi::Persistent(Bridge::Define(env));
    env.SetInstanceData(data);
    exports.Set("openBridge", Napi::Function::New<OpenBridge>(env, "openBridge"));
    InitProcessControl(env, exports);
    return exports;
}

}  // namespace modwsgi

// The macro builds an identifier from its argument, which therefore cannot be qualified.
using modwsgi::InitAddon;
NODE_API_MODULE(wsgi_bridge, InitAddon)
