// Encoding and decoding of frames and payloads (docs/protocol.md). Pure functions over Buffers, no I/O.
// Integers are big-endian and written field by field. Names and values are bytes: JS strings given to an
// encoder are written as ISO-8859-1 (latin1), so every byte 0..255 round-trips.
import { ProtocolError } from './protocol-error'
import {
  ERROR_LOGGED,
  END_COMPLETE,
  FrameType,
  HEADER_SIZE,
  OutputInfo,
  REQUEST_BODY_FOLLOWS,
  REQUEST_FIXED_SIZE,
  REQUEST_RETRYABLE,
  REQUEST_SSL,
  REQUEST_STREAMED,
  REQUEST_UPGRADE,
  WIRE_VERSION,
} from './wire'

export type Bytes = Buffer | string

export interface FrameHeader {
  version: number
  type: number
  flags: number
  length: number
}

const U32 = 0x1_0000_0000

function byteLength(b: Bytes): number {
  return typeof b === 'string' ? Buffer.byteLength(b, 'latin1') : b.length
}

function putBytes(out: Buffer, off: number, b: Bytes): number {
  return off + (typeof b === 'string' ? out.write(b, off, 'latin1') : b.copy(out, off))
}

/** Writes `u32 length` then the bytes; returns the offset after them. */
function putString(out: Buffer, off: number, b: Bytes): number {
  const n = byteLength(b)
  out.writeUInt32BE(n, off)
  return putBytes(out, off + 4, b)
}

function putU64(out: Buffer, off: number, v: number | bigint): void {
  const big = BigInt(v)
  out.writeUInt32BE(Number(big >> 32n) >>> 0, off)
  out.writeUInt32BE(Number(big & 0xffffffffn) >>> 0, off + 4)
}

/** Writes an 8-byte frame header at `off`. */
export function writeHeader(out: Buffer, off: number, type: number, length: number, flags = 0): void {
  out[off] = WIRE_VERSION
  out[off + 1] = type
  out.writeUInt16BE(flags, off + 2)
  out.writeUInt32BE(length, off + 4)
}

/** Reads an 8-byte header at `off`; the caller checks version, type and length. */
export function readHeader(buf: Buffer, off = 0): FrameHeader {
  return {
    version: buf[off],
    type: buf[off + 1],
    flags: buf.readUInt16BE(off + 2),
    length: buf.readUInt32BE(off + 4),
  }
}

/** One frame (header and payload) in a single Buffer. */
export function encodeFrame(type: number, payload?: Bytes, flags = 0): Buffer {
  const n = payload === undefined ? 0 : byteLength(payload)
  const out = Buffer.allocUnsafe(HEADER_SIZE + n)
  writeHeader(out, 0, type, n, flags)
  if (payload !== undefined) putBytes(out, HEADER_SIZE, payload)
  return out
}

/** A bounded cursor over a payload: every read checks what is left and throws 'malformed' past the end. */
export class PayloadReader {
  private off = 0
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.off
  }

  private need(n: number, field: string): void {
    if (this.buf.length - this.off < n)
      throw new ProtocolError('malformed', `${this.what} payload truncated reading ${field}`)
  }

  u32(field: string): number {
    this.need(4, field)
    const v = this.buf.readUInt32BE(this.off)
    this.off += 4
    return v
  }

  /** A u64 as a JS number (exact below 2^53, which covers microsecond timestamps for centuries). */
  u64(field: string): number {
    this.need(8, field)
    const v = this.buf.readUInt32BE(this.off) * U32 + this.buf.readUInt32BE(this.off + 4)
    this.off += 8
    return v
  }

  u64big(field: string): bigint {
    this.need(8, field)
    const v = this.buf.readBigUInt64BE(this.off)
    this.off += 8
    return v
  }

  /** A string: u32 length then bytes; returns a view into the payload (no copy). */
  bytes(field: string): Buffer {
    const n = this.u32(`${field} length`)
    this.need(n, field)
    const v = this.buf.subarray(this.off, this.off + n)
    this.off += n
    return v
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.off !== this.buf.length)
      throw new ProtocolError('malformed', `${this.what} payload has ${this.buf.length - this.off} trailing bytes`)
  }
}

// ---------------------------------------------------------------------------------------------------
// REQUEST

export interface RequestFixed {
  /** BODY_FOLLOWS: BODY frames and a BODY_END follow. */
  bodyFollows: boolean
  /** SSL: the client connection is SSL; the child answers VAR_LOOKUP for this request. */
  ssl: boolean
  /** RETRYABLE: a daemon that cannot start it at once may answer GOAWAY (the child sends it again). */
  retryable: boolean
  /** STREAMED: its body is streamed and it cannot be sent again; a draining daemon runs it. */
  streamed: boolean
  /** UPGRADE: a WebSocket upgrade the child can carry (an ASGI application gets a websocket scope). */
  upgrade: boolean
  /** When Apache read the request line, microseconds since the epoch. */
  requestStartUs: number
  /** Number of variables that follow. */
  count: number
}

/**
 * Reads only the 16-byte fixed part of a REQUEST payload: all the daemon needs (the addon parses the
 * variables natively). Reserved flag bits must be 0; a count that cannot fit the payload is refused here.
 */
export function readRequestFixed(payload: Buffer): RequestFixed {
  if (payload.length < REQUEST_FIXED_SIZE)
    throw new ProtocolError('malformed', `REQUEST payload of ${payload.length} bytes is shorter than its fixed part`)
  const flags = payload.readUInt32BE(0)
  if ((flags & ~(REQUEST_BODY_FOLLOWS | REQUEST_SSL | REQUEST_RETRYABLE | REQUEST_STREAMED | REQUEST_UPGRADE)) !== 0)
    throw new ProtocolError('malformed', `REQUEST has reserved flag bits set (0x${(flags >>> 0).toString(16)})`)
  const requestStartUs = payload.readUInt32BE(4) * U32 + payload.readUInt32BE(8)
  const count = payload.readUInt32BE(12)
  // Each pair takes at least 8 bytes (two empty strings).
  if (count > (payload.length - REQUEST_FIXED_SIZE) / 8)
    throw new ProtocolError('malformed', `REQUEST declares ${count} variables, more than its payload can hold`)
  return {
    bodyFollows: (flags & REQUEST_BODY_FOLLOWS) !== 0,
    ssl: (flags & REQUEST_SSL) !== 0,
    retryable: (flags & REQUEST_RETRYABLE) !== 0,
    streamed: (flags & REQUEST_STREAMED) !== 0,
    upgrade: (flags & REQUEST_UPGRADE) !== 0,
    requestStartUs,
    count,
  }
}

export interface DecodedRequest extends RequestFixed {
  /** The variables as latin1 strings, in order. */
  vars: Array<[string, string]>
}

/** Full decode of a REQUEST payload (tests, tools, and the daemon's error paths). */
export function decodeRequest(payload: Buffer): DecodedRequest {
  const fixed = readRequestFixed(payload)
  const r = new PayloadReader(payload.subarray(REQUEST_FIXED_SIZE), 'REQUEST')
  const vars: Array<[string, string]> = []
  for (let i = 0; i < fixed.count; i++) {
    const name = r.bytes('variable name').toString('latin1')
    const value = r.bytes('variable value').toString('latin1')
    vars.push([name, value])
  }
  r.end()
  return { ...fixed, vars }
}

/** Looks up one variable by name without building the whole list; undefined when absent or malformed. */
export function findRequestVar(payload: Buffer, name: string): string | undefined {
  try {
    const { count } = readRequestFixed(payload)
    const r = new PayloadReader(payload.subarray(REQUEST_FIXED_SIZE), 'REQUEST')
    const want = Buffer.from(name, 'latin1')
    for (let i = 0; i < count; i++) {
      const n = r.bytes('variable name')
      const v = r.bytes('variable value')
      if (n.equals(want)) return v.toString('latin1')
    }
  } catch {
    /* not there */
  }
  return undefined
}

export interface RequestInit {
  bodyFollows: boolean
  /** The REQUEST_SSL flag. */
  ssl?: boolean
  /** The REQUEST_RETRYABLE flag. */
  retryable?: boolean
  /** The REQUEST_STREAMED flag. */
  streamed?: boolean
  /** The REQUEST_UPGRADE flag. */
  upgrade?: boolean
  /** Microseconds since the epoch; default now. */
  requestStartUs?: number
  vars: Iterable<readonly [Bytes, Bytes]>
}

/** A REQUEST payload (without frame header). */
export function encodeRequestPayload(init: RequestInit): Buffer {
  const vars = [...init.vars]
  let size = REQUEST_FIXED_SIZE
  for (const [n, v] of vars) size += 8 + byteLength(n) + byteLength(v)
  const out = Buffer.allocUnsafe(size)
  out.writeUInt32BE(
    (init.bodyFollows ? REQUEST_BODY_FOLLOWS : 0) | (init.ssl === true ? REQUEST_SSL : 0) | (init.retryable === true ? REQUEST_RETRYABLE : 0) |
      (init.streamed === true ? REQUEST_STREAMED : 0) | (init.upgrade === true ? REQUEST_UPGRADE : 0),
    0,
  )
  putU64(out, 4, Math.floor(init.requestStartUs ?? Date.now() * 1000))
  out.writeUInt32BE(vars.length, 12)
  let off = REQUEST_FIXED_SIZE
  for (const [n, v] of vars) {
    off = putString(out, off, n)
    off = putString(out, off, v)
  }
  return out
}

export function encodeRequest(init: RequestInit): Buffer {
  return encodeFrame(FrameType.REQUEST, encodeRequestPayload(init))
}

/** A request BODY frame (child -> daemon). */
export function encodeBody(data: Bytes): Buffer {
  return encodeFrame(FrameType.BODY, data)
}

// ---------------------------------------------------------------------------------------------------
// HEAD

export interface Head {
  status: number
  statusLine: string
  headers: Array<[string, string]>
}

export function encodeHeadPayload(status: number, statusLine: Bytes, headers: Iterable<readonly [Bytes, Bytes]>): Buffer {
  const list = [...headers]
  let size = 4 + 4 + byteLength(statusLine) + 4
  for (const [n, v] of list) size += 8 + byteLength(n) + byteLength(v)
  const out = Buffer.allocUnsafe(size)
  out.writeUInt32BE(status, 0)
  let off = putString(out, 4, statusLine)
  out.writeUInt32BE(list.length, off)
  off += 4
  for (const [n, v] of list) {
    off = putString(out, off, n)
    off = putString(out, off, v)
  }
  return out
}

export function encodeHead(status: number, statusLine: Bytes, headers: Iterable<readonly [Bytes, Bytes]> = []): Buffer {
  return encodeFrame(FrameType.HEAD, encodeHeadPayload(status, statusLine, headers))
}

export function decodeHead(payload: Buffer): Head {
  const r = new PayloadReader(payload, 'HEAD')
  const status = r.u32('status')
  if (status < 100 || status > 999) throw new ProtocolError('malformed', `HEAD status ${status} is outside 100-999`)
  const statusLine = r.bytes('status line').toString('latin1')
  const count = r.u32('header count')
  if (count > r.remaining / 8) throw new ProtocolError('malformed', `HEAD declares ${count} headers, more than its payload can hold`)
  const headers: Array<[string, string]> = []
  for (let i = 0; i < count; i++) headers.push([r.bytes('header name').toString('latin1'), r.bytes('header value').toString('latin1')])
  r.end()
  return { status, statusLine, headers }
}

// ---------------------------------------------------------------------------------------------------
// Response BODY, END, FILE, ERROR, GOAWAY

export function encodeResponseBody(data: Bytes): Buffer {
  return encodeFrame(FrameType.RBODY, data)
}

export function encodeEnd(outcome = END_COMPLETE): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + 4)
  writeHeader(out, 0, FrameType.END, 4)
  out.writeUInt32BE(outcome, HEADER_SIZE)
  return out
}

export function decodeEnd(payload: Buffer): number {
  const r = new PayloadReader(payload, 'END')
  const outcome = r.u32('outcome')
  r.end()
  if (outcome > 1) throw new ProtocolError('malformed', `END outcome ${outcome} is not 0 or 1`)
  return outcome
}

export interface FileRange {
  offset: bigint
  /** FILE_TO_EOF for "to the end of the file". */
  count: bigint
}

export function encodeFile(offset: number | bigint, count: number | bigint): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + 16)
  writeHeader(out, 0, FrameType.FILE, 16)
  putU64(out, HEADER_SIZE, offset)
  putU64(out, HEADER_SIZE + 8, count)
  return out
}

export function decodeFile(payload: Buffer): FileRange {
  const r = new PayloadReader(payload, 'FILE')
  const offset = r.u64big('offset')
  const count = r.u64big('count')
  r.end()
  return { offset, count }
}

export interface ErrorPayload {
  status: number
  message: string
}

/** An ERROR frame; `logged`: the daemon has logged the failure's cause (the ERROR_LOGGED flag). */
export function encodeError(status: number, message: Bytes, logged = false): Buffer {
  // The message is for a log line: keep the frame within its limit whatever the caller passes.
  let msg = typeof message === 'string' ? Buffer.from(message, 'latin1') : message
  if (msg.length > 60 * 1024) msg = msg.subarray(0, 60 * 1024)
  const out = Buffer.allocUnsafe(HEADER_SIZE + 8 + msg.length)
  writeHeader(out, 0, FrameType.ERROR, 8 + msg.length, logged ? ERROR_LOGGED : 0)
  out.writeUInt32BE(status, HEADER_SIZE)
  putString(out, HEADER_SIZE + 4, msg)
  return out
}

export function decodeError(payload: Buffer): ErrorPayload {
  const r = new PayloadReader(payload, 'ERROR')
  const status = r.u32('status')
  const message = r.bytes('message').toString('latin1')
  r.end()
  return { status, message }
}

/** The GOAWAY frame: constant, shared. Never mutate. */
export const GOAWAY_FRAME: Buffer = encodeFrame(FrameType.GOAWAY)
/** The request BODY_END frame. */
export const BODY_END_FRAME: Buffer = encodeFrame(FrameType.BODY_END)

/**
 * Walks a buffer holding whole frames and returns the type of the last one, or -1 when the buffer is
 * not exactly a sequence of whole frames. For tools and tests that play a peer.
 */
export function lastFrameType(buf: Buffer): number {
  let off = 0
  let type = -1
  while (off + HEADER_SIZE <= buf.length) {
    type = buf[off + 1]
    off += HEADER_SIZE + buf.readUInt32BE(off + 4)
  }
  return off === buf.length ? type : -1
}

/**
 * The OutputInfo summary of a buffer of whole daemon -> child frames: the same as the addon computes for
 * each output event (wsgi_output_info in wsgi_wire.h). The daemon takes the addon's; this twin serves test
 * doubles of the bridge.
 */
export function outputInfo(buf: Buffer): number {
  let info = 0
  let last = -1
  let off = 0
  while (off + HEADER_SIZE <= buf.length) {
    const type = buf[off + 1]
    const len = buf.readUInt32BE(off + 4)
    if (len > buf.length - off - HEADER_SIZE) break
    info |= type === FrameType.VAR_LOOKUP ? OutputInfo.LOOKUP : OutputInfo.STARTS
    if (type === FrameType.ERROR || (type === FrameType.END && len === 4 && buf.readUInt32BE(off + HEADER_SIZE) !== END_COMPLETE))
      info |= OutputInfo.FAILED
    last = type
    off += HEADER_SIZE + len
  }
  if (last === FrameType.END || last === FrameType.ERROR || last === FrameType.AUTH_RESULT) info |= OutputInfo.ENDS
  else if (last === FrameType.GOAWAY) info = (info & ~OutputInfo.STARTS) | OutputInfo.GOAWAY
  return info
}

/** Offsets of every frame in a buffer of whole frames, as [type, start, end) triples. */
export function splitFrames(buf: Buffer): Array<{ type: number; start: number; end: number }> {
  const out: Array<{ type: number; start: number; end: number }> = []
  let off = 0
  while (off + HEADER_SIZE <= buf.length) {
    const end = off + HEADER_SIZE + buf.readUInt32BE(off + 4)
    if (end > buf.length) break
    out.push({ type: buf[off + 1], start: off, end })
    off = end
  }
  return out
}
