// A native stack on standard error (the Apache error log) when the daemon dies of a fatal signal while
// Python is being finalised: the one phase where no Python code is left to blame, and where a crash of
// CPython's own teardown would otherwise say nothing but "exit signal Segmentation fault".
#ifndef MODWSGI_ADDON_CRASH_TRACE_H
#define MODWSGI_ADDON_CRASH_TRACE_H

namespace modwsgi {

// From now until the process ends, SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT print `phase` and the
// native stack of the thread that got the signal, then kill the process with that signal as before. Not
// armed while applications run: V8 handles SIGSEGV itself for WebAssembly memory traps.
void crash_trace_arm(const char *phase);

}  // namespace modwsgi

#endif
