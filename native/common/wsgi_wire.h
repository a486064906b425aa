/*
 * The wire protocol between an Apache child and a mod_wsgi daemon process.
 * docs/protocol.md is the specification; this header is its only C rendering, shared by the Apache
 * module (native/apache) and the CPython addon (native/addon). Plain C99, no Apache or Python headers.
 *
 * All integers are big-endian and are packed and unpacked byte by byte: never send a struct.
 */
#ifndef WSGI_WIRE_H
#define WSGI_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WSGI_WIRE_VERSION        1
#define WSGI_WIRE_HEADER_SIZE    8

/* Apache child -> daemon */
#define WSGI_FRAME_REQUEST       0x01
#define WSGI_FRAME_BODY          0x02
#define WSGI_FRAME_BODY_END      0x03
#define WSGI_FRAME_AUTH          0x04   /* run an access/authentication/group hook */
#define WSGI_FRAME_VAR_VALUE     0x05   /* the answer to a VAR_LOOKUP */

/* daemon -> Apache child */
#define WSGI_FRAME_HEAD          0x11
#define WSGI_FRAME_RBODY         0x12
#define WSGI_FRAME_END           0x13
#define WSGI_FRAME_FILE          0x14
#define WSGI_FRAME_ERROR         0x15
#define WSGI_FRAME_GOAWAY        0x16
#define WSGI_FRAME_AUTH_RESULT   0x17   /* the outcome of an AUTH */
#define WSGI_FRAME_VAR_LOOKUP    0x18   /* mod_ssl.var_lookup(name): asks the child for a variable */

/* ERROR frame header flags */
#define WSGI_ERROR_F_LOGGED       0x0001u       /* the daemon logged this failure's cause, naming the request:
                                                   the child logs its own line at info, so that the failure
                                                   has one line at error */

/* REQUEST payload flags */
#define WSGI_REQUEST_BODY_FOLLOWS 0x00000001u
#define WSGI_REQUEST_SSL          0x00000002u   /* client connection is SSL: the child answers VAR_LOOKUP */
#define WSGI_REQUEST_RETRYABLE    0x00000004u   /* can be sent again: a daemon with no free thread may
                                                   answer GOAWAY instead of queueing it */
#define WSGI_REQUEST_STREAMED     0x00000008u   /* the body is streamed after the head: the request cannot
                                                   be sent again, a daemon draining runs it */
#define WSGI_REQUEST_UPGRADE      0x00000010u   /* a WebSocket upgrade the child can carry (HTTP/1.1 GET,
                                                   Upgrade: websocket, version 13, no body): an ASGI
                                                   application gets a websocket scope */

/* HEAD frame header flags */
#define WSGI_HEAD_ASGI            0x0001u       /* from an ASGI application: the child may leave out, for
                                                   this script's later requests, variables only a WSGI
                                                   environ uses (PATH_TRANSLATED) */
#define WSGI_HEAD_UPGRADE         0x0002u       /* the WebSocket is accepted: status 101, to a REQUEST with
                                                   UPGRADE only; after this frame the connection carries the
                                                   client's raw bytes both ways until either side closes */

/* AUTH payload flags */
#define WSGI_AUTH_SSL             0x00000001u   /* client connection is SSL (mod_ssl.is_https) */
#define WSGI_AUTH_LOOKUP          0x00000002u   /* the child answers VAR_LOOKUP (an SSL module is loaded) */
#define WSGI_AUTH_RELOADING       0x00000004u   /* WSGIScriptReloading On */

/* AUTH hooks: which function of the script to call */
#define WSGI_AUTH_ALLOW_ACCESS    1   /* allow_access(environ, host)          WSGIAccessScript */
#define WSGI_AUTH_CHECK_PASSWORD  2   /* check_password(environ, user, pw)   WSGIAuthUserScript, Basic */
#define WSGI_AUTH_GET_REALM_HASH  3   /* get_realm_hash(environ, user, realm) WSGIAuthUserScript, Digest */
#define WSGI_AUTH_GROUPS_FOR_USER 4   /* groups_for_user(environ, user)      WSGIAuthGroupScript */

/* AUTH_RESULT outcomes */
#define WSGI_AUTH_DENIED          0   /* False */
#define WSGI_AUTH_GRANTED         1   /* True, a user name, a realm hash or a list of groups (strings) */
#define WSGI_AUTH_NOT_FOUND       2   /* None */
#define WSGI_AUTH_ERROR           3   /* the hook failed (logged by the daemon) */

/* END outcomes */
#define WSGI_END_COMPLETE        0
#define WSGI_END_INCOMPLETE      1

/* FILE count meaning "to the end of the file" */
#define WSGI_FILE_TO_EOF         UINT64_C(0xFFFFFFFFFFFFFFFF)

/* Payload limits (bytes). HEAD's limit is the group's header-buffer-size, set at run time. */
#define WSGI_LIMIT_REQUEST       (8u * 1024u * 1024u)
#define WSGI_LIMIT_BODY          (1u * 1024u * 1024u)
#define WSGI_LIMIT_RBODY         (4u * 1024u * 1024u)
#define WSGI_LIMIT_END           4u
#define WSGI_LIMIT_FILE          16u
#define WSGI_LIMIT_ERROR         (64u * 1024u)
#define WSGI_LIMIT_AUTH          (8u * 1024u * 1024u)
#define WSGI_LIMIT_AUTH_RESULT   (64u * 1024u)
#define WSGI_LIMIT_VAR_NAME      4096u
#define WSGI_LIMIT_VAR_LOOKUP    (4u + WSGI_LIMIT_VAR_NAME)
#define WSGI_LIMIT_VAR_VALUE     (8u + 1024u * 1024u)

/* Fixed part of a REQUEST payload: flags (4), request_start (8), count (4). */
#define WSGI_REQUEST_FIXED_SIZE  16

/* Fixed part of an AUTH payload: flags (4), hook (4), request_start (8); four strings and the
 * variables follow. */
#define WSGI_AUTH_FIXED_SIZE     16

/*
 * What a batch of daemon -> child frames carries, as the addon tells the daemon with each output event
 * (not on the wire): computed once, where the frames are made, so that nobody reads frame bytes again.
 */
#define WSGI_OUT_ENDS            0x01   /* the last frame ends the response: END, ERROR or AUTH_RESULT */
#define WSGI_OUT_FAILED          0x02   /* an ERROR, or an END whose outcome is not COMPLETE */
#define WSGI_OUT_GOAWAY          0x04   /* the last frame is GOAWAY: the request was not run */
#define WSGI_OUT_LOOKUP          0x08   /* a VAR_LOOKUP, not part of the response */
#define WSGI_OUT_STARTS          0x10   /* holds a response frame (anything but VAR_LOOKUP) */
#define WSGI_OUT_RELOAD          0x20   /* not from the frames: the request ran a script that has changed
                                           on disk with the code already loaded (its body could not be
                                           sent again); the process is to be replaced */
#define WSGI_OUT_UPGRADE         0x40   /* the last frame is a HEAD with WSGI_HEAD_UPGRADE: from now on the
                                           connection is a WebSocket (src/daemon/websocket/) */
#define WSGI_OUT_MESSAGES        0x80   /* not frames: WebSocket message records for the daemon to frame
                                           (after the upgrade; native/addon/py/asgi_ws_records.h) */
/* Bits 16-25 of the summary: the HTTP status of the first HEAD or ERROR frame of the batch (0: none). */
#define WSGI_OUT_STATUS_SHIFT    16

typedef struct wsgi_frame_header {
    uint8_t  version;
    uint8_t  type;
    uint16_t flags;
    uint32_t length;
} wsgi_frame_header;

static inline void wsgi_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void wsgi_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline void wsgi_put_u64(unsigned char *p, uint64_t v)
{
    wsgi_put_u32(p, (uint32_t)(v >> 32));
    wsgi_put_u32(p + 4, (uint32_t)v);
}

static inline uint16_t wsgi_get_u16(const unsigned char *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static inline uint32_t wsgi_get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint64_t wsgi_get_u64(const unsigned char *p)
{
    return ((uint64_t)wsgi_get_u32(p) << 32) | wsgi_get_u32(p + 4);
}

/* Writes the 8-byte header of a frame into out. */
static inline void wsgi_frame_header_pack(unsigned char *out, uint8_t type, uint16_t flags,
                                          uint32_t length)
{
    out[0] = WSGI_WIRE_VERSION;
    out[1] = type;
    wsgi_put_u16(out + 2, flags);
    wsgi_put_u32(out + 4, length);
}

/* Reads an 8-byte header. The caller checks version, type and length against its state and limits. */
static inline void wsgi_frame_header_unpack(const unsigned char *in, wsgi_frame_header *h)
{
    h->version = in[0];
    h->type = in[1];
    h->flags = wsgi_get_u16(in + 2);
    h->length = wsgi_get_u32(in + 4);
}

/*
 * A bounded reader over a payload, for strings and pairs. Every read checks the remaining length;
 * after the first failure `ok` stays 0 and later reads return zeros, so a caller checks once at the end.
 */
typedef struct wsgi_reader {
    const unsigned char *p;
    size_t left;
    int ok;
} wsgi_reader;

static inline void wsgi_reader_init(wsgi_reader *r, const unsigned char *p, size_t n)
{
    r->p = p;
    r->left = n;
    r->ok = 1;
}

static inline uint32_t wsgi_read_u32(wsgi_reader *r)
{
    uint32_t v;
    if (!r->ok || r->left < 4) {
        r->ok = 0;
        return 0;
    }
    v = wsgi_get_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return v;
}

static inline uint64_t wsgi_read_u64(wsgi_reader *r)
{
    uint64_t v;
    if (!r->ok || r->left < 8) {
        r->ok = 0;
        return 0;
    }
    v = wsgi_get_u64(r->p);
    r->p += 8;
    r->left -= 8;
    return v;
}

/* Reads a string: sets *s to its bytes inside the payload (not terminated) and *n to its length. */
static inline int wsgi_read_string(wsgi_reader *r, const char **s, uint32_t *n)
{
    uint32_t len = wsgi_read_u32(r);
    if (!r->ok || r->left < len) {
        r->ok = 0;
        *s = NULL;
        *n = 0;
        return 0;
    }
    *s = (const char *)r->p;
    *n = len;
    r->p += len;
    r->left -= len;
    return 1;
}

/* Bytes a string of n bytes takes in a payload. */
static inline size_t wsgi_string_size(size_t n)
{
    return 4 + n;
}

/* Writes a string at out; returns the bytes written (4 + n). */
static inline size_t wsgi_write_string(unsigned char *out, const char *s, uint32_t n)
{
    wsgi_put_u32(out, n);
    if (n)
        memcpy(out + 4, s, n);
    return 4 + (size_t)n;
}

/* The WSGI_OUT_* summary of a buffer of whole daemon -> child frames. */
static inline unsigned wsgi_output_info(const unsigned char *p, size_t n)
{
    unsigned info = 0;
    uint8_t last = 0;

    while (n >= WSGI_WIRE_HEADER_SIZE) {
        uint8_t type = p[1];
        uint32_t len = wsgi_get_u32(p + 4);
        if (len > n - WSGI_WIRE_HEADER_SIZE)
            break;
        if (type == WSGI_FRAME_VAR_LOOKUP)
            info |= WSGI_OUT_LOOKUP;
        else
            info |= WSGI_OUT_STARTS;
        if (type == WSGI_FRAME_ERROR ||
            (type == WSGI_FRAME_END && len == 4 && wsgi_get_u32(p + WSGI_WIRE_HEADER_SIZE) != WSGI_END_COMPLETE))
            info |= WSGI_OUT_FAILED;
        if ((type == WSGI_FRAME_HEAD || type == WSGI_FRAME_ERROR) && len >= 4 && !(info >> WSGI_OUT_STATUS_SHIFT)) {
            uint32_t status = wsgi_get_u32(p + WSGI_WIRE_HEADER_SIZE);
            if (status >= 100 && status <= 999)
                info |= status << WSGI_OUT_STATUS_SHIFT;
        }
        if (type == WSGI_FRAME_HEAD && (wsgi_get_u16(p + 2) & WSGI_HEAD_UPGRADE))
            info |= WSGI_OUT_UPGRADE;
        last = type;
        p += WSGI_WIRE_HEADER_SIZE + len;
        n -= WSGI_WIRE_HEADER_SIZE + len;
    }
    if (last == WSGI_FRAME_END || last == WSGI_FRAME_ERROR || last == WSGI_FRAME_AUTH_RESULT)
        info |= WSGI_OUT_ENDS;
    else if (last == WSGI_FRAME_GOAWAY)
        info = (info & ~(unsigned)WSGI_OUT_STARTS) | WSGI_OUT_GOAWAY;
    return info;
}

#endif /* WSGI_WIRE_H */
