// The hook and lookup frames of docs/protocol.md (AUTH, AUTH_RESULT, VAR_LOOKUP, VAR_VALUE): round trips,
// byte layout, and every malformed payload refused with a ProtocolError; the REQUEST_SSL flag.
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
  readAuthFixed,
} from '../../src/protocol/auth-frames'
import { encodeRequestPayload, readHeader, readRequestFixed } from '../../src/protocol/frames'
import { isProtocolError } from '../../src/protocol/protocol-error'
import { AUTH_FIXED_SIZE, AuthHook, AuthOutcome, FrameType, HEADER_SIZE, Limit, requestSideBounds, responseSideBounds } from '../../src/protocol/wire'

const payloadOf = (frame: Buffer) => frame.subarray(HEADER_SIZE)

function malformed(fn: () => unknown, t: { ok(v: unknown, m: string): unknown; fail(m: string): unknown }, what: string): void {
  try {
    fn()
    t.fail(`${what}: accepted`)
  } catch (e) {
    t.ok(isProtocolError(e) && e.kind === 'malformed', `${what}: ${(e as Error).message}`)
  }
}

t.test('AUTH round trip and layout', async (t) => {
  const frame = encodeAuth({
    ssl: true,
    lookup: true,
    reloading: true,
    hook: AuthHook.GET_REALM_HASH,
    requestStartUs: 1_700_000_000_000_001,
    script: '/srv/auth.wsgi',
    applicationGroup: 'hooks',
    arg1: 'spy',
    arg2: 'Top Secret',
    vars: [['HTTP_HOST', 'example'], ['REMOTE_ADDR', '127.0.0.1']],
  })
  t.equal(frame[1], FrameType.AUTH)
  t.equal(readHeader(frame).length, frame.length - HEADER_SIZE)
  const p = payloadOf(frame)
  t.equal(p.readUInt32BE(0), 7, 'flags: SSL | LOOKUP | RELOADING')
  t.equal(p.readUInt32BE(4), AuthHook.GET_REALM_HASH)
  t.same(readAuthFixed(p), { ssl: true, lookup: true, reloading: true, hook: 3, requestStartUs: 1_700_000_000_000_001 })
  const d = decodeAuth(p)
  t.equal(d.script, '/srv/auth.wsgi')
  t.equal(d.applicationGroup, 'hooks')
  t.equal(d.arg1, 'spy')
  t.equal(d.arg2, 'Top Secret')
  t.same(d.vars, [['HTTP_HOST', 'example'], ['REMOTE_ADDR', '127.0.0.1']])
  const plain = decodeAuth(encodeAuthPayload({ hook: AuthHook.ALLOW_ACCESS, script: '/a', applicationGroup: '', arg1: '10.0.0.1', vars: [] }))
  t.equal(plain.ssl || plain.lookup || plain.reloading, false)
  t.equal(plain.arg2, '')
})

t.test('AUTH rejections', async (t) => {
  const good = encodeAuthPayload({ hook: AuthHook.CHECK_PASSWORD, script: '/a', applicationGroup: '', arg1: 'u', arg2: 'p', vars: [['A', 'b']] })
  malformed(() => readAuthFixed(good.subarray(0, AUTH_FIXED_SIZE - 1)), t, 'shorter than the fixed part')
  const reserved = Buffer.from(good)
  reserved.writeUInt32BE(0x10, 0)
  malformed(() => readAuthFixed(reserved), t, 'reserved flag bits')
  const hook = Buffer.from(good)
  hook.writeUInt32BE(9, 4)
  malformed(() => readAuthFixed(hook), t, 'unknown hook')
  malformed(() => decodeAuth(good.subarray(0, good.length - 1)), t, 'truncated')
  malformed(() => decodeAuth(Buffer.concat([good, Buffer.from([0])])), t, 'trailing bytes')
})

t.test('AUTH_RESULT round trip and rejections', async (t) => {
  for (const [outcome, values] of [
    [AuthOutcome.GRANTED, []],
    [AuthOutcome.GRANTED, ['staff', 'secret-agents']],
    [AuthOutcome.DENIED, []],
    [AuthOutcome.NOT_FOUND, []],
    [AuthOutcome.ERROR, []],
  ] as Array<[number, string[]]>) {
    const f = encodeAuthResult(outcome, values)
    t.equal(f[1], FrameType.AUTH_RESULT)
    t.same(decodeAuthResult(payloadOf(f)), { outcome, values })
  }
  const bad = Buffer.from(payloadOf(encodeAuthResult(AuthOutcome.GRANTED, ['x'])))
  bad.writeUInt32BE(4, 0)
  malformed(() => decodeAuthResult(bad), t, 'unknown outcome')
  const count = Buffer.from(payloadOf(encodeAuthResult(AuthOutcome.GRANTED, ['x'])))
  count.writeUInt32BE(1000, 4)
  malformed(() => decodeAuthResult(count), t, 'count beyond the payload')
})

t.test('VAR_LOOKUP and VAR_VALUE', async (t) => {
  const l = encodeVarLookup('SSL_CLIENT_S_DN_CN')
  t.equal(l[1], FrameType.VAR_LOOKUP)
  t.equal(decodeVarLookup(payloadOf(l)), 'SSL_CLIENT_S_DN_CN')
  t.throws(() => encodeVarLookup(''), RangeError)
  t.throws(() => encodeVarLookup('x'.repeat(4097)), RangeError)
  malformed(() => decodeVarLookup(Buffer.from([0, 0, 0, 1, 0])), t, 'NUL in a name')
  malformed(() => decodeVarLookup(Buffer.from([0, 0, 0, 0])), t, 'empty name')

  const v = encodeVarValue('client-one')
  t.equal(v[1], FrameType.VAR_VALUE)
  t.same(payloadOf(v), Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 10]), Buffer.from('client-one')]))
  t.equal(decodeVarValue(payloadOf(v))?.toString(), 'client-one')
  t.equal(decodeVarValue(payloadOf(encodeVarValue('')))?.toString(), '', 'set but empty')
  t.equal(decodeVarValue(payloadOf(encodeVarValue(null))), null, 'not set')
  malformed(() => decodeVarValue(Buffer.from([0, 0, 0, 2, 0, 0, 0, 0])), t, 'present flag 2')
  malformed(() => decodeVarValue(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 65])), t, 'absent with a value')
})

t.test('bounds: the daemon accepts AUTH and VAR_VALUE, the child AUTH_RESULT and VAR_LOOKUP', async (t) => {
  t.same(requestSideBounds().get(FrameType.VAR_VALUE), { min: 8, max: Limit.VAR_VALUE })
  t.ok(requestSideBounds().has(FrameType.AUTH))
  t.same(responseSideBounds().get(FrameType.VAR_LOOKUP), { min: 5, max: 4100 })
  t.same(responseSideBounds().get(FrameType.AUTH_RESULT), { min: 8, max: 65536 })
})

t.test('REQUEST_SSL flag', async (t) => {
  const p = encodeRequestPayload({ bodyFollows: true, ssl: true, requestStartUs: 1, vars: [] })
  t.equal(p.readUInt32BE(0), 3)
  t.same(readRequestFixed(p), { bodyFollows: true, ssl: true, retryable: false, streamed: false, upgrade: false, requestStartUs: 1, count: 0 })
})
