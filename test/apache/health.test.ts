// SetHandler wsgi-health (README, "Scaling out"): 200 only while every process group has a ready
// daemon process and Apache is not stopping, else 503 with a line saying why. Checked while a group's
// only process is still importing its application, after a SIGKILL of it, and during Apache's graceful
// stop (SIGWINCH), through a connection that was already reading its request when the stop began.
import { once } from 'node:events'
import * as net from 'node:net'
import t from 'tap'
import { fixture, FIXTURES, sleep, startApache, waitFor, type Response } from '../helpers/apache'
import { groupPids } from '../helpers/daemons'

const CONFIG = `
WSGIDaemonProcess fast processes=2 threads=2
WSGIDaemonProcess slow processes=1 threads=1
WSGIImportScript ${fixture('daemon-slow-import')} process-group=slow application-group=%{GLOBAL}
WSGIScriptAlias /fast ${fixture('hello-world')} process-group=fast
WSGIScriptAlias /slow ${fixture('daemon-slow-import')} process-group=slow application-group=%{GLOBAL}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
<Location /wsgi-health>
  SetHandler wsgi-health
</Location>
`

t.test('503 while a group has no ready process, 200 once it has; again after its only process is killed', async (t) => {
  // The slow group imports for 6 s before it is ready (daemons get Apache's environment).
  process.env.SLOW_IMPORT_SECONDS = '6'
  const apache = await startApache(t, { config: CONFIG }).finally(() => delete process.env.SLOW_IMPORT_SECONDS)
  t.equal((await apache.request('/fast')).status, 200, 'the fast group serves')
  const early = await apache.request('/wsgi-health')
  t.equal(early.status, 503, 'not ready while a group imports its application')
  t.match(early.text, /^not ready: process group 'slow' has no ready process\n$/, 'says which group')
  t.equal(early.headers['cache-control'], 'no-store')
  const ok = (await waitFor<Response | null>(async () => {
    const r = await apache.request('/wsgi-health')
    return r.status === 200 ? r : null
  }, 20000, 100, 'health 200')) as Response
  t.match(ok.text, /^ready: every process group has a ready process\n$/)
  t.equal((await apache.request('/slow')).status, 200, 'the slow group serves')

  const slow = groupPids(apache, 'slow')[0]
  t.ok(slow, 'found the slow group\'s process')
  process.kill(slow as number, 'SIGKILL')
  const down = (await waitFor<Response | null>(async () => {
    const r = await apache.request('/wsgi-health')
    return r.status === 503 ? r : null
  }, 5000, 20, 'health 503 after the kill')) as Response
  t.match(down.text, /process group 'slow' has no ready process/, 'until its replacement has imported its application')
  t.ok(await waitFor(async () => (await apache.request('/wsgi-health')).status === 200, 20000, 100, 'health 200 again'))
})

t.test("503 during Apache's graceful stop (SIGWINCH), before the stop completes", async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess fast processes=1 threads=2
WSGIScriptAlias /fast ${fixture('hello-world')} process-group=fast
<Directory ${FIXTURES}>
  Require all granted
</Directory>
<Location /wsgi-health>
  SetHandler wsgi-health
</Location>
`,
  })
  t.ok(await waitFor(async () => (await apache.request('/wsgi-health')).status === 200, 20000, 100, 'health 200'))
  // A connection whose request an Apache child is reading when the stop begins: a probe that came in
  // just before. Apache lets its children finish such connections.
  const sock = net.connect(apache.port, '127.0.0.1')
  await once(sock, 'connect')
  let answer = ''
  sock.on('data', (c: Buffer) => (answer += c.toString('latin1')))
  sock.write('GET /wsgi-health HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  await sleep(300)
  const parent = apache.pid
  process.kill(parent, 'SIGWINCH')
  await apache.waitForLog(/WSGI01600: graceful stop/, 10000)
  sock.write('Connection: close\r\n\r\n')
  await waitFor(() => answer.includes('\r\n\r\n') && answer.includes('\n', answer.indexOf('\r\n\r\n') + 4), 10000, 20, 'the answer')
  sock.destroy()
  t.match(answer, /^HTTP\/1\.1 503 /, '503 once the graceful stop began')
  t.match(answer, /not ready: Apache is stopping\n/, 'says why')
  await waitFor(() => {
    try {
      process.kill(parent, 0)
      return false
    } catch {
      return true
    }
  }, 20000, 50, 'Apache to finish stopping')
})
