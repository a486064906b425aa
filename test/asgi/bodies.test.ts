// ASGI request and response bodies through Apache: streamed both ways (http.request messages with
// more_body as the body arrives, chunked too; http.response.body messages reaching the client one by
// one: server-sent events), backpressure, HEAD, 204 and 304, several Set-Cookie, Content-Length checks
// and the http.response.pathsend extension (a FILE frame: Apache sends the file).
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, writeFileSync } from 'node:fs'
import * as http from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { makeTempDir, startApache } from '../helpers/apache'
import { ALLOW_ASGI, asgiFixture, rawRequest } from './helpers'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** GETs `path`, noting when each data chunk arrived (ms after the request was sent). */
function timedGet(port: number, path: string): Promise<{ status: number; body: Buffer; arrivals: Array<{ at: number; data: Buffer }> }> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const arrivals: Array<{ at: number; data: Buffer }> = []
      res.on('data', (c: Buffer) => arrivals.push({ at: Date.now() - started, data: c }))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(arrivals.map((a) => a.data)), arrivals }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

t.test('ASGI bodies', async (t) => {
  const data = makeTempDir('mod_wsgi-asgi-data-')
  t.teardown(() => execFileSync('rm', ['-rf', data]))
  const file = join(data, 'file.bin')
  const fileBytes = randomBytes(3 * 1024 * 1024 + 17)
  writeFileSync(file, fileBytes)
  chmodSync(file, 0o644)
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess bodies threads=2
WSGIProcessGroup bodies
WSGIApplicationGroup %{GLOBAL}
WSGIChunkedRequest On
WSGIEnableSendfile On
EnableSendfile On
WSGIScriptAlias /b ${asgiFixture('bodies')}
${ALLOW_ASGI}
`,
  })

  await t.test('a 5 MiB upload arrives whole, in several http.request messages', async (t) => {
    const body = randomBytes(5 * 1024 * 1024)
    const r = await apache.request('/b/echo', { method: 'POST', body })
    t.equal(r.status, 200)
    const j = JSON.parse(r.text)
    t.equal(j.length, body.length)
    t.equal(j.sha256, sha(body))
    t.ok(j.messages > 1, `streamed as ${j.messages} messages`)
  })

  await t.test('an empty body is one http.request with more_body False', async (t) => {
    const r = await apache.request('/b/echo', { method: 'POST', body: '' })
    t.same(JSON.parse(r.text), { length: 0, sha256: sha(Buffer.alloc(0)), messages: 1 })
    const g = await apache.request('/b/echo')
    t.equal(JSON.parse(g.text).messages, 1, 'GET: one empty message')
  })

  await t.test('a chunked upload (curl, Transfer-Encoding: chunked) is de-chunked', async (t) => {
    const body = randomBytes(700 * 1024)
    const f = join(data, 'upload.bin')
    writeFileSync(f, body)
    const out = execFileSync('curl', ['-sS', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${f}`, `http://127.0.0.1:${apache.port}/b/echo`], { encoding: 'utf8' })
    const j = JSON.parse(out)
    t.equal(j.length, body.length)
    t.equal(j.sha256, sha(body))
  })

  await t.test('an application that reads slowly gets the whole body (backpressure, nothing lost)', async (t) => {
    const body = randomBytes(3 * 1024 * 1024)
    const r = await apache.request('/b/slow-echo?delay=0.02', { method: 'POST', body, timeoutMs: 60000 })
    const j = JSON.parse(r.text)
    t.equal(j.length, body.length)
    t.equal(j.sha256, sha(body))
  })

  await t.test('an application that answers while it reads (duplex) echoes the whole body', async (t) => {
    const body = randomBytes(3 * 1024 * 1024)
    const r = await apache.request('/b/duplex', { method: 'POST', body, timeoutMs: 60000 })
    t.equal(r.status, 200)
    t.equal(r.body.length, body.length)
    t.ok(r.body.equals(body), 'the same bytes, in order')
  })

  await t.test('a streamed response arrives whole and in order', async (t) => {
    const r = await apache.request('/b/stream?n=40&size=65536')
    t.equal(r.body.length, 40 * 65536)
    let ok = true
    for (let i = 0; i < 40; i++) if (r.body[i * 65536] !== i % 251 || r.body[i * 65536 + 65535] !== i % 251) ok = false
    t.ok(ok, 'each chunk holds its own index')
  })

  await t.test('server-sent events reach the client one by one, not at the end', async (t) => {
    const r = await timedGet(apache.port, '/b/sse?n=3&pause=0.8')
    t.equal(r.status, 200)
    t.equal(r.body.toString(), 'data: event 0\n\ndata: event 1\n\ndata: event 2\n\n')
    const firstAt = r.arrivals.find((a) => a.data.includes('event 0'))?.at ?? Infinity
    const lastAt = r.arrivals.find((a) => a.data.includes('event 2'))?.at ?? 0
    t.ok(lastAt - firstAt >= 1000, `event 0 at ${firstAt} ms, event 2 at ${lastAt} ms: sent as they came`)
  })

  await t.test('HEAD: the headers, no body', async (t) => {
    const r = await apache.request('/b/head', { method: 'HEAD' })
    t.equal(r.status, 200)
    t.equal(r.headers['content-length'], '1000')
    t.equal(r.body.length, 0)
    const g = await apache.request('/b/head')
    t.equal(g.body.length, 1000, 'GET has the body')
  })

  await t.test('204 and 304 have no body', async (t) => {
    for (const code of [204, 304]) {
      const r = await rawRequest(apache.port, `GET /b/status?code=${code} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      t.match(r.head, new RegExp(`^HTTP/1.1 ${code} `), `${code}`)
      t.match(r.head, /x-status: /i)
      t.equal(r.body.length, 0, `${code}: no body`)
    }
  })

  await t.test('several Set-Cookie headers stay separate', async (t) => {
    const r = await apache.request('/b/cookies')
    t.same(r.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/', 'c=3; HttpOnly'])
  })

  await t.test('more body than content-length: the extra is dropped (logged)', async (t) => {
    const r = await apache.request('/b/length?declared=10&actual=25')
    t.equal(r.status, 200)
    t.equal(r.body.length, 10)
    await apache.waitForLog(/WSGI03205: Response of ASGI application .* is longer than its content-length/)
  })

  await t.test('less body than content-length: the client sees the response end early', async (t) => {
    const r = await rawRequest(apache.port, 'GET /b/length?declared=100&actual=40 HTTP/1.1\r\nHost: x\r\n\r\n')
    t.ok(r.closed, 'the connection is closed')
    t.equal(r.body.length, 40, 'after the 40 bytes there were')
    await apache.waitForLog(/WSGI03206: Response of ASGI application .* is shorter than its content-length/)
  })

  await t.test('http.response.pathsend: the file, sent by Apache', async (t) => {
    const r = await apache.request(`/b/pathsend?path=${encodeURIComponent(file)}`)
    t.equal(r.status, 200)
    t.equal(r.body.length, fileBytes.length)
    t.equal(sha(r.body), sha(fileBytes))
    const h = await apache.request(`/b/pathsend?path=${encodeURIComponent(file)}`, { method: 'HEAD' })
    t.equal(h.status, 200)
    t.equal(h.body.length, 0, 'HEAD: no body')
    const missing = await apache.request('/b/pathsend?path=/nonexistent/file')
    t.equal(missing.status, 500, 'a missing file is the application\'s error')
  })
})
