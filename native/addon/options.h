// PythonOptions (src/native/types.ts) from JavaScript to HostOptions. src/native/index.ts validates
// them first; this only checks types, so a direct caller still gets a TypeError, not a crash.
#ifndef MODWSGI_ADDON_OPTIONS_H
#define MODWSGI_ADDON_OPTIONS_H

#include <napi.h>

#include "py/host.h"

namespace modwsgi {

HostOptions ParseOptions(Napi::Env env, Napi::Value value);

}  // namespace modwsgi

#endif
