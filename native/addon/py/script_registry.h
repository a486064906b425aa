// The scripts this process has loaded, across its interpreters: what a successor process imports before
// it says it is ready (docs/restarts.md), and the changes of them that were taken as they are because a
// successor could not load them (the process goes on with the code it has). Plain C++, any thread.
#ifndef MODWSGI_ADDON_SCRIPT_REGISTRY_H
#define MODWSGI_ADDON_SCRIPT_REGISTRY_H

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace modwsgi {

class ScriptRegistry {
public:
    // `path` was loaded into application group `group` (script.cc).
    void loaded(const std::string &path, const std::string &group) {
        std::lock_guard<std::mutex> lock(mu_);
        loaded_.emplace(path, group);
    }

    // Whether the change of `path` to modification time `mtime_us` was taken as it is.
    bool accepted(const std::string &path, int64_t mtime_us) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = accepted_.find(path);
        return it != accepted_.end() && it->second == mtime_us;
    }

    // Takes these versions of scripts (path, modification time in µs) as they are: such a change is not
    // a reason to restart again, until the script changes once more.
    void accept(const std::vector<std::pair<std::string, int64_t>> &versions) {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto &v : versions)
            accepted_[v.first] = v.second;
    }

    // (script, application group) pairs, in a stable order.
    std::vector<std::pair<std::string, std::string>> list() {
        std::lock_guard<std::mutex> lock(mu_);
        return {loaded_.begin(), loaded_.end()};
    }

private:
    std::mutex mu_;
    std::set<std::pair<std::string, std::string>> loaded_;
    std::map<std::string, int64_t> accepted_;
};

}  // namespace modwsgi

#endif
