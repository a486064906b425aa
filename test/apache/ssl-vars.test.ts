// mod_ssl.is_https and mod_ssl.var_lookup through a real Apache with mod_ssl on a loopback port, with a
// CA, server and client certificates made here: in an application over HTTPS (and absent over plain
// HTTP), in a hook, while the request body is still streaming, and 10,000 lookups with reference counts
// and the daemon's memory flat (release notes 4.1.0, New Features 6 and Bugs Fixed 3).
import { readFileSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { childPids, cmdline, fixture, FIXTURES, freePort, makeTempDir, startApache } from '../helpers/apache'
import { httpsRequest, makeCerts, sslVhostLines } from '../helpers/tls'

const basic = (user: string, password: string) => ({ authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64') })

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
  return m ? Number(m[1]) : NaN
}

t.test('SSL variables in applications and hooks', async (t) => {
  const certs = makeCerts(makeTempDir('mod_wsgi-certs-'), ['client-one', 'client-two'])
  t.teardown(() => import('node:fs').then((fs) => fs.rmSync(certs.dir, { recursive: true, force: true })))
  const sslPort = await freePort()
  const auth = fixture('auth-hooks', 'auth.wsgi')
  const apache = await startApache(t, {
    modules: ['ssl', 'auth_basic', 'authz_user'],
    // Each lookup answered over the wire is a trace line.
    logLevel: 'info wsgi:trace2',
    config: `
Listen 127.0.0.1:${sslPort}
WSGIDaemonProcess sslapp processes=1 threads=1
WSGIProcessGroup sslapp
WSGIScriptAlias /app ${fixture('ssl-vars')}
WSGIScriptAlias /secure ${fixture('ssl-vars')}
<Location /secure>
  AuthType Basic
  AuthName "Agents only"
  AuthBasicProvider wsgi
  WSGIAuthUserScript ${auth}
  Require valid-user
</Location>
<VirtualHost 127.0.0.1:${sslPort}>
${sslVhostLines(certs)}
</VirtualHost>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const get = (path: string, client?: string, headers?: Record<string, string>) =>
    httpsRequest(sslPort, path, certs.ca, { client: client ? certs.clients[client] : undefined, headers })

  await t.test('a name looked up once is sent ahead with the next requests: no round trip per lookup', async (t) => {
    for (let i = 0; i < 12; i++) {
      const j = JSON.parse((await get('/app?vars=SSL_CIPHER_USEKEYSIZE', 'client-one')).text)
      t.match(j.vars.SSL_CIPHER_USEKEYSIZE, /^\d+$/)
    }
    const children = childPids(apache.pid).filter((p) => !cmdline(p).includes('main.js')).length
    const overWire = (apache.log().match(/WSGI01303: Variable lookup 'SSL_CIPHER_USEKEYSIZE' from daemon process 'sslapp': set/g) ?? []).length
    t.ok(overWire >= 1 && overWire <= children, `${overWire} of 12 lookups went over the wire (${children} Apache children learn it once each)`)
  })

  await t.test('over HTTPS: wsgi.url_scheme https, no HTTPS, is_https() and var_lookup()', async (t) => {
    const vars = 'SSL_CLIENT_S_DN_CN,SSL_PROTOCOL,SSL_CIPHER,SSL_CLIENT_VERIFY,SSL_SERVER_S_DN,SSL_SERVER_S_DN_CN,NO_SUCH_VARIABLE'
    const r = await get(`/app?vars=${vars}`, 'client-one')
    t.equal(r.status, 200)
    const j = JSON.parse(r.text)
    t.equal(j.url_scheme, 'https')
    t.equal(j.HTTPS_in_environ, false, 'HTTPS stays out of the environ')
    t.equal(j.is_https, 1)
    t.equal(j.lookup_name, 'ssl_var_lookup', "mod_wsgi's name for the callable")
    t.equal(j.vars.SSL_CLIENT_S_DN_CN, 'client-one')
    t.match(j.vars.SSL_PROTOCOL, /^TLSv1\.[23]$/)
    t.match(j.vars.SSL_CIPHER, /^[A-Z0-9_-]+$/)
    t.equal(j.vars.SSL_CLIENT_VERIFY, 'SUCCESS')
    t.match(j.vars.SSL_SERVER_S_DN, /CN=127\.0\.0\.1/)
    t.equal(j.vars.SSL_SERVER_S_DN_CN, '127.0.0.1')
    t.equal(j.vars.NO_SUCH_VARIABLE, '', "an unknown variable gives '' as mod_ssl answers")
  })

  await t.test('over HTTPS without a client certificate', async (t) => {
    const j = JSON.parse((await get('/app?vars=SSL_CLIENT_S_DN_CN,SSL_CLIENT_VERIFY')).text)
    t.equal(j.vars.SSL_CLIENT_S_DN_CN, '')
    t.equal(j.vars.SSL_CLIENT_VERIFY, 'NONE')
  })

  await t.test('over plain HTTP: http, and no mod_ssl callables in the environ', async (t) => {
    const j = JSON.parse((await apache.request('/app')).text)
    t.equal(j.url_scheme, 'http')
    t.equal(j.has_is_https, false)
    t.equal(j.has_var_lookup, false)
    t.equal(j.HTTPS_in_environ, false)
  })

  await t.test("a hook's var_lookup('SSL_CLIENT_S_DN_CN') is the client certificate's CN", async (t) => {
    const ok = await get('/secure', 'client-one', basic('certuser', 'cert'))
    t.equal(ok.status, 200, 'granted with client-one')
    t.equal(JSON.parse(ok.text).REMOTE_USER, 'certuser')
    await apache.waitForLog(/hook check_password user=certuser .* https=1 cn='client-one'/)
    const other = await get('/secure', 'client-two', basic('certuser', 'cert'))
    t.equal(other.status, 401, 'denied with client-two')
    await apache.waitForLog(/hook check_password user=certuser .* https=1 cn='client-two'/)
    const none = await get('/secure', undefined, basic('certuser', 'cert'))
    t.equal(none.status, 401, 'denied without a client certificate')
    await apache.waitForLog(/hook check_password user=certuser .* https=1 cn=''/)
  })

  await t.test('a lookup made before reading the body is answered while a slow client still sends it', async (t) => {
    const body = randomBytes(1 << 20)
    // A name never asked for before, so that the lookup goes over the wire.
    const r = await httpsRequest(sslPort, '/app?mode=body&name=SSL_SESSION_RESUMED', certs.ca, {
      method: 'POST',
      body,
      client: certs.clients['client-one'],
      slow: { pieces: 4, pauseMs: 700 },
    })
    t.equal(r.status, 200)
    const j = JSON.parse(r.text)
    t.match(j.looked_up, /^(Initial|Resumed)$/)
    t.match(apache.log(), /WSGI01303: Variable lookup 'SSL_SESSION_RESUMED' from daemon process 'sslapp': set/, 'answered by the child while streaming')
    t.equal(j.body_size, body.length)
    t.equal(j.body_sha256, createHash('sha256').update(body).digest('hex'), 'the body arrived intact')
    t.ok(j.body_ms > 1500, `the client took its time (${Math.round(j.body_ms)} ms)`)
    t.ok(j.lookup_ms < j.body_ms - 1000, `answered after ${Math.round(j.lookup_ms)} ms, long before the body was complete`)
  })

  await t.test('a lookup first, then an 8 MiB body at full speed (backpressure both ways)', async (t) => {
    const body = randomBytes(8 << 20)
    const r = await httpsRequest(sslPort, '/app?mode=body&name=SSL_CLIENT_M_SERIAL', certs.ca, { method: 'POST', body })
    t.equal(r.status, 200)
    const j = JSON.parse(r.text)
    t.equal(j.looked_up, '', 'no client certificate: no serial')
    t.match(apache.log(), /WSGI01303: Variable lookup 'SSL_CLIENT_M_SERIAL' from daemon process 'sslapp': set/)
    t.equal(j.body_size, body.length)
    t.equal(j.body_sha256, createHash('sha256').update(body).digest('hex'))
  })

  // These names were asked for before: their values come ahead with the request (the lookups over the
  // wire are checked the same way in test/daemon/hooks.test.ts).
  await t.test('var_lookup 10,000 times: reference counts, allocations and daemon memory stay flat', async (t) => {
    const run = async () => {
      const started = performance.now()
      const r = await get('/app?mode=leak&n=10000', 'client-one')
      t.equal(r.status, 200)
      return { j: JSON.parse(r.text), ms: performance.now() - started }
    }
    // Two warm-up runs: each Apache child learns the names on its first lookups (the first run of a
    // child goes over the wire, later ones get the values ahead), and V8's heap settles.
    await run()
    const warm = await run()
    const pid = warm.j.pid as number
    const before = rssKiB(pid)
    const second = await run()
    const third = await run()
    const after = rssKiB(pid)
    for (const { j } of [second, third]) {
      const d = j.leak.delta
      t.equal(j.leak.calls, 10000)
      t.match(j.leak.values, ["''", /^'TLSv1\.[23]'$/, "'client-one'"], 'values looked up: unknown, SSL_PROTOCOL, the CN')
      t.equal(d.name, 0, 'str name: reference count unchanged')
      t.equal(d.bytes_name, 0, 'bytes name: reference count unchanged')
      t.equal(d.missing_name, 0, 'unknown name: reference count unchanged')
      t.equal(d.lookup, 0, 'the callable: reference count unchanged')
      t.ok(Math.abs(d.none) < 100, `None's reference count moved by ${d.none}`)
      t.ok(Math.abs(d.blocks) < 200, `Python's allocated blocks moved by ${d.blocks} over 10,000 calls`)
    }
    t.ok(after - before < 2048, `daemon RSS ${before} KiB -> ${after} KiB over 20,000 lookups`)
    t.comment(`10,000 lookups per request: ${Math.round(second.ms)} ms and ${Math.round(third.ms)} ms (RSS ${before} -> ${after} KiB)`)
  })

  await t.test('the callables expire with their request', async (t) => {
    const r = await get('/app?mode=stale', 'client-one')
    t.equal(r.status, 200)
    const again = JSON.parse((await get('/app?mode=stale', 'client-one')).text)
    t.equal(again.stale, 'RuntimeError: request object has expired')
  })
})
