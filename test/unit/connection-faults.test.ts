// Issue 7: the connection state machine under faults, with a scripted Bridge (no Python) over real UNIX
// sockets. A forced stop never fails a request the child sent after a complete response (it gets GOAWAY,
// so the child sends it again); a RETRYABLE request that finds every thread busy in a group of several
// processes is sent back with GOAWAY, without a log line about malformed data for the body that came
// with it; without the flag, or with one process, it is queued as before.
import t from 'tap'
import { log } from '../../src/daemon/log'
import type { Bridge } from '../../src/native/types'
import { encodeBody, encodeEnd, encodeHead, encodeRequest, encodeResponseBody, BODY_END_FRAME } from '../../src/protocol/frames'
import { requestFrames, serveWithBridge, waitFor, text } from '../daemon/harness'

const lines: string[] = []
log.setLevel('debug')
log.line = (_level, line) => {
  lines.push(line)
}

class ScriptedBridge implements Bridge {
  submitted: number[] = []
  aborted: number[] = []
  submit(id: number): void {
    this.submitted.push(id)
  }
  submitAuth(id: number): void {
    this.submitted.push(id)
  }
  varValue(): boolean {
    return true
  }
  input(): number {
    return 0
  }
  endInput(): void {}
  abort(id: number): void {
    this.aborted.push(id)
  }
  resume(): void {}
  preload(): Promise<void> {
    return Promise.resolve()
  }
  lastGilAcquired(): number {
    return Date.now()
  }
  dumpStacks(): void {}
  release(): void {}
  shutdown(): boolean {
    return true
  }
}

const HELLO = Buffer.concat([encodeHead(200, '200 OK', [['Content-Type', 'text/plain']]), encodeResponseBody('hello'), encodeEnd()])

async function rig(t: { teardown(fn: () => unknown): void }, opts: { threads: number; processes: number }) {
  const bridge = new ScriptedBridge()
  const { server, h, connect } = await serveWithBridge(t, bridge, { threads: opts.threads, processes: opts.processes, dupFd: (fd: number) => fd })
  const nextSubmit = (n: number): Promise<number> =>
    waitFor(() => (bridge.submitted.length >= n ? bridge.submitted[n - 1] : 0), 5000, `submit #${n}`) as Promise<number>
  return { bridge, server, h, connect, nextSubmit }
}

/** A REQUEST (RETRYABLE when asked) with a small body in the same write, as the Apache child sends it. */
function smallPost(retryable: boolean): Buffer {
  const frames = requestFrames({ script: '/x', body: Buffer.from('abc') })
  const req = encodeRequest({ bodyFollows: true, retryable, requestStartUs: Date.now() * 1000, vars: [['SCRIPT_FILENAME', '/x']] })
  return Buffer.concat([req, ...frames.slice(1)])
}

t.test('forced stop after a complete response: the next request the child sent gets GOAWAY', async (t) => {
  const { h, server, connect, nextSubmit } = await rig(t, { threads: 2, processes: 1 })
  const c = await connect()
  for (const f of requestFrames({ script: '/x' })) c.write(f)
  const id = await nextSubmit(1)
  h.output(id, HELLO, false, -1) // END written; the worker's `final` has not come yet
  t.equal(text(await c.answer()), 'hello')
  for (const f of requestFrames({ script: '/y' })) c.write(f) // held until `final`
  await new Promise((r) => setTimeout(r, 50))
  server.forceCloseAll(504, 'request-timeout expired')
  const a = await c.answer()
  t.equal(a.kind, 'goaway', 'not a bare close, which the child would answer with 500')
})

t.test('forced stop of an idle connection: GOAWAY', async (t) => {
  const { server, connect, h, nextSubmit } = await rig(t, { threads: 1, processes: 1 })
  const c = await connect()
  for (const f of requestFrames({ script: '/x' })) c.write(f)
  const id = await nextSubmit(1)
  h.output(id, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
  server.forceCloseAll(503, 'shutting down')
  t.equal((await c.answer()).kind, 'goaway')
})

t.test('several processes, no free thread: a RETRYABLE request is sent back, its body dropped quietly', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t, { threads: 1, processes: 2 })
  const busy = await connect()
  for (const f of requestFrames({ script: '/long' })) busy.write(f)
  const id = await nextSubmit(1)
  const mark = lines.length
  const c = await connect()
  c.write(smallPost(true))
  t.equal((await c.answer()).kind, 'goaway', 'GOAWAY: the child sends it again elsewhere')
  await c.closed()
  t.same(bridge.submitted, [id], 'it was not run')
  t.notOk(lines.slice(mark).some((l) => /WSGI02040|Malformed/.test(l)), 'no malformed-data line for the body behind it')
  // Without the flag (a streamed body, or the child's last attempts) it waits for the thread.
  const d = await connect()
  d.write(smallPost(false))
  await new Promise((r) => setTimeout(r, 50))
  t.same(bridge.submitted, [id], 'queued, not run yet')
  h.output(id, HELLO, true, -1)
  const id2 = await nextSubmit(2)
  h.output(id2, HELLO, true, -1)
  t.equal(text(await d.answer()), 'hello')
  t.equal(text(await busy.answer()), 'hello')
})

t.test('several processes, a free thread: a RETRYABLE request runs', async (t) => {
  const { h, connect, nextSubmit } = await rig(t, { threads: 2, processes: 2 })
  const busy = await connect()
  for (const f of requestFrames({ script: '/long' })) busy.write(f)
  const id = await nextSubmit(1)
  const c = await connect()
  c.write(smallPost(true))
  const id2 = await nextSubmit(2)
  h.output(id2, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
  h.output(id, HELLO, true, -1)
  t.equal(text(await busy.answer()), 'hello')
})

t.test('one process: RETRYABLE is ignored, the request queues', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t, { threads: 1, processes: 1 })
  const busy = await connect()
  for (const f of requestFrames({ script: '/long' })) busy.write(f)
  const id = await nextSubmit(1)
  const c = await connect()
  c.write(Buffer.concat([encodeRequest({ bodyFollows: true, retryable: true, vars: [['SCRIPT_FILENAME', '/x']] }), encodeBody('z'), BODY_END_FRAME]))
  await new Promise((r) => setTimeout(r, 50))
  t.same(bridge.submitted, [id])
  h.output(id, HELLO, true, -1)
  const id2 = await nextSubmit(2)
  h.output(id2, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
  t.equal(text(await busy.answer()), 'hello')
})

t.test('a RETRYABLE request held until `final`, then sent back: its body is not read as a new frame', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t, { threads: 1, processes: 2 })
  const c = await connect()
  for (const f of requestFrames({ script: '/x' })) c.write(f)
  const id = await nextSubmit(1)
  h.output(id, HELLO, false, -1) // END written; `final` (the thread is free) comes later
  t.equal(text(await c.answer()), 'hello')
  c.write(smallPost(true)) // held behind the running job, with its body
  await new Promise((r) => setTimeout(r, 50))
  const mark = lines.length
  h.output(id, Buffer.alloc(0), true, -1) // the thread is still counted busy when the held request is looked at
  t.equal((await c.answer()).kind, 'goaway', 'sent back')
  await c.closed()
  t.same(bridge.submitted, [id], 'not run here')
  t.notOk(lines.slice(mark).some((l) => /WSGI02040|WSGI02045|Malformed/.test(l)), 'no malformed-data or truncated-frame line')
})

t.test('draining: a request whose body is streamed (it cannot be sent again) still runs; others get GOAWAY', async (t) => {
  const { bridge, h, server, connect, nextSubmit } = await rig(t, { threads: 2, processes: 1 })
  const old = await connect()
  for (const f of requestFrames({ script: '/x' })) old.write(f)
  const id = await nextSubmit(1)
  h.output(id, HELLO, true, -1)
  t.equal(text(await old.answer()), 'hello')
  // Two connections accepted just before the stop (say maximum-requests), their first request on its way.
  const streamed = await connect()
  const plain = await connect()
  await new Promise((r) => setTimeout(r, 20))
  server.beginStop()
  t.equal((await old.answer()).kind, 'goaway', 'a connection that served before is told to go away at once')
  streamed.write(Buffer.concat([encodeRequest({ bodyFollows: true, streamed: true, vars: [['SCRIPT_FILENAME', '/upload']] }), encodeBody('a streamed body'), BODY_END_FRAME]))
  plain.write(encodeRequest({ bodyFollows: false, vars: [['SCRIPT_FILENAME', '/x']] }))
  t.equal((await plain.answer()).kind, 'goaway', 'a request that can be sent again gets GOAWAY')
  const id2 = await nextSubmit(2)
  t.ok(id2 > id, 'the streamed one runs in the draining process')
  h.output(id2, HELLO, true, -1)
  t.equal(text(await streamed.answer()), 'hello', 'and is answered')
  t.equal((await streamed.answer()).kind, 'goaway', 'then its connection is told to go away')
  t.equal(bridge.submitted.length, 2)
})

t.test('draining: a queued streamed request stays queued and runs; a queued one that can be resent gets GOAWAY', async (t) => {
  // graceful-timeout expired with requests still waiting for the only thread (beginStop from the
  // lifecycle): the child can send the plain one again, not the one whose body it is streaming.
  const { bridge, h, server, connect, nextSubmit } = await rig(t, { threads: 1, processes: 1 })
  const busy = await connect()
  for (const f of requestFrames({ script: '/long' })) busy.write(f)
  const id = await nextSubmit(1)
  const streamed = await connect()
  streamed.write(Buffer.concat([encodeRequest({ bodyFollows: true, streamed: true, vars: [['SCRIPT_FILENAME', '/upload']] }), encodeBody('a streamed body'), BODY_END_FRAME]))
  const plain = await connect()
  plain.write(encodeRequest({ bodyFollows: false, vars: [['SCRIPT_FILENAME', '/x']] }))
  await waitFor(() => server.dispatcher.queuedCount === 2, 5000, 'both requests queued')
  server.beginStop()
  t.equal((await plain.answer()).kind, 'goaway', 'the queued request that can be sent again gets GOAWAY')
  t.equal(server.dispatcher.queuedCount, 1, 'the streamed one still waits')
  h.output(id, HELLO, true, -1)
  t.equal(text(await busy.answer()), 'hello')
  const id2 = await nextSubmit(2)
  h.output(id2, HELLO, true, -1)
  t.equal(text(await streamed.answer()), 'hello', 'the streamed one ran once the thread was free, and is answered')
  t.equal(bridge.submitted.length, 2, 'the plain one never ran here')
})

t.test('stopping: a connection that never speaks gets GOAWAY after a moment', async (t) => {
  const { server, connect } = await rig(t, { threads: 1, processes: 1 })
  const quiet = await connect()
  await new Promise((r) => setTimeout(r, 20))
  const began = Date.now()
  server.beginStop()
  t.equal((await quiet.answer(5000)).kind, 'goaway')
  t.ok(Date.now() - began >= 900, `after about a second (${Date.now() - began} ms)`)
})

t.test('forced stop: even a streamed request is refused', async (t) => {
  const { bridge, server, connect } = await rig(t, { threads: 2, processes: 1 })
  const c = await connect()
  await new Promise((r) => setTimeout(r, 20))
  server.forceCloseAll(503, 'request-timeout')
  c.write(encodeRequest({ bodyFollows: true, streamed: true, vars: [['SCRIPT_FILENAME', '/upload']] }))
  const a = await c.answer()
  t.not(a.kind, 'response')
  t.same(bridge.submitted, [], 'nothing ran')
})
