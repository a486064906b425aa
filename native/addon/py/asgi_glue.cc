// The Python half of the ASGI engine (asgi.h): the loop runner (asyncio or uvloop, the executor for
// sync_to_async), the Http class whose receive()/send() applications await (their work is done in C,
// asgi_http.cc), the lifespan protocol (asgiref specs/lifespan.rst) and the shutdown. Executed once per
// interpreter, on its loop's thread, as the module `_mod_wsgi_asgi`. The C helpers it calls (_log,
// _log_exception, _lifespan_ready) are defined here too.
#include "asgi_loop.h"

#include "runtime.h"

namespace modwsgi {

namespace {

const char kGlue[] = R"PY(
import asyncio
import sys

ERROR, WARN, INFO = 3, 4, 6


class ClientDisconnected(OSError):
    """send() after the client went away (ASGI HTTP spec 2.4)."""


class _Conversation:
    """One HTTP request or WebSocket of an ASGI application. receive() and send() are coroutines
    (applications may hand them to create_task); their work is done in C (asgi_http.cc,
    asgi_websocket.cc) and completes at once unless input or room for output has to come: then they
    wait on a future the loop resolves."""
    __slots__ = ()

    async def receive(self):
        message = self._receive()
        if message.__class__ is dict:
            return message
        return await message

    async def send(self, message):
        waiter = self._send(message)
        if waiter is not None:
            await waiter

    async def _main(self, app, scope, sync_threads):
        # The request's task: the application, then its outcome to C (no done-callback round).
        try:
            if sync_threads is None:
                await app(scope, self.receive, self.send)
            else:
                await sync_threads(app, scope, self.receive, self.send)
        except BaseException as e:
            self._ended(e)
        else:
            self._ended(None)


class Http(_Conversation, _HttpBase):
    __slots__ = ()


class WebSocket(_Conversation, _WsBase):
    __slots__ = ()


class _Key:
    __slots__ = ('__weakref__',)


class SyncThreads:
    """asgiref's thread-sensitive sync code (sync_to_async with thread_sensitive=True: Django's sync
    views and middleware) of one request runs on one thread of a pool of `threads`, the least busy,
    instead of on asgiref's one thread for the whole process; as Django 4 and later give each request a
    thread of its own (ThreadSensitiveContext), without a new thread per request. Requests keep their
    thread throughout, so thread-sensitive code stays on one thread per request."""

    def __init__(self, threads):
        import concurrent.futures
        from asgiref.sync import SyncToAsync
        self.var = SyncToAsync.thread_sensitive_context
        self.executors = SyncToAsync.context_to_thread_executor
        self.pool = [concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix='mod_wsgi-sync-%d' % i)
                     for i in range(threads)]
        self.busy = [0] * threads

    async def run(self, app, scope, receive, send):
        i = self.busy.index(min(self.busy))
        self.busy[i] += 1
        key = _Key()
        self.executors[key] = self.pool[i]
        self.var.set(key)
        try:
            await app(scope, receive, send)
        finally:
            self.busy[i] -= 1
            self.executors.pop(key, None)

    def shutdown(self):
        for e in self.pool:
            e.shutdown(wait=False, cancel_futures=True)


_sync_threads = None


def sync_runner(threads):
    """SyncThreads.run for an application that uses asgiref (None without a usable one)."""
    global _sync_threads
    if _sync_threads is None:
        try:
            _sync_threads = SyncThreads(threads)
        except Exception:
            _sync_threads = False
    return _sync_threads.run if _sync_threads else None


def _new_loop(use_uvloop):
    if use_uvloop:
        try:
            import uvloop
        except Exception as e:
            _log(WARN, 3222, 'asgi-loop=uvloop, but uvloop cannot be imported (%s): using asyncio.' % e)
        else:
            return uvloop.new_event_loop(), 'uvloop'
    return asyncio.new_event_loop(), 'asyncio'


def run(wake_fd, drain, threads, use_uvloop, group):
    """Runs the loop until stop(); returns once it is closed."""
    import concurrent.futures
    loop, kind = _new_loop(use_uvloop)
    asyncio.set_event_loop(loop)
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix='mod_wsgi-asgi')
    loop.set_default_executor(executor)
    loop.add_reader(wake_fd, drain)
    _started(loop)
    _log(INFO, 3220, "ASGI event loop (%s, %d executor threads) running for application group '%s'."
         % (kind, threads, group))
    try:
        loop.run_forever()
    finally:
        try:
            loop.remove_reader(wake_fd)
            _cancel_all(loop, 0.2)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            if _sync_threads:
                _sync_threads.shutdown()
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop, timeout):
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=timeout))


async def _stop(lifespans, timeout):
    loop = asyncio.get_running_loop()
    try:
        if lifespans:
            waiters = [loop.create_task(l.shutdown()) for l in lifespans]
            done, late = await asyncio.wait(waiters, timeout=timeout)
            for w, l in zip(waiters, lifespans):
                if w in late:
                    w.cancel()
                    _log(ERROR, 3212, 'ASGI lifespan shutdown of %s did not complete within %.1f seconds.'
                         % (l.name, timeout))
    finally:
        loop.stop()


def stop(lifespans, timeout):
    """The daemon stops: each lifespan that started gets its shutdown within `timeout`, then the loop
    stops (run() then cancels what still runs)."""
    asyncio.get_running_loop().create_task(_stop(lifespans, timeout))


class Lifespan:
    """The lifespan protocol of one application: startup before its first request runs, shutdown when
    the daemon stops. The state dict it is given is shallow-copied into every request's scope."""

    def __init__(self, app, state, name):
        self.app, self.state, self.name = app, state, name
        self.loop = asyncio.get_running_loop()
        self.inbox = asyncio.Queue()
        self.outcome = None          # 'complete', 'unsupported' or 'failed'
        self.ready = None            # called once with (self, outcome, message)
        self.shutting_down = False
        self.shutdown_done = self.loop.create_future()
        self.task = None

    def begin(self, ready):
        self.ready = ready
        self.inbox.put_nowait({'type': 'lifespan.startup'})
        self.task = self.loop.create_task(self._main())

    def _startup(self, outcome, message=''):
        if self.outcome is None:
            self.outcome = outcome
            self.ready(self, outcome, message)

    def _shutdown_done(self):
        if not self.shutdown_done.done():
            self.shutdown_done.set_result(None)

    async def _main(self):
        scope = {'type': 'lifespan', 'asgi': {'version': '3.0', 'spec_version': '2.0'}, 'state': self.state}
        try:
            await self.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._startup('unsupported')
            raise
        except BaseException as e:
            if self.outcome is None:
                # asgiref: an application that raises on the lifespan scope does not support it; the
                # server goes on without lifespan events.
                _log(INFO, 3210, 'ASGI lifespan protocol not supported by %s (%s: %s); served without it.'
                     % (self.name, type(e).__name__, e))
                self._startup('unsupported')
            elif self.outcome == 'complete':
                _log_exception(ERROR, 3212, 'Exception in the ASGI lifespan of %s.' % self.name, e)
        else:
            if self.outcome is None:
                _log(INFO, 3210, 'ASGI lifespan protocol not supported by %s (it returned); served without it.'
                     % self.name)
                self._startup('unsupported')
        finally:
            self._shutdown_done()

    async def receive(self):
        return await self.inbox.get()

    async def send(self, message):
        kind = message['type']
        if kind == 'lifespan.startup.complete':
            self._startup('complete')
        elif kind == 'lifespan.startup.failed':
            self._startup('failed', str(message.get('message', '')))
        elif kind == 'lifespan.shutdown.complete':
            self._shutdown_done()
        elif kind == 'lifespan.shutdown.failed':
            _log(ERROR, 3212, 'ASGI lifespan shutdown of %s failed: %s' % (self.name, message.get('message', '')))
            self._shutdown_done()
        else:
            raise RuntimeError('Unexpected ASGI lifespan message %r.' % (kind,))

    async def shutdown(self):
        if self.outcome != 'complete' or self.task is None or self.task.done() or self.shutting_down:
            return
        self.shutting_down = True
        self.inbox.put_nowait({'type': 'lifespan.shutdown'})
        await asyncio.shield(self.shutdown_done)
)PY";

AsgiLoop *loop_of(PyObject *capsule) {
    return static_cast<AsgiLoop *>(PyCapsule_GetPointer(capsule, "mod_wsgi.asgi_loop"));
}

LogLevel level_of(long level) {
    return level >= 0 && level <= 7 ? static_cast<LogLevel>(level) : LogLevel::kError;
}

// _log(level, code, text)
PyObject *glue_log(PyObject *self, PyObject *args) {
    long level, code;
    const char *text;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "lls#:_log", &level, &code, &text, &n))
        return nullptr;
    AsgiLoop *loop = loop_of(self);
    if (!loop)
        return nullptr;
    runtime_logger(loop->rt).write(level_of(level), static_cast<int>(code), std::string_view(text, static_cast<size_t>(n)));
    Py_RETURN_NONE;
}

// _log_exception(level, code, text, exc): the line, then the exception's traceback.
PyObject *glue_log_exception(PyObject *self, PyObject *args) {
    long level, code;
    const char *text;
    Py_ssize_t n;
    PyObject *exc;
    if (!PyArg_ParseTuple(args, "lls#O:_log_exception", &level, &code, &text, &n, &exc))
        return nullptr;
    AsgiLoop *loop = loop_of(self);
    if (!loop)
        return nullptr;
    runtime_logger(loop->rt).write(level_of(level), static_cast<int>(code), std::string_view(text, static_cast<size_t>(n)));
    if (PyExceptionInstance_Check(exc)) {
        Py_INCREF(Py_TYPE(exc));
        Py_INCREF(exc);
        PyErr_Restore(reinterpret_cast<PyObject *>(Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
        log_exception(loop->st, {});
    }
    Py_RETURN_NONE;
}

// _lifespan_ready(lifespan, outcome, message)
PyObject *glue_lifespan_ready(PyObject *self, PyObject *args) {
    PyObject *lifespan, *outcome, *message;
    if (!PyArg_ParseTuple(args, "OUU:_lifespan_ready", &lifespan, &outcome, &message))
        return nullptr;
    AsgiLoop *loop = loop_of(self);
    if (!loop)
        return nullptr;
    return apps_lifespan_ready(*loop, lifespan, outcome, message);
}

// _started(loop): the running loop, for the C side.
PyObject *glue_started(PyObject *self, PyObject *pyloop) {
    AsgiLoop *loop = loop_of(self);
    if (!loop)
        return nullptr;
    PyObject *create_task = PyObject_GetAttrString(pyloop, "create_task");
    PyObject *create_future = create_task ? PyObject_GetAttrString(pyloop, "create_future") : nullptr;
    if (!create_future) {
        Py_XDECREF(create_task);
        return nullptr;
    }
    Py_XSETREF(loop->create_task, create_task);
    Py_XSETREF(loop->create_future, create_future);
    Py_INCREF(pyloop);
    Py_XSETREF(loop->pyloop, pyloop);
    Py_RETURN_NONE;
}

PyMethodDef helpers[] = {
    {"_log", glue_log, METH_VARARGS, nullptr},
    {"_log_exception", glue_log_exception, METH_VARARGS, nullptr},
    {"_lifespan_ready", glue_lifespan_ready, METH_VARARGS, nullptr},
    {"_started", glue_started, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyObject *asgi_glue_module(InterpState &st, PyTypeObject *http_base, PyTypeObject *ws_base, PyObject *helpers_self) {
    PyRef module(PyModule_New("_mod_wsgi_asgi"));
    if (!module)
        return nullptr;
    PyObject *dict = PyModule_GetDict(module.get());
    if (PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(dict, "_HttpBase", reinterpret_cast<PyObject *>(http_base)) < 0 ||
        PyDict_SetItemString(dict, "_WsBase", reinterpret_cast<PyObject *>(ws_base)) < 0)
        return nullptr;
    for (PyMethodDef *m = helpers; m->ml_name; ++m) {
        PyRef fn(PyCFunction_New(m, helpers_self));
        if (!fn || PyDict_SetItemString(dict, m->ml_name, fn.get()) < 0)
            return nullptr;
    }
    PyRef code(Py_CompileString(kGlue, "<mod_wsgi asgi>", Py_file_input));
    if (!code)
        return nullptr;
    PyRef r(PyEval_EvalCode(code.get(), dict, dict));
    if (!r)
        return nullptr;
    PyObject *modules = PyImport_GetModuleDict();
    if (PyDict_SetItemString(modules, "_mod_wsgi_asgi", module.get()) < 0)
        return nullptr;
    (void)st;
    return module.release();
}

}  // namespace modwsgi
