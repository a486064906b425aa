// Response output: streaming with backpressure (a 10 MiB generator never buffered whole), the
// write() callable, Content-Length handling and wsgi.file_wrapper's FILE frames.
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import t from 'tap'

import { AddonProcess, body, fixture, header, spec } from './harness'

// What the stream fixture sends: block i filled with the byte i % 251.
function streamSha(size: number, chunk: number): string {
  const h = createHash('sha256')
  for (let sent = 0, i = 0; sent < size; i++) {
    const n = Math.min(chunk, size - sent)
    h.update(Buffer.alloc(n, i % 251))
    sent += n
  }
  return h.digest('hex')
}

const MiB = 1024 * 1024

t.test('a 10 MiB generator with backpressure is never buffered whole', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  for (const chunk of [65536, 10 * MiB]) {
    const r = await host.run(
      spec(fixture('stream'), { query: `size=${10 * MiB}&chunk=${chunk}` }, { pauseOutput: { holdMs: 30 } }),
    )
    t.same(r.violations, [])
    t.equal(r.head?.status, 200)
    t.equal(header(r, 'content-length'), String(10 * MiB))
    t.equal(r.bodyLength, 10 * MiB)
    t.equal(r.bodySha256, streamSha(10 * MiB, chunk), `chunk ${chunk}: complete and in order`)
    t.equal(r.end, 0)
    // While the handler said "paused", only what was already on its way may arrive: the worker
    // stops at ~1 MiB posted and not yet handled.
    t.ok(r.maxPausedBytes <= 1.5 * MiB, `chunk ${chunk}: at most ${r.maxPausedBytes} bytes arrived while paused`)
    t.ok(r.maxEventBytes <= 300 * 1024, `chunk ${chunk}: events stay small (${r.maxEventBytes} bytes)`)
  }
})

t.test('release() frees an event\'s data once read, and nothing else', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  for (const query of [`size=${2 * MiB}&chunk=65536`, 'size=100&chunk=100']) {
    const r = await host.run(spec(fixture('stream'), { query }, { releaseOutput: true }))
    t.same(r.violations, [], `${query}: views left alone`)
    t.equal(r.bodySha256, streamSha(Number(/size=(\d+)/.exec(query)?.[1]), Number(/chunk=(\d+)/.exec(query)?.[1])), `${query}: body intact`)
    t.equal(r.released, r.events, `${query}: every event's data emptied (${r.released} of ${r.events})`)
  }
})

t.test('without pauses the stream still flows in bounded events', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('stream'), { query: `size=${10 * MiB}&chunk=1000000` }))
  t.equal(r.bodyLength, 10 * MiB)
  t.equal(r.bodySha256, streamSha(10 * MiB, 1000000))
  t.ok(r.maxEventBytes <= 1.1 * MiB)
})

t.test('the write() callable', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('write')))
  t.same(r.violations, [])
  t.equal(r.head?.status, 200)
  t.equal(body(r).toString(), 'one,two,three')
  t.equal(r.end, 0)
  t.ok(r.events >= 3, 'write() sends at once (PEP 3333)')
})

t.test('Content-Length: extra output dropped, short output logged and cut off', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  for (const gen of ['0', '1']) {
    let mark = host.logLength
    const long = await host.run(spec(fixture('content-length'), { query: `mode=long&gen=${gen}` }))
    t.same(long.violations, [])
    t.equal(body(long).toString(), '0123456789abcde', 'exactly Content-Length bytes')
    t.equal(long.end, 0)
    t.match(await host.logs(mark), /WSGI03022: Response of WSGI script '.*' is longer than its Content-Length \(15 bytes\)/)
    mark = host.logLength
    const short = await host.run(spec(fixture('content-length'), { query: `mode=short&gen=${gen}` }))
    t.equal(short.bodyLength, 20)
    t.equal(short.end, 1, 'the child closes the client connection instead of ending normally')
    t.match(await host.logs(mark), /WSGI03023: .* shorter than its Content-Length \(20 of 30 bytes\)/)
  }
})

t.test('wsgi.file_wrapper: a FILE frame for plain files', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const file = fixture('environ')
  const content = readFileSync(file)
  const whole = await host.run(spec(fixture('file-wrapper'), { query: `path=${file}` }))
  t.same(whole.violations, [])
  t.equal(whole.fileFrames, 1)
  t.equal(body(whole).toString(), content.toString())
  t.equal(whole.end, 0)

  const part = await host.run(spec(fixture('file-wrapper'), { query: `path=${file}&skip=100&length=50` }))
  t.equal(part.fileFrames, 1)
  t.equal(body(part).toString(), content.subarray(100, 150).toString(), 'from the file position, Content-Length bytes')
  t.equal(part.end, 0)

  const head = await host.run(spec(fixture('file-wrapper'), { method: 'HEAD', query: `path=${file}` }))
  t.equal(head.fileFrames, 0)
  t.equal(head.bodyLength, 0)

  const proc = await host.run(spec(fixture('file-wrapper'), { query: 'path=/proc/self/status' }))
  t.equal(proc.fileFrames, 0, 'files without a size are read through the iterator')
  t.match(body(proc).toString(), /^Name:/)
  t.ok(statSync(file).size > 150)
})
