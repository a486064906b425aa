// Errors the addon throws to JavaScript carry a stable `code` property, as Node's own errors (ERR_*) and
// better-sqlite3's do, so that the daemon matches on the code and never on message text. The codes are
// listed for TypeScript in src/native/types.ts (AddonErrorCode); keep the two in step.
#ifndef MODWSGI_ADDON_ERRORS_H
#define MODWSGI_ADDON_ERRORS_H

#include <napi.h>

#include <string>

namespace modwsgi {

enum class ErrorCode {
    kInvalidArgument,  // TypeError  ERR_WSGI_INVALID_ARG: a caller passed the wrong type of value
    kOutOfRange,       // RangeError ERR_WSGI_OUT_OF_RANGE: a number outside what is allowed
    kMalformed,        // TypeError  ERR_WSGI_MALFORMED: a payload from the Apache child does not parse
    kClosed,           // Error      ERR_WSGI_CLOSED: the bridge is shut down
    kDuplicateId,      // Error      ERR_WSGI_DUPLICATE_ID: a request id already in flight
    kNoMemory,         // Error      ERR_WSGI_NO_MEMORY: an allocation failed
    kPythonStart,      // Error      ERR_WSGI_PYTHON_START: Python could not be started
    kSystem,           // Error      ERR_WSGI_SYSTEM: a system call failed (the error has `errno`)
    kScript,           // Error      ERR_WSGI_SCRIPT: a script failed to load (the message is Python's error)
    kAsgiStartup,      // Error      ERR_WSGI_ASGI_STARTUP: an ASGI application's lifespan startup failed
    kInternal,         // Error      ERR_WSGI_INTERNAL: anything else (a bug)
};

inline const char *ErrorCodeName(ErrorCode code) {
    switch (code) {
    case ErrorCode::kInvalidArgument: return "ERR_WSGI_INVALID_ARG";
    case ErrorCode::kOutOfRange: return "ERR_WSGI_OUT_OF_RANGE";
    case ErrorCode::kMalformed: return "ERR_WSGI_MALFORMED";
    case ErrorCode::kClosed: return "ERR_WSGI_CLOSED";
    case ErrorCode::kDuplicateId: return "ERR_WSGI_DUPLICATE_ID";
    case ErrorCode::kNoMemory: return "ERR_WSGI_NO_MEMORY";
    case ErrorCode::kPythonStart: return "ERR_WSGI_PYTHON_START";
    case ErrorCode::kSystem: return "ERR_WSGI_SYSTEM";
    case ErrorCode::kScript: return "ERR_WSGI_SCRIPT";
    case ErrorCode::kAsgiStartup: return "ERR_WSGI_ASGI_STARTUP";
    case ErrorCode::kInternal: break;
    }
    return "ERR_WSGI_INTERNAL";
}

// An error of the JavaScript class that fits the code (TypeError, RangeError or Error), with `code` set.
inline Napi::Error CodedError(Napi::Env env, ErrorCode code, const std::string &message) {
    Napi::Error e = code == ErrorCode::kInvalidArgument || code == ErrorCode::kMalformed ? Napi::TypeError::New(env, message)
                    : code == ErrorCode::kOutOfRange                                     ? Napi::RangeError::New(env, message)
                                                                                         : Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, ErrorCodeName(code)));
    return e;
}

}  // namespace modwsgi

#endif
