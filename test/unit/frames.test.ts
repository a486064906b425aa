// The frame codec: round trips of every payload and every rejection of a bad one.
import t from 'tap'
import {
  BODY_END_FRAME,
  GOAWAY_FRAME,
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
  findRequestVar,
  lastFrameType,
  readHeader,
  readRequestFixed,
  splitFrames,
} from '../../src/protocol/frames'
import { ProtocolError } from '../../src/protocol/protocol-error'
import { FILE_TO_EOF, FrameType, HEADER_SIZE, REQUEST_FIXED_SIZE } from '../../src/protocol/wire'

const payloadOf = (frame: Buffer) => frame.subarray(HEADER_SIZE)

/** Asserts that fn throws a ProtocolError of kind 'malformed' (and nothing else). */
function malformed(fn: () => unknown, tt: { ok(v: unknown, m: string): unknown; fail(m: string): unknown }, what: string): void {
  try {
    fn()
    tt.fail(`${what}: no error thrown`)
  } catch (e) {
    tt.ok(e instanceof ProtocolError && e.kind === 'malformed', `${what}: ${(e as Error).message}`)
  }
}

t.test('frame header layout is big-endian, version 1', async (t) => {
  const f = encodeFrame(0x02, Buffer.from('abc'), 0x0102)
  t.same([...f.subarray(0, 8)], [1, 0x02, 0x01, 0x02, 0, 0, 0, 3])
  t.same(readHeader(f), { version: 1, type: 2, flags: 0x0102, length: 3 })
  t.same([...GOAWAY_FRAME], [1, 0x16, 0, 0, 0, 0, 0, 0])
  t.same([...BODY_END_FRAME], [1, 0x03, 0, 0, 0, 0, 0, 0])
})

t.test('REQUEST round trip, bytes pass through untouched', async (t) => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const vars: Array<[Buffer | string, Buffer | string]> = [
    ['SCRIPT_FILENAME', '/srv/app.wsgi'],
    ['HTTP_X_BIN', all],
    ['EMPTY', ''],
    ['mod_wsgi.process_group', ''],
  ]
  const startUs = 1_700_000_000_123_456
  const frame = encodeRequest({ bodyFollows: true, requestStartUs: startUs, vars })
  t.equal(frame[1], FrameType.REQUEST)
  const p = payloadOf(frame)
  t.equal(readHeader(frame).length, p.length)
  const fixed = readRequestFixed(p)
  t.same(fixed, { bodyFollows: true, ssl: false, retryable: false, streamed: false, upgrade: false, requestStartUs: startUs, count: 4 })
  const d = decodeRequest(p)
  t.equal(d.vars.length, 4)
  t.same(Buffer.from(d.vars[1][1], 'latin1'), all, 'every byte value survives')
  t.equal(d.vars[2][1], '')
  t.equal(findRequestVar(p, 'SCRIPT_FILENAME'), '/srv/app.wsgi')
  t.equal(findRequestVar(p, 'NOPE'), undefined)
  const noBody = readRequestFixed(encodeRequestPayload({ bodyFollows: false, requestStartUs: 1, vars: [] }))
  t.same(noBody, { bodyFollows: false, ssl: false, retryable: false, streamed: false, upgrade: false, requestStartUs: 1, count: 0 })
})

t.test('REQUEST rejections', async (t) => {
  const good = encodeRequestPayload({ bodyFollows: false, requestStartUs: 5, vars: [['A', 'b']] })
  malformed(() => readRequestFixed(good.subarray(0, REQUEST_FIXED_SIZE - 1)), t, 'shorter than the fixed part')
  const reserved = Buffer.from(good)
  reserved.writeUInt32BE(0x80000001, 0)
  malformed(() => readRequestFixed(reserved), t, 'reserved flag bits')
  const hugeCount = Buffer.from(good)
  hugeCount.writeUInt32BE(0xffffffff, 12)
  malformed(() => readRequestFixed(hugeCount), t, 'count larger than the payload could hold')
  malformed(() => decodeRequest(good.subarray(0, good.length - 1)), t, 'truncated value')
  const longName = Buffer.from(good)
  longName.writeUInt32BE(1000, REQUEST_FIXED_SIZE)
  malformed(() => decodeRequest(longName), t, 'string length past the end')
  const trailing = Buffer.concat([good, Buffer.from([0])])
  malformed(() => decodeRequest(trailing), t, 'trailing bytes')
  const fewer = Buffer.from(good)
  fewer.writeUInt32BE(0, 12)
  malformed(() => decodeRequest(fewer), t, 'count smaller than the pairs present')
})

t.test('HEAD round trip keeps order and repeated names', async (t) => {
  const headers: Array<[string, string]> = [
    ['Content-Type', 'text/plain'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
    ['X-Latin1', 'caf\u00e9'],
  ]
  const f = encodeHead(200, '200 OK', headers)
  t.equal(f[1], FrameType.HEAD)
  t.same(decodeHead(payloadOf(f)), { status: 200, statusLine: '200 OK', headers })
  malformed(() => decodeHead(encodeHeadPayload(99, '99 X', [])), t, 'status under 100')
  malformed(() => decodeHead(encodeHeadPayload(1000, 'x', [])), t, 'status over 999')
  const p = encodeHeadPayload(200, '200 OK', headers)
  malformed(() => decodeHead(p.subarray(0, p.length - 2)), t, 'truncated')
  const bad = Buffer.from(p)
  bad.writeUInt32BE(0x7fffffff, 4 + 4 + 6)
  malformed(() => decodeHead(bad), t, 'header count too large')
})

t.test('END, FILE, ERROR, BODY', async (t) => {
  t.equal(decodeEnd(payloadOf(encodeEnd(0))), 0)
  t.equal(decodeEnd(payloadOf(encodeEnd(1))), 1)
  malformed(() => decodeEnd(payloadOf(encodeEnd(2))), t, 'END outcome 2')
  malformed(() => decodeEnd(Buffer.alloc(3)), t, 'END short')

  t.same(decodeFile(payloadOf(encodeFile(10, FILE_TO_EOF))), { offset: 10n, count: FILE_TO_EOF })
  t.same(decodeFile(payloadOf(encodeFile(2n ** 40n, 7))), { offset: 2n ** 40n, count: 7n })
  malformed(() => decodeFile(Buffer.alloc(15)), t, 'FILE short')

  const e = encodeError(503, 'queue timeout')
  t.equal(e[1], FrameType.ERROR)
  t.same(decodeError(payloadOf(e)), { status: 503, message: 'queue timeout' })
  const long = encodeError(500, 'x'.repeat(100 * 1024))
  t.ok(readHeader(long).length <= 64 * 1024, 'ERROR stays within its limit whatever the message')
  malformed(() => decodeError(Buffer.alloc(6)), t, 'ERROR short')

  const b = encodeBody(Buffer.from('hello'))
  t.same(readHeader(b), { version: 1, type: FrameType.BODY, flags: 0, length: 5 })
})

t.test('lastFrameType and splitFrames walk whole frames only', async (t) => {
  const resp = Buffer.concat([encodeHead(200, '200 OK'), encodeFrame(FrameType.RBODY, 'hi'), encodeEnd()])
  t.equal(lastFrameType(resp), FrameType.END)
  t.equal(lastFrameType(encodeFrame(FrameType.RBODY, 'x')), FrameType.RBODY)
  t.equal(lastFrameType(resp.subarray(0, resp.length - 1)), -1, 'partial frame')
  t.equal(lastFrameType(Buffer.alloc(0)), -1)
  t.same(
    splitFrames(resp).map((f) => f.type),
    [FrameType.HEAD, FrameType.RBODY, FrameType.END],
  )
})

t.test('REQUEST_RETRYABLE flag', async (t) => {
  const p = encodeRequestPayload({ bodyFollows: false, retryable: true, requestStartUs: 1, vars: [] })
  t.equal(p.readUInt32BE(0), 4)
  t.same(readRequestFixed(p), { bodyFollows: false, ssl: false, retryable: true, streamed: false, upgrade: false, requestStartUs: 1, count: 0 })
})

t.test('REQUEST_UPGRADE flag (a WebSocket upgrade the child can carry)', async (t) => {
  const p = encodeRequestPayload({ bodyFollows: false, upgrade: true, requestStartUs: 1, vars: [] })
  t.equal(p.readUInt32BE(0), 0x10)
  t.same(readRequestFixed(p), { bodyFollows: false, ssl: false, retryable: false, streamed: false, upgrade: true, requestStartUs: 1, count: 0 })
  p.writeUInt32BE(0x20, 0)
  t.throws(() => readRequestFixed(p), /reserved flag bits/, 'the next bit is still reserved')
})
