// Real frameworks from Debian's dist-packages: Flask and Django load and answer, in the main
// interpreter and in sub-interpreters (C extensions such as markupsafe and _json load too).
import t from 'tap'

import { AddonProcess, body, fixture, header, spec } from './harness'

t.test('Flask', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  for (const group of ['', 'flask-sub']) {
    const r = await host.run(spec(fixture('flask'), { group, query: 'x=1' }))
    t.same(r.violations, [])
    t.equal(r.head?.status, 200, `GET in '${group}'`)
    t.equal(header(r, 'content-type'), 'application/json')
    t.same(JSON.parse(body(r).toString()), { framework: 'flask', path: '/', args: { x: '1' } })
  }
  const form = Buffer.from('a=1&b=two')
  const post = await host.run(
    spec(
      fixture('flask'),
      {
        method: 'POST',
        pathInfo: '/post',
        extra: { CONTENT_TYPE: 'application/x-www-form-urlencoded', CONTENT_LENGTH: String(form.length) },
      },
      { body: { base64: form.toString('base64') } },
    ),
  )
  t.equal(post.head?.status, 200)
  t.same(JSON.parse(body(post).toString()), { length: 9, form: { a: '1', b: 'two' } })
  const missing = await host.run(spec(fixture('flask'), { pathInfo: '/missing' }))
  t.equal(missing.head?.status, 404)
})

t.test('Django', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  for (const group of ['', 'django-one', 'django-two']) {
    const r = await host.run(spec(fixture('django'), { group }))
    t.same(r.violations, [])
    t.equal(r.head?.status, 200, `Django in '${group}'`)
    const out = JSON.parse(body(r).toString())
    t.equal(out.framework, 'django')
    t.match(out.version, /^3\.2/)
  }
  const hello = await host.run(spec(fixture('django'), { pathInfo: '/hello/world' }))
  t.equal(body(hello).toString(), 'Hello world')
  const missing = await host.run(spec(fixture('django'), { pathInfo: '/nope' }))
  t.equal(missing.head?.status, 404)
})
