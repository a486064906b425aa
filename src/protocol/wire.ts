// Constants of the wire protocol between an Apache child and a daemon process. docs/protocol.md is the
// specification; these values mirror native/common/wsgi_wire.h one for one (keep the two in step).

export const WIRE_VERSION = 1
export const HEADER_SIZE = 8

/** Frame types. Apache child -> daemon: 0x01..0x05; daemon -> Apache child: 0x11..0x18. */
export const FrameType = {
  REQUEST: 0x01,
  BODY: 0x02,
  BODY_END: 0x03,
  AUTH: 0x04,
  VAR_VALUE: 0x05,
  HEAD: 0x11,
  RBODY: 0x12,
  END: 0x13,
  FILE: 0x14,
  ERROR: 0x15,
  GOAWAY: 0x16,
  AUTH_RESULT: 0x17,
  VAR_LOOKUP: 0x18,
} as const
export type FrameTypeName = keyof typeof FrameType

/** REQUEST payload flags. */
export const REQUEST_BODY_FOLLOWS = 0x00000001
/** The client connection is SSL: the environ gets mod_ssl.is_https/var_lookup, the child answers VAR_LOOKUP. */
export const REQUEST_SSL = 0x00000002
/** The child can send this request again (its body, if any, came whole with it) and another daemon
 *  process of the group may be free: a daemon whose threads are all busy answers GOAWAY instead of
 *  queueing it, and the child sends it on a fresh connection. */
export const REQUEST_RETRYABLE = 0x00000004
/** The body is streamed after the head, so the child cannot send the request again: a daemon that is
 *  draining (stopping gracefully) runs it rather than answering GOAWAY. */
export const REQUEST_STREAMED = 0x00000008
/** A WebSocket upgrade the child can carry (HTTP/1.1 GET, Upgrade: websocket, version 13, no body): an
 *  ASGI application gets a websocket scope, and its accept switches the connection to raw bytes. */
export const REQUEST_UPGRADE = 0x00000010

/** HEAD frame flags. */
/** From an ASGI application: the child may leave out PATH_TRANSLATED for the script's later requests. */
export const HEAD_ASGI = 0x0001
/** The WebSocket is accepted (status 101, to a REQUEST with UPGRADE only): after this frame the
 *  connection carries the client's raw bytes both ways until either side closes. */
export const HEAD_UPGRADE = 0x0002

/** ERROR frame header flag: the daemon logged the failure's cause, naming the request; the child logs its
 *  own line at info (one line at error per failure). */
export const ERROR_LOGGED = 0x0001

/** AUTH payload flags. */
export const AUTH_SSL = 0x00000001
export const AUTH_LOOKUP = 0x00000002
export const AUTH_RELOADING = 0x00000004

/** AUTH hooks: the function of the script the daemon calls. */
export const AuthHook = {
  ALLOW_ACCESS: 1,
  CHECK_PASSWORD: 2,
  GET_REALM_HASH: 3,
  GROUPS_FOR_USER: 4,
} as const

/** AUTH_RESULT outcomes. */
export const AuthOutcome = {
  DENIED: 0,
  GRANTED: 1,
  NOT_FOUND: 2,
  ERROR: 3,
} as const

/** Fixed part of an AUTH payload: flags (4), hook (4), request_start (8). */
export const AUTH_FIXED_SIZE = 16
/** Longest variable name a VAR_LOOKUP may carry. */
export const VAR_NAME_MAX = 4096

/** What an output event's frames carry, as the addon says with each event (WSGI_OUT_* of wsgi_wire.h;
 *  not on the wire): the daemon never reads frame bytes to find out. */
export const OutputInfo = {
  /** The last frame ends the response: END, ERROR or AUTH_RESULT. */
  ENDS: 0x01,
  /** An ERROR, or an END whose outcome is not COMPLETE. */
  FAILED: 0x02,
  /** The last frame is GOAWAY: the request was not run. */
  GOAWAY: 0x04,
  /** A VAR_LOOKUP: not part of the response. */
  LOOKUP: 0x08,
  /** Holds a response frame (anything but VAR_LOOKUP). */
  STARTS: 0x10,
  /** Not from the frames (the addon adds it): the request ran a script that changed on disk with the
   *  code already loaded, since its body could not be sent again; the process is to be replaced. */
  RELOAD: 0x20,
  /** The last frame is a HEAD with HEAD_UPGRADE: from now on the connection is a WebSocket. */
  UPGRADE: 0x40,
  /** Not frames: WebSocket message records for the daemon to frame (src/daemon/websocket/records.ts). */
  MESSAGES: 0x80,
} as const
/** Bits 16-25 of an output event's `info`: the HTTP status of the first HEAD or ERROR frame (0: none). */
export const OUTPUT_STATUS_SHIFT = 16

/** END outcomes. */
export const END_COMPLETE = 0
export const END_INCOMPLETE = 1

/** FILE count meaning "to the end of the file" (u64 all ones). */
export const FILE_TO_EOF = 0xffffffffffffffffn

/** Fixed part of a REQUEST payload: flags (4), request_start (8), count (4). */
export const REQUEST_FIXED_SIZE = 16

/** Payload limits in bytes (HEAD's is the group's header-buffer-size, known at run time). */
export const Limit = {
  REQUEST: 8 * 1024 * 1024,
  BODY: 1024 * 1024,
  RBODY: 4 * 1024 * 1024,
  END: 4,
  FILE: 16,
  ERROR: 64 * 1024,
  HEAD_DEFAULT: 32768,
  AUTH: 8 * 1024 * 1024,
  AUTH_RESULT: 64 * 1024,
  VAR_LOOKUP: 4 + 4096,
  VAR_VALUE: 8 + 1024 * 1024,
} as const

/** Bounds on one frame type's payload length, inclusive. */
export interface LengthBounds {
  min: number
  max: number
}

/** What the daemon accepts from an Apache child. */
export function requestSideBounds(): Map<number, LengthBounds> {
  return new Map<number, LengthBounds>([
    [FrameType.REQUEST, { min: REQUEST_FIXED_SIZE, max: Limit.REQUEST }],
    [FrameType.BODY, { min: 1, max: Limit.BODY }],
    [FrameType.BODY_END, { min: 0, max: 0 }],
    // fixed part + four strings + count at least
    [FrameType.AUTH, { min: AUTH_FIXED_SIZE + 20, max: Limit.AUTH }],
    // present (4) + a string (4) at least
    [FrameType.VAR_VALUE, { min: 8, max: Limit.VAR_VALUE }],
  ])
}

/** What an Apache child accepts from a daemon (used by tests and tools that play the child). */
export function responseSideBounds(headerBufferSize: number = Limit.HEAD_DEFAULT): Map<number, LengthBounds> {
  return new Map<number, LengthBounds>([
    // status (4) + a string (4) + count (4) at least
    [FrameType.HEAD, { min: 12, max: headerBufferSize }],
    [FrameType.RBODY, { min: 1, max: Limit.RBODY }],
    [FrameType.END, { min: Limit.END, max: Limit.END }],
    [FrameType.FILE, { min: Limit.FILE, max: Limit.FILE }],
    // status (4) + a string (4) at least
    [FrameType.ERROR, { min: 8, max: Limit.ERROR }],
    [FrameType.GOAWAY, { min: 0, max: 0 }],
    // outcome (4) + count (4) at least
    [FrameType.AUTH_RESULT, { min: 8, max: Limit.AUTH_RESULT }],
    // a non-empty name
    [FrameType.VAR_LOOKUP, { min: 5, max: Limit.VAR_LOOKUP }],
  ])
}

/** Name of a frame type for log lines ("0x7f" for unknown ones). */
export function frameTypeName(type: number): string {
  for (const [name, value] of Object.entries(FrameType)) if (value === type) return name
  return `0x${type.toString(16).padStart(2, '0')}`
}
