#include "log.h"

#include <errno.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace modwsgi {

const char *log_level_name(LogLevel level) {
    static const char *const names[] = {"emerg", "alert", "crit", "error",
                                        "warn",  "notice", "info", "debug"};
    int i = static_cast<int>(level);
    return (i >= 0 && i < 8) ? names[i] : "error";
}

void Logger::write(LogLevel level, int code, std::string_view message, std::string_view tag) const {
    if (!enabled(level))
        return;
    // Apache's default ErrorLogFormat: [Tue Nov 24 20:20:03.123456 2026] [wsgi:error] [pid P:tid T]
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    struct tm tm;
    time_t secs = tv.tv_sec;
    localtime_r(&secs, &tm);
    char stamp[64];
    size_t n = strftime(stamp, sizeof stamp, "%a %b %d %H:%M:%S", &tm);
    char year[8];
    strftime(year, sizeof year, "%Y", &tm);
    char prefix[160];
    int len = snprintf(prefix, sizeof prefix, "[%.*s.%06ld %s] [wsgi:%s] [pid %ld:tid %ld] ", static_cast<int>(n),
                       stamp, static_cast<long>(tv.tv_usec), year, log_level_name(level),
                       static_cast<long>(getpid()), static_cast<long>(syscall(SYS_gettid)));
    std::string line;
    line.reserve(static_cast<size_t>(len) + message.size() + tag.size() + 24);
    line.append(prefix, static_cast<size_t>(len));
    line.append(tag);
    if (code) {
        char c[16];
        int cl = snprintf(c, sizeof c, "WSGI%05d: ", code);
        line.append(c, static_cast<size_t>(cl));
    }
    for (char ch : message)
        line.push_back((ch == '\n' || ch == '\r') ? ' ' : ch);
    line.push_back('\n');
    // One write() per line so that lines of several threads and processes never interleave.
    const char *p = line.data();
    size_t left = line.size();
    while (left) {
        ssize_t w = ::write(2, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        left -= static_cast<size_t>(w);
    }
}

}  // namespace modwsgi
