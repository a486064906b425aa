// ASGI applications that fail, through Apache: an exception before the response starts is a 500 with
// the traceback in the error log (one line naming the cause); after part of the body went out the client
// sees a truncated response; bad messages are raised into the application; request-timeout cancels the
// one request that went that long without output (504) and the process serves on; a client that leaves
// is seen by the application.
import t from 'tap'
import { startApache, waitFor } from '../helpers/apache'
import { ALLOW_ASGI, asgiFixture, marker, privateCopy, rawRequest } from './helpers'

t.test('ASGI errors', async (t) => {
  const { dir, script } = privateCopy('errors')
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess errors threads=2 request-timeout=2
WSGIProcessGroup errors
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /e ${script}
WSGIScriptAlias /b ${asgiFixture('bodies')}
<Directory ${dir}>
  Require all granted
</Directory>
${ALLOW_ASGI}
`,
  })
  const pid = (await apache.request('/e/pid')).text

  await t.test('an exception before the response starts: 500, and its traceback logged', async (t) => {
    const r = await apache.request('/e/raise-before')
    t.equal(r.status, 500)
    const line = await apache.waitForLog(/WSGI03200: Exception occurred processing ASGI application 'application' of script '[^']*'\./)
    t.ok(line, 'one line naming the application')
    await apache.waitForLog(/ValueError: raised before the response/)
    t.match(apache.log(), /WSGI01224: Daemon process 'errors' failed the request with status 500/)
  })

  await t.test('an exception after http.response.start but before any body: still a 500', async (t) => {
    const r = await apache.request('/e/raise-started')
    t.equal(r.status, 500)
    await apache.waitForLog(/ValueError: raised after http.response.start/)
  })

  await t.test('an exception in the middle of the body: the client sees a truncated response', async (t) => {
    const r = await rawRequest(apache.port, 'GET /e/raise-after HTTP/1.1\r\nHost: x\r\n\r\n')
    t.match(r.head, /^HTTP\/1.1 200 /, 'the response had started')
    t.match(r.head, /Transfer-Encoding: chunked/i)
    t.ok(r.closed, 'the connection is closed')
    t.notOk(r.body.toString('latin1').endsWith('0\r\n\r\n'), 'without the last chunk')
    await apache.waitForLog(/WSGI03202: Exception occurred in ASGI application .* after its response started/)
    await apache.waitForLog(/ValueError: raised in the middle of the body/)
  })

  await t.test('returning without a response: 500 and a log line', async (t) => {
    const r = await apache.request('/e/no-response')
    t.equal(r.status, 500)
    await apache.waitForLog(/WSGI03201: ASGI application .* returned without starting a response/)
  })

  await t.test('returning with more_body still set: a truncated response', async (t) => {
    const r = await rawRequest(apache.port, 'GET /e/no-end HTTP/1.1\r\nHost: x\r\n\r\n')
    t.match(r.head, /^HTTP\/1.1 200 /)
    t.ok(r.closed)
    t.notOk(r.body.toString('latin1').endsWith('0\r\n\r\n'), 'without the last chunk')
    await apache.waitForLog(/WSGI03202: ASGI application .* returned without completing its response/)
  })

  await t.test('a bad status or header is raised into the application: 500', async (t) => {
    t.equal((await apache.request('/e/bad-status')).status, 500)
    await apache.waitForLog(/ValueError: ASGI response status must be an integer from 100 to 999/)
    const r = await apache.request('/e/bad-header')
    t.equal(r.status, 500)
    t.notOk(r.headers.injected, 'no header smuggled in')
    await apache.waitForLog(/ValueError: invalid character \(CR, LF or NUL\) in ASGI response header/)
  })

  await t.test('an exception after the response was complete: the response stands, the exception is logged', async (t) => {
    const r = await apache.request('/e/after-complete')
    t.equal(r.status, 200)
    t.equal(r.text, 'complete')
    await apache.waitForLog(/WSGI03204: Exception occurred in ASGI application .* after its response was complete/)
  })

  await t.test('request-timeout cancels the request: 504, and the same process serves on', async (t) => {
    const started = Date.now()
    const r = await apache.request('/e/sleep?s=30', { timeoutMs: 20000 })
    t.equal(r.status, 504)
    t.ok(Date.now() - started < 15000, 'well before the application would have answered')
    await apache.waitForLog(/WSGI02120: Request timeout expired for an ASGI request of daemon process 'errors'/)
    t.equal((await apache.request('/e/pid')).text, pid, 'no restart')
    const ok = await apache.request('/e/sleep?s=0.1')
    t.equal(ok.text, 'slept')
  })

  await t.test('request-timeout counts silence: a stream that keeps sending outlives it', async (t) => {
    const r = await apache.request('/b/stream?n=6&size=10&pause=0.9', { timeoutMs: 20000 })
    t.equal(r.status, 200)
    t.equal(r.body.length, 60, 'all of it, 4.5 s with request-timeout=2')
  })

  await t.test('a client that leaves while the application sends nothing (long-poll): http.disconnect at once', async (t) => {
    const r = await rawRequest(apache.port, 'GET /e/long-poll HTTP/1.1\r\nHost: x\r\n\r\n', 800)
    t.equal(r.raw.length, 0, 'nothing was sent')
    const seen = await waitFor(() => marker(dir, 'long-poll'), 10000, 50, 'the application to see the disconnect')
    t.match(seen, /^http\.disconnect after [0-2]\.\d s$/, seen)
    await apache.waitForLog(/WSGI01500: Client closed the connection while daemon process 'errors' was preparing the response/)
  })

  await t.test('a client that leaves: send() raises, receive() gives http.disconnect', async (t) => {
    const r = await rawRequest(apache.port, 'GET /e/disconnect HTTP/1.1\r\nHost: x\r\n\r\n', 600)
    t.ok(r.raw.length > 0, 'the stream had started')
    const seen = await waitFor(() => marker(dir, 'disconnect'), 15000, 50, 'the application to note the disconnect')
    t.match(seen, /send raised ClientDisconnected/)
    t.match(seen, /receive: http\.disconnect/)
    t.equal((await apache.request('/e/pid')).text, pid)
  })
})
