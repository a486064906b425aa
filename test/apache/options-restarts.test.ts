// Apache's own restarts and stops with real daemons, as in mod_wsgi 4.1.0: `apache2 -k graceful` (old
// daemons drain with graceful-timeout while new ones, with the new configuration, serve), `apache2 -k
// stop` (daemons stop within shutdown-timeout, nothing left behind), and an Apache parent killed with
// SIGKILL (its daemons notice within a second or two and exit).
import { spawnSync } from 'node:child_process'
import { readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ALLOW_FIXTURES, APACHE_BIN, childPids, cmdline, fixture, killSession, makeTempDir, startApache, waitFor } from '../helpers/apache'
import { alive, exited, groupPids, pidOf, timed } from '../helpers/daemons'

const config = (title: string, options = '') => `
WSGIDaemonProcess g threads=2 display-name=${title}-%{GROUP} ${options}
WSGIProcessGroup g
WSGIScriptAlias /sleep ${fixture('sleep-logged')}
WSGIScriptAlias /hello ${fixture('hello-world')}
${ALLOW_FIXTURES}
`

t.test('apache2 -k graceful: old daemons finish their requests, new ones serve the new configuration', async (t) => {
  const apache = await startApache(t, { config: config('old', 'graceful-timeout=5 shutdown-timeout=1') })
  const old = await waitFor(() => groupPids(apache, 'g', 'old-(wsgi:g)')[0] ?? 0, 10000, 50, 'the old daemon')
  const running = apache.request('/sleep?s=2&id=inflight')
  await apache.waitForLog(/sleep-logged: inflight started/)
  await apache.graceful(config('new', 'graceful-timeout=5 shutdown-timeout=1'))
  const fresh = await waitFor(() => groupPids(apache, 'g', 'new-(wsgi:g)')[0] ?? 0, 15000, 50, 'a daemon of the new generation')
  t.ok(alive(old), 'the old daemon is still finishing its request')
  const during = await apache.request('/hello')
  t.equal(during.status, 200)
  t.equal(pidOf(during), fresh, 'new requests go to the new generation')
  const r = await running
  t.equal(r.status, 200, 'the request in flight at the restart completed (graceful-timeout, beyond shutdown-timeout)')
  t.equal(pidOf(r), old)
  await waitFor(() => exited(old), 8000, 50, 'the old daemon to exit')
  // Start-first (docs/restarts.md): the changed group's new daemon took over once ready; the old one
  // was told to drain through the board and exited of itself.
  t.match(apache.log(), /WSGI01117: process group 'g': the daemon processes of the new configuration are ready and take over/)
  t.match(apache.log(), new RegExp(`\\[pid ${old}:tid \\d+\\] WSGI02029: Exiting process 'g' \\(status 0\\)`))
  t.equal(groupPids(apache, 'g').length, 0, 'no daemon with the old title is left')
  t.same(apache.daemonPids().map((p) => cmdline(p)), ['new-(wsgi:g)'])
})

t.test('apache2 -k stop: daemons stop within shutdown-timeout, nothing is left', async (t) => {
  const apache = await startApache(t, { config: config('s', 'processes=2 shutdown-timeout=2') })
  await waitFor(() => apache.daemonPids().length === 2, 10000, 50, 'two daemons')
  const parent = apache.pid
  const processes = childPids(parent)
  const stuck = apache.request('/sleep?s=60&id=stuck').catch(() => null)
  await apache.waitForLog(/sleep-logged: stuck started/)
  const [r] = await timed(Promise.resolve(spawnSync(APACHE_BIN, ['-d', apache.dir, '-f', apache.conf, '-k', 'stop'], { encoding: 'latin1' })))
  t.equal(r.status, 0, 'apache2 -k stop')
  const [, took] = await timed(waitFor(() => !alive(parent), 15000, 50, 'the Apache parent to exit'))
  t.ok(took < 6000, `Apache stopped in ${took} ms with a request stuck in a daemon (shutdown-timeout=2)`)
  t.same(processes.filter(alive), [], 'no daemon or child of that Apache is left')
  t.same(readdirSync(apache.socketDir).filter((f) => f.endsWith('.sock')), [], 'no socket file is left')
  await stuck
})

t.test('an Apache parent killed with SIGKILL: its daemons notice and exit', async (t) => {
  const apache = await startApache(t, { config: config('k', 'processes=2 shutdown-timeout=1') })
  const daemons = await waitFor(() => (apache.daemonPids().length === 2 ? apache.daemonPids() : null), 10000, 50, 'two daemons')
  const parent = apache.pid
  // The orphaned Apache children of this test: the session the parent led (children it forked after
  // any list taken here belong to it too).
  t.teardown(() => killSession(parent))
  t.equal((await apache.request('/hello')).status, 200)
  process.kill(parent, 'SIGKILL')
  const [, took] = await timed(waitFor(() => (daemons ?? []).every(exited), 10000, 50, 'the daemons to exit'))
  t.ok(took < 4000, `both daemons exited ${took} ms after their parent died`)
  const log = apache.log()
  for (const d of daemons ?? [])
    t.match(log, new RegExp(`\\[pid ${d}:tid \\d+\\] WSGI02032: Apache parent process \\(pid ${parent}\\) of daemon process 'g' has gone away \\(parent is now pid \\d+\\): shutting down\\.`))
  for (const d of daemons ?? []) t.match(log, new RegExp(`\\[pid ${d}:tid \\d+\\] WSGI02029: Exiting process 'g' \\(status 0\\)`), 'a clean exit')
})

t.test('apache2 -k graceful with the configuration unchanged deploys new code: each daemon is replaced start-first', async (t) => {
  // A deploy as mod_wsgi users do it: the code changes on disk (not the WSGI script, and no
  // WSGIScriptReloading), then a graceful restart.
  const dir = makeTempDir('mod_wsgi-deploy-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const write = (v: string) => writeFileSync(join(dir, 'release.py'), `VERSION = '${v}'\n`, { mode: 0o644 })
  write('v1')
  writeFileSync(
    join(dir, 'app.wsgi'),
    `import os, sys\nsys.path.insert(0, ${JSON.stringify(dir)})\nimport release\n\n` +
      `def application(environ, start_response):\n` +
      `    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Pid', str(os.getpid()))])\n` +
      `    return [release.VERSION.encode()]\n`,
    { mode: 0o644 },
  )
  const conf = `
WSGIDaemonProcess deploy processes=2 threads=2
WSGIProcessGroup deploy
WSGIScriptReloading Off
WSGIScriptAlias /app ${join(dir, 'app.wsgi')}
<Directory ${dir}>
  Require all granted
</Directory>
`
  const apache = await startApache(t, { config: conf })
  t.equal((await apache.request('/app')).text, 'v1')
  const before = groupPids(apache, 'deploy')
  t.equal(before.length, 2)
  write('v2.0') // (another size: a cached .pyc of the same second is never taken for it)
  let failed = 0
  let served = 0
  let stop = false
  const load = (async () => {
    while (!stop) {
      const r = await apache.request('/app')
      if (r.status === 200) served++
      else failed++
    }
  })()
  await apache.graceful(conf)
  await waitFor(async () => (await apache.request('/app')).text === 'v2.0' && groupPids(apache, 'deploy').every((p) => !before.includes(p)), 20000, 100, 'v2.0 served by new processes only')
  stop = true
  await load
  t.equal(failed, 0, `no request failed during the deploy (${served} served)`)
  t.match(apache.log(), /WSGI01119: process group 'deploy': configuration unchanged, its daemon processes are replaced one at a time/)
  t.equal((apache.log().match(/WSGI01116: [^\n]*\(graceful-restart\)/g) ?? []).length, 2, 'each process replaced once, reason graceful-restart')
})
