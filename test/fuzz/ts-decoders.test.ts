// Issue 7, bad wire data: property-based fuzzing of the TypeScript protocol decoders (src/protocol), the
// daemon's side of the wire. Seeded (FUZZ_SEED replays a run; the seed is printed) and bounded in time
// (FUZZ_TS_MS per property, default 2000). Properties:
// - every decoder, given random, truncated, extended or mutated payloads (lengths and counts set to
//   huge or off-by-one values), returns or throws a ProtocolError, nothing else, and quickly;
// - valid structures of random content survive encode then decode unchanged;
// - the FrameReader, on both sides of the wire, given streams of valid frames, garbage and oversized
//   headers cut at random points, delivers only allowed frames or throws a ProtocolError, and holds
//   no more than the frame it is reading: a header announcing 8 MiB costs what was sent, not 8 MiB.
import t from 'tap'
import {
  decodeAuth,
  decodeAuthResult,
  decodeVarLookup,
  decodeVarValue,
  encodeAuth,
  encodeAuthPayload,
  encodeAuthResult,
  encodeVarLookup,
  encodeVarValue,
  hookUri,
  readAuthFixed,
} from '../../src/protocol/auth-frames'
import { FrameReader } from '../../src/protocol/frame-reader'
import {
  decodeEnd,
  decodeError,
  decodeFile,
  decodeHead,
  decodeRequest,
  encodeBody,
  encodeEnd,
  encodeError,
  encodeFile,
  encodeFrame,
  encodeHead,
  encodeHeadPayload,
  encodeRequest,
  encodeRequestPayload,
  encodeResponseBody,
  findRequestVar,
  readRequestFixed,
} from '../../src/protocol/frames'
import { isProtocolError } from '../../src/protocol/protocol-error'
import { FrameType, HEADER_SIZE, Limit, requestSideBounds, responseSideBounds } from '../../src/protocol/wire'
import { prng } from '../helpers/prng'

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9)
const BUDGET = Number(process.env.FUZZ_TS_MS ?? 2000)

const rnd = prng(SEED)
const int = (n: number): number => Math.floor(rnd() * n)
const pick = <T>(a: readonly T[]): T => a[int(a.length)]
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)))
const text = (n: number): string => bytes(n).toString('latin1')

t.comment(`FUZZ_SEED=${SEED}`)

/** Payload mutations that aim at the length and count fields: what a careless or hostile peer sends. */
function mutate(p: Buffer): Buffer {
  const b = Buffer.from(p)
  switch (int(7)) {
    case 0:
      return b.subarray(0, int(b.length + 1)) // truncated
    case 1:
      return Buffer.concat([b, bytes(1 + int(16))]) // trailing bytes
    case 2: {
      if (b.length) for (let i = 0, n = 1 + int(4); i < n; i++) b[int(b.length)] = int(256)
      return b
    }
    case 3: {
      // a u32 field (length or count) set to an extreme or off-by-one value
      if (b.length >= 4) {
        const at = int(b.length - 3)
        const v = b.readUInt32BE(at)
        b.writeUInt32BE(pick([0xffffffff, 0x7fffffff, 0x80000000, (v + 1) >>> 0, Math.max(0, v - 1), b.length, b.length - at]) >>> 0, at)
      }
      return b
    }
    case 4:
      return bytes(int(64))
    case 5:
      return Buffer.concat([b.subarray(0, int(b.length + 1)), bytes(int(32)), b.subarray(int(b.length + 1))])
    default:
      return b
  }
}

const vars = (): Array<[string, string]> => Array.from({ length: int(12) }, () => [text(int(30)), text(int(200))])

interface Decoder {
  name: string
  valid: () => Buffer
  decode: (p: Buffer) => unknown
  /** Lookups for log lines: never throw at all. */
  total?: boolean
}

const DECODERS: Decoder[] = [
  { name: 'readRequestFixed', valid: () => encodeRequestPayload({ bodyFollows: rnd() < 0.5, ssl: rnd() < 0.5, retryable: rnd() < 0.5, vars: vars() }), decode: readRequestFixed },
  { name: 'decodeRequest', valid: () => encodeRequestPayload({ bodyFollows: rnd() < 0.5, vars: vars() }), decode: decodeRequest },
  { name: 'findRequestVar', valid: () => encodeRequestPayload({ bodyFollows: false, vars: [...vars(), ['REQUEST_URI', '/x']] }), decode: (p) => findRequestVar(p, 'REQUEST_URI'), total: true },
  { name: 'decodeHead', valid: () => encodeHeadPayload(100 + int(900), text(int(40)), vars()), decode: decodeHead },
  { name: 'decodeEnd', valid: () => encodeEnd(int(2)).subarray(HEADER_SIZE), decode: decodeEnd },
  { name: 'decodeFile', valid: () => encodeFile(int(1e9), int(1e9)).subarray(HEADER_SIZE), decode: decodeFile },
  { name: 'decodeError', valid: () => encodeError(400 + int(200), text(int(300))).subarray(HEADER_SIZE), decode: decodeError },
  { name: 'readAuthFixed', valid: () => authPayload(), decode: readAuthFixed },
  { name: 'decodeAuth', valid: () => authPayload(), decode: decodeAuth },
  { name: 'hookUri', valid: () => authPayload(), decode: hookUri, total: true },
  { name: 'decodeAuthResult', valid: () => encodeAuthResult(int(4), Array.from({ length: int(6) }, () => text(int(40)))).subarray(HEADER_SIZE), decode: decodeAuthResult },
  { name: 'decodeVarLookup', valid: () => encodeVarLookup(text(1 + int(100))).subarray(HEADER_SIZE), decode: decodeVarLookup },
  { name: 'decodeVarValue', valid: () => encodeVarValue(rnd() < 0.2 ? null : text(int(300))).subarray(HEADER_SIZE), decode: decodeVarValue },
]

function authPayload(): Buffer {
  return encodeAuthPayload({ hook: 1 + int(4), ssl: rnd() < 0.5, lookup: rnd() < 0.5, script: text(int(40)), applicationGroup: text(int(10)), arg1: text(int(20)), arg2: text(int(20)), vars: vars() })
}

t.test('decoders: only a value or a ProtocolError, and quickly, whatever the payload', async (t) => {
  for (const d of DECODERS) {
    const deadline = Date.now() + BUDGET / 4
    let cases = 0
    let rejected = 0
    let slowest = 0
    let wrong: string | null = null
    while (Date.now() < deadline && wrong === null) {
      const p = rnd() < 0.9 ? mutate(d.valid()) : d.valid()
      const began = performance.now()
      try {
        d.decode(p)
      } catch (e) {
        rejected++
        if (d.total || !isProtocolError(e)) wrong = `${(e as Error).stack ?? String(e)} for ${p.toString('hex').slice(0, 200)}`
      }
      slowest = Math.max(slowest, performance.now() - began)
      cases++
    }
    t.equal(wrong, null, `${d.name}: ${cases} payloads, ${rejected} rejected, slowest ${slowest.toFixed(2)} ms`)
    // Payloads are at most a few KiB: a decoder that is linear takes microseconds. The bound catches a
    // pathological (super-linear) case, not a slow machine: wall-clock time here includes being
    // descheduled and garbage collections on a 2-core machine shared with Apache tests (109 ms seen).
    t.ok(slowest < 1000, `${d.name}: no payload takes long (${slowest.toFixed(2)} ms)`)
  }
})

t.test('encode then decode gives back what was encoded', async (t) => {
  const deadline = Date.now() + BUDGET
  let cases = 0
  while (Date.now() < deadline) {
    cases++
    const v = vars()
    const r = decodeRequest(encodeRequestPayload({ bodyFollows: true, ssl: true, requestStartUs: 1_700_000_000_000_000 + int(1e6), vars: v }))
    if (JSON.stringify(r.vars) !== JSON.stringify(v)) t.fail('REQUEST variables differ')
    const status = 100 + int(900)
    const line = text(int(50))
    const h = decodeHead(encodeHeadPayload(status, line, v))
    if (h.status !== status || h.statusLine !== line || JSON.stringify(h.headers) !== JSON.stringify(v)) t.fail('HEAD differs')
    const values = Array.from({ length: int(5) }, () => text(int(30)))
    const ar = decodeAuthResult(encodeAuthResult(1, values).subarray(HEADER_SIZE))
    if (JSON.stringify(ar.values) !== JSON.stringify(values)) t.fail('AUTH_RESULT differs')
    const a = decodeAuth(encodeAuth({ hook: 2, script: '/s', applicationGroup: '', arg1: line, arg2: 'pw', vars: v }).subarray(HEADER_SIZE))
    if (a.arg1 !== line || JSON.stringify(a.vars) !== JSON.stringify(v)) t.fail('AUTH differs')
    const value = bytes(int(100))
    if (!decodeVarValue(encodeVarValue(value).subarray(HEADER_SIZE))?.equals(value)) t.fail('VAR_VALUE differs')
  }
  t.ok(cases > 100, `${cases} round trips`)
})

function stream(side: 'request' | 'response'): Buffer {
  const valid =
    side === 'request'
      ? [() => encodeRequest({ bodyFollows: rnd() < 0.5, vars: vars() }), () => encodeBody(bytes(1 + int(3000))), () => encodeFrame(FrameType.BODY_END), () => encodeAuth({ hook: 1, script: '/s', applicationGroup: '', arg1: 'h', vars: vars() }), () => encodeVarValue(text(int(30)))]
      : [() => encodeHead(200, '200 OK', vars()), () => encodeResponseBody(bytes(1 + int(3000))), () => encodeEnd(), () => encodeError(500, 'x'), () => encodeFrame(FrameType.GOAWAY), () => encodeVarLookup('HTTPS'), () => encodeAuthResult(1, ['u'])]
  const parts: Buffer[] = []
  for (let i = 0, n = 1 + int(8); i < n; i++) {
    const kind = int(6)
    if (kind === 0) parts.push(bytes(int(40)))
    else if (kind === 1) {
      // a header announcing far more than its type allows, or than will ever come
      const h = Buffer.alloc(HEADER_SIZE)
      h[0] = 1
      h[1] = pick(side === 'request' ? [1, 2, 3, 4, 5] : [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18])
      h.writeUInt32BE(pick([0xffffffff, Limit.REQUEST + 1, Limit.BODY + 1, 1 << 30, int(1 << 20)]) >>> 0, 4)
      parts.push(h, bytes(int(64)))
    } else {
      const f = pick(valid)()
      parts.push(kind === 2 ? mutate(f) : kind === 3 ? f.subarray(0, int(f.length)) : f)
    }
  }
  return Buffer.concat(parts)
}

for (const side of ['request', 'response'] as const) {
  t.test(`FrameReader (${side} side): only allowed frames or a ProtocolError, memory bounded by the frame`, async (t) => {
    const bounds = side === 'request' ? requestSideBounds() : responseSideBounds(Limit.HEAD_DEFAULT)
    const types = [...bounds.keys()]
    const maxPayload = Math.max(...[...bounds.values()].map((b) => b.max))
    const deadline = Date.now() + BUDGET
    let cases = 0
    let frames = 0
    let rejected = 0
    let maxHeld = 0
    while (Date.now() < deadline) {
      cases++
      const input = stream(side)
      let allowed = new Set(types)
      const reader: FrameReader = new FrameReader(bounds, (type, _flags, payload) => {
        frames++
        if (!allowed.has(type)) t.fail(`type 0x${type.toString(16)} delivered while not allowed`)
        const b = bounds.get(type)
        if (!b || payload.length < b.min || payload.length > b.max) t.fail(`type 0x${type.toString(16)} with ${payload.length} bytes delivered`)
        if (rnd() < 0.3) {
          allowed = new Set(types.filter(() => rnd() < 0.5))
          reader.setAllowed(allowed)
        }
        if (rnd() < 0.05) reader.pause()
      })
      try {
        for (let off = 0; off < input.length; ) {
          const step = 1 + int(rnd() < 0.5 ? 16 : 4096)
          reader.push(input.subarray(off, off + step))
          off += step
          maxHeld = Math.max(maxHeld, reader.buffered)
          if (reader.buffered > input.length) t.fail(`holds ${reader.buffered} bytes of a ${input.length}-byte input`)
          if (reader.isPaused && rnd() < 0.5) reader.resume()
        }
        reader.resume()
      } catch (e) {
        rejected++
        if (!isProtocolError(e)) {
          t.fail(`not a ProtocolError: ${(e as Error).stack}`)
          break
        }
      }
    }
    t.ok(cases > 100, `${cases} streams, ${frames} frames delivered, ${rejected} rejected, at most ${maxHeld} bytes held (largest payload allowed ${maxPayload})`)
  })
}

t.test('a header announcing the largest frame costs what was sent, and an oversized one is refused from its header', async (t) => {
  const reader = new FrameReader(requestSideBounds(), () => {})
  const h = Buffer.alloc(HEADER_SIZE)
  h[0] = 1
  h[1] = FrameType.REQUEST
  h.writeUInt32BE(Limit.REQUEST, 4)
  reader.push(h)
  const before = process.memoryUsage().arrayBuffers
  for (let i = 0; i < 10000; i++) reader.push(Buffer.from([i & 0xff]))
  t.ok(reader.buffered >= 10000 && reader.buffered <= HEADER_SIZE + 10000, `holds what was sent (${reader.buffered} bytes), no more`)
  t.ok(process.memoryUsage().arrayBuffers - before < 4 * 1024 * 1024, 'nothing near 8 MiB was allocated up front')
  const over = Buffer.from(h)
  over.writeUInt32BE(Limit.REQUEST + 1, 4)
  const fresh = new FrameReader(requestSideBounds(), () => {})
  let kind = ''
  try {
    fresh.push(over)
  } catch (e) {
    kind = isProtocolError(e) ? e.kind : String(e)
  }
  t.equal(kind, 'too-large', 'one byte over the limit: refused on the header alone')
  t.equal(fresh.buffered <= HEADER_SIZE, true, 'holding at most the header')
})
