// The daemon's lifecycle options with ASGI requests through Apache: maximum-requests restarts the
// process, a graceful restart lets an open stream finish, a forced stop truncates it within
// shutdown-timeout, and inactivity-timeout never interrupts an ASGI request that is only waiting.
import * as http from 'node:http'
import t from 'tap'
import { startApache, waitFor } from '../helpers/apache'
import { alive, pidOf, replacedLogged } from '../helpers/daemons'
import { ALLOW_ASGI, asgiFixture, rawRequest } from './helpers'

function config(name: string, options: string): string {
  return `
WSGIDaemonProcess ${name} threads=2 ${options}
WSGIProcessGroup ${name}
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /b ${asgiFixture('bodies')}
WSGIScriptAlias /e ${asgiFixture('errors')}
${ALLOW_ASGI}
`
}

t.test('maximum-requests restarts a process that served ASGI requests', async (t) => {
  const apache = await startApache(t, { config: config('maxreq', 'maximum-requests=5') })
  const first = Number((await apache.request('/e/pid')).text)
  for (let i = 2; i <= 5; i++) {
    const r = await apache.request('/e/pid')
    t.equal(r.status, 200, `request ${i}`)
    t.equal(Number(r.text), first, `request ${i} by the first process`)
  }
  await apache.waitForLog(/WSGI02022: Maximum requests reached/)
  // The old process serves until its successor is ready; then the successor takes over.
  await replacedLogged(apache, 'maxreq', first)
  t.not(Number((await apache.request('/e/pid')).text), first, 'then a new process serves')
})

t.test('a graceful restart (SIGUSR1) lets an open stream finish', async (t) => {
  const apache = await startApache(t, { config: config('graceful', 'graceful-timeout=15') })
  const pid = Number((await apache.request('/e/pid')).text)
  const streamed = new Promise<{ status: number; length: number }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: apache.port, path: '/b/stream?n=10&size=1000&pause=0.3', agent: false }, (res) => {
      let length = 0
      res.on('data', (c: Buffer) => (length += c.length))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length }))
      res.on('error', reject)
    }).on('error', reject)
  })
  await new Promise((r) => setTimeout(r, 500))
  process.kill(pid, 'SIGUSR1')
  const r = await streamed
  t.equal(r.status, 200)
  t.equal(r.length, 10 * 1000, 'the whole stream')
  await waitFor(() => !alive(pid), 15000, 50, 'the old process to exit once idle')
  const next = Number((await apache.request('/e/pid')).text)
  t.not(next, pid, 'a new process serves')
})

t.test('SIGTERM: a stream still running at shutdown-timeout is cut, the process exits', async (t) => {
  const apache = await startApache(t, { config: config('term', 'shutdown-timeout=1') })
  const pid = Number((await apache.request('/e/pid')).text)
  const cut = rawRequest(apache.port, 'GET /b/stream?n=100&size=100&pause=0.2 HTTP/1.1\r\nHost: x\r\n\r\n', 15000)
  await new Promise((r) => setTimeout(r, 500))
  const started = Date.now()
  process.kill(pid, 'SIGTERM')
  const r = await cut
  t.ok(r.closed, 'the client\'s connection ended')
  t.notOk(r.body.toString('latin1').endsWith('0\r\n\r\n'), 'without the last chunk: truncated')
  await waitFor(() => !alive(pid), 10000, 50, 'the process to exit')
  t.ok(Date.now() - started < 6000, `exited ${Date.now() - started} ms after SIGTERM`)
  await apache.waitForLog(/WSGI02028: Aborting process 'term': shutdown timeout expired with 1 requests still active/)
})

t.test('inactivity-timeout does not interrupt an ASGI request that is only waiting', async (t) => {
  const apache = await startApache(t, { config: config('idle', 'inactivity-timeout=1') })
  const r = await apache.request('/e/sleep?s=3')
  t.equal(r.status, 200)
  t.equal(r.text, 'slept')
  t.equal(pidOf(await apache.request('/e/pid')), pidOf(await apache.request('/e/pid')))
})
