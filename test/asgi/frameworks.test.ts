// Real ASGI frameworks from Debian through Apache: Starlette and FastAPI (routes, JSON, validation
// errors, StreamingResponse, url_for under the mount, lifespan), Django 3.2's ASGI handler (a sync and
// an async view, a form with CSRF, APPEND_SLASH under the mount) and Channels 4 (an HTTP consumer).
import t from 'tap'
import { startApache } from '../helpers/apache'
import { ALLOW_ASGI, asgiFixture } from './helpers'

function group(name: string, mount: string, script: string, extra = ''): string {
  return `WSGIDaemonProcess ${name} threads=4
WSGIScriptAlias ${mount} ${script} process-group=${name} application-group=%{GLOBAL} ${extra}`
}

t.test('ASGI frameworks', async (t) => {
  const apache = await startApache(t, {
    config: `
${group('starlette', '/st', asgiFixture('starlette'), 'callable-object=app')}
${group('fastapi', '/fa', asgiFixture('fastapi'), 'callable-object=app')}
${group('django', '/dj', asgiFixture('django'))}
${group('channels', '/ch', asgiFixture('django', 'channels_app.py'))}
${ALLOW_ASGI}
`,
  })
  const base = `http://127.0.0.1:${apache.port}`

  await t.test('Starlette', async (t) => {
    const home = await apache.request('/st/')
    t.equal(home.status, 200)
    t.equal(home.text, 'starlette home')
    const item = JSON.parse((await apache.request('/st/items/42')).text)
    t.equal(item.id, 42, 'a typed path parameter')
    t.equal(item.url, `${base}/st/items/7`, 'url_for under the WSGIScriptAlias mount')
    t.equal(item.sub, `${base}/st/sub/z`, 'url_for under a Mount')
    t.equal(item.greeting, 'hello from lifespan', 'the lifespan state in request.state')
    t.equal((await apache.request('/st/sub/leafy')).text, 'leaf leafy')
    t.equal((await apache.request('/st/items/abc')).status, 404, 'no route for a non-int id')
    const echo = await apache.request('/st/echo', { method: 'POST', body: JSON.stringify({ a: [1, 2] }), headers: { 'content-type': 'application/json' } })
    t.same(JSON.parse(echo.text), { got: { a: [1, 2] } })
    const stream = await apache.request('/st/stream')
    t.equal(stream.text, 'chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n', 'a StreamingResponse')
  })

  await t.test('FastAPI', async (t) => {
    const r = JSON.parse((await apache.request('/fa/items/5?q=hi')).text)
    t.same(r, { item_id: 5, q: 'hi', url: `${base}/fa/items/5`, started: 'startup ran' })
    const bad = await apache.request('/fa/items/five')
    t.equal(bad.status, 422, 'a validation error')
    t.match(JSON.parse(bad.text).detail[0], { loc: ['path', 'item_id'] })
    const created = await apache.request('/fa/items', {
      method: 'POST',
      body: JSON.stringify({ name: 'pen', price: 1.5, tags: ['a'] }),
      headers: { 'content-type': 'application/json' },
    })
    t.same(JSON.parse(created.text), { name: 'pen', total: 3, tags: ['a'] })
    const invalid = await apache.request('/fa/items', { method: 'POST', body: '{"name": 1}', headers: { 'content-type': 'application/json' } })
    t.equal(invalid.status, 422)
    t.equal((await apache.request('/fa/stream')).text, 'line 0\nline 1\nline 2\nline 3\n')
    t.equal((await apache.request('/fa/sync')).status, 200, 'a sync endpoint (run in a thread by Starlette)')
    const docs = await apache.request('/fa/openapi.json')
    t.equal(JSON.parse(docs.text).openapi.startsWith('3.'), true, 'the OpenAPI schema')
  })

  await t.test('Django 3.2 (ASGIHandler)', async (t) => {
    const sync = JSON.parse((await apache.request('/dj/sync/')).text)
    t.equal(sync.kind, 'sync')
    t.equal(sync.path, '/dj/sync/', 'request.path has the mount')
    t.equal(sync.path_info, '/sync/')
    t.match(sync.thread, /^mod_wsgi-sync-\d+/, `a sync view runs on a thread of the group's pool (${sync.thread})`)
    const started = Date.now()
    const slow = await Promise.all([1, 2, 3].map(() => apache.request('/dj/slow-sync/?s=1.5')))
    const took = Date.now() - started
    const threads = new Set(slow.map((r) => JSON.parse(r.text).thread))
    t.equal(threads.size, 3, `three sync views at once ran on three threads: ${[...threads].join(', ')}`)
    t.ok(took < 4000, `together in ${took} ms, not one after another (4.5 s)`)
    const asyncView = JSON.parse((await apache.request('/dj/async/?q=x')).text)
    t.same(asyncView.kind, 'async')
    t.equal(asyncView.query, 'x')
    const redirect = await apache.request('/dj/sync')
    t.equal(redirect.status, 301, 'APPEND_SLASH')
    t.equal(redirect.headers.location, '/dj/sync/', 'to the URL under the mount')
    const where = JSON.parse((await apache.request('/dj/where/')).text)
    t.equal(where.script_name, '/dj')
    t.equal(where.url, `${base}/dj/form/`, 'reverse() under the mount')
    // A form with CSRF protection: the token from the GET, its cookie, then a valid and an invalid POST.
    const form = await apache.request('/dj/form/')
    const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(form.text)?.[1] ?? ''
    const cookie = String(form.headers['set-cookie']?.[0] ?? '').split(';')[0]
    t.ok(token && cookie.startsWith('csrftoken='), 'a token and its cookie')
    const post = (body: string, withCookie = true) =>
      apache.request('/dj/form/', {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(withCookie ? { cookie } : {}), referer: `${base}/dj/form/` },
      })
    const ok = await post(`csrfmiddlewaretoken=${encodeURIComponent(token)}&name=Ada&age=36`)
    t.equal(ok.status, 200)
    t.equal(ok.text, 'thanks Ada, 36')
    const invalid = await post(`csrfmiddlewaretoken=${encodeURIComponent(token)}&name=Ada&age=old`)
    t.equal(invalid.status, 400)
    t.equal(invalid.text, 'invalid: age')
    t.equal((await post(`name=Ada&age=36`, false)).status, 403, 'no CSRF token: refused')
    t.equal((await apache.request('/dj/nowhere/')).status, 404)
  })

  await t.test('Channels 4 (ProtocolTypeRouter, an AsyncHttpConsumer)', async (t) => {
    const r = await apache.request('/ch/hello/ada/', { method: 'POST', body: 'body bytes' })
    t.equal(r.status, 200)
    t.equal(r.text, 'channels says hello to ada (body bytes)')
    const django = JSON.parse((await apache.request('/ch/async/?q=through-channels')).text)
    t.equal(django.query, 'through-channels', 'the Django views behind the same router')
  })
})
