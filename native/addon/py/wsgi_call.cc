// One WSGI call on a worker thread: environ, the application, its iterable (list/tuple gathered into
// one event, anything else streamed), close() in every path, and the outcome as frames.
#include "py_internal.h"

#include <new>

#include "asgi.h"
#include "metrics.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {

namespace {

void fail_with_exception(Call &call) {
    if (request_timeout_caught(call))
        return;
    log_exception(call.st, call.script, call.client);
    call.failed = true;
    if (call.error_text.empty())
        call.error_text = "Exception occurred processing WSGI script '" + std::string(call.script) + "'.";
}

bool check_bytes(PyObject *item) {
    if (PyBytes_Check(item))
        return true;
    PyErr_Format(PyExc_TypeError, "sequence of byte string values expected, value of type %.200s found",
                 Py_TYPE(item)->tp_name);
    return false;
}

// Feeds the application's result to the response. Stops at the first error, when the client left
// or when output went past the Content-Length.
void consume(Call &call, PyObject *result) {
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
        // Gathered into as few events as possible: HEAD + BODY + END in one for a small response.
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(result); ++i) {
            PyRef item(PySequence_Fast_GET_ITEM(result, i));
            Py_INCREF(item.get());  // the list may change while the GIL is released for backpressure
            if (!check_bytes(item.get()))
                return fail_with_exception(call);
            int r = response_body(call, PyBytes_AS_STRING(item.get()),
                                  static_cast<size_t>(PyBytes_GET_SIZE(item.get())), false);
            if (r < 0)
                return fail_with_exception(call);
            if (r > 0 || call.over_length)
                return;
        }
        return;
    }
    if (Py_TYPE(result) == call.st.file_wrapper_type) {
        int r = response_send_file(call, result);
        if (r < 0)
            return fail_with_exception(call);
        if (r > 0)
            return;
    }
    PyRef iter(PyObject_GetIter(result));
    if (!iter)
        return fail_with_exception(call);
    for (;;) {
        PyRef item(PyIter_Next(iter.get()));
        if (!item) {
            if (PyErr_Occurred())
                fail_with_exception(call);
            return;
        }
        if (!check_bytes(item.get()))
            return fail_with_exception(call);
        // Streamed: each block goes out as soon as it is produced (and JavaScript has room).
        int r = response_body(call, PyBytes_AS_STRING(item.get()), static_cast<size_t>(PyBytes_GET_SIZE(item.get())),
                              true);
        if (r < 0)
            return fail_with_exception(call);
        if (r > 0 || call.over_length)
            return;
    }
}

// PEP 3333: close() of the iterable, whatever happened before. As in mod_wsgi, an exception from
// close() is logged but does not fail a response the iterable completed.
void close_result(Call &call, PyObject *result) {
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        return;
    PyRef close(PyObject_GetAttr(result, call.st.str_close));
    if (!close) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        else
            fail_with_exception(call);
        return;
    }
    PyRef r(PyObject_CallNoArgs(close.get()));
    if (!r && !request_timeout_caught(call))
        log_exception(call.st, call.script, call.client);
}

void execute(Call &call, PyObject **adapter_out) {
    InterpState &st = call.st;
    PyRef environ(build_environ(call));
    if (!environ)
        return fail_with_exception(call);
    runtime_metrics(*st.rt).request_started(call.uri, call.request_id, call.request_start, call.queue_start,
                                            call.req.received_us());
    call.metered = true;
    PyRef app(load_application(call));
    if (!app) {
        call.failed = !call.restart;
        return;
    }
    if (runtime_asgi(*st.rt).take_over(call, app.get())) {
        call.handed_off = true;  // an ASGI application: its group's event loop runs the request
        return;
    }
    PyRef adapter(adapter_new(st, &call));
    if (!adapter)
        return fail_with_exception(call);
    *adapter_out = adapter.get();
    Py_INCREF(*adapter_out);
    PyObject *args[2] = {environ.get(), adapter.get()};
    PyRef result(PyObject_Vectorcall(app.get(), args, 2, nullptr));
    if (!result)
        return fail_with_exception(call);
    consume(call, result.get());
    close_result(call, result.get());
    if (call.client_gone)
        runtime_logger(*st.rt)
            .write(LogLevel::kInfo, kLogClientGone,
                   "Client connection closed before the response of WSGI script '" + std::string(call.script) +
                       "' was complete.",
                   call.client);
    else if (!call.failed && !call.status_set) {
        call.failed = true;
        call.error_text = "WSGI script '" + std::string(call.script) + "' did not call start_response().";
        runtime_logger(*st.rt).write(LogLevel::kError, kLogNoStartResponse, call.error_text, call.client);
    }
}

std::string out_of_memory_frames(const Call &call) {
    // Small and fixed: built without the allocations that just failed.
    unsigned char buf[WSGI_WIRE_HEADER_SIZE + 4 + 4 + 32];
    if (call.head_posted) {
        wsgi_frame_header_pack(buf, WSGI_FRAME_END, 0, 4);
        wsgi_put_u32(buf + WSGI_WIRE_HEADER_SIZE, WSGI_END_INCOMPLETE);
        return std::string(reinterpret_cast<char *>(buf), WSGI_WIRE_HEADER_SIZE + 4);
    }
    static const char text[] = "Out of memory.";
    size_t n = sizeof text - 1;
    wsgi_frame_header_pack(buf, WSGI_FRAME_ERROR, WSGI_ERROR_F_LOGGED, static_cast<uint32_t>(4 + 4 + n));
    wsgi_put_u32(buf + WSGI_WIRE_HEADER_SIZE, 500);
    wsgi_write_string(buf + WSGI_WIRE_HEADER_SIZE + 4, text, static_cast<uint32_t>(n));
    return std::string(reinterpret_cast<char *>(buf), WSGI_WIRE_HEADER_SIZE + 8 + n);
}

}  // namespace

std::string run_request(InterpState &st, Request &req) {
    Call call(st, req);
    CurrentRequest current(call.client);  // its tag, for mod_wsgi.LogHandler (filled in with the environ)
    PyObject *adapter = nullptr;
    std::string frames;
    try {
        execute(call, &adapter);
        call.expired = true;
        log_object_flush(call.errors.get());
        frames = call.handed_off ? std::string() : response_finish(call);
    } catch (const std::bad_alloc &) {
        // Allocation failed in native code (e.g. under RLIMIT_AS): a MemoryError for this request.
        PyErr_Clear();
        runtime_note_memory_error(*st.rt);
        runtime_logger(*st.rt).write(LogLevel::kError, kLogNoMemory,
                                     "Out of memory processing WSGI script '" + std::string(call.script) + "'.",
                                     call.client);
        frames = out_of_memory_frames(call);
    }
    call.expired = true;
    if (call.metered)
        runtime_metrics(*st.rt).request_finished();
    if (call.reload_wanted)
        req.note_info(WSGI_OUT_RELOAD);
    ssl_vars_expire(call.ssl.get());
    if (adapter) {
        adapter_expire(adapter);  // the app may keep start_response; it must not reach this Call
        Py_DECREF(adapter);
    }
    return frames;
}

}  // namespace modwsgi
