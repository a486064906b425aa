#include "options.h"

#include "errors.h"

#include <cmath>
#include <string>

namespace modwsgi {

namespace {

[[noreturn]] void Fail(Napi::Env env, const std::string &field, const char *expected) {
    throw CodedError(env, ErrorCode::kInvalidArgument, "PythonOptions." + field + " must be " + expected);
}

Napi::Value Get(Napi::Object o, const char *field) { return o.Get(field); }

std::string String(Napi::Env env, Napi::Object o, const char *field) {
    Napi::Value v = Get(o, field);
    if (!v.IsString())
        Fail(env, field, "a string");
    return v.As<Napi::String>().Utf8Value();
}

bool Bool(Napi::Env env, Napi::Object o, const char *field) {
    Napi::Value v = Get(o, field);
    if (!v.IsBoolean())
        Fail(env, field, "a boolean");
    return v.As<Napi::Boolean>().Value();
}

double Integer(Napi::Env env, Napi::Object o, const char *field, double min, double max) {
    Napi::Value v = Get(o, field);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= min && d <= max) || std::floor(d) != d)
        Fail(env, field, ("an integer from " + std::to_string(static_cast<long long>(min)) + " to " +
                          std::to_string(static_cast<long long>(max)))
                             .c_str());
    return d;
}

std::vector<std::string> Strings(Napi::Env env, Napi::Object o, const char *field) {
    Napi::Value v = Get(o, field);
    if (!v.IsArray())
        Fail(env, field, "an array of strings");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<std::string> out;
    for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value e = a.Get(i);
        if (!e.IsString())
            Fail(env, field, "an array of strings");
        out.push_back(e.As<Napi::String>().Utf8Value());
    }
    return out;
}

LogLevel Level(Napi::Env env, const std::string &name) {
    static const char *const names[] = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"};
    for (int i = 0; i < 8; ++i)
        if (name == names[i])
            return static_cast<LogLevel>(i);
    Fail(env, "logLevel", "one of emerg, alert, crit, error, warn, notice, info, debug");
}

}  // namespace

HostOptions ParseOptions(Napi::Env env, Napi::Value value) {
    if (!value.IsObject())
        throw CodedError(env, ErrorCode::kInvalidArgument, "PythonOptions must be an object");
    Napi::Object o = value.As<Napi::Object>();
    HostOptions h;
    h.program_name = String(env, o, "programName");
    Napi::Value home = Get(o, "home");
    if (!home.IsNull() && !home.IsUndefined()) {
        if (!home.IsString())
            Fail(env, "home", "a string or null");
        h.home = home.As<Napi::String>().Utf8Value();
    }
    h.path = Strings(env, o, "path");
    h.cwd_first_on_path = Bool(env, o, "cwdFirstOnPath");
    Napi::Value seed = Get(o, "hashSeed");
    if (seed.IsNull() || seed.IsUndefined()) {
        h.hash_seed_mode = HostOptions::HashSeed::kDefault;
    } else if (seed.IsString() && seed.As<Napi::String>().Utf8Value() == "random") {
        h.hash_seed_mode = HostOptions::HashSeed::kRandom;
    } else {
        h.hash_seed_mode = HostOptions::HashSeed::kFixed;
        h.hash_seed = static_cast<uint32_t>(Integer(env, o, "hashSeed", 0, 4294967295.0));
    }
    h.dont_write_bytecode = Bool(env, o, "dontWriteBytecode");
    h.optimize = static_cast<int>(Integer(env, o, "optimize", 0, 2));
    h.warnings = Strings(env, o, "warnings");
    h.restrict_signal = Bool(env, o, "restrictSignal");
    h.restrict_stdin = Bool(env, o, "restrictStdin");
    h.restrict_stdout = Bool(env, o, "restrictStdout");
    h.process_group = String(env, o, "processGroup");
    h.threads = static_cast<int>(Integer(env, o, "threads", 1, 100000));
    h.stack_size = static_cast<size_t>(Integer(env, o, "stackSize", 0, 1099511627776.0));
    h.multithread = Bool(env, o, "multithread");
    h.multiprocess = Bool(env, o, "multiprocess");
    h.run_once = Bool(env, o, "runOnce");
    h.log_level = Level(env, String(env, o, "logLevel"));
    h.verbose = Bool(env, o, "verbose");
    h.per_interpreter_gil = Bool(env, o, "perInterpreterGil");
    Napi::Value interval = Get(o, "switchInterval");
    if (!interval.IsNull() && !interval.IsUndefined()) {
        double d = interval.IsNumber() ? interval.As<Napi::Number>().DoubleValue() : NAN;
        if (!(d > 0 && d <= 60))
            Fail(env, "switchInterval", "null or a number of seconds above 0, at most 60");
        h.switch_interval = d;
    }
    Napi::Value loop = Get(o, "asgiLoop");
    if (!loop.IsUndefined()) {
        std::string name = loop.IsString() ? loop.As<Napi::String>().Utf8Value() : std::string();
        if (name != "asyncio" && name != "uvloop")
            Fail(env, "asgiLoop", "'asyncio' or 'uvloop'");
        h.asgi_uvloop = name == "uvloop";
    }
    return h;
}

}  // namespace modwsgi
