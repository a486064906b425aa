// A small, independent rendering of docs/protocol.md for the addon tests: REQUEST payloads in,
// response frames out. Deliberately separate from src/protocol so the tests check the addon against
// the specification, not against another implementation.
import { createHash } from 'node:crypto'

export const FRAME = {
  REQUEST: 0x01,
  BODY: 0x02,
  BODY_END: 0x03,
  HEAD: 0x11,
  RBODY: 0x12,
  END: 0x13,
  FILE: 0x14,
  ERROR: 0x15,
  GOAWAY: 0x16,
} as const

export type Vars = [string, string][]

function str(s: string): Buffer {
  const b = Buffer.from(s, 'latin1')
  const len = Buffer.alloc(4)
  len.writeUInt32BE(b.length)
  return Buffer.concat([len, b])
}

/** The payload of a REQUEST frame (flags, request_start, variables). */
export function buildRequest(vars: Vars, bodyFollows = false, requestStartUs = BigInt(Date.now()) * 1000n): Buffer {
  const fixed = Buffer.alloc(16)
  fixed.writeUInt32BE(bodyFollows ? 1 : 0, 0)
  fixed.writeBigUInt64BE(requestStartUs, 4)
  fixed.writeUInt32BE(vars.length, 12)
  return Buffer.concat([fixed, ...vars.flatMap(([n, v]) => [str(n), str(v)])])
}

export interface Frame {
  type: number
  flags: number
  payload: Buffer
}

/** Splits a buffer into complete frames; throws on anything else (version, truncation). */
export function parseFrames(buf: Buffer): Frame[] {
  const frames: Frame[] = []
  let off = 0
  while (off < buf.length) {
    if (buf.length - off < 8) throw new Error(`truncated frame header at ${off}`)
    const version = buf[off]
    if (version !== 1) throw new Error(`bad version ${version}`)
    const type = buf[off + 1]
    const flags = buf.readUInt16BE(off + 2)
    const length = buf.readUInt32BE(off + 4)
    if (buf.length - off - 8 < length) throw new Error(`truncated frame payload at ${off}`)
    frames.push({ type, flags, payload: buf.subarray(off + 8, off + 8 + length) })
    off += 8 + length
  }
  return frames
}

function readString(p: Buffer, off: number): [string, number] {
  const n = p.readUInt32BE(off)
  if (off + 4 + n > p.length) throw new Error('string past the end of the payload')
  return [p.subarray(off + 4, off + 4 + n).toString('latin1'), off + 4 + n]
}

export interface Head {
  status: number
  statusLine: string
  headers: [string, string][]
}

export function parseHead(p: Buffer): Head {
  const status = p.readUInt32BE(0)
  let [statusLine, off] = readString(p, 4)
  const count = p.readUInt32BE(off)
  off += 4
  const headers: [string, string][] = []
  for (let i = 0; i < count; i++) {
    let name: string, value: string
    ;[name, off] = readString(p, off)
    ;[value, off] = readString(p, off)
    headers.push([name, value])
  }
  if (off !== p.length) throw new Error('HEAD payload has trailing bytes')
  return { status, statusLine, headers }
}

export function parseError(p: Buffer): { status: number; message: string } {
  const [message, off] = readString(p, 4)
  if (off !== p.length) throw new Error('ERROR payload has trailing bytes')
  return { status: p.readUInt32BE(0), message }
}

/** Deterministic request bodies: numbered 64-byte lines, cut to `size` bytes. */
export function makeBody(size: number): Buffer {
  const line = (i: number) => `line ${String(i).padStart(8, '0')} `.padEnd(63, 'abcdefghij') + '\n'
  const lines: string[] = []
  for (let i = 0, n = 0; n < size; i++, n += 64) lines.push(line(i))
  return Buffer.from(lines.join('')).subarray(0, size)
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}
