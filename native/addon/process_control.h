// ProcessControl (src/native/types.ts): process-level primitives Node lacks, used by the daemon's
// identity and limits code. Plain system calls; no Python involved.
#ifndef MODWSGI_ADDON_PROCESS_CONTROL_H
#define MODWSGI_ADDON_PROCESS_CONTROL_H

#include <napi.h>

namespace modwsgi {

// Adds setrlimit, getrlimit, setPriority, setMallocArenaMax, sendWithFd, alarm, setLocale,
// setSocketBuffers, dupFd and releaseStartupPages to `exports`.
void InitProcessControl(Napi::Env env, Napi::Object exports);

}  // namespace modwsgi

#endif
