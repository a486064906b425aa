// ASGI through the bridge itself (no Apache): an ASGI callable's first request is handed from its
// worker to the event loop, later ones go there at submit(); bodies both ways with the bridge's input
// watermarks and output backpressure; an abort reaches the application as http.disconnect. The same
// frames as for WSGI come out.
import { join } from 'node:path'
import t from 'tap'

import { AddonProcess, body, header, ROOT, spec } from './harness'

const asgi = (name: string): string => join(ROOT, 'test', 'fixtures', 'asgi', name, 'app.py')

t.test('an ASGI application through the bridge', async (t) => {
  const host = await AddonProcess.start({ threads: 2 })
  t.teardown(() => host.kill())

  await t.test('hello world, three times (handed over, then straight to the loop): one event each', async (t) => {
    for (let i = 0; i < 3; i++) {
      const r = await host.run(spec(asgi('hello')))
      t.same(r.violations, [])
      t.equal(r.head?.status, 200)
      t.equal(r.head?.statusLine, '200 OK', 'Apache gets a status line with its reason phrase')
      t.equal(header(r, 'content-type'), 'text/plain')
      t.equal(body(r).toString(), 'Hello ASGI!')
      t.equal(r.end, 0)
      t.equal(r.events, 1, 'HEAD, BODY and END in one event')
    }
  })

  await t.test('a 4 MiB body in, its digest out, with the input watermarks', async (t) => {
    const r = await host.run(spec(asgi('bodies'), { method: 'POST', pathInfo: '/echo' }, { body: { size: 4 * 1024 * 1024, chunk: 65536 } }))
    t.same(r.violations, [])
    const j = JSON.parse(body(r).toString())
    t.equal(j.length, 4 * 1024 * 1024)
    t.ok(j.messages > 1, `${j.messages} http.request messages`)
    t.ok(r.inputPauses > 0 && r.inputResumes > 0, 'the reader was paused and resumed')
  })

  await t.test('a 10 MiB streamed response with output paused: whole, in order', async (t) => {
    const r = await host.run(spec(asgi('bodies'), { pathInfo: '/stream', query: 'n=160&size=65536' }, { pauseOutput: { holdMs: 2 } }))
    t.same(r.violations, [])
    t.equal(r.bodyLength, 160 * 65536)
    t.ok(r.maxEventBytes <= 1024 * 1024 + 65536, `no event above the output window (${r.maxEventBytes} bytes)`)
  })

  await t.test('an abort ends the request: it stops early and its final event still comes', async (t) => {
    const r = await host.run(spec(asgi('bodies'), { pathInfo: '/stream', query: 'n=100&size=65536&pause=0.05' }, { abortAfterOutput: 200000 }))
    t.ok(r.bodyLength < 100 * 65536, `cut short after ${r.bodyLength} bytes`)
    t.equal(r.end, 1, 'END incomplete')
  })
})
