// WebSocket messages between the daemon's JavaScript (src/daemon/websocket/records.ts) and an ASGI
// WebSocket on the loop (asgi_websocket.cc), once the connection is upgraded. Not on the wire: the
// daemon frames and unframes them with ws's Sender and Receiver. Both ways, a batch of records:
//
//   u8 kind, u32 length (big-endian), length bytes
//
//   1 TEXT    UTF-8 (the daemon checked it for what the client sent)
//   2 BINARY  bytes
//   3 CLOSE   u16 code, then the reason in UTF-8. JavaScript -> loop: the WebSocket is over for the
//             client: its close frame's code (1005 when it gave none), or the code the daemon closed
//             it with (1006 connection lost, 1001 going away, 1002, 1007, 1009...); the input then
//             ends. Loop -> JavaScript: websocket.close, or the end the application did not say.
#ifndef MODWSGI_ADDON_ASGI_WS_RECORDS_H
#define MODWSGI_ADDON_ASGI_WS_RECORDS_H

#include <cstdint>
#include <string>
#include <string_view>

namespace modwsgi {
namespace ws_records {

constexpr uint8_t kText = 1;
constexpr uint8_t kBinary = 2;
constexpr uint8_t kClose = 3;
constexpr size_t kHeader = 5;

inline void append(std::string &out, uint8_t kind, const char *data, size_t n) {
    char h[kHeader] = {static_cast<char>(kind), static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
    out.append(h, kHeader);
    if (n)
        out.append(data, n);
}

inline void append_close(std::string &out, int code, std::string_view reason) {
    std::string p;
    p.push_back(static_cast<char>((code >> 8) & 0xff));
    p.push_back(static_cast<char>(code & 0xff));
    p.append(reason.data(), reason.size());
    append(out, kClose, p.data(), p.size());
}

}  // namespace ws_records
}  // namespace modwsgi

#endif
