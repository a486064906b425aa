// WebSocket messages between this daemon and an ASGI WebSocket on its event loop, once the connection
// is upgraded (native/addon/py/asgi_ws_records.h says the same): a batch of records, each
//
//   u8 kind, u32 length (big-endian), length bytes
//
// TEXT (UTF-8) and BINARY both ways; CLOSE (u16 code, UTF-8 reason): from the daemon, how the
// WebSocket ended for the client; from the application, websocket.close. Not on the wire: the daemon
// frames them with ws's Sender and unframes the client's with its Receiver (tunnel.ts).

export const RecordKind = {
  TEXT: 1,
  BINARY: 2,
  CLOSE: 3,
} as const

const HEADER = 5
/** A batch at least this large gets an ArrayBuffer of its own, which the bridge can free at once. */
const OWN_BUFFER_MIN = 16 * 1024

export interface MessageRecord {
  kind: number
  data: Buffer
}

/** One buffer holding `records` in order. */
export function encodeRecords(records: readonly MessageRecord[]): Buffer {
  let size = 0
  for (const r of records) size += HEADER + r.data.length
  const out = size >= OWN_BUFFER_MIN ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size)
  let at = 0
  for (const r of records) {
    out[at] = r.kind
    out.writeUInt32BE(r.data.length, at + 1)
    r.data.copy(out, at + HEADER)
    at += HEADER + r.data.length
  }
  return out
}

/** A record's header alone: a large message goes to the bridge as its header then its own bytes, not
 *  copied into a batch first. */
export function recordHeader(kind: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER)
  h[0] = kind
  h.writeUInt32BE(length, 1)
  return h
}

/** A CLOSE record's payload: the code, then the reason. */
export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const why = typeof reason === 'string' ? Buffer.from(reason) : reason
  const out = Buffer.allocUnsafe(2 + why.length)
  out.writeUInt16BE(code, 0)
  why.copy(out, 2)
  return out
}

/** Calls `fn` for each record of `batch` (views into it). Throws on a malformed batch (a bug). */
export function forEachRecord(batch: Buffer, fn: (kind: number, payload: Buffer) => void): void {
  let at = 0
  while (at < batch.length) {
    if (batch.length - at < HEADER) throw new Error(`WebSocket record cut short at ${at} of ${batch.length}`)
    const kind = batch[at]
    const n = batch.readUInt32BE(at + 1)
    if (batch.length - at - HEADER < n) throw new Error(`WebSocket record of ${n} bytes cut short`)
    fn(kind, batch.subarray(at + HEADER, at + HEADER + n))
    at += HEADER + n
  }
}
