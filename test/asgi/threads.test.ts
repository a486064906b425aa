// Where ASGI requests run: on their application group's event loop, holding no worker thread (many
// slow requests at once with threads=1, and WSGI requests busy on every thread do not hold ASGI ones
// up), sync code through the loop's executor of `threads` threads (asgiref's sync_to_async), uvloop when
// asked for; and how an application is recognised (application-type= for odd callables).
import t from 'tap'
import { ALLOW_FIXTURES, assertRefused, fixture, startApache } from '../helpers/apache'
import { ALLOW_ASGI, asgiFixture } from './helpers'

t.test('ASGI requests hold no thread', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess one threads=1
WSGIProcessGroup one
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /a ${asgiFixture('threads')}
WSGIScriptAlias /w ${fixture('daemon-sleep')}
${ALLOW_ASGI}
${ALLOW_FIXTURES}
`,
  })
  await apache.request('/a/sleep?s=0')

  await t.test('20 requests sleeping 2 s each finish together with threads=1', async (t) => {
    const started = Date.now()
    const rs = await Promise.all(Array.from({ length: 20 }, () => apache.request('/a/sleep?s=2', { timeoutMs: 60000 })))
    const took = Date.now() - started
    t.same(rs.map((r) => r.status), Array(20).fill(200))
    t.ok(took < 15000, `all in ${took} ms (one after another would take 40 s)`)
  })

  await t.test('a WSGI request busy on the only thread does not hold ASGI requests up', async (t) => {
    const wsgi = apache.request('/w?s=4', { timeoutMs: 60000 })
    await new Promise((r) => setTimeout(r, 500))
    const started = Date.now()
    const rs = await Promise.all(Array.from({ length: 5 }, () => apache.request('/a/sleep?s=0.2', { timeoutMs: 60000 })))
    const took = Date.now() - started
    t.same(rs.map((r) => r.status), Array(5).fill(200))
    t.ok(took < 3000, `answered in ${took} ms while the WSGI request still ran`)
    t.equal((await wsgi).status, 200)
  })

  await t.test('sync code runs on the executor threads, not on the loop', async (t) => {
    const j = JSON.parse((await apache.request('/a/sync')).text)
    t.match(j.executor, /^mod_wsgi-asgi/, `run_in_executor(None): ${j.executor}`)
    t.match(j.sync_to_async, /^mod_wsgi-asgi/, `sync_to_async(thread_sensitive=False): ${j.sync_to_async}`)
    t.notMatch(j.loop, /^mod_wsgi-asgi/)
  })

  await t.test('the loop is asyncio\'s by default', async (t) => {
    const j = JSON.parse((await apache.request('/a/loop')).text)
    t.match(j.type, /^asyncio\./)
    t.equal(j.main, false, 'not taken for the main thread')
  })
})

t.test('asgi-loop=uvloop', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess uv threads=2 asgi-loop=uvloop
WSGIProcessGroup uv
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /a ${asgiFixture('threads')}
${ALLOW_ASGI}
`,
  })
  const j = JSON.parse((await apache.request('/a/loop')).text)
  t.equal(j.type, 'uvloop.Loop')
  const rs = await Promise.all(Array.from({ length: 10 }, () => apache.request('/a/sleep?s=0.5')))
  t.same(rs.map((r) => r.status), Array(10).fill(200))
  t.equal(JSON.parse((await apache.request('/a/sync')).text).executor.startsWith('mod_wsgi-asgi'), true)
})

t.test('application-type: auto, asgi and wsgi', async (t) => {
  const odd = asgiFixture('odd-callable')
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess kinds threads=2
WSGIProcessGroup kinds
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /auto ${odd}
WSGIScriptAlias /asgi ${odd} application-type=asgi
WSGIScriptAlias /wsgi ${odd} application-type=wsgi callable-object=coroutine_app
WSGIScriptAlias /plain ${fixture('hello')} application-type=auto
${ALLOW_ASGI}
${ALLOW_FIXTURES}
`,
  })
  const forced = await apache.request('/asgi/x')
  t.equal(forced.status, 200)
  t.equal(forced.text, 'odd ASGI callable served', 'application-type=asgi serves a callable that does not look like ASGI')
  t.equal((await apache.request('/asgi/y')).text, 'odd ASGI callable served', 'and again, from the loop directly')
  t.equal((await apache.request('/auto/x')).status, 500, 'auto: taken for WSGI, it fails as WSGI')
  t.equal((await apache.request('/wsgi/x')).status, 500, 'application-type=wsgi: a coroutine function is called as WSGI')
  t.equal((await apache.request('/plain')).text, 'Hello World!', 'WSGI as before')
})

t.test('apache2 -t checks application-type= and asgi-loop=', async (t) => {
  await assertRefused(t, `WSGIScriptAlias /x ${asgiFixture('hello')} application-type=async`,
    /WSGIScriptAlias: option 'application-type' must be auto, asgi or wsgi, not 'async'/)
  await assertRefused(t, 'WSGIDaemonProcess g asgi-loop=trio', /WSGIDaemonProcess 'g'.*asgi-loop.*asyncio or uvloop.*trio/)
})
