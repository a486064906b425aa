// The head of an ASGI response (http.response.start; WebSocket's denial response will use it too):
// status and headers validated and encoded as a HEAD frame's payload (docs/protocol.md).
#include "asgi_loop.h"

#include <strings.h>

#include "asgi_frames.h"

namespace modwsgi {

using namespace asgi_frames;

namespace {

const char *reason_phrase(long code) {
    switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    default: return "";
    }
}

bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Apache owns the connection: these are its to set (it drops the first three itself).
bool is_hop_by_hop(std::string_view name) {
    static const char *const names[] = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"};
    for (const char *n : names)
        if (name.size() == strlen(n) && strncasecmp(name.data(), n, name.size()) == 0)
            return true;
    return false;
}

// bytes, bytearray or a latin-1 str, as a view (valid while `o` lives).
bool header_bytes(PyObject *o, std::string_view *out) {
    if (PyBytes_Check(o)) {
        *out = std::string_view(PyBytes_AS_STRING(o), static_cast<size_t>(PyBytes_GET_SIZE(o)));
        return true;
    }
    if (PyByteArray_Check(o)) {
        *out = std::string_view(PyByteArray_AS_STRING(o), static_cast<size_t>(PyByteArray_GET_SIZE(o)));
        return true;
    }
    return latin1_view(o, out);
}

// http.response.start: validates status and headers and encodes the HEAD payload.
bool encode(AsgiStrings &s, PyObject *message, std::string *out, int64_t *content_length) {
    PyObject *status = PyDict_GetItemWithError(message, s.status);
    if (!status) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "http.response.start message without 'status'");
        return false;
    }
    long code = PyLong_Check(status) ? PyLong_AsLong(status) : -1;
    if (!PyLong_Check(status) || code < 100 || code > 999) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "ASGI response status must be an integer from 100 to 999, not %R", status);
        return false;
    }
    std::string head;
    append_u32(head, static_cast<uint32_t>(code));
    std::string line = std::to_string(code) + " " + reason_phrase(code);
    append_string(head, line);
    size_t count_at = head.size();
    append_u32(head, 0);
    uint32_t count = 0;
    *content_length = -1;
    PyObject *headers = PyDict_GetItemWithError(message, s.headers);
    if (!headers && PyErr_Occurred())
        return false;
    if (headers && headers != Py_None) {
        PyRef it(PyObject_GetIter(headers));
        if (!it)
            return false;
        for (;;) {
            PyRef item(PyIter_Next(it.get()));
            if (!item) {
                if (PyErr_Occurred())
                    return false;
                break;
            }
            PyRef pair(PySequence_Fast(item.get(), "ASGI response headers must be [name, value] pairs"));
            if (!pair)
                return false;
            if (PySequence_Fast_GET_SIZE(pair.get()) != 2) {
                PyErr_SetString(PyExc_ValueError, "ASGI response headers must be [name, value] pairs");
                return false;
            }
            PyObject *name = PySequence_Fast_GET_ITEM(pair.get(), 0);
            PyObject *value = PySequence_Fast_GET_ITEM(pair.get(), 1);
            std::string_view n, v;
            if (!header_bytes(name, &n) || !header_bytes(value, &v)) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_TypeError, "ASGI response header names and values must be bytes, not %.100s",
                                 Py_TYPE(header_bytes(name, &n) ? value : name)->tp_name);
                return false;
            }
            bool ok = !n.empty();
            for (unsigned char c : n)
                ok = ok && is_tchar(c);
            if (!ok) {
                PyErr_Format(PyExc_ValueError, "invalid ASGI response header name %R", name);
                return false;
            }
            if (v.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
                PyErr_Format(PyExc_ValueError, "invalid character (CR, LF or NUL) in ASGI response header %R", name);
                return false;
            }
            if (is_hop_by_hop(n))
                continue;
            if (n.size() == 14 && strncasecmp(n.data(), "content-length", 14) == 0 &&
                !parse_content_length(v, content_length)) {
                PyErr_Format(PyExc_ValueError, "invalid content-length in ASGI response headers: %R", value);
                return false;
            }
            append_string(head, n);
            append_string(head, v);
            ++count;
        }
    }
    wsgi_put_u32(reinterpret_cast<unsigned char *>(&head[count_at]), count);
    *out = std::move(head);
    return true;
}

}  // namespace

bool asgi_encode_head(AsgiStrings &s, PyObject *message, std::string *head, int64_t *content_length) {
    try {
        return encode(s, message, head, content_length);
    } catch (const std::bad_alloc &) {
        PyErr_NoMemory();
        return false;
    }
}

}  // namespace modwsgi
