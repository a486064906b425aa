// Restart triggers of WSGIDaemonProcess through a real Apache, as mod_wsgi 4.1.0: maximum-requests (with
// and without graceful-timeout, New Features 2), inactivity-timeout (only when idle, never interrupting a
// request: Features Changed 4), cpu-time-limit (SIGXCPU, graceful-timeout). Every restart is start-first
// (docs/restarts.md): the successor is ready before the old process stops taking requests; then what
// runs gets graceful-timeout, then shutdown-timeout. Each is seen by the client as a new daemon pid, and in
// the log with its reason and exit status 4.
import t from 'tap'
import { ALLOW_FIXTURES, type Apache, fixture, startApache, waitFor } from '../helpers/apache'
import { daemonOf, exited, pidOf, replacedLogged, timed } from '../helpers/daemons'

function start(t: Parameters<typeof startApache>[0], options: string): Promise<Apache> {
  return startApache(t, {
    config: `
WSGIDaemonProcess g ${options}
WSGIProcessGroup g
WSGIScriptAlias /hello ${fixture('hello-world')}
WSGIScriptAlias /sleep ${fixture('sleep-logged')}
WSGIScriptAlias /burn ${fixture('cpu-burn')}
${ALLOW_FIXTURES}
`,
  })
}

/** Waits for Apache to log that `pid` stopped (status 4) to be replaced. */
function restartLogged(apache: Apache, pid: number): Promise<string> {
  return replacedLogged(apache, 'g', pid)
}

t.test('maximum-requests: the daemon restarts after that many requests', async (t) => {
  const apache = await start(t, 'threads=2 maximum-requests=3')
  const first = await daemonOf(apache, 'g')
  for (let i = 1; i <= 3; i++) {
    const r = await apache.request('/hello')
    t.equal(r.status, 200)
    t.equal(pidOf(r), first, `request ${i} by the first daemon`)
  }
  await restartLogged(apache, first)
  t.match(apache.log(), /WSGI02022: Maximum requests reached, triggering immediate shutdown 'g'\./)
  t.match(apache.log(), /WSGI01116: started daemon process 1 of process group 'g' \(pid \d+\) to replace pid \d+ \(maximum-requests\)/, 'its successor first')
  const r = await apache.request('/hello')
  t.not(pidOf(r), first, 'request 4 by a new daemon')
})

t.test('maximum-requests + graceful-timeout: the request running at the maximum finishes, beyond shutdown-timeout', async (t) => {
  const apache = await start(t, 'threads=2 maximum-requests=2 graceful-timeout=5 shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  t.equal(pidOf(await apache.request('/hello')), first)
  const long = apache.request('/sleep?s=1.5&id=second')
  await apache.waitForLog(/sleep-logged: second started/)
  t.match(apache.log(), /WSGI02022: Maximum requests reached, attempt graceful shutdown 'g'\./)
  const third = await apache.request('/hello')
  t.equal(third.status, 200, 'a request past the maximum is served (by the old process until its successor is ready)')
  const r = await long
  t.equal(r.status, 200, 'the request running at the maximum completes, beyond shutdown-timeout')
  await restartLogged(apache, first)
  t.not(pidOf(await apache.request('/hello')), first, 'then a new daemon serves')
})

t.test('maximum-requests + graceful-timeout: a request outliving both periods is abandoned', async (t) => {
  const apache = await start(t, 'threads=2 maximum-requests=1 graceful-timeout=1 shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  const [r, took] = await timed(apache.request('/sleep?s=30&id=long'))
  t.equal(r.status, 503)
  t.ok(took >= 1800 && took < 6000, `graceful-timeout, then shutdown-timeout (${took} ms)`)
  t.match(apache.log(), /WSGI02027: Graceful timeout expired with 1 active requests, proceeding with shutdown 'g'\./)
  await restartLogged(apache, first)
})

t.test('inactivity-timeout: an idle daemon restarts; a long request is never interrupted', async (t) => {
  const apache = await start(t, 'threads=2 inactivity-timeout=1')
  const first = await daemonOf(apache, 'g')
  const [r, took] = await timed(apache.request('/sleep?s=2.5&id=long'))
  t.equal(r.status, 200, 'a request longer than inactivity-timeout completes')
  t.equal(pidOf(r), first, 'in the same daemon')
  t.ok(took >= 2400, `it ran its full ${took} ms`)
  const idleFrom = Date.now()
  await restartLogged(apache, first)
  const after = Date.now() - idleFrom
  t.ok(after >= 500 && after < 5000, `restarted ${after} ms after going idle`)
  t.match(apache.log(), new RegExp(`\\[pid ${first}:tid \\d+\\] WSGI02023: Daemon process inactivity timer expired, stopping process 'g'\\.`))
  const second = await daemonOf(apache, 'g', [first])
  t.equal(pidOf(await apache.request('/hello')), second)
})

t.test('cpu-time-limit: SIGXCPU, graceful-timeout lets the request finish, then a restart', async (t) => {
  const apache = await start(t, 'threads=2 cpu-time-limit=2 graceful-timeout=20 shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  const r = await apache.request('/burn?cpu=3', { timeoutMs: 60000 })
  t.equal(r.status, 200, 'the request that crossed the limit completed (graceful-timeout)')
  t.equal(pidOf(r), first)
  t.ok(Number(r.text.split(' ')[1]) >= 3, `it used ${r.text.split(' ')[1]} s of CPU`)
  t.match(apache.log(), new RegExp(`\\[pid ${first}:tid \\d+\\] WSGI02026: Exceeded CPU time limit 'g'\\.`))
  await restartLogged(apache, first)
  await waitFor(() => exited(first), 5000, 50, 'the first daemon to exit')
  const info = await apache.request('/hello')
  t.not(pidOf(info), first, 'a new daemon, with a fresh CPU budget, serves')
})
