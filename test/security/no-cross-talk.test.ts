// Issue 7, security (CVE-2014-0242: memory disclosed through response headers): a response never carries
// bytes of another request. Many concurrent keep-alive clients send requests with their own token and
// random sizes (headers up to 24 KB, bodies up to 1.5 MB, request bodies echoed back) through every way a
// body goes out (a list, a generator, write(), wsgi.file_wrapper with and without sendfile, which passes
// descriptors between processes); every byte of every header and body is compared with what only that
// request could produce.
import * as http from 'node:http'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'
import { distinctPattern } from '../helpers/distinct'

const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=6
WSGIProcessGroup pool
WSGIScriptAlias /d ${fixture('distinct')}
WSGIScriptAlias /sf ${fixture('distinct')}
<Location /sf>
  WSGIEnableSendfile On
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

const MODES = ['list', 'gen', 'write', 'file', 'echo'] as const

interface Outcome {
  ok: boolean
  why?: string
  bytes: number
}

function exchange(agent: http.Agent, port: number, path: string, body: Buffer | null): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent,
        method: body ? 'POST' : 'GET',
        maxHeaderSize: 256 * 1024,
        headers: body ? { 'content-length': String(body.length), 'content-type': 'application/octet-stream' } : {},
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.setTimeout(30000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body ?? undefined)
  })
}

async function one(agent: http.Agent, port: number, client: number, seq: number): Promise<Outcome> {
  const token = `c${client}s${seq}r${randomBytes(4).toString('hex')}`
  const mode = MODES[Math.floor(Math.random() * MODES.length)]
  const hsize = 1 + Math.floor(Math.random() * (Math.random() < 0.2 ? 24000 : 2000))
  const size = Math.floor(Math.random() * (Math.random() < 0.1 ? 1_500_000 : 100_000))
  const base = mode === 'file' && Math.random() < 0.5 ? '/sf' : '/d'
  let sent: Buffer | null = null
  if (mode === 'echo') sent = distinctPattern(`in-${token}`, Math.floor(Math.random() * (Math.random() < 0.3 ? 200_000 : 30_000)))
  const r = await exchange(agent, port, `${base}?token=${token}&mode=${mode}&size=${size}&hsize=${hsize}`, sent)
  const want = mode === 'echo' ? Buffer.concat([sent as Buffer, Buffer.from(token, 'latin1')]) : distinctPattern(token, size)
  const wantHeader = distinctPattern(token, hsize).toString('latin1')
  if (r.status !== 200) return { ok: false, why: `${token} ${mode}: status ${r.status}`, bytes: 0 }
  if (r.headers['x-token'] !== token) return { ok: false, why: `${token} ${mode}: X-Token ${r.headers['x-token']}`, bytes: 0 }
  if (r.headers['x-token-data'] !== wantHeader) return { ok: false, why: `${token} ${mode}: X-Token-Data differs (${hsize} bytes)`, bytes: 0 }
  if (!r.body.equals(want)) {
    let at = 0
    while (at < want.length && r.body[at] === want[at]) at++
    return { ok: false, why: `${token} ${mode} ${base}: body differs at byte ${at} of ${want.length} (got ${r.body.length})`, bytes: 0 }
  }
  return { ok: true, bytes: r.body.length + wantHeader.length }
}

t.test('concurrent distinct large headers and bodies: every byte belongs to its own request', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  await waitFor(() => apache.daemonPids().length === 2, 15000, 50, 'two daemon processes')
  const agent = new http.Agent({ keepAlive: true, maxSockets: 24 })
  t.teardown(() => agent.destroy())
  const until = Date.now() + 8000
  const outcomes: Outcome[] = []
  await Promise.all(
    Array.from({ length: 24 }, async (_, client) => {
      for (let seq = 0; Date.now() < until; seq++) outcomes.push(await one(agent, apache.port, client, seq))
    }),
  )
  const bad = outcomes.filter((o) => !o.ok)
  const bytes = outcomes.reduce((n, o) => n + o.bytes, 0)
  t.comment(`${outcomes.length} requests, ${(bytes / 1048576).toFixed(1)} MiB of headers and bodies compared byte for byte; ${bad.length} wrong`)
  t.ok(outcomes.length > 200, `enough requests ran (${outcomes.length})`)
  t.same(bad.map((b) => b.why).slice(0, 5), [], 'no response carried anything but its own bytes')
  t.notMatch(apache.log(), /WSGI01220|WSGI02040|WSGI02031/, 'no malformed frame or internal error')
})
