// The frames of an ASGI HTTP response (asgi_http.h), as docs/protocol.md has them for a WSGI one:
// HEAD (with WSGI_HEAD_ASGI), BODY in pieces of kPiece, FILE for http.response.pathsend, END; the
// Content-Length the application set is held to as in a WSGI response.
#include "asgi_http.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "asgi_frames.h"
#include "asgi_messages.h"
#include "runtime.h"
#include "wsgi_wire.h"

namespace modwsgi {
namespace asgi_http {

using namespace asgi_frames;

void queue(HttpState &h, std::string &&frames, int fd) {
    if (fd < 0 && !h.out.empty() && h.out.back().fd < 0 && h.out.back().data.size() + frames.size() <= kPiece) {
        h.out.back().data.append(frames);
        return;
    }
    h.out.push_back(Piece{std::move(frames), fd});
}

// The HEAD frame carries WSGI_HEAD_ASGI: the Apache child then leaves out, for this script's later
// requests, what only a WSGI environ uses (wsgi_asgi.c).
void queue_head(HttpState &h) {
    std::string f(WSGI_WIRE_HEADER_SIZE, '\0');
    wsgi_frame_header_pack(reinterpret_cast<unsigned char *>(&f[0]), WSGI_FRAME_HEAD, WSGI_HEAD_ASGI,
                           static_cast<uint32_t>(h.head.size()));
    f.append(h.head);
    queue(h, std::move(f));
    h.head_queued = true;
}

void queue_end(HttpState &h) {
    uint32_t outcome = WSGI_END_COMPLETE;
    if (h.content_length >= 0 && !h.head_method && h.body_bytes < static_cast<uint64_t>(h.content_length)) {
        runtime_logger(h.loop->rt)
            .write(LogLevel::kWarn, kLogAsgiTooShort,
                   "Response of ASGI application " + h.label + " is shorter than its content-length (" +
                       std::to_string(h.body_bytes) + " of " + std::to_string(h.content_length) +
                       " bytes): the connection is closed.",
                   h.client);
        outcome = WSGI_END_INCOMPLETE;
    }
    queue(h, end_frame(outcome));
    h.end_queued = true;
    h.complete = true;
}

void queue_body(HttpState &h, const char *data, size_t n) {
    if (h.content_length >= 0) {
        uint64_t room = static_cast<uint64_t>(h.content_length) > h.body_bytes
                            ? static_cast<uint64_t>(h.content_length) - h.body_bytes
                            : 0;
        if (n > room) {
            if (!h.over_length)
                runtime_logger(h.loop->rt)
                    .write(LogLevel::kWarn, kLogAsgiTooLong,
                           "Response of ASGI application " + h.label + " is longer than its content-length (" +
                               std::to_string(h.content_length) + " bytes): the extra output is dropped.",
                           h.client);
            h.over_length = true;
            n = static_cast<size_t>(room);
        }
    }
    h.body_bytes += n;
    if (h.head_method)
        return;
    while (n) {
        size_t piece = std::min(n, kPiece);
        std::string f;
        append_frame(f, WSGI_FRAME_RBODY, data, piece);
        queue(h, std::move(f));
        data += piece;
        n -= piece;
    }
}

// http.response.pathsend: the file goes to Apache as a FILE frame with its descriptor (sent with
// sendfile when WSGIEnableSendfile is On), as wsgi.file_wrapper's do.
bool queue_file(HttpState &h, AsgiStrings &s, PyObject *msg) {
    PyObject *path = PyDict_GetItemString(msg, "path");
    if (!path || !PyUnicode_Check(path)) {
        PyErr_SetString(PyExc_TypeError, "http.response.pathsend needs a 'path' string");
        return false;
    }
    PyRef fs(PyUnicode_EncodeFSDefault(path));
    if (!fs)
        return false;
    int fd = open(PyBytes_AS_STRING(fs.get()), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        return false;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        PyErr_Format(PyExc_ValueError, "http.response.pathsend: %R is not a regular file", path);
        return false;
    }
    uint64_t count = static_cast<uint64_t>(sb.st_size);
    if (h.content_length >= 0)
        count = std::min(count, static_cast<uint64_t>(h.content_length) > h.body_bytes
                                    ? static_cast<uint64_t>(h.content_length) - h.body_bytes
                                    : 0);
    if (!h.head_queued)
        queue_head(h);
    h.body_bytes += count;
    if (count == 0 || h.head_method) {
        close(fd);
    } else {
        unsigned char payload[16];
        wsgi_put_u64(payload, 0);
        wsgi_put_u64(payload + 8, count);
        std::string f;
        append_frame(f, WSGI_FRAME_FILE, reinterpret_cast<const char *>(payload), sizeof payload);
        queue(h, std::move(f), fd);
    }
    (void)s;
    queue_end(h);
    return true;
}

bool queue_body_message(HttpState &h, AsgiStrings &s, PyObject *msg) {
    PyObject *data;
    bool more_body;
    if (!asgi_messages::body_fields(s, msg, &data, &more_body))
        return false;
    if (!h.head_queued)
        queue_head(h);
    if (data && data != Py_None) {
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
            return false;
        queue_body(h, static_cast<const char *>(view.buf), static_cast<size_t>(view.len));
        PyBuffer_Release(&view);
    }
    if (!more_body)
        queue_end(h);
    return true;
}

}  // namespace asgi_http
}  // namespace modwsgi
