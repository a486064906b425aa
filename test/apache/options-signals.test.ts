// Signals to daemon processes through a real Apache, as mod_wsgi 4.1.0: SIGTERM (finish or abandon the
// active requests within shutdown-timeout, exit; Apache starts a new daemon), SIGUSR1 (graceful restart
// using graceful-timeout, New Features 3), a signal while the daemon still initialises (Bugs Fixed 1),
// and a daemon whose Python cannot be finalised (a non-daemon thread) that still exits in time.
import t from 'tap'
import { ALLOW_FIXTURES, type Apache, fixture, startApache, waitFor } from '../helpers/apache'
import { daemonOf, exited, pidOf, timed } from '../helpers/daemons'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Resolves with the ms from now until `pid` has exited. */
async function exitTime(pid: number, timeoutMs: number): Promise<number> {
  const start = Date.now()
  await waitFor(() => exited(pid), timeoutMs, 20, `pid ${pid} to exit`)
  return Date.now() - start
}

async function start(t: Parameters<typeof startApache>[0], options: string, extra = ''): Promise<Apache> {
  return startApache(t, {
    config: `
WSGIDaemonProcess g threads=2 ${options}
WSGIProcessGroup g
WSGIScriptAlias /sleep ${fixture('sleep-logged')}
WSGIScriptAlias /hello ${fixture('hello-world')}
WSGIScriptAlias /thread ${fixture('non-daemon-thread')}
${extra}
${ALLOW_FIXTURES}
`,
  })
}

t.test('SIGTERM: the active request finishes within shutdown-timeout, then Apache starts a new daemon', async (t) => {
  const apache = await start(t, 'shutdown-timeout=3')
  const first = await daemonOf(apache, 'g')
  const running = apache.request('/sleep?s=1&id=a')
  await apache.waitForLog(/sleep-logged: a started/)
  process.kill(first, 'SIGTERM')
  const took = await exitTime(first, 8000)
  const r = await running
  t.equal(r.status, 200, 'the active request completed')
  t.equal(pidOf(r), first)
  t.ok(took >= 500 && took < 3000, `the daemon exited once it was done (${took} ms)`)
  const second = await daemonOf(apache, 'g', [first])
  t.equal(pidOf(await apache.request('/hello')), second, 'the new daemon serves')
  const log = apache.log()
  t.match(log, new RegExp(`\\[pid ${first}:tid \\d+\\] WSGI02020: Shutdown requested 'g' \\(SIGTERM\\)`))
  t.match(log, new RegExp(`WSGI01104: daemon process 1 of process group 'g' \\(pid ${first}\\) exited with exit status 0, reason stop; starting a new one|\\(pid ${first}\\) exited with code 0`))
})

t.test('SIGTERM: a request still running at shutdown-timeout is abandoned (503), the daemon exits', async (t) => {
  const apache = await start(t, 'shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  const running = timed(apache.request('/sleep?s=30&id=a'))
  await apache.waitForLog(/sleep-logged: a started/)
  process.kill(first, 'SIGTERM')
  const took = await exitTime(first, 8000)
  const [r, rt] = await running
  t.equal(r.status, 503, 'interrupted request: 503')
  t.ok(took >= 900 && took < 3500, `exited after shutdown-timeout (${took} ms)`)
  t.ok(rt < 5000, `the client was answered at once (${rt} ms)`)
  t.match(apache.log(), /WSGI02028: Aborting process 'g': shutdown timeout expired with 1 requests still active/)
  t.match(apache.log(), /WSGI02048: Request interrupted by daemon restart: \/sleep\?s=30&id=a/)
  await daemonOf(apache, 'g', [first])
})

t.test('SIGUSR1 with graceful-timeout: the daemon serves on until idle, then restarts', async (t) => {
  const apache = await start(t, 'graceful-timeout=5 shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  const running = apache.request('/sleep?s=1.5&id=a')
  await apache.waitForLog(/sleep-logged: a started/)
  process.kill(first, 'SIGUSR1')
  await apache.waitForLog(/WSGI02021: Graceful shutdown requested 'g' \(SIGUSR1\): waiting up to 5 seconds for active requests\./)
  const d = await apache.request('/hello')
  t.equal(d.status, 200, 'a request sent during the graceful period is served')
  t.equal(pidOf(d), first, 'by the same daemon, still accepting (as mod_wsgi)')
  const r = await running
  t.equal(r.status, 200, 'the active request completed, beyond shutdown-timeout')
  t.equal(pidOf(r), first)
  const took = await exitTime(first, 5000)
  t.ok(took < 2500, `once idle it restarted at once, before graceful-timeout (${took} ms after)`)
  t.not(pidOf(await apache.request('/hello')), first, 'the replacement serves')
  t.match(apache.log(), new RegExp(`\\[pid ${first}:tid \\d+\\] WSGI02029: Exiting process 'g' \\(status 0\\)`))
})

t.test('SIGUSR1: when graceful-timeout expires the normal shutdown follows', async (t) => {
  const apache = await start(t, 'graceful-timeout=1 shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  const running = timed(apache.request('/sleep?s=30&id=a'))
  await apache.waitForLog(/sleep-logged: a started/)
  process.kill(first, 'SIGUSR1')
  const took = await exitTime(first, 10000)
  const [r] = await running
  t.equal(r.status, 503, 'the request that outlived both periods is abandoned')
  t.ok(took >= 1800 && took < 5000, `graceful-timeout then shutdown-timeout (${took} ms)`)
  t.match(apache.log(), /WSGI02027: Graceful timeout expired with 1 active requests, proceeding with shutdown 'g'\./)
})

t.test('SIGUSR1 without graceful-timeout is a normal shutdown (shutdown-timeout)', async (t) => {
  const apache = await start(t, 'shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  const running = apache.request('/sleep?s=30&id=a')
  await apache.waitForLog(/sleep-logged: a started/)
  process.kill(first, 'SIGUSR1')
  const took = await exitTime(first, 8000)
  t.equal((await running).status, 503)
  t.ok(took >= 900 && took < 3500, `shutdown-timeout applies (${took} ms)`)
  t.match(apache.log(), /WSGI02021: Graceful shutdown requested 'g' \(SIGUSR1\): waiting up to 1 seconds/)
})

t.test('a signal while the daemon initialises stops it cleanly (4.1.0 Bugs Fixed 1)', async (t) => {
  process.env.SLOW_IMPORT_SECONDS = '20'
  t.teardown(() => {
    delete process.env.SLOW_IMPORT_SECONDS
  })
  const apache = await start(t, 'shutdown-timeout=1', `WSGIImportScript ${fixture('daemon-slow-import')} process-group=g application-group=%{GLOBAL}`)
  const first = await daemonOf(apache, 'g')
  await apache.waitForLog(new RegExp(`\\[pid ${first}:tid \\d+\\] WSGI02003: Starting process 'g'`))
  await sleep(300)
  process.kill(first, 'SIGTERM')
  const took = await exitTime(first, 8000)
  t.ok(took < 3500, `exited without waiting for the import (${took} ms)`)
  const log = apache.log()
  t.match(log, new RegExp(`\\[pid ${first}:tid \\d+\\] WSGI02018: Signal SIGTERM received while initialising process 'g': stopping before serving\\.`))
  t.notMatch(log, /WSGI02031|Segmentation|Abort|core dumped/, 'no crash, no internal error')
  t.ok(await apache.waitForLog(new RegExp(`\\(pid ${first}\\) exited with (exit status|code) 0`)), 'a clean exit status')
  await daemonOf(apache, 'g', [first])
})

t.test('a daemon whose Python cannot finalise (non-daemon thread) still exits within shutdown-timeout', async (t) => {
  const apache = await start(t, 'shutdown-timeout=2')
  const first = await daemonOf(apache, 'g')
  const r = await apache.request('/thread')
  t.equal(r.status, 200)
  t.ok(Number(r.text.split(' ')[1]) >= 2, 'the app has a non-daemon thread running')
  process.kill(first, 'SIGTERM')
  const took = await exitTime(first, 10000)
  t.ok(took < 5000, `exited in ${took} ms although Python could not be finalised`)
  t.equal(pidOf(await apache.request('/hello')), await daemonOf(apache, 'g', [first]), 'and was replaced')
})
