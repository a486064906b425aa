// The http scope of an ASGI request through Apache (asgiref specs/www.rst): the mount as root_path and
// the path below it (as SCRIPT_NAME and PATH_INFO), raw_path and query_string as the client sent them,
// headers lower-cased in order, client and server addresses, http_version, scheme, the lifespan state.
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { startApache } from '../helpers/apache'
import { ALLOW_ASGI, asgiFixture, rawRequest } from './helpers'

type Scope = Record<string, any>

t.test('ASGI http scope', async (t) => {
  const app = asgiFixture('scope')
  const apache = await startApache(t, {
    modules: ['http2'],
    config: `
Protocols h2c http/1.1
WSGIDaemonProcess scope threads=2
WSGIProcessGroup scope
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /mount/point ${app}
WSGIScriptAlias /auth ${app} pass-authorization=On
<Location /proxied>
  SetEnv HTTPS on
</Location>
WSGIScriptAlias /proxied ${app}
WSGIScriptAlias / ${app}
${ALLOW_ASGI}
`,
  })
  const get = async (path: string, opts: Parameters<typeof apache.request>[1] = {}): Promise<Scope> => {
    const r = await apache.request(path, opts)
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.text}`)
    return JSON.parse(r.text)
  }

  await t.test('every key, for a request below a mount', async (t) => {
    const s = await get('/mount/point/caf%C3%A9/a%20b?q=%20x&y=1&q=2', {
      method: 'POST',
      body: 'hello',
      headers: { 'X-First': 'one', 'content-type': 'text/x-test', 'X-Second': 'two' },
    })
    t.equal(s.type, 'http')
    t.same(s.asgi, { version: '3.0', spec_version: '2.4' })
    t.equal(s.http_version, '1.1')
    t.equal(s.method, 'POST')
    t.equal(s.scheme, 'http')
    t.equal(s.root_path, '/mount/point', 'the mount, as SCRIPT_NAME')
    t.equal(s.path, '/café/a b', 'below the mount, percent-decoded, UTF-8 decoded')
    t.equal(s.raw_path, '/mount/point/caf%C3%A9/a%20b', 'as sent, without the query')
    t.equal(s.raw_path_type, 'bytes')
    t.equal(s.query_string, 'q=%20x&y=1&q=2', 'not decoded')
    t.equal(s.query_type, 'bytes')
    t.equal(s.headers_type, 'list')
    const names = s.headers.map((h: string[]) => h[0])
    t.ok(names.every((n: string) => n === n.toLowerCase()), `lower-cased: ${names.join(', ')}`)
    const order = ['x-first', 'content-type', 'x-second'].map((n) => names.indexOf(n))
    t.ok(order[0] >= 0 && order[0] < order[1] && order[1] < order[2], 'in the order the client sent them')
    t.same(s.headers.find((h: string[]) => h[0] === 'host'), ['host', `127.0.0.1:${apache.port}`])
    t.same(s.headers.find((h: string[]) => h[0] === 'content-length'), ['content-length', '5'])
    t.equal(s.client[0], '127.0.0.1')
    t.ok(Number.isInteger(s.client[1]) && s.client[1] > 0, 'the client\'s port, an int')
    t.same(s.server, ['127.0.0.1', apache.port], 'the address and port Apache listens on')
    t.same(s.state, { started: 'yes' }, 'a copy of the lifespan state')
    t.same(s.extensions, { 'http.response.pathsend': {} })
    t.equal(s.body_length, 5)
  })

  await t.test('later requests, once Apache knows the script is ASGI (no PATH_TRANSLATED sub-request), the same scope', async (t) => {
    const first = await get('/mount/point/again/x%20y?z=1')
    const second = await get('/mount/point/again/x%20y?z=1')
    for (const k of ['root_path', 'path', 'raw_path', 'query_string', 'http_version', 'method', 'scheme'])
      t.same(second[k], first[k], k)
    t.equal(second.root_path, '/mount/point')
    t.equal(second.path, '/again/x y')
  })

  await t.test('mounted at the root: root_path is empty', async (t) => {
    const s = await get('/some/where')
    t.equal(s.root_path, '')
    t.equal(s.path, '/some/where')
    t.equal(s.method, 'GET')
  })

  await t.test('HTTP/1.0', async (t) => {
    const r = await rawRequest(apache.port, 'GET /mount/point/x HTTP/1.0\r\nHost: x\r\n\r\n')
    t.equal(JSON.parse(r.body.toString()).http_version, '1.0')
  })

  await t.test('HTTP/2 (h2c, curl): http_version "2", the headers as Apache has them', async (t) => {
    const out = execFileSync('curl', ['-sS', '--http2-prior-knowledge', '-H', 'X-H2: yes', `http://127.0.0.1:${apache.port}/mount/point/h2?x=1`], { encoding: 'utf8' })
    const s = JSON.parse(out)
    t.equal(s.http_version, '2')
    t.equal(s.path, '/h2')
    t.equal(s.query_string, 'x=1')
    t.same(s.headers.find((h: string[]) => h[0] === 'x-h2'), ['x-h2', 'yes'])
    t.ok(s.headers.some((h: string[]) => h[0] === 'host'), 'the :authority as host')
    t.notOk(s.headers.some((h: string[]) => h[0].startsWith(':')), 'no pseudo headers')
  })

  await t.test('https when Apache says so (mod_ssl, or HTTPS set for a TLS proxy in front)', async (t) => {
    t.equal((await get('/proxied/x')).scheme, 'https')
  })

  await t.test('repeated request headers arrive as Apache has them: joined with ", " in one', async (t) => {
    const r = await rawRequest(apache.port, 'GET /mount/point/x HTTP/1.1\r\nHost: x\r\nX-Dup: a\r\nX-Dup: b\r\nConnection: close\r\n\r\n')
    const s = JSON.parse(r.body.toString('latin1').replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, ''))
    t.same(s.headers.filter((h: string[]) => h[0] === 'x-dup'), [['x-dup', 'a, b']])
  })

  await t.test('Authorization only with WSGIPassAuthorization (pass-authorization=On), as for WSGI', async (t) => {
    const headers = { authorization: 'Bearer abc' }
    const without = await get('/mount/point/x', { headers })
    t.notOk(without.headers.some((h: string[]) => h[0] === 'authorization'), 'withheld by default')
    const withIt = await get('/auth/x', { headers })
    t.same(withIt.headers.find((h: string[]) => h[0] === 'authorization'), ['authorization', 'Bearer abc'])
  })
})
