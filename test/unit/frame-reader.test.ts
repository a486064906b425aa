// The incremental FrameReader: framing across arbitrary chunk boundaries, every rejection path, pausing,
// bounded memory, and a time-bounded fuzz (random, mutated and truncated input must only ever produce
// frames or a ProtocolError, never hang, never hold more than one frame's limit).
import t from 'tap'
import { FrameReader } from '../../src/protocol/frame-reader'
import { encodeBody, encodeFrame, encodeRequest, encodeEnd } from '../../src/protocol/frames'
import { ProtocolError, type ProtocolErrorKind } from '../../src/protocol/protocol-error'
import { FrameType, Limit, requestSideBounds, responseSideBounds } from '../../src/protocol/wire'
import { prng } from '../helpers/prng'

interface Got {
  type: number
  flags: number
  payload: Buffer
}

function collect(allowed?: number[]) {
  const frames: Got[] = []
  const reader = new FrameReader(requestSideBounds(), (type, flags, payload) => frames.push({ type, flags, payload: Buffer.from(payload) }), allowed)
  return { frames, reader }
}

function expectKind(tt: { ok(v: unknown, m: string): unknown; fail(m: string): unknown }, fn: () => void, kind: ProtocolErrorKind, what: string) {
  try {
    fn()
    tt.fail(`${what}: accepted`)
  } catch (e) {
    tt.ok(e instanceof ProtocolError && e.kind === kind, `${what}: ${(e as Error).message}`)
  }
}

const request = encodeRequest({ bodyFollows: true, requestStartUs: 1, vars: [['SCRIPT_FILENAME', '/x.wsgi'], ['A', 'b']] })
const body1 = encodeBody(Buffer.alloc(3000, 7))
const body2 = encodeBody('tail')
const end = encodeFrame(FrameType.BODY_END)
const stream = Buffer.concat([request, body1, body2, end])

t.test('whole frames in one chunk; payload of a whole frame is a view, not a copy', async (t) => {
  const seen: Buffer[] = []
  const reader = new FrameReader(requestSideBounds(), (_t, _f, p) => seen.push(p))
  reader.push(stream)
  t.equal(seen.length, 4)
  t.equal(seen[1].buffer, stream.buffer, 'BODY payload shares the chunk memory')
  t.equal(seen[3].length, 0)
  t.ok(reader.atBoundary)
  t.equal(reader.buffered, 0)
})

t.test('any split of the stream yields the same frames', async (t) => {
  const { frames: ref, reader: r0 } = collect()
  r0.push(stream)
  for (const step of [1, 2, 3, 7, 8, 9, 100, 1023]) {
    const { frames, reader } = collect()
    for (let i = 0; i < stream.length; i += step) reader.push(stream.subarray(i, i + step))
    t.same(frames, ref, `chunks of ${step}`)
    t.ok(reader.atBoundary)
  }
})

t.test('rejections', async (t) => {
  const bad = (mut: (b: Buffer) => void) => {
    const b = Buffer.from(body2)
    mut(b)
    return b
  }
  expectKind(t, () => collect().reader.push(bad((b) => (b[0] = 2))), 'version', 'version 2')
  expectKind(t, () => collect().reader.push(bad((b) => (b[0] = 0))), 'version', 'version 0')
  expectKind(t, () => collect().reader.push(bad((b) => (b[1] = 0x7f))), 'type', 'unknown type')
  expectKind(t, () => collect().reader.push(bad((b) => (b[1] = FrameType.HEAD))), 'type', 'a response type sent to the daemon')
  expectKind(t, () => collect([FrameType.REQUEST]).reader.push(body2), 'not-allowed', 'BODY while idle')
  expectKind(t, () => collect([]).reader.push(request), 'not-allowed', 'REQUEST while responding')
  expectKind(t, () => collect().reader.push(encodeFrame(FrameType.BODY)), 'too-small', 'empty BODY')
  expectKind(t, () => collect().reader.push(encodeFrame(FrameType.BODY_END, 'x')), 'too-large', 'BODY_END with payload')
  expectKind(t, () => collect().reader.push(encodeFrame(FrameType.REQUEST, Buffer.alloc(15))), 'too-small', 'REQUEST under its fixed part')
  // Oversized: rejected from the header alone, before any payload is held.
  const hdr = Buffer.from([1, FrameType.BODY, 0, 0, 0, 0x10, 0, 1]) // 1 MiB + 1
  expectKind(t, () => collect().reader.push(hdr), 'too-large', 'BODY over 1 MiB')
  const reqHdr = Buffer.alloc(8)
  reqHdr.writeUInt8(1, 0)
  reqHdr.writeUInt8(FrameType.REQUEST, 1)
  reqHdr.writeUInt32BE(Limit.REQUEST + 1, 4)
  expectKind(t, () => collect().reader.push(reqHdr), 'too-large', 'REQUEST over 8 MiB')
  const respSide = new FrameReader(responseSideBounds(100), () => undefined)
  expectKind(t, () => respSide.push(encodeFrame(FrameType.HEAD, Buffer.alloc(101))), 'too-large', 'HEAD over header-buffer-size')
  const respSide2 = new FrameReader(responseSideBounds(), () => undefined)
  expectKind(t, () => respSide2.push(encodeFrame(FrameType.END, Buffer.alloc(3))), 'too-small', 'END of 3 bytes')
})

t.test('after an error the reader ignores everything', async (t) => {
  const { frames, reader } = collect([FrameType.REQUEST])
  t.throws(() => reader.push(body2))
  reader.push(request)
  t.equal(frames.length, 0)
  t.equal(reader.buffered, 0)
})

t.test('a declared length costs only the bytes received', async (t) => {
  const { reader } = collect()
  const h = Buffer.alloc(8)
  h[0] = 1
  h[1] = FrameType.REQUEST
  h.writeUInt32BE(Limit.REQUEST, 4)
  reader.push(h)
  reader.push(Buffer.alloc(10))
  t.equal(reader.buffered, 10)
  t.notOk(reader.atBoundary)
})

t.test('allowed types follow the handler state, mid-chunk', async (t) => {
  const seen: number[] = []
  const reader: FrameReader = new FrameReader(
    requestSideBounds(),
    (type) => {
      seen.push(type)
      reader.setAllowed(type === FrameType.REQUEST ? [FrameType.BODY, FrameType.BODY_END] : type === FrameType.BODY_END ? [] : [FrameType.BODY, FrameType.BODY_END])
    },
    [FrameType.REQUEST],
  )
  reader.push(stream)
  t.same(seen, [FrameType.REQUEST, FrameType.BODY, FrameType.BODY, FrameType.BODY_END])
  expectKind(t, () => reader.push(request), 'not-allowed', 'REQUEST after BODY_END with nothing allowed')
})

t.test('pause inside a handler holds the rest, in order, until resume', async (t) => {
  const seen: number[] = []
  const reader: FrameReader = new FrameReader(requestSideBounds(), (type) => {
    seen.push(type)
    if (type === FrameType.REQUEST) reader.pause()
  })
  reader.push(Buffer.concat([request, body1]))
  t.same(seen, [FrameType.REQUEST])
  t.ok(reader.isPaused)
  reader.push(Buffer.concat([body2, end.subarray(0, 3)]))
  t.same(seen, [FrameType.REQUEST], 'nothing delivered while paused')
  t.equal(reader.buffered, body1.length + body2.length + 3)
  reader.resume()
  reader.push(end.subarray(3))
  t.same(seen, [FrameType.REQUEST, FrameType.BODY, FrameType.BODY, FrameType.BODY_END])
  t.ok(reader.atBoundary)
})

t.test('reentrant push from a handler keeps order', async (t) => {
  const seen: number[] = []
  let once = false
  const reader: FrameReader = new FrameReader(requestSideBounds(), (type) => {
    seen.push(type)
    if (!once) {
      once = true
      reader.push(end)
    }
  })
  reader.push(Buffer.concat([request, body2]))
  t.same(seen, [FrameType.REQUEST, FrameType.BODY, FrameType.BODY_END])
})

// ---------------------------------------------------------------------------------------------------
// Fuzz: a seeded PRNG (test/helpers/prng.ts) so a failure can be replayed (the seed is printed).

t.test('fuzz: only frames or ProtocolError, bounded memory, always terminates', async (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9)
  t.comment(`FUZZ_SEED=${seed}`)
  const rnd = prng(seed)
  const int = (n: number) => Math.floor(rnd() * n)
  const valid = [request, body1, body2, end, encodeEnd(), encodeRequest({ bodyFollows: false, vars: [] })]
  const deadline = Date.now() + 3000
  let cases = 0
  let errors = 0
  let framesSeen = 0
  let badTypes = 0
  const maxLimit = Limit.REQUEST
  while (Date.now() < deadline) {
    cases++
    // Build input: valid frames, some mutated, some truncated, some random garbage.
    const parts: Buffer[] = []
    const n = 1 + int(6)
    for (let i = 0; i < n; i++) {
      const kind = int(4)
      if (kind === 0) parts.push(Buffer.from(Array.from({ length: int(40) }, () => int(256))))
      else {
        const f = Buffer.from(valid[int(valid.length)])
        if (kind === 2) f[int(Math.min(f.length, 8))] = int(256) // header byte flipped
        if (kind === 3) parts.push(f.subarray(0, int(f.length)))
        else parts.push(f)
      }
    }
    const input = Buffer.concat(parts)
    const reader: FrameReader = new FrameReader(requestSideBounds(), (type) => {
      framesSeen++
      // random state changes, as a connection would make
      if (rnd() < 0.3) reader.setAllowed(rnd() < 0.5 ? [FrameType.REQUEST] : [FrameType.BODY, FrameType.BODY_END])
      if (rnd() < 0.05) reader.pause()
      if (!requestSideBounds().has(type)) badTypes++
    })
    try {
      let off = 0
      while (off < input.length) {
        const step = 1 + int(64)
        reader.push(input.subarray(off, off + step))
        off += step
        if (reader.isPaused && rnd() < 0.5) reader.resume()
        if (reader.buffered > maxLimit + input.length) t.fail(`held ${reader.buffered} bytes`)
      }
      reader.resume()
    } catch (e) {
      errors++
      if (!(e instanceof ProtocolError)) {
        t.fail(`non-protocol error: ${(e as Error).stack}`)
        break
      }
    }
  }
  t.equal(badTypes, 0, 'only request-side types delivered')
  t.ok(cases > 100, `${cases} cases, ${errors} rejected, ${framesSeen} frames`)
})

t.test('pause with a reentrant push: the rest of the chunk stays ahead of the pushed bytes', async (t) => {
  const seen: string[] = []
  let first = true
  const reader: FrameReader = new FrameReader(requestSideBounds(), (type, _f, p) => {
    seen.push(type === FrameType.BODY ? p.toString() : String(type))
    if (first) {
      first = false
      reader.push(encodeBody('pushed'))
      reader.pause()
    }
  })
  reader.push(Buffer.concat([request, encodeBody('rest')]))
  t.same(seen, ['1'])
  reader.resume()
  t.same(seen, ['1', 'rest', 'pushed'])
})
