// Error-log lines of the addon, in docs/logging.md's format, written to fd 2 with one write() each.
// Plain C++ (no Python): usable from any thread, with or without the GIL.
#ifndef MODWSGI_ADDON_LOG_H
#define MODWSGI_ADDON_LOG_H

#include <string>
#include <string_view>

#include "host.h"

namespace modwsgi {

// The addon's message catalogue (WSGI03nnn). A number never changes meaning.
enum LogCode : int {
    kLogNone = 0,                 // application output: no code
    kLogInitFailed = 3001,        // Python could not be initialised
    kLogInitializing = 3002,      // verbose: initialising Python
    kLogCreateInterp = 3003,      // verbose: creating an interpreter
    kLogInterpFailed = 3004,      // an application group's interpreter could not be set up
    kLogDestroyInterp = 3005,     // verbose: destroying an interpreter
    kLogLoadScript = 3010,        // loading a WSGI script file
    kLogScriptLoadFailed = 3011,  // Target WSGI script cannot be loaded as Python module
    kLogNoCallable = 3012,        // Target WSGI script does not contain WSGI application
    kLogException = 3013,         // Exception occurred processing WSGI script
    kLogReloadScript = 3014,      // script changed on disk, reloading
    kLogRestartForScript = 3015,  // script changed on disk: the daemon process restarts (daemon mode)
    kLogReloadHookFailed = 3016,  // the script's reload_required() raised
    kLogNoStartResponse = 3021,   // the application never called start_response()
    kLogOutputTooLong = 3022,     // more output than Content-Length
    kLogOutputTooShort = 3023,    // less output than Content-Length
    kLogClientGone = 3024,        // the connection went away during the response
    kLogSignalIgnored = 3030,     // WSGIRestrictSignal: signal.signal() ignored
    kLogStackDump = 3040,         // stack dump requested
    kLogStackDumpFailed = 3041,   // stack dump could not be written
    kLogShutdownBusy = 3050,      // workers still busy at shutdown
    kLogShutdownTimeout = 3051,   // finalisation did not finish in time
    kLogInterpNotEnded = 3052,    // an interpreter still had threads and was left alone
    kLogNoMemory = 3060,          // allocation failed in native code
    kLogThreadFailed = 3061,      // a worker thread could not be started
    kLogPreloadFailed = 3070,     // WSGIImportScript failed
    kLogAuthNoFunction = 3080,    // an access/auth/group script lacks the hook's function
    kLogAuthBadResult = 3081,     // a hook returned something it may not
    kLogAuthMalformed = 3082,     // an AUTH payload the daemon accepted does not parse (bug)
    kLogInternal = 3090,          // a native-side invariant failed (bug)
    kLogRequestTimeoutLate = 3100,  // RequestTimeout after the response began: truncated
    kLogOwnGil = 3101,              // an interpreter was made with its own GIL (info)
    kLogOwnGilFailed = 3102,        // Py_NewInterpreterFromConfig with its own GIL failed
    kLogSwitchInterval = 3103,      // sys.setswitchinterval() applied (info)
    kLogSwitchIntervalFailed = 3104,  // sys.setswitchinterval() refused
    kLogOwnGilUnsafe = 3105,        // WSGIPerInterpreterGIL ignored: this CPython release is unsafe
};

class Logger {
public:
    Logger(LogLevel level, bool verbose) : level_(level), verbose_(verbose) {}

    bool enabled(LogLevel level) const { return level <= level_ || verbose_; }
    bool verbose() const { return verbose_; }

    // Writes one line (newlines inside `message` are replaced). `tag` names the request the line is
    // about, as Apache's lines do, and goes before the code: "[client ADDR:PORT] [request ID] ".
    void write(LogLevel level, int code, std::string_view message, std::string_view tag = {}) const;

    // Verbose-only step messages (WSGIVerboseDebugging).
    void step(int code, std::string_view message) const {
        if (verbose_)
            write(LogLevel::kInfo, code, message);
    }

private:
    const LogLevel level_;
    const bool verbose_;
};

const char *log_level_name(LogLevel level);

}  // namespace modwsgi

#endif
