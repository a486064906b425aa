// wsgi.input: a 5 MiB body streamed through every read variant with the input watermarks (the
// driver stops feeding above 256 KiB buffered until inputResume), abort, and unread bodies.
import t from 'tap'

import { AddonProcess, body, fixture, spec } from './harness'
import { makeBody, sha256 } from './wire'

const SIZE = 5 * 1024 * 1024
const expected = sha256(makeBody(SIZE))

t.test('a 5 MiB body through each read variant', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const modes = ['digest', 'read', 'readall', 'readline', 'readlinen', 'readlines', 'iter']
  for (const mode of modes) {
    const query = `mode=${mode}&block=${mode === 'readlinen' ? 40 : 100000}&delay=0.1`
    const r = await host.run(spec(fixture('echo'), { method: 'POST', query }, { body: { size: SIZE } }))
    t.same(r.violations, [], mode)
    t.equal(r.head?.status, 200, mode)
    const out = JSON.parse(body(r).toString())
    t.equal(out.length, SIZE, `${mode}: all bytes read`)
    t.equal(out.sha256, expected, `${mode}: in order, unchanged`)
    t.equal(out.after_eof, '', `${mode}: b'' after the end`)
    t.ok(r.inputPauses > 0, `${mode}: the feeder was paused above 256 KiB (${r.inputPauses} times)`)
    t.equal(r.inputResumes, r.inputPauses, `${mode}: each pause ended with inputResume`)
    if (mode === 'readline' || mode === 'iter' || mode === 'readlines') t.equal(out.reads, SIZE / 64, `${mode}: line by line`)
    if (mode === 'readlinen') t.equal(out.reads, (SIZE / 64) * 2, 'readline(40) splits each 64-byte line in two')
  }
})

t.test('the body streamed back while it is read', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const r = await host.run(
    spec(fixture('echo'), { method: 'POST', query: 'mode=echo&block=32768' }, { body: { size: SIZE, chunk: 50000 } }),
  )
  t.same(r.violations, [])
  t.equal(r.bodyLength, SIZE)
  t.equal(r.bodySha256, expected)
  t.ok(r.events > 10, `streamed in many events (${r.events})`)
})

t.test('no body: reads return b"" at once', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('echo'), { query: 'mode=read' }))
  const out = JSON.parse(body(r).toString())
  t.equal(out.length, 0)
  t.equal(out.after_eof, '')
  const empty = await host.run(spec(fixture('echo'), { method: 'POST', query: 'mode=iter' }, { body: { size: 0 } }))
  t.equal(JSON.parse(body(empty).toString()).length, 0, 'an empty streamed body')
})

t.test('abort: the application gets OSError, the worker lives on', async (t) => {
  const host = await AddonProcess.start({ threads: 1 })
  t.teardown(() => host.kill())
  const r = await host.run(
    spec(fixture('echo'), { method: 'POST', query: 'mode=digest&block=1000' }, { body: { size: SIZE }, abortAfterInput: 300000 }),
  )
  t.same(r.violations, [])
  t.ok(r.error || r.end === 1, 'the request ends without a normal response')
  t.match(await host.logs(), /echo: OSError while reading wsgi\.input: request data read error: client connection closed/)
  t.match(await host.logs(), /WSGI03013: Exception occurred processing WSGI script '.*echo\/app\.wsgi'\./)
  const next = await host.run(spec(fixture('echo'), { method: 'POST' }, { body: { size: 1000 } }))
  t.equal(JSON.parse(body(next).toString()).length, 1000, 'the next request is served')
})

t.test('abort while the application waits for input', async (t) => {
  const host = await AddonProcess.start({ threads: 1 })
  t.teardown(() => host.kill())
  // The body never ends: the app blocks in read() until the abort wakes it.
  const r = await host.run(spec(fixture('echo'), { method: 'POST', query: 'mode=read' }, { body: { size: 1000 }, keepInputOpen: true, abortAfterMs: 300 }))
  t.ok(r.elapsedMs >= 250, 'the app was waiting')
  t.ok(r.error || r.end === 1)
  t.match(await host.logs(), /echo: OSError while reading wsgi\.input/)
})

t.test('a body the application never reads does not hold the request', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('hello'), { method: 'POST' }, { body: { size: 2 * 1024 * 1024 } }))
  t.equal(r.head?.status, 200)
  t.equal(body(r).toString(), 'Hello World!')
})
