// One request end to end through a real Apache: hello world, environ basics, Flask, Django, an app
// that raises, and the implicit default daemon group.
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { fixture, FIXTURES, startApache } from '../helpers/apache'

t.test('hello world, environ, Flask and Django through daemon processes', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess basic threads=4
WSGIDaemonProcess django threads=2 python-path=${FIXTURES}/django-project
WSGIProcessGroup basic
WSGIScriptAlias /hello ${fixture('hello-world')}
WSGIScriptAlias /env ${fixture('environ-json')}
WSGIScriptAlias /flask ${fixture('flask-app')}
WSGIScriptAlias /raise ${fixture('raise-error')}
WSGIScriptAlias /django ${FIXTURES}/django-project/mysite/wsgi.py process-group=django
<Location /django>
  WSGIApplicationGroup %{GLOBAL}
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })

  await t.test('hello world', async (t) => {
    const r = await apache.request('/hello')
    t.equal(r.status, 200)
    t.equal(r.text, 'Hello World!')
    t.equal(r.headers['content-type'], 'text/plain')
    t.match(r.headers['x-pid'], /^\d+$/)
    t.ok(apache.daemonPids().includes(Number(r.headers['x-pid'])), 'answered by a daemon process of this Apache')
  })

  await t.test('environ basics for an alias at /sub', async (t) => {
    const r = await apache.request('/env/a/b?x=1&y=2')
    t.equal(r.status, 200)
    const env = JSON.parse(r.text)
    t.equal(env.REQUEST_METHOD, 'GET')
    t.equal(env.SCRIPT_NAME, '/env')
    t.equal(env.PATH_INFO, '/a/b')
    t.equal(env.QUERY_STRING, 'x=1&y=2')
    t.equal(env.SERVER_NAME, '127.0.0.1')
    t.equal(env.SERVER_PORT, String(apache.port))
    t.equal(env.REMOTE_ADDR, '127.0.0.1')
    t.equal(env['wsgi.url_scheme'], 'http')
    t.same(env['wsgi.version'], [1, 0])
    t.equal(env['wsgi.multithread'], true)
    t.equal(env['wsgi.run_once'], false)
    t.equal(env['mod_wsgi.process_group'], 'basic')
    t.notOk('HTTPS' in env, 'HTTPS is never in the environ')
  })

  await t.test('POST method and query string', async (t) => {
    const r = await apache.request('/env', { method: 'POST', body: 'abc', headers: { 'content-type': 'text/plain' } })
    const env = JSON.parse(r.text)
    t.equal(env.REQUEST_METHOD, 'POST')
    t.equal(env.CONTENT_LENGTH, '3')
    t.equal(env.CONTENT_TYPE, 'text/plain')
    t.equal(env.SCRIPT_NAME, '/env')
    t.equal(env.PATH_INFO, '')
  })

  await t.test('a Flask app', async (t) => {
    const r = await apache.request('/flask/')
    t.equal(r.status, 200)
    t.equal(r.text, 'Hello from Flask')
    const j = await apache.request('/flask/json/bob?q=1')
    t.equal(j.status, 200)
    t.same(JSON.parse(j.text), { name: 'bob', args: { q: '1' }, method: 'GET' })
  })

  await t.test('a Django project view', async (t) => {
    const r = await apache.request('/django/hello/')
    t.equal(r.status, 200)
    t.match(r.text, /^<p>Hello from Django 3\.2\.\d+, path \/django\/hello\/<\/p>$/)
    const missing = await apache.request('/django/nowhere/')
    t.equal(missing.status, 404, 'Django answers its own 404')
  })

  await t.test('an app that raises gets 500 and a traceback in the log; the daemon keeps serving', async (t) => {
    const r = await apache.request('/raise')
    t.equal(r.status, 500)
    await apache.waitForLog(/RuntimeError: deliberate failure from raise-error fixture/)
    t.match(apache.log(), /Exception occurred processing WSGI script '[^']*raise-error\/app\.wsgi'/)
    const again = await apache.request('/hello')
    t.equal(again.status, 200)
    t.equal(again.text, 'Hello World!')
  })
})

t.test('an alias at / with no process group goes to the implicit default group', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIScriptAlias / ${fixture('environ-json')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const r = await apache.request('/some/path?k=v')
  t.equal(r.status, 200)
  const env = JSON.parse(r.text)
  t.equal(env.SCRIPT_NAME, '')
  t.equal(env.PATH_INFO, '/some/path')
  t.equal(env.QUERY_STRING, 'k=v')
  t.equal(env['mod_wsgi.process_group'], '')
  t.ok(apache.daemonPids().length >= 1, 'a daemon process serves the default group')
})

t.test("the response passes through Apache's output filters (mod_deflate compresses it)", async (t) => {
  const apache = await startApache(t, {
    modules: ['filter', 'deflate'],
    config: `
WSGIDaemonProcess deflate threads=2
WSGIProcessGroup deflate
WSGIScriptAlias /generate ${fixture('generator-stream')}
SetOutputFilter DEFLATE
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const plain = await apache.request('/generate?size=200000')
  t.equal(plain.headers['content-encoding'], undefined, 'not compressed without Accept-Encoding')
  const r = await apache.request('/generate?size=200000', { headers: { 'accept-encoding': 'gzip' } })
  t.equal(r.status, 200)
  t.equal(r.headers['content-encoding'], 'gzip')
  t.ok(r.body.length < 20000, `compressed to ${r.body.length} bytes`)
  t.same(gunzipSync(r.body), plain.body, 'decompresses to the uncompressed response')
})
