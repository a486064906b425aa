// Sub-interpreters across CPython versions, with the shared GIL or their own (subinterp.cc).
#ifndef MODWSGI_ADDON_SUBINTERP_H
#define MODWSGI_ADDON_SUBINTERP_H

#include "py_internal.h"

#include <string>

namespace modwsgi {

// Whether this build can give a sub-interpreter its own GIL (PEP 684: CPython 3.12+).
constexpr bool kOwnGilSupported = PY_VERSION_HEX >= 0x030C0000;

// Whether the CPython this process runs (its exact release, which the build does not fix) gives a
// sub-interpreter its own GIL safely: "", or why not. 3.12.0 to 3.12.3 shared objects of argument
// parsers between such interpreters (CPython gh-119213, fixed in 3.12.4): memory corruption, and a
// crash when the process finalises.
std::string own_gil_unsafe();

// Makes a sub-interpreter. Called holding the main GIL with `borrowed` (a main-interpreter thread
// state not bound to PyGILState) current; `borrowed` is deleted either way. On success the new
// interpreter's thread state is current and holds its GIL (*own_gil: a GIL of its own); on failure
// nothing is current, no GIL is held, and *error says why.
PyThreadState *subinterp_create(PyThreadState *borrowed, bool want_own_gil, bool *own_gil, std::string *error);

// The spare thread state a sub-interpreter keeps until it is ended (Group::keeper), made on the thread
// that created it, not bound to PyGILState, and not answering to that thread's id.
PyThreadState *subinterp_keeper(PyInterpreterState *interp);

// sys.setswitchinterval(seconds) in the current interpreter (its GIL's interval); one log line.
bool apply_switch_interval(const Logger &log, double seconds, const std::string &where);

// From the current thread state to `to`, possibly of another interpreter with another GIL.
void switch_to(PyThreadState *to);

// Py_EndInterpreter(keeper) (current), then back to `main_ts` holding the main GIL, whatever the
// version leaves held.
void end_subinterpreter(PyThreadState *keeper, PyThreadState *main_ts);

}  // namespace modwsgi

#endif
