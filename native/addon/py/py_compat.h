// The differences between the CPython versions the addon is built for (3.8 to 3.13), in one place.
// Included by py_internal.h right after Python.h; the rest of native/addon/py is written against the
// 3.9+ API and checks PY_VERSION_HEX only for what cannot be papered over here (interpreter creation
// in subinterp.cc, stack dumps in stacks.cc).
#ifndef MODWSGI_ADDON_PY_COMPAT_H
#define MODWSGI_ADDON_PY_COMPAT_H

#if PY_VERSION_HEX < 0x03080000 || PY_VERSION_HEX >= 0x030E0000
#error "the addon embeds CPython 3.8 to 3.13"
#endif
#ifdef Py_GIL_DISABLED
#error "free-threaded CPython builds are not supported: build against the default (GIL) build"
#endif

#if PY_VERSION_HEX < 0x03090000
// Added in 3.9 (PEP 590's calls were provisional in 3.8, the accessors did not exist).
inline PyInterpreterState *PyThreadState_GetInterpreter(PyThreadState *tstate) { return tstate->interp; }
inline PyObject *PyObject_CallNoArgs(PyObject *fn) { return PyObject_CallObject(fn, nullptr); }
inline PyObject *PyObject_CallOneArg(PyObject *fn, PyObject *arg) {
    return PyObject_CallFunctionObjArgs(fn, arg, nullptr);
}
inline PyObject *PyObject_CallMethodNoArgs(PyObject *obj, PyObject *name) {
    return PyObject_CallMethodObjArgs(obj, name, nullptr);
}
inline PyObject *PyObject_CallMethodOneArg(PyObject *obj, PyObject *name, PyObject *arg) {
    return PyObject_CallMethodObjArgs(obj, name, arg, nullptr);
}
#define PyObject_Vectorcall _PyObject_Vectorcall
#endif

#if PY_VERSION_HEX >= 0x030D0000
// Still exported by libpython 3.13 but no longer declared: a thread state not bound to PyGILState
// (pool.cc borrows one to create a sub-interpreter whose thread state must be the thread's first).
extern "C" PyAPI_FUNC(PyThreadState *) _PyThreadState_Prealloc(PyInterpreterState *);
#endif

#endif
