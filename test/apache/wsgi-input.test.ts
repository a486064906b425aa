// Issue 3, item 3: wsgi.input through a real Apache — read(), read(n), read(-1), readline(), readline(n),
// readlines(hint), iteration; b'' at the end and never a hang past CONTENT_LENGTH; Content-Length 0; a
// client that disconnects mid-body gives the app an OSError; chunked bodies 411 unless WSGIChunkedRequest
// On, then readable to the end.
import { createHash, randomBytes } from 'node:crypto'
import * as net from 'node:net'
import t from 'tap'
import { fixture, FIXTURES, startApache } from '../helpers/apache'

t.test('wsgi.input', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess input threads=4
WSGIProcessGroup input
WSGIScriptAlias /ops ${fixture('input-api')}
WSGIScriptAlias /echo ${fixture('echo')}
WSGIScriptAlias /chunked ${fixture('input-api')}
WSGIScriptAlias /chunked-echo ${fixture('echo')}
WSGIScriptAlias /chunked-env ${fixture('validated-environ')}
<Location /chunked-env>
  WSGIChunkedRequest On
</Location>
<Location /chunked>
  WSGIChunkedRequest On
</Location>
<Location /chunked-echo>
  WSGIChunkedRequest On
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const ops = async (list: string, body: string, headers: Record<string, string> = {}, path = '/ops') => {
    const r = await apache.request(`${path}?ops=${list}`, { method: 'POST', body, headers })
    t.equal(r.status, 200, `${path} ${list}`)
    return (JSON.parse(r.text) as Array<[string, unknown]>).map(([, v]) => v)
  }
  const BODY = 'line1\nline2\nline3\nlast'

  await t.test('read(n), readline(), readline(n), readlines(), then b"" at the end', async (t) => {
    t.same(await ops('read:3,readline,readline:2,readlines,read,read:5,readline', BODY),
      ['lin', 'e1\n', 'li', ['ne2\n', 'line3\n', 'last'], '', '', ''])
  })

  await t.test('read() and read(-1) read everything', async (t) => {
    t.same(await ops('read', BODY), [BODY])
    t.same(await ops('read:-1,read', BODY), [BODY, ''])
    t.same(await ops('read:0,read:100', BODY), ['', BODY], 'read(0) reads nothing; read(n) past the end stops at it')
  })

  await t.test('readlines(hint) stops once the hint is reached', async (t) => {
    t.same(await ops('readlines:8,readlines:1,readlines', BODY), [['line1\n', 'line2\n'], ['line3\n'], ['last']])
  })

  await t.test('iteration yields lines, then StopIteration', async (t) => {
    t.same(await ops('next,iter,next', BODY), ['line1\n', ['line2\n', 'line3\n', 'last'], '!StopIteration'])
  })

  await t.test('Content-Length 0: every read is b""', async (t) => {
    t.same(await ops('read,read:10,readline,readlines,iter', ''), ['', '', '', [], []])
  })

  await t.test('a large body read line by line and by iteration', async (t) => {
    const lines = Array.from({ length: 20000 }, (_, i) => `line ${i} ${'x'.repeat(i % 97)}\n`).join('')
    const digest = createHash('sha256').update(lines).digest('hex')
    for (const mode of ['readline', 'iter', 'readlines', 'read', 'readall']) {
      const r = await apache.request(`/echo?mode=${mode}`, { method: 'POST', body: lines })
      const j = JSON.parse(r.text)
      t.equal(j.length, Buffer.byteLength(lines), `${mode}: all of it`)
      t.equal(j.sha256, digest, `${mode}: in order`)
      t.equal(j.after_eof, '', `${mode}: then b""`)
    }
  })

  await t.test('a read never waits past CONTENT_LENGTH while the client keeps the connection open', async (t) => {
    const started = Date.now()
    const text = await new Promise<string>((resolve, reject) => {
      const s = net.connect(apache.port, '127.0.0.1')
      let got = ''
      s.setEncoding('latin1')
      s.on('data', (d: string) => {
        got += d
        if (got.includes('\r\n\r\n') && got.endsWith(']]')) {
          s.destroy()
          resolve(got)
        }
      })
      s.on('error', reject)
      // Keep-alive, and no more bytes after the body: read() must stop at the 5 bytes announced.
      s.write('POST /ops?ops=read,read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello')
      setTimeout(() => reject(new Error(`no answer: ${got}`)), 10000).unref()
    })
    t.match(text, /^HTTP\/1\.1 200 OK/)
    t.match(text, /\[\["read", "hello"\], \["read", ""\]\]$/)
    t.ok(Date.now() - started < 5000, 'answered at once')
  })

  await t.test('a client that disconnects mid-body: the app gets OSError, the daemon serves on', async (t) => {
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(apache.port, '127.0.0.1', () => {
        s.write('POST /echo?mode=digest&block=4096 HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n')
        s.write(randomBytes(300000))
        // Long enough for Apache to start streaming and the app to start reading, then go away.
        setTimeout(() => {
          s.destroy()
          resolve()
        }, 500)
      })
      s.on('error', reject)
    })
    await apache.waitForLog(/echo: OSError while reading wsgi\.input: request data read error/, 15000)
    await apache.waitForLog(/Exception occurred processing WSGI script '[^']*echo\/app\.wsgi'/)
    const r = await apache.request('/ops?ops=read', { method: 'POST', body: 'still here' })
    t.same(JSON.parse(r.text), [['read', 'still here']])
  })

  await t.test('chunked request bodies', async (t) => {
    const refused = await apache.request('/ops?ops=read', { method: 'POST', body: 'abc', headers: { 'transfer-encoding': 'chunked' } })
    t.equal(refused.status, 411, 'without WSGIChunkedRequest On: 411 Length Required')
    await apache.waitForLog(/WSGI01245: Request requires chunked transfer encoding/)
    t.same(await ops('readline,read', BODY, { 'transfer-encoding': 'chunked' }, '/chunked'), ['line1\n', 'line2\nline3\nlast'],
      'with WSGIChunkedRequest On: readable to the end')
    t.same(await ops('read:4,read,read', 'abcdefgh', { 'transfer-encoding': 'chunked' }, '/chunked'), ['abcd', 'efgh', ''])

    const big = randomBytes(700000)
    const r = await apache.request('/chunked-echo?mode=read', { method: 'POST', body: big, headers: { 'transfer-encoding': 'chunked' } })
    const j = JSON.parse(r.text)
    t.equal(j.length, big.length, 'a 700 kB chunked body arrives whole')
    t.equal(j.sha256, createHash('sha256').update(big).digest('hex'))
  })

  await t.test('the environ of a chunked request', async (t) => {
    const r = await apache.request('/chunked-env?body=1', { method: 'POST', body: 'abc', headers: { 'transfer-encoding': 'chunked' } })
    t.equal(r.status, 200, 'validated')
    const e = JSON.parse(r.text)
    t.notOk('CONTENT_LENGTH' in e, 'no CONTENT_LENGTH')
    t.equal(e['mod_wsgi.input_chunked'], '1')
    t.equal(e.__body__, 'abc')
  })
})
