// Bodies stream both ways through Apache and the daemon: a 5 MiB upload read while it arrives, a 10 MiB
// generator response, and a first block that reaches the client before the rest is generated.
import { createHash, randomBytes } from 'node:crypto'
import * as http from 'node:http'
import t from 'tap'
import { fixture, FIXTURES, startApache } from '../helpers/apache'

t.test('streaming request and response bodies', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess stream threads=4
WSGIProcessGroup stream
WSGIScriptAlias /upload ${fixture('upload-digest')}
WSGIScriptAlias /generate ${fixture('generator-stream')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })

  await t.test('a 5 MiB POST arrives whole: length and sha256', async (t) => {
    const body = randomBytes(5 * 1024 * 1024)
    const r = await apache.request('/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
    t.equal(r.status, 200)
    const j = JSON.parse(r.text)
    t.equal(j.length, body.length)
    t.equal(j.content_length, String(body.length))
    t.equal(j.sha256, createHash('sha256').update(body).digest('hex'))
  })

  await t.test('an empty POST body reads as b""', async (t) => {
    const r = await apache.request('/upload', { method: 'POST', body: '' })
    t.equal(r.status, 200)
    t.equal(JSON.parse(r.text).length, 0)
  })

  await t.test('a 10 MiB generator response arrives whole and in order', async (t) => {
    const r = await apache.request('/generate')
    t.equal(r.status, 200)
    t.equal(r.body.length, 10 * 1024 * 1024)
    let ok = true
    for (let i = 0; i < r.body.length; i += 65536) if (r.body[i] !== (i / 65536) % 251 || r.body[i + 65535] !== (i / 65536) % 251) ok = false
    t.ok(ok, 'every 64 KiB block holds its own index')
  })

  await t.test('the first block reaches the client before the generator finishes', async (t) => {
    const started = Date.now()
    const firstAt = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: apache.port, path: '/generate?size=131072&pause=1.5', agent: false }, (res) => {
        let first = 0
        res.on('data', () => {
          if (!first) first = Date.now()
        })
        res.on('end', () => resolve(first - started))
        res.on('error', reject)
      })
      req.on('error', reject)
    })
    t.ok(firstAt < 1000, `first block after ${firstAt} ms, before the 1.5 s pause ends`)
  })

  await t.test('a 5 MiB upload is read while it arrives (the app starts before the body is complete)', async (t) => {
    // Send half, wait, send the rest: the response only comes after the second half, and nothing hangs.
    const half = randomBytes(2.5 * 1024 * 1024)
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: apache.port, path: '/upload', method: 'POST', agent: false, headers: { 'content-length': String(half.length * 2) } },
        (r) => {
          const chunks: Buffer[] = []
          r.on('data', (c: Buffer) => chunks.push(c))
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString() }))
        },
      )
      req.on('error', reject)
      req.write(half)
      setTimeout(() => req.end(half), 300)
    })
    t.equal(res.status, 200)
    const j = JSON.parse(res.text)
    t.equal(j.length, half.length * 2)
    t.equal(j.sha256, createHash('sha256').update(half).update(half).digest('hex'))
  })
})
