// The connection's side of hooks and variable lookups (docs/protocol.md, "Hooks", "Variable lookups"),
// over real UNIX sockets with a scripted Bridge: AUTH goes to submitAuth and ends with AUTH_RESULT; a
// VAR_LOOKUP from the bridge reaches the child and its VAR_VALUE goes back; while a lookup waits the
// connection keeps reading (even when the body would otherwise pause it); a VAR_VALUE nobody asked for
// drops the connection; an answer that arrives after its request ended is accepted and dropped.
import t from 'tap'
import { log } from '../../src/daemon/log'
import type { Bridge } from '../../src/native/types'
import { decodeAuthResult, decodeVarLookup, encodeAuth, encodeAuthResult, encodeVarLookup, encodeVarValue } from '../../src/protocol/auth-frames'
import { encodeEnd, encodeHead, encodeResponseBody } from '../../src/protocol/frames'
import { AuthHook, AuthOutcome, FrameType } from '../../src/protocol/wire'
import { requestFrames, serveWithBridge, text, waitFor } from '../daemon/harness'

log.setLevel('emerg')

class LookupBridge implements Bridge {
  submits: Array<{ id: number; kind: 'request' | 'auth'; payload: Buffer }> = []
  values: Array<{ id: number; value: string | null }> = []
  aborted: number[] = []
  buffered = new Map<number, number>()
  submit(id: number, request: Buffer): void {
    this.submits.push({ id, kind: 'request', payload: Buffer.from(request) })
  }
  submitAuth(id: number, auth: Buffer): void {
    this.submits.push({ id, kind: 'auth', payload: Buffer.from(auth) })
  }
  varValue(id: number, value: Buffer | null): boolean {
    this.values.push({ id, value: value === null ? null : value.toString('latin1') })
    return true
  }
  /** Never consumes: everything given stays buffered (an app waiting on a lookup). */
  input(id: number, chunk: Buffer): number {
    const n = (this.buffered.get(id) ?? 0) + chunk.length
    this.buffered.set(id, n)
    return n
  }
  endInput(): void {}
  abort(id: number): void {
    this.aborted.push(id)
  }
  resume(): void {}
  release(): void {}
  preload(): Promise<void> {
    return Promise.resolve()
  }
  lastGilAcquired(): number {
    return Date.now()
  }
  dumpStacks(): void {}
  shutdown(): boolean {
    return true
  }
}

async function rig(t: { teardown(fn: () => unknown): void }) {
  const bridge = new LookupBridge()
  let admitted = 0
  const { h, connect } = await serveWithBridge(t, bridge, { threads: 2 }, { admitted: () => admitted++ })
  const nextSubmit = (n: number) => waitFor(() => bridge.submits[n - 1], 5000, `submit ${n}`)
  return { bridge, h, connect, nextSubmit, admitted: () => admitted }
}

const AUTH = encodeAuth({
  hook: AuthHook.CHECK_PASSWORD,
  script: '/srv/auth.wsgi',
  applicationGroup: '',
  arg1: 'spy',
  arg2: 'secret',
  lookup: true,
  vars: [['REQUEST_URI', '/secret']],
})
const HELLO = Buffer.concat([encodeHead(200, '200 OK'), encodeResponseBody('hello'), encodeEnd()])

t.test('AUTH: submitted as a hook, answered by AUTH_RESULT, then the connection takes a request', async (t) => {
  const { bridge, h, connect, nextSubmit, admitted } = await rig(t)
  const c = await connect()
  c.write(AUTH)
  const s = await nextSubmit(1)
  t.equal(s.kind, 'auth')
  t.same(s.payload, AUTH.subarray(8), 'the AUTH payload as received')
  t.equal(admitted(), 0, 'a hook is not a request for maximum-requests')
  h.output(s.id, encodeAuthResult(AuthOutcome.GRANTED, ['canonical']), true, -1)
  const f = await c.nextFrame()
  t.equal(f?.type, FrameType.AUTH_RESULT)
  t.same(decodeAuthResult(f!.payload), { outcome: AuthOutcome.GRANTED, values: ['canonical'] })
  for (const fr of requestFrames({ script: '/x' })) c.write(fr)
  const r = await nextSubmit(2)
  t.equal(r.kind, 'request')
  h.output(r.id, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
})

t.test('VAR_LOOKUP reaches the child, VAR_VALUE goes back to the bridge (value and absent)', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t)
  const c = await connect()
  c.write(AUTH)
  const s = await nextSubmit(1)
  h.output(s.id, encodeVarLookup('SSL_CLIENT_S_DN_CN'), false, -1)
  const f = await c.nextFrame()
  t.equal(f?.type, FrameType.VAR_LOOKUP)
  t.equal(decodeVarLookup(f!.payload), 'SSL_CLIENT_S_DN_CN')
  c.write(encodeVarValue('client-one'))
  await waitFor(() => bridge.values.length === 1, 2000, 'value')
  t.same(bridge.values[0], { id: s.id, value: 'client-one' })
  h.output(s.id, encodeVarLookup('NOPE'), false, -1)
  t.equal((await c.nextFrame())?.type, FrameType.VAR_LOOKUP)
  c.write(encodeVarValue(null))
  await waitFor(() => bridge.values.length === 2, 2000, 'absent')
  t.same(bridge.values[1], { id: s.id, value: null })
  h.output(s.id, encodeAuthResult(AuthOutcome.DENIED), true, -1)
  t.equal((await c.nextFrame())?.type, FrameType.AUTH_RESULT)
})

t.test('while a lookup waits, the body keeps flowing in even above the input watermark', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t)
  const c = await connect()
  const body = Buffer.alloc(2 << 20, 7)
  const frames = requestFrames({ script: '/up', body, chunk: 64 * 1024 })
  c.write(frames[0])
  const s = await nextSubmit(1)
  h.output(s.id, encodeVarLookup('SSL_PROTOCOL'), false, -1)
  t.equal((await c.nextFrame())?.type, FrameType.VAR_LOOKUP)
  // The child answers only after the whole body (as a child blocked on its writes would).
  for (const f of frames.slice(1)) c.write(f)
  await waitFor(() => (bridge.buffered.get(s.id) ?? 0) === body.length, 5000, 'the whole body read while the lookup waits')
  c.write(encodeVarValue('TLSv1.3'))
  await waitFor(() => bridge.values.length === 1, 2000, 'value')
  h.output(s.id, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
})

t.test('a VAR_VALUE nobody asked for drops the connection and aborts its request', async (t) => {
  const { bridge, connect, nextSubmit } = await rig(t)
  const c = await connect()
  c.write(AUTH)
  const s = await nextSubmit(1)
  c.write(encodeVarValue('unasked'))
  await c.closed()
  await waitFor(() => bridge.aborted.includes(s.id), 2000, 'abort')
  t.same(bridge.values, [])
})

t.test('an answer that comes after its request ended is accepted and dropped', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t)
  const c = await connect()
  for (const f of requestFrames({ script: '/x' })) c.write(f)
  const s = await nextSubmit(1)
  // An application thread asks just as the request ends.
  h.output(s.id, encodeVarLookup('SSL_PROTOCOL'), false, -1)
  h.output(s.id, HELLO, true, -1)
  t.equal((await c.nextFrame())?.type, FrameType.VAR_LOOKUP)
  t.equal(text(await c.answer()), 'hello')
  c.write(encodeVarValue('late'))
  for (const f of requestFrames({ script: '/y' })) c.write(f)
  const next = await nextSubmit(2)
  t.same(bridge.values, [], 'not given to anyone')
  h.output(next.id, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello', 'the connection carries on')
})
