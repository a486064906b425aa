// Response frames of docs/protocol.md as the ASGI engine builds them (asgi_*.cc): whole frames in a
// std::string, ready to be posted through Request::post_output().
#ifndef MODWSGI_ADDON_ASGI_FRAMES_H
#define MODWSGI_ADDON_ASGI_FRAMES_H

#include <cstdint>
#include <string>
#include <string_view>

#include "wsgi_wire.h"

namespace modwsgi {
namespace asgi_frames {

inline void append_u32(std::string &out, uint32_t v) {
    unsigned char b[4];
    wsgi_put_u32(b, v);
    out.append(reinterpret_cast<const char *>(b), 4);
}

inline void append_string(std::string &out, std::string_view s) {
    append_u32(out, static_cast<uint32_t>(s.size()));
    out.append(s.data(), s.size());
}

inline void append_frame(std::string &out, uint8_t type, const char *payload, size_t n, uint16_t flags = 0) {
    unsigned char h[WSGI_WIRE_HEADER_SIZE];
    wsgi_frame_header_pack(h, type, flags, static_cast<uint32_t>(n));
    out.append(reinterpret_cast<const char *>(h), sizeof h);
    if (n)
        out.append(payload, n);
}

// `logged`: the daemon logged the cause at error, naming the request (WSGI_ERROR_F_LOGGED: the Apache
// child then says it at info only, so that a failed request has one error line).
inline std::string error_frame(uint32_t status, std::string_view text, bool logged = false) {
    std::string payload;
    append_u32(payload, status);
    append_string(payload, text.substr(0, WSGI_LIMIT_ERROR - 8));
    std::string out;
    append_frame(out, WSGI_FRAME_ERROR, payload.data(), payload.size(), logged ? WSGI_ERROR_F_LOGGED : 0);
    return out;
}

inline std::string end_frame(uint32_t outcome) {
    unsigned char b[4];
    wsgi_put_u32(b, outcome);
    std::string out;
    append_frame(out, WSGI_FRAME_END, reinterpret_cast<const char *>(b), 4);
    return out;
}

// A frame without payload (GOAWAY).
inline std::string empty_frame(uint8_t type) {
    std::string out;
    append_frame(out, type, nullptr, 0);
    return out;
}

}  // namespace asgi_frames
}  // namespace modwsgi

#endif
