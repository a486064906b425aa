#include "crash_trace.h"

#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <initializer_list>

namespace modwsgi {

namespace {

const char *armed_phase = "";

void say(const char *s) {
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

// Only async-signal-safe calls, apart from backtrace(), whose unwinder crash_trace_arm() loaded already.
void on_fatal(int sig) {
    say("mod_wsgi: daemon process got ");
    say(strsignal(sig));  // a constant table in glibc
    say(" during ");
    say(armed_phase);
    say("; native stack of the thread:\n");
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    // SA_RESETHAND restored the default action: the signal kills the process as it would have.
    raise(sig);
}

}  // namespace

void crash_trace_arm(const char *phase) {
    void *warm[1];
    backtrace(warm, 1);  // loads libgcc_s now: the first call allocates, which a handler must not
    armed_phase = phase;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT})
        sigaction(sig, &sa, nullptr);
}

}  // namespace modwsgi
