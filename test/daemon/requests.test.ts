// The daemon serving requests over the wire protocol: responses, connection reuse, streamed bodies both
// ways, queueing beyond `threads`, queue-timeout, and malformed input that drops only its connection.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { encodeFrame } from '../../src/protocol/frames'
import { FrameType } from '../../src/protocol/wire'
import { fixture, requestFrames, skipReason, startDaemon, text, waitFor } from './harness'

const skip = skipReason()
if (skip) t.plan(0, skip)

t.test('requests and responses', async (t) => {
  const d = await startDaemon(t, { options: { threads: 2 } })

  t.test('one request, one response', async (t) => {
    const c = await d.connect()
    const a = await c.request({ script: fixture('daemon-process-info') })
    t.equal(a.kind, 'response')
    if (a.kind !== 'response') return
    t.equal(a.status, 200)
    t.equal(a.outcome, 0)
    const info = JSON.parse(a.body.toString())
    t.equal(info.pid, d.pid)
    t.equal(info.env.MOD_WSGI_DAEMON_CONFIG, null, 'the configuration is not visible to applications')
    t.equal(info.process_group, 'myapp')
    t.equal(info.multithread, true)
    c.close()
  })

  t.test('several requests on one connection', async (t) => {
    const c = await d.connect()
    for (let i = 0; i < 20; i++) {
      const a = await c.request({ script: fixture('daemon-echo'), body: Buffer.from(`request ${i}`) })
      t.equal(text(a), `request ${i}`)
    }
    t.notOk(c.ended, 'connection still open')
    c.close()
  })

  t.test('a 4 MiB body streams in and out', async (t) => {
    const body = Buffer.alloc(4 << 20)
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff
    const c = await d.connect()
    const a = await c.request({ script: fixture('daemon-echo'), body, chunk: 1 << 20 })
    t.equal(a.kind, 'response')
    if (a.kind === 'response') t.ok(a.body.equals(body), 'echoed intact')
    // And the connection carries on.
    t.equal(text(await c.request({ script: fixture('daemon-echo'), body: Buffer.from('next') })), 'next')
    c.close()
  })

  t.test('an app that answers without reading its body: the rest is discarded', async (t) => {
    const c = await d.connect()
    const a = await c.request({ script: fixture('daemon-echo'), query: 'noread=1&out=3', body: Buffer.alloc(2 << 20, 1) })
    t.equal(text(a), 'xxx')
    t.equal(text(await c.request({ script: fixture('daemon-echo'), body: Buffer.from('after') })), 'after')
    c.close()
  })

  t.test('a large response to a child that reads slowly', async (t) => {
    const c = await d.connect()
    c.socket.pause()
    for (const f of requestFrames({ script: fixture('generator-stream'), query: `size=${8 << 20}` })) c.write(f)
    await new Promise((r) => setTimeout(r, 300))
    c.socket.resume()
    const a = await c.answer()
    t.equal(a.kind === 'response' ? a.body.length : -1, 8 << 20)
    c.close()
  })

  t.test('wsgi.file_wrapper: FILE frames carry the descriptor (SCM_RIGHTS), in order', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wsgi-file-'))
    chmodSync(dir, 0o755)
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'data.bin')
    const data = Buffer.alloc(3 * 1024 * 1024 + 123)
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff
    writeFileSync(file, data, { mode: 0o644 })
    const cases: Array<[string, Buffer]> = [
      ['', data],
      ['&offset=1000000', data.subarray(1000000)],
      ['&offset=10&length=5000', data.subarray(10, 5010)],
      ['&prefix=2097152', Buffer.concat([Buffer.alloc(2097152, 'p'), data])],
    ]
    for (const [q, want] of cases) {
      const out = join(dir, 'out.bin')
      const frames = Buffer.concat(requestFrames({ script: fixture('daemon-file-wrapper'), query: `path=${file}${q}` }))
      const r = spawnSync('/usr/bin/python3', [join(__dirname, 'fd-client.py'), d.socketPath, out], { input: frames, encoding: 'buffer', timeout: 20000 })
      const summary = JSON.parse(r.stdout.toString() || '{}')
      t.equal(summary.kind, 'response', `${q || 'whole file'}: ${r.stderr}`)
      t.ok(summary.frames.includes(FrameType.FILE), 'a FILE frame was used')
      t.equal(summary.fds_received, 1, 'one descriptor received')
      t.ok(readFileSync(out).equals(want), `${q || 'whole file'}: bytes intact`)
    }
  })

  t.test('beyond threads, requests wait their turn', async (t) => {
    const clients = await Promise.all([1, 2, 3, 4].map(() => d.connect()))
    const start = Date.now()
    const answers = await Promise.all(clients.map((c) => c.request({ script: fixture('daemon-sleep'), query: 's=0.4' })))
    const took = Date.now() - start
    t.same(answers.map(text), ['slept', 'slept', 'slept', 'slept'])
    t.ok(took >= 750, `4 requests of 0.4 s on 2 threads took ${took} ms (two rounds)`)
    t.ok(took < 2500, `and not much more (${took} ms)`)
    for (const c of clients) c.close()
  })

  t.test('a malformed frame drops only its connection', async (t) => {
    const good = await d.connect()
    const bad = await d.connect()
    bad.write(encodeFrame(0x7f, 'junk'))
    await bad.closed()
    t.ok(bad.ended, 'unknown frame type: closed')
    await d.waitForLog(/WSGI02040: Malformed data .*unknown frame type 0x7f/)

    const bad2 = await d.connect()
    bad2.write(encodeFrame(FrameType.BODY, 'not in a request'))
    await bad2.closed()
    await d.waitForLog(/WSGI02040: .*frame BODY not allowed here/)

    const bad3 = await d.connect()
    const v2 = encodeFrame(FrameType.REQUEST, Buffer.alloc(16))
    v2[0] = 2
    bad3.write(v2)
    await bad3.closed()
    await d.waitForLog(/WSGI02040: .*protocol version 2/)

    // Mid-request garbage: the request is abandoned, the daemon lives on.
    const bad4 = await d.connect()
    const [req] = requestFrames({ script: fixture('daemon-echo'), body: Buffer.from('x') })
    bad4.write(req)
    bad4.write(encodeFrame(FrameType.REQUEST, Buffer.alloc(16)))
    await bad4.closed()

    t.equal(text(await good.request({ script: fixture('daemon-echo'), body: Buffer.from('still fine') })), 'still fine')
    good.close()
  })

  t.test('the child closing mid-request abandons it and frees the thread', async (t) => {
    const c = await d.connect()
    const [req] = requestFrames({ script: fixture('daemon-echo'), body: Buffer.alloc(10) })
    c.write(req) // body never completes
    await new Promise((r) => setTimeout(r, 200))
    c.close()
    await d.waitForLog(/WSGI02042: Apache child closed the connection during request \d+/)
    // Both threads still usable.
    const cs = await Promise.all([d.connect(), d.connect()])
    const as = await Promise.all(cs.map((x) => x.request({ script: fixture('daemon-echo'), body: Buffer.from('ok') })))
    t.same(as.map(text), ['ok', 'ok'])
    for (const x of cs) x.close()
  })

  t.test('many connections at once', async (t) => {
    const n = 30
    const cs = await Promise.all(Array.from({ length: n }, () => d.connect()))
    const as = await Promise.all(cs.map((c, i) => c.request({ script: fixture('daemon-echo'), body: Buffer.from(`c${i}`) })))
    t.same(
      as.map(text),
      Array.from({ length: n }, (_, i) => `c${i}`),
    )
    for (const c of cs) c.close()
    await waitFor(() => true)
  })
})

t.test('queue-timeout answers stale requests with 503 without running them', async (t) => {
  const d = await startDaemon(t, { options: { threads: 1, queue_timeout: 1 } })
  const c = await d.connect()
  const stale = await c.request({ script: fixture('daemon-echo'), body: Buffer.from('old'), requestStartUs: (Date.now() - 5000) * 1000 })
  t.equal(stale.kind, 'error')
  if (stale.kind === 'error') t.equal(stale.status, 503)
  await d.waitForLog(/WSGI02041: Queue timeout expired for WSGI daemon process 'myapp'/)
  t.equal(text(await c.request({ script: fixture('daemon-echo'), body: Buffer.from('fresh') })), 'fresh', 'connection reusable')

  // Queued behind a long request until older than the timeout.
  const busy = await d.connect()
  const waiting = await d.connect()
  const p1 = busy.request({ script: fixture('daemon-sleep'), query: 's=1.6' })
  await new Promise((r) => setTimeout(r, 100))
  const p2 = waiting.request({ script: fixture('daemon-echo'), body: Buffer.from('late') })
  t.equal(text(await p1), 'slept')
  const late = await p2
  t.equal(late.kind === 'error' ? late.status : 0, 503, 'waited 1.5 s for a thread: 503')
  c.close()
  busy.close()
  waiting.close()
})
