#include "process_control.h"

#include "errors.h"

#include <errno.h>
#include <locale.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace modwsgi {

namespace {

int Resource(const Napi::CallbackInfo &info, std::string *name) {
    if (!info[0].IsString())
        throw CodedError(info.Env(), ErrorCode::kInvalidArgument, "resource must be one of cpu, data, as, stack, nofile");
    *name = info[0].As<Napi::String>().Utf8Value();
    if (*name == "cpu")
        return RLIMIT_CPU;
    if (*name == "data")
        return RLIMIT_DATA;
    if (*name == "as")
        return RLIMIT_AS;
    if (*name == "stack")
        return RLIMIT_STACK;
    if (*name == "nofile")
        return RLIMIT_NOFILE;
    throw CodedError(info.Env(), ErrorCode::kInvalidArgument, "resource must be one of cpu, data, as, stack, nofile, not '" + *name + "'");
}

// Infinity (or -1) is RLIM_INFINITY; anything else a non-negative integer.
rlim_t Limit(Napi::Env env, Napi::Value v, const char *what) {
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (d == -1 || d == std::numeric_limits<double>::infinity())
        return RLIM_INFINITY;
    if (!(d >= 0) || std::floor(d) != d || d >= 18446744073709551615.0)
        throw CodedError(env, ErrorCode::kOutOfRange, std::string(what) + " must be a non-negative integer or Infinity");
    return static_cast<rlim_t>(d);
}

Napi::Value ToJs(Napi::Env env, rlim_t v) {
    return Napi::Number::New(env, v == RLIM_INFINITY ? std::numeric_limits<double>::infinity() : static_cast<double>(v));
}

Napi::Error SysError(Napi::Env env, const std::string &call, int err) {
    Napi::Error e = CodedError(env, ErrorCode::kSystem, call + " failed: " + strerror(err));
    e.Set("errno", Napi::Number::New(env, err));
    return e;
}

Napi::Value SetRlimit(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::string name;
    int resource = Resource(info, &name);
    struct rlimit rl;
    rl.rlim_cur = Limit(env, info[1], "soft");
    rl.rlim_max = Limit(env, info[2], "hard");
    if (setrlimit(resource, &rl) != 0)
        throw SysError(env, "setrlimit(" + name + ")", errno);
    return env.Undefined();
}

Napi::Value GetRlimit(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    std::string name;
    int resource = Resource(info, &name);
    struct rlimit rl;
    if (getrlimit(resource, &rl) != 0)
        throw SysError(env, "getrlimit(" + name + ")", errno);
    Napi::Object out = Napi::Object::New(env);
    out.Set("soft", ToJs(env, rl.rlim_cur));
    out.Set("hard", ToJs(env, rl.rlim_max));
    return out;
}

Napi::Value SetPriority(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double nice = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(nice >= -20 && nice <= 20) || std::floor(nice) != nice)
        throw CodedError(env, ErrorCode::kOutOfRange, "nice must be an integer from -20 to 20");
    if (setpriority(PRIO_PROCESS, 0, static_cast<int>(nice)) != 0)
        throw SysError(env, "setpriority(" + std::to_string(static_cast<int>(nice)) + ")", errno);
    return env.Undefined();
}

Napi::Value SetMallocArenaMax(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double n = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(n >= 1 && n <= 1024) || std::floor(n) != n)
        throw CodedError(env, ErrorCode::kOutOfRange, "arena count must be an integer from 1 to 1024");
    if (mallopt(M_ARENA_MAX, static_cast<int>(n)) != 1)
        throw CodedError(env, ErrorCode::kSystem, "mallopt(M_ARENA_MAX) failed");
    return env.Undefined();
}

// sendWithFd(socketFd, data, fd): sendmsg() of data with fd attached (SCM_RIGHTS), non-blocking.
// Returns the bytes sent; 0 when the socket is full before anything was sent (nor the descriptor).
Napi::Value SendWithFd(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double sock = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    double fd = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : NAN;
    if (!(sock >= 0 && sock <= INT32_MAX) || std::floor(sock) != sock || !(fd >= 0 && fd <= INT32_MAX) ||
        std::floor(fd) != fd)
        throw CodedError(env, ErrorCode::kInvalidArgument, "sendWithFd(socketFd, data, fd): descriptors must be non-negative integers");
    if (!info[1].IsBuffer() || info[1].As<Napi::Buffer<char>>().Length() == 0)
        throw CodedError(env, ErrorCode::kInvalidArgument, "sendWithFd(): data must be a non-empty Buffer (the descriptor rides on it)");
    auto data = info[1].As<Napi::Buffer<char>>();
    int passed = static_cast<int>(fd);
    struct iovec iov;
    iov.iov_base = data.Data();
    iov.iov_len = data.Length();
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &passed, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(static_cast<int>(sock), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return Napi::Number::New(env, 0);
        throw SysError(env, "sendmsg(SCM_RIGHTS)", errno);
    }
    return Napi::Number::New(env, static_cast<double>(n));
}

// alarm(seconds): SIGALRM after that many seconds (0 cancels). Nobody handles SIGALRM in a daemon, so
// its default action ends the process: a last-resort deadline that needs no thread and no memory.
Napi::Value Alarm(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double s = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(s >= 0 && s <= 86400) || std::floor(s) != s)
        throw CodedError(env, ErrorCode::kOutOfRange, "alarm(seconds): seconds must be an integer from 0 to 86400");
    alarm(static_cast<unsigned>(s));
    return env.Undefined();
}

// setSocketBuffers(fd, send, receive): SO_SNDBUF / SO_RCVBUF of a socket; 0 leaves one unchanged.
Napi::Value SetSocketBuffers(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double fd = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    double sizes[2] = {info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : NAN,
                       info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : NAN};
    if (!(fd >= 0 && fd <= INT32_MAX) || std::floor(fd) != fd)
        throw CodedError(env, ErrorCode::kInvalidArgument, "setSocketBuffers(fd, send, receive): fd must be a non-negative integer");
    const int options[2] = {SO_SNDBUF, SO_RCVBUF};
    for (int i = 0; i < 2; ++i) {
        if (!(sizes[i] >= 0 && sizes[i] <= INT32_MAX) || std::floor(sizes[i]) != sizes[i])
            throw CodedError(env, ErrorCode::kOutOfRange, "setSocketBuffers(): sizes must be integers from 0 to 2147483647");
        int v = static_cast<int>(sizes[i]);
        if (v > 0 && setsockopt(static_cast<int>(fd), SOL_SOCKET, options[i], &v, sizeof v) != 0)
            throw SysError(env, i == 0 ? "setsockopt(SO_SNDBUF)" : "setsockopt(SO_RCVBUF)", errno);
    }
    return env.Undefined();
}

// setLocale(name): setlocale(LC_ALL, name), as mod_wsgi does for the `locale` option. Returns the
// locale now in effect, or null when the name is not supported (nothing changed then).
Napi::Value SetLocale(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString())
        throw CodedError(env, ErrorCode::kInvalidArgument, "setLocale(name): name must be a string");
    std::string name = info[0].As<Napi::String>().Utf8Value();
    if (name.find('\0') != std::string::npos)
        throw CodedError(env, ErrorCode::kInvalidArgument, "setLocale(name): name must not contain NUL");
    const char *now = setlocale(LC_ALL, name.c_str());
    return now ? Napi::String::New(env, now) : env.Null();
}

// dupFd(fd): a close-on-exec duplicate of fd (the daemon opens and closes its own listener on the
// group's socket, fd 3, which itself stays open).
Napi::Value DupFd(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double fd = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(fd >= 0 && fd <= INT32_MAX) || std::floor(fd) != fd)
        throw CodedError(env, ErrorCode::kInvalidArgument, "dupFd(fd): fd must be a non-negative integer");
    int copy = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 3);
    if (copy < 0)
        throw SysError(env, "dup(" + std::to_string(static_cast<int>(fd)) + ")", errno);
    return Napi::Number::New(env, copy);
}

// releaseStartupPages(): drops this process's mappings of its own executable's pages (Node's code and
// read-only data) that hold no private copy, with madvise(MADV_DONTNEED). Node's start touches about
// 30 MiB of its binary (bootstrap, snapshot, module compiler) that a serving daemon never runs again;
// they stay in the page cache, shared and clean, and whatever is still used faults straight back in.
// Only read-only mappings with "Anonymous: 0 kB" in smaps qualify (a relocated or copied-on-write page
// would lose its contents). Returns the bytes that were resident in the dropped mappings.
Napi::Value ReleaseStartupPages(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        throw SysError(env, "readlink(/proc/self/exe)", errno);
    exe[n] = '\0';
    FILE *f = fopen("/proc/self/smaps", "re");
    if (f == nullptr)
        throw SysError(env, "open(/proc/self/smaps)", errno);
    struct Range {
        uintptr_t start, end;
        unsigned long rssKb;
    };
    std::vector<Range> ranges;
    bool candidate = false;
    Range cur{0, 0, 0};
    char *line = nullptr;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        unsigned long start, end, kb;
        char perms[8];
        int path = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path) == 3 && path > 0) {
            std::string name(line + path);
            while (!name.empty() && (name.back() == '\n' || name.back() == ' '))
                name.pop_back();
            candidate = name == exe && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p';
            cur = Range{start, end, 0};
        } else if (candidate && sscanf(line, "Rss: %lu kB", &kb) == 1) {
            cur.rssKb = kb;
        } else if (candidate && sscanf(line, "Anonymous: %lu kB", &kb) == 1) {
            if (kb == 0 && cur.rssKb > 0)
                ranges.push_back(cur);
            candidate = false;
        }
    }
    free(line);
    fclose(f);
    double released = 0;
    for (const Range &r : ranges)
        if (madvise(reinterpret_cast<void *>(r.start), r.end - r.start, MADV_DONTNEED) == 0)
            released += static_cast<double>(r.rssKb) * 1024;
    return Napi::Number::New(env, released);
}

}  // namespace

// mapShared(fd): the whole file `fd` refers to (the board segment the Apache parent passes as fd 4, a
// memfd) mapped shared and read-write, as a Buffer over that memory: what the daemon writes there the
// parent and Apache's children see at once. Never unmapped (the daemon holds it for its life).
Napi::Value MapShared(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double fd = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
    if (!(fd >= 0 && fd <= INT32_MAX) || std::floor(fd) != fd)
        throw CodedError(env, ErrorCode::kInvalidArgument, "mapShared(fd): fd must be a non-negative integer");
    struct stat sb;
    if (fstat(static_cast<int>(fd), &sb) < 0)
        throw SysError(env, "fstat", errno);
    if (sb.st_size <= 0 || sb.st_size > (1 << 30))
        throw CodedError(env, ErrorCode::kOutOfRange, "mapShared(fd): the file is empty or larger than 1 GiB");
    size_t size = static_cast<size_t>(sb.st_size);
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, static_cast<int>(fd), 0);
    if (p == MAP_FAILED)
        throw SysError(env, "mmap", errno);
    return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t *>(p), size,
                                      [size](Napi::Env, uint8_t *data) { munmap(data, size); });
}

void InitProcessControl(Napi::Env env, Napi::Object exports) {
    exports.Set("mapShared", Napi::Function::New<MapShared>(env, "mapShared"));
    exports.Set("setrlimit", Napi::Function::New<SetRlimit>(env, "setrlimit"));
    exports.Set("getrlimit", Napi::Function::New<GetRlimit>(env, "getrlimit"));
    exports.Set("setPriority", Napi::Function::New<SetPriority>(env, "setPriority"));
    exports.Set("setMallocArenaMax", Napi::Function::New<SetMallocArenaMax>(env, "setMallocArenaMax"));
    exports.Set("sendWithFd", Napi::Function::New<SendWithFd>(env, "sendWithFd"));
    exports.Set("alarm", Napi::Function::New<Alarm>(env, "alarm"));
    exports.Set("setLocale", Napi::Function::New<SetLocale>(env, "setLocale"));
    exports.Set("setSocketBuffers", Napi::Function::New<SetSocketBuffers>(env, "setSocketBuffers"));
    exports.Set("dupFd", Napi::Function::New<DupFd>(env, "dupFd"));
    exports.Set("releaseStartupPages", Napi::Function::New<ReleaseStartupPages>(env, "releaseStartupPages"));
}

}  // namespace modwsgi
