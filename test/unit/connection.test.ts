// The connection state machine and the server's routing, over real UNIX sockets, with a scripted Bridge
// standing in for the addon (no Python: the test decides when output and `final` arrive). Covers what is
// hard to provoke through Python: stashing a REQUEST sent between END and final, body arriving before a
// thread is free, input and output backpressure, protocol violations mid-request, stop and force-close.
import { fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { log } from '../../src/daemon/log'
import { Lifecycle } from '../../src/daemon/lifecycle'
import type { Bridge, BridgeHandlers } from '../../src/native/types'
import { GOAWAY_FRAME, encodeEnd, encodeFile, encodeHead, encodeResponseBody } from '../../src/protocol/frames'
import { FILE_TO_EOF } from '../../src/protocol/wire'
import { WireClient, requestFrames, serveWithBridge, waitFor, text } from '../daemon/harness'

log.setLevel('emerg') // keep test output clean; messages are checked in test/daemon

interface Call {
  op: string
  id: number
  n?: number
}

class ScriptedBridge implements Bridge {
  calls: Call[] = []
  inputs = new Map<number, Buffer[]>()
  /** What input() reports as buffered: by default everything ever given (an app that never reads). */
  consumed = new Map<number, number>()
  submit(id: number, request: Buffer, hasBody: boolean): void {
    this.calls.push({ op: 'submit', id, n: hasBody ? 1 : 0 })
    void request
  }
  submitAuth(id: number, auth: Buffer): void {
    this.calls.push({ op: 'submitAuth', id })
    void auth
  }
  varValue(id: number, value: Buffer | null): boolean {
    this.calls.push({ op: 'varValue', id, n: value === null ? -1 : value.length })
    return true
  }
  input(id: number, chunk: Buffer): number {
    const l = this.inputs.get(id) ?? []
    l.push(Buffer.from(chunk))
    this.inputs.set(id, l)
    return l.reduce((n, c) => n + c.length, 0) - (this.consumed.get(id) ?? 0)
  }
  endInput(id: number): void {
    this.calls.push({ op: 'endInput', id })
  }
  abort(id: number): void {
    this.calls.push({ op: 'abort', id })
  }
  resume(id: number): void {
    this.calls.push({ op: 'resume', id })
  }
  /** Bytes of the Buffers release() was given that were whole ArrayBuffers (what the addon frees). */
  releasedBytes = 0
  release(data: Buffer): void {
    // The addon detaches the Buffer: its bytes are gone. Poisoned here, so that a Buffer released
    // while something still needed it shows up as a corrupt body.
    if (data.byteOffset === 0 && data.length === data.buffer.byteLength) {
      this.releasedBytes += data.length
      data.fill(0xee)
    }
  }
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
  submitted(): number[] {
    return this.calls.filter((c) => c.op === 'submit').map((c) => c.id)
  }
  has(op: string, id: number): boolean {
    return this.calls.some((c) => c.op === op && c.id === id)
  }
  body(id: number): Buffer {
    return Buffer.concat(this.inputs.get(id) ?? [])
  }
}

const HELLO = Buffer.concat([encodeHead(200, '200 OK', [['Content-Type', 'text/plain']]), encodeResponseBody('hello'), encodeEnd()])

async function rig(t: { teardown(fn: () => unknown): void }, opts: { threads?: number; queueTimeoutMs?: number; socketTimeoutMs?: number } = {}) {
  const bridge = new ScriptedBridge()
  const { server, h, connect } = await serveWithBridge(t, bridge, opts)
  const send = (c: WireClient, spec: Parameters<typeof requestFrames>[0]) => {
    for (const f of requestFrames(spec)) c.write(f)
  }
  const nextSubmit = (after = 0): Promise<number> =>
    waitFor(() => bridge.submitted().find((id) => id > after), 5000, 'submit') as Promise<number>
  return { bridge, server, h, connect, send, nextSubmit }
}

t.test('request, response, reuse with a new id', async (t) => {
  const { bridge, h, connect, send, nextSubmit } = await rig(t)
  const c = await connect()
  send(c, { script: '/x' })
  const id1 = await nextSubmit()
  t.equal(h.output(id1, HELLO, true, -1), false)
  t.equal(text(await c.answer()), 'hello')
  send(c, { script: '/x' })
  const id2 = await nextSubmit(id1)
  t.not(id2, id1)
  h.output(id2, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
  t.equal(bridge.calls.filter((x) => x.op === 'abort').length, 0)
})

t.test('body that arrives before a thread is free is handed over on submit', async (t) => {
  const { bridge, h, connect, send, nextSubmit } = await rig(t, { threads: 1 })
  const a = await connect()
  const b = await connect()
  send(a, { script: '/a' })
  const ida = await nextSubmit()
  send(b, { script: '/b', body: Buffer.from('queued body'), chunk: 4 })
  await new Promise((r) => setTimeout(r, 100))
  t.same(bridge.submitted(), [ida], 'b waits: one thread')
  h.output(ida, HELLO, true, -1)
  const idb = await nextSubmit(ida)
  t.equal(bridge.body(idb).toString(), 'queued body')
  t.ok(bridge.has('endInput', idb))
  h.output(idb, HELLO, true, -1)
  t.equal(text(await a.answer()), 'hello')
  t.equal(text(await b.answer()), 'hello')
})

/** The app reads everything as it arrives, until the body ends. */
function readToEnd(bridge: ScriptedBridge, h: BridgeHandlers, id: number): Promise<boolean> {
  return waitFor(
    () => {
      bridge.consumed.set(id, bridge.body(id).length)
      h.inputResume(id)
      return bridge.has('endInput', id)
    },
    10000,
    'the whole body',
  )
}

t.test('large bodies: socket chunks are released once copied into the bridge, never while still needed', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t, { threads: 1 })
  const a = await connect()
  const b = await connect()
  const big = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 251))
  const bodyA = big(200 * 1024, 1)
  for (const f of requestFrames({ script: '/a', body: bodyA, chunk: 64 * 1024 })) a.write(f)
  const ida = await nextSubmit()
  await waitFor(() => bridge.has('endInput', ida), 5000, 'a body')
  t.ok(bridge.body(ida).equals(bodyA), 'a body intact')
  t.ok(bridge.releasedBytes > 0, `chunks released once copied (${bridge.releasedBytes} bytes)`)
  // b waits for the thread: its body is held by the connection and must survive until submit.
  const bodyB = big(150 * 1024, 2)
  for (const f of requestFrames({ script: '/b', body: bodyB, chunk: 64 * 1024 })) b.write(f)
  await new Promise((r) => setTimeout(r, 150))
  t.same(bridge.submitted(), [ida], 'b is queued')
  h.output(ida, HELLO, true, -1)
  const idb = await nextSubmit(ida)
  await waitFor(() => bridge.has('endInput', idb), 5000, 'b body')
  t.ok(bridge.body(idb).equals(bodyB), 'queued body intact after submit')
  h.output(idb, HELLO, true, -1)
  t.equal(text(await a.answer()), 'hello')
  t.equal(text(await b.answer()), 'hello')
})

t.test('an upload is freed as it goes into the bridge, while its request still runs', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t, { threads: 1 })
  const c = await connect()
  const body = Buffer.from(Array.from({ length: 1024 * 1024 }, (_, i) => (i * 13 + 5) % 251))
  // Small BODY frames: most arrive whole inside a socket chunk, as views into it.
  for (const f of requestFrames({ script: '/upload', body, chunk: 8 * 1024 })) c.write(f)
  const id = await nextSubmit()
  await readToEnd(bridge, h, id) // the app reads as the body arrives
  t.ok(bridge.body(id).equals(body), 'body intact')
  // Before, the REQUEST payload (a view into the first socket chunk, kept for log lines) pinned every
  // chunk of the request until a garbage collection: 1 MiB uploads held tens of MiB.
  t.ok(bridge.releasedBytes >= body.length * 0.9, `${bridge.releasedBytes} of ${body.length} bytes freed before the response`)
  h.output(id, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
})

t.test('a REQUEST sent after END but before final waits for final', async (t) => {
  const { bridge, h, connect, send, nextSubmit } = await rig(t, { threads: 2 })
  const c = await connect()
  send(c, { script: '/x' })
  const id1 = await nextSubmit()
  h.output(id1, HELLO, false, -1) // END written, worker not yet free
  t.equal(text(await c.answer()), 'hello')
  send(c, { script: '/y', body: Buffer.from('second') })
  await new Promise((r) => setTimeout(r, 100))
  t.same(bridge.submitted(), [id1], 'held until final')
  h.output(id1, Buffer.alloc(0), true, -1)
  const id2 = await nextSubmit(id1)
  await waitFor(() => bridge.has('endInput', id2), 2000, 'endInput')
  t.equal(bridge.body(id2).toString(), 'second')
})

t.test('a REQUEST before the response ended is a protocol error: dropped, request aborted', async (t) => {
  const { bridge, h, connect, send, nextSubmit } = await rig(t)
  const c = await connect()
  send(c, { script: '/x' })
  const id = await nextSubmit()
  send(c, { script: '/again' })
  await c.closed()
  await waitFor(() => bridge.has('abort', id), 2000, 'abort')
  h.output(id, HELLO, true, -1) // the worker's last event still comes: harmless
  // The thread is free again for others.
  const d = await connect()
  send(d, { script: '/z' })
  const id2 = await nextSubmit(id)
  h.output(id2, HELLO, true, -1)
  t.equal(text(await d.answer()), 'hello')
})

t.test('input backpressure: reading stops above 256 KiB unread, resumes on inputResume', async (t) => {
  const { bridge, h, connect, nextSubmit } = await rig(t)
  const c = await connect()
  const body = Buffer.alloc(4 << 20, 9)
  const frames = requestFrames({ script: '/up', body, chunk: 64 * 1024 })
  for (const f of frames) c.write(f)
  const id = await nextSubmit()
  await new Promise((r) => setTimeout(r, 200))
  const held = bridge.body(id).length
  t.ok(held > 256 * 1024 && held < 1 << 20, `stopped reading after ${held} bytes`)
  // The app consumes everything so far: resume.
  bridge.consumed.set(id, held)
  h.inputResume(id)
  await new Promise((r) => setTimeout(r, 100))
  const more = bridge.body(id).length
  t.ok(more > held, `read on (${more})`)
  await readToEnd(bridge, h, id)
  t.ok(bridge.body(id).equals(body))
  h.output(id, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
})

t.test('output backpressure pauses the worker and resumes it on drain; reading goes on', async (t) => {
  const { bridge, h, connect, send, nextSubmit } = await rig(t)
  const c = await connect()
  c.socket.pause()
  send(c, { script: '/down' })
  const id = await nextSubmit()
  const chunk = encodeResponseBody(Buffer.alloc(1 << 20, 1))
  t.equal(h.output(id, encodeHead(200, '200 OK'), false, -1), false)
  let paused = false
  for (let i = 0; i < 8 && !paused; i++) paused = h.output(id, chunk, false, -1) === true
  t.ok(paused, 'worker asked to pause')
  t.notOk(bridge.has('resume', id))
  c.socket.resume()
  await waitFor(() => bridge.has('resume', id), 5000, 'resume after drain')
  h.output(id, encodeEnd(), true, -1)
  const a = await c.answer()
  t.equal(a.kind, 'response')
})

t.test('FILE without descriptor passing: the file is read and sent as BODY frames, in order', async (t) => {
  const { bridge, h, connect, send, nextSubmit } = await rig(t)
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-file-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const data = Buffer.alloc(700 * 1024)
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff
  writeFileSync(join(dir, 'f'), data)
  const c = await connect()
  send(c, { script: '/file' })
  const id = await nextSubmit()
  const fd = openSync(join(dir, 'f'), 'r')
  const paused = h.output(id, Buffer.concat([encodeHead(200, '200 OK'), encodeResponseBody('<'), encodeFile(5, FILE_TO_EOF)]), false, fd)
  t.equal(paused, true, 'the worker waits while the file is sent')
  // Output that arrives meanwhile queues behind the file.
  h.output(id, encodeResponseBody('>'), false, -1)
  await waitFor(() => bridge.has('resume', id), 5000, 'resume after the file')
  h.output(id, encodeEnd(), true, -1)
  const a = await c.answer()
  t.ok(a.kind === 'response' && a.body.equals(Buffer.concat([Buffer.from('<'), data.subarray(5), Buffer.from('>')])), 'bytes and order')
  t.throws(() => fstatSync(fd), 'the descriptor was closed')
})

t.test('the app answers without reading its body: the rest is discarded, connection reusable', async (t) => {
  const { bridge, h, connect, send, nextSubmit } = await rig(t)
  const c = await connect()
  const frames = requestFrames({ script: '/x', body: Buffer.alloc(1 << 20, 3), chunk: 32 * 1024 })
  c.write(frames[0])
  const id = await nextSubmit()
  h.output(id, HELLO, true, -1)
  for (const f of frames.slice(1)) c.write(f)
  t.equal(text(await c.answer()), 'hello')
  send(c, { script: '/next' })
  const id2 = await nextSubmit(id)
  h.output(id2, HELLO, true, -1)
  t.equal(text(await c.answer()), 'hello')
  void bridge
})

t.test('the child going away mid-request aborts it', async (t) => {
  const { bridge, connect, send, nextSubmit, server } = await rig(t)
  const c = await connect()
  send(c, { script: '/x' })
  const id = await nextSubmit()
  c.close()
  await waitFor(() => bridge.has('abort', id), 2000, 'abort')
  await waitFor(() => server.connections.size === 0, 2000, 'connection released')
  t.equal(server.dispatcher.activeCount, 1, 'the slot stays taken until final')
})

t.test('queue-timeout: 503 without submitting', async (t) => {
  const { bridge, connect, send } = await rig(t, { queueTimeoutMs: 1000 })
  const c = await connect()
  send(c, { script: '/x', body: Buffer.from('abc'), requestStartUs: (Date.now() - 2000) * 1000 })
  const a = await c.answer()
  t.equal(a.kind === 'error' ? a.status : 0, 503)
  t.same(bridge.submitted(), [])
})

t.test('socket-timeout: a child that stops sending its body is dropped', async (t) => {
  const { bridge, connect, nextSubmit } = await rig(t, { socketTimeoutMs: 300 })
  const c = await connect()
  const frames = requestFrames({ script: '/x', body: Buffer.from('partial') })
  c.write(frames[0])
  const id = await nextSubmit()
  await c.closed(3000)
  t.ok(bridge.has('abort', id))
})

t.test('stop: idle connections get GOAWAY, busy ones after their response; force-close answers 504', async (t) => {
  const { h, connect, send, nextSubmit, server } = await rig(t, { threads: 2 })
  const idle = await connect()
  const busy = await connect()
  const stuck = await connect()
  send(busy, { script: '/x' })
  const id = await nextSubmit()
  send(stuck, { script: '/y' })
  await nextSubmit(id)
  server.beginStop()
  t.equal((await idle.answer()).kind, 'goaway')
  h.output(id, HELLO, true, -1)
  t.equal(text(await busy.answer()), 'hello')
  t.equal((await busy.answer()).kind, 'goaway')
  server.forceCloseAll(504, 'timeout')
  const a = await stuck.answer()
  t.equal(a.kind === 'error' ? a.status : 0, 504)
})

t.test('a final GOAWAY from the bridge (a changed script): the process stops, the child gets one GOAWAY', async (t) => {
  const { h, connect, send, nextSubmit, server } = await rig(t, { threads: 2 })
  let restarts = 0
  ;(server as unknown as { hooks: { restartRequested: () => void } }).hooks.restartRequested = () => {
    restarts++
    server.beginStop()
  }
  const other = await connect()
  const c = await connect()
  send(other, { script: '/long' })
  const longId = await nextSubmit()
  send(c, { script: '/changed', body: Buffer.from('small body') })
  const id = await nextSubmit(longId)
  t.equal(h.output(id, GOAWAY_FRAME, true, -1), false)
  t.equal(restarts, 1, 'the restart hook ran')
  t.equal((await c.answer()).kind, 'goaway', 'the request was not run: the child may send it again')
  t.ok(await c.closed(), 'and the connection closes')
  t.ok(server.stopping, 'the listener no longer takes connections')
  h.output(longId, HELLO, true, -1)
  t.equal(text(await other.answer()), 'hello', 'a request already running still finishes')
})

t.test('lifecycle: maximum-requests stops after the last admitted request, exit code 4', async (t) => {
  let code = -1
  const lc = new Lifecycle({ group: 'g', gracefulTimeoutMs: 0, shutdownTimeoutMs: 1000, maximumRequests: 2 }, { exit: (c) => (code = c), armHardExit: () => undefined })
  const { bridge, h, connect, send, nextSubmit, server } = await rig(t, { threads: 4 })
  // rewire admitted() through the lifecycle
  ;(server as unknown as { hooks: { admitted: () => void } }).hooks.admitted = () => lc.admitted()
  lc.attach(server, bridge)
  const c1 = await connect()
  const c2 = await connect()
  const c3 = await connect()
  send(c1, { script: '/1' })
  const id1 = await nextSubmit()
  send(c2, { script: '/2' })
  const id2 = await nextSubmit(id1)
  t.ok(lc.stopping, 'stopping after the 2nd admission')
  send(c3, { script: '/3' })
  t.equal((await c3.answer()).kind, 'goaway', 'third request refused')
  h.output(id1, HELLO, true, -1)
  h.output(id2, HELLO, true, -1)
  t.equal(text(await c1.answer()), 'hello')
  t.equal(text(await c2.answer()), 'hello')
  await waitFor(() => code !== -1, 3000, 'exit')
  t.equal(code, 4)
})

t.test('lifecycle: graceful period, then shutdown-timeout, then forced', async (t) => {
  let code = -1
  const lc = new Lifecycle({ group: 'g', gracefulTimeoutMs: 200, shutdownTimeoutMs: 300, maximumRequests: 0 }, { exit: (c) => (code = c), armHardExit: () => undefined })
  const { bridge, connect, send, nextSubmit, server } = await rig(t)
  lc.attach(server, bridge)
  const c = await connect()
  send(c, { script: '/stuck' })
  await nextSubmit()
  const start = Date.now()
  lc.stop('graceful-signal')
  await waitFor(() => code !== -1, 3000, 'exit')
  const took = Date.now() - start
  t.equal(code, 0)
  t.ok(took >= 480 && took < 1500, `graceful 200 + shutdown 300 ms: took ${took}`)
  const a = await c.answer()
  t.equal(a.kind === 'error' ? a.status : 0, 503)
})
