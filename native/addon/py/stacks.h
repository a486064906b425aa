// Stack dumps of every interpreter (stacks.cc).
#ifndef MODWSGI_ADDON_STACKS_H
#define MODWSGI_ADDON_STACKS_H

#include "py_internal.h"

#include <string>
#include <vector>

namespace modwsgi {

struct StackTarget {
    PyInterpreterState *interp;
    std::string name;  // the application group ("" for %{GLOBAL})
};

// Writes "Interpreter 'NAME':" and the stacks of its threads for each target, without the GIL where
// libpython allows it, else from a helper thread waited for at most wait_ms. Any thread, no GIL held.
void write_stacks(Runtime &rt, int fd, const std::vector<StackTarget> &targets, int wait_ms);

}  // namespace modwsgi

#endif
