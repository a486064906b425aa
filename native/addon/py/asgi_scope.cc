// The http scope of an ASGI request (asgiref specs/www.rst), built from its REQUEST variables: the
// mount as root_path and the path below it (as SCRIPT_NAME and PATH_INFO), raw_path and query_string as
// sent, headers from CONTENT_TYPE, CONTENT_LENGTH and HTTP_* in Apache's order, client and server.
// WebSocket's scope is built from the same variables.
#include "asgi_loop.h"

#include "wsgi_wire.h"

namespace modwsgi {

namespace {

bool set(PyObject *d, PyObject *key, PyObject *value) {
    if (!value)
        return false;
    int r = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return r == 0;
}

// b"user-agent" for HTTP_USER_AGENT, b"content-type" for CONTENT_TYPE (new reference).
PyObject *header_name(AsgiLoop &loop, std::string_view var) {
    auto it = loop.header_names.find(std::string(var));
    if (it != loop.header_names.end()) {
        Py_INCREF(it->second);
        return it->second;
    }
    std::string_view bare = var.substr(0, 5) == "HTTP_" ? var.substr(5) : var;
    std::string name(bare);
    for (char &c : name)
        c = c == '_' ? '-' : static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    PyObject *b = PyBytes_FromStringAndSize(name.data(), static_cast<Py_ssize_t>(name.size()));
    if (b && loop.header_names.size() < KeyCache::kMaxEntries) {
        Py_INCREF(b);
        loop.header_names.emplace(std::string(var), b);
    }
    return b;
}

PyObject *decode_path(std::string_view s) {
    return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
}

PyObject *bytes_of(std::string_view s) { return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size())); }

PyObject *address(std::string_view host, std::string_view port) {
    if (host.empty())
        Py_RETURN_NONE;
    long p = 0;
    for (char c : port)
        p = (c >= '0' && c <= '9' && p < 100000) ? p * 10 + (c - '0') : p;
    return Py_BuildValue("(Nl)", PyUnicode_DecodeLatin1(host.data(), static_cast<Py_ssize_t>(host.size()), nullptr), p);
}

// raw_path: the request target's path as the client sent it (REQUEST_URI up to '?', an absolute-form
// target's scheme and authority removed).
std::string_view raw_path(const HttpVars &v) {
    std::string_view u = v.request_uri;
    if (u.empty() || u.front() != '/') {
        size_t scheme = u.find("://");
        if (scheme != std::string_view::npos) {
            size_t slash = u.find('/', scheme + 3);
            u = slash == std::string_view::npos ? std::string_view("/") : u.substr(slash);
        }
    }
    size_t q = u.find('?');
    return q == std::string_view::npos ? u : u.substr(0, q);
}

// The subprotocols a WebSocket client offers (Sec-WebSocket-Protocol, comma separated), as a list.
PyObject *subprotocols_of(const HttpVars &v) {
    PyRef list(PyList_New(0));
    for (const auto &h : v.headers) {
        if (!list || h.first != "HTTP_SEC_WEBSOCKET_PROTOCOL")
            continue;
        std::string_view rest = h.second;
        while (!rest.empty()) {
            size_t comma = rest.find(',');
            std::string_view item = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
                item.remove_prefix(1);
            while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
                item.remove_suffix(1);
            if (item.empty())
                continue;
            PyRef name(PyUnicode_DecodeLatin1(item.data(), static_cast<Py_ssize_t>(item.size()), nullptr));
            if (!name || PyList_Append(list.get(), name.get()) < 0)
                return nullptr;
        }
    }
    return list.release();
}

PyObject *scope_of(AsgiLoop &loop, AsgiApp &app, const HttpVars &v, bool websocket) {
    AsgiStrings &s = loop.s;
    PyRef scope(_PyDict_NewPresized(16));
    if (!scope)
        return nullptr;
    PyObject *d = scope.get();
    PyObject *version = v.protocol == "HTTP/1.1" ? s.v11 : v.protocol == "HTTP/1.0" ? s.v10
                        : v.protocol.substr(0, 6) == "HTTP/2"                         ? s.v2
                                                                                      : nullptr;
    PyRef other;
    if (!version) {
        std::string_view p = v.protocol.substr(0, 5) == "HTTP/" ? v.protocol.substr(5) : v.protocol;
        other.reset(PyUnicode_DecodeLatin1(p.data(), static_cast<Py_ssize_t>(p.size()), nullptr));
        version = other.get();
    }
    PyRef method(loop.st.keys.get(v.method.empty() ? std::string_view("GET") : v.method));
    PyRef headers(PyList_New(static_cast<Py_ssize_t>(v.headers.size())));
    if (!version || !method || !headers)
        return nullptr;
    for (size_t i = 0; i < v.headers.size(); ++i) {
        PyObject *pair = PyTuple_New(2);
        if (!pair)
            return nullptr;
        PyList_SET_ITEM(headers.get(), static_cast<Py_ssize_t>(i), pair);
        PyObject *n = header_name(loop, v.headers[i].first);
        PyObject *val = n ? bytes_of(v.headers[i].second) : nullptr;
        if (!val) {
            Py_XDECREF(n);
            return nullptr;
        }
        PyTuple_SET_ITEM(pair, 0, n);
        PyTuple_SET_ITEM(pair, 1, val);
    }
    std::string_view raw = raw_path(v);
    std::string joined;
    if (raw.empty()) {
        joined.assign(v.script_name).append(v.path_info);
        raw = joined;
    }
    bool https = v.scheme == "https";
    bool ok = PyDict_SetItem(d, s.type, websocket ? s.websocket : s.http) == 0 &&
              PyDict_SetItem(d, s.asgi, s.asgi_dict) == 0 && PyDict_SetItem(d, s.http_version, version) == 0 &&
              (websocket ? set(d, s.subprotocols, subprotocols_of(v))
                         : PyDict_SetItem(d, s.method, method.get()) == 0) &&
              PyDict_SetItem(d, s.scheme, websocket ? (https ? s.wss : s.ws) : https ? s.https : s.http) == 0 &&
              set(d, s.path, decode_path(v.path_info)) && set(d, s.raw_path, bytes_of(raw)) &&
              set(d, s.query_string, bytes_of(v.query_string)) && set(d, s.root_path, decode_path(v.script_name)) &&
              PyDict_SetItem(d, s.headers, headers.get()) == 0 &&
              set(d, s.client, address(v.remote_addr, v.remote_port)) &&
              set(d, s.server, address(v.server_addr, v.listener_port)) &&
              set(d, s.state, app.state ? PyDict_Copy(app.state.get()) : PyDict_New()) &&
              PyDict_SetItem(d, s.extensions, websocket ? s.ws_extensions_dict : s.extensions_dict) == 0;
    return ok ? scope.release() : nullptr;
}

bool intern(PyObject **slot, const char *text) {
    *slot = PyUnicode_InternFromString(text);
    return *slot != nullptr;
}

}  // namespace

PyObject *http_build_scope(AsgiLoop &loop, AsgiApp &app, const HttpVars &v, bool websocket) {
    return scope_of(loop, app, v, websocket);
}

bool http_vars_parse(const std::vector<uint8_t> &payload, HttpVars *v) {
    wsgi_reader r;
    wsgi_reader_init(&r, payload.data(), payload.size());
    v->flags = wsgi_read_u32(&r);
    wsgi_read_u64(&r);
    uint32_t count = wsgi_read_u32(&r);
    if (!r.ok || count > payload.size() / 8)
        return false;
    v->headers.reserve(count / 2);
    for (uint32_t i = 0; i < count; ++i) {
        const char *n, *val;
        uint32_t nlen, vlen;
        wsgi_read_string(&r, &n, &nlen);
        wsgi_read_string(&r, &val, &vlen);
        if (!r.ok)
            return false;
        std::string_view name(n, nlen), value(val, vlen);
        if (nlen > 5 && name.substr(0, 5) == "HTTP_") {
            v->headers.emplace_back(name, value);
            continue;
        }
        switch (nlen) {
        case 9:
            if (name == "PATH_INFO")
                v->path_info = value;
            break;
        case 11:
            if (name == "SCRIPT_NAME")
                v->script_name = value;
            else if (name == "REQUEST_URI")
                v->request_uri = value;
            else if (name == "REMOTE_ADDR")
                v->remote_addr = value;
            else if (name == "REMOTE_PORT")
                v->remote_port = value;
            else if (name == "SERVER_ADDR")
                v->server_addr = value;
            break;
        case 12:
            if (name == "QUERY_STRING")
                v->query_string = value;
            else if (name == "CONTENT_TYPE")
                v->headers.emplace_back(name, value);
            break;
        case 14:
            if (name == "REQUEST_METHOD")
                v->method = value;
            else if (name == "CONTENT_LENGTH")
                v->headers.emplace_back(name, value);
            break;
        case 15:
            if (name == "SERVER_PROTOCOL")
                v->protocol = value;
            else if (name == "SCRIPT_FILENAME")
                v->script = value;
            break;
        case 19:
            if (name == "mod_wsgi.url_scheme")
                v->scheme = value;
            else if (name == "mod_wsgi.request_id")
                v->request_id = value;
            break;
        case 22:
            if (name == "mod_wsgi.listener_port")
                v->listener_port = value;
            break;
        case 23:
            if (name == "mod_wsgi.handler_script")
                v->handler_script = value;
            break;
        case 24:
            if (name == "mod_wsgi.callable_object")
                v->callable = value;
            break;
        case 25:
            if (name == "mod_wsgi.script_reloading")
                v->reloading = value;
            else if (name == "mod_wsgi.application_type")
                v->app_type = value;
            break;
        default:
            break;
        }
    }
    v->client = request_tag(v->remote_addr, v->remote_port, v->request_id);
    return r.left == 0;
}

bool http_strings_init(AsgiStrings &s) {
    bool ok = intern(&s.type, "type") && intern(&s.asgi, "asgi") && intern(&s.version, "version") &&
              intern(&s.spec_version, "spec_version") && intern(&s.http_version, "http_version") &&
              intern(&s.method, "method") && intern(&s.scheme, "scheme") && intern(&s.path, "path") &&
              intern(&s.raw_path, "raw_path") && intern(&s.query_string, "query_string") &&
              intern(&s.root_path, "root_path") && intern(&s.headers, "headers") && intern(&s.client, "client") &&
              intern(&s.server, "server") && intern(&s.state, "state") && intern(&s.extensions, "extensions") &&
              intern(&s.body, "body") && intern(&s.more_body, "more_body") && intern(&s.status, "status") &&
              intern(&s.message, "message") && intern(&s.trailers, "trailers") && intern(&s.http, "http") &&
              intern(&s.http_request, "http.request") && intern(&s.http_disconnect, "http.disconnect") &&
              intern(&s.http_response_start, "http.response.start") &&
              intern(&s.http_response_body, "http.response.body") &&
              intern(&s.http_response_pathsend, "http.response.pathsend") &&
              intern(&s.pathsend_ext, "http.response.pathsend") && intern(&s.v10, "1.0") && intern(&s.v11, "1.1") &&
              intern(&s.v2, "2") && intern(&s.https, "https") && intern(&s.receive, "receive") &&
              intern(&s.send, "send") && intern(&s.done, "_done") && intern(&s.cancel, "cancel") &&
              intern(&s.add_done_callback, "add_done_callback") && intern(&s.result, "result") &&
              intern(&s.set_result, "set_result") && intern(&s.set_exception, "set_exception") &&
              intern(&s.cancelled, "cancelled") && intern(&s.exception, "exception") && intern(&s.str_done, "done");
    ok = ok && intern(&s.websocket, "websocket") && intern(&s.ws, "ws") && intern(&s.wss, "wss") &&
         intern(&s.subprotocols, "subprotocols") && intern(&s.subprotocol, "subprotocol") && intern(&s.text, "text") &&
         intern(&s.bytes, "bytes") && intern(&s.code, "code") && intern(&s.reason, "reason") &&
         intern(&s.websocket_connect, "websocket.connect") && intern(&s.websocket_receive, "websocket.receive") &&
         intern(&s.websocket_disconnect, "websocket.disconnect") && intern(&s.websocket_accept, "websocket.accept") &&
         intern(&s.websocket_send, "websocket.send") && intern(&s.websocket_close, "websocket.close") &&
         intern(&s.websocket_http_response_start, "websocket.http.response.start") &&
         intern(&s.websocket_http_response_body, "websocket.http.response.body");
    if (!ok)
        return false;
    // The websocket scope's extensions: the denial response (websocket.http.response.*).
    s.ws_extensions_dict = Py_BuildValue("{s:{}}", "websocket.http.response");
    if (!s.ws_extensions_dict)
        return false;
    s.empty_bytes = PyBytes_FromStringAndSize("", 0);
    s.asgi_dict = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4");
    // Shared by every scope, as `asgi` is: the extensions this server supports.
    s.extensions_dict = Py_BuildValue("{s:{}}", "http.response.pathsend");
    return s.empty_bytes && s.asgi_dict && s.extensions_dict;
}

}  // namespace modwsgi
