// The ASGI lifespan protocol through Apache: startup completes before the application's first request
// runs (at daemon start for preloaded scripts: WSGIImportScript, or WSGIScriptAlias naming both groups),
// its state reaches every request's scope as a shallow copy, shutdown runs when the daemon stops, a
// failed startup keeps a preloaded application's daemon from serving, and an application without
// lifespan support is served anyway.
import t from 'tap'
import { Apache, startApache, waitFor } from '../helpers/apache'
import { ALLOW_ASGI, asgiFixture, marker, privateCopy } from './helpers'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const allow = (dir: string): string => `<Directory ${dir}>\n  Require all granted\n</Directory>\n${ALLOW_ASGI}`

t.test('lazy: startup runs before the first request, which waits for it', async (t) => {
  const { dir, script } = privateCopy('lifespan')
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess lazy threads=2
WSGIProcessGroup lazy
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /l ${script}
${allow(dir)}
`,
  })
  t.equal(marker(dir, 'startup'), '', 'nothing started before a request')
  const sent = Date.now() / 1000
  const [a, b] = await Promise.all([apache.request('/l/a'), apache.request('/l/b')])
  const startedAt = Number(marker(dir, 'startup').split(' ')[0])
  for (const r of [a, b]) {
    t.equal(r.status, 200)
    const j = JSON.parse(r.text)
    t.equal(j.db, 'connected', 'the state startup set')
    t.ok(j.at >= startedAt, 'answered after startup completed')
  }
  t.ok(startedAt - sent >= 0.9, 'the requests waited for the 1 s startup')
  const c = JSON.parse((await apache.request('/l/c')).text)
  t.equal(c.requests, 3, 'objects in the state are shared by the copies')
  t.equal(marker(dir, 'startup').trim().split('\n').length, 1, 'one startup')
  await apache.waitForLog(/WSGI03213: ASGI lifespan startup of 'application' of script '[^']+' complete\./)
})

t.test('preloaded (literal process and application group): startup before the daemon takes requests; shutdown at stop', async (t) => {
  const { dir, script } = privateCopy('lifespan')
  const apache = new Apache({
    config: `
WSGIDaemonProcess pre threads=2 shutdown-timeout=4
WSGIScriptAlias /p ${script} process-group=pre application-group=%{GLOBAL}
${allow(dir)}
`,
  })
  t.teardown(() => apache.cleanup())
  await apache.start()
  await waitFor(() => marker(dir, 'startup'), 10000, 50, 'startup at daemon start, with no request')
  const r = JSON.parse((await apache.request('/p/x')).text)
  t.equal(r.db, 'connected')
  t.equal(marker(dir, 'shutdown'), '', 'no shutdown yet')
  writeFileSync(join(dir, 'markers', 'shutdown_pause'), '0.5')
  await apache.stop()
  await waitFor(() => marker(dir, 'shutdown'), 10000, 50, 'shutdown')
  t.equal(Number(marker(dir, 'shutdown').split(' ')[1]), r.pid, 'by the process that served')
})

t.test('WSGIImportScript preloads too; a graceful restart shuts the old lifespan down and starts a new one', async (t) => {
  const { dir, script } = privateCopy('lifespan')
  const config = `
WSGIDaemonProcess imp threads=2
WSGIImportScript ${script} process-group=imp application-group=%{GLOBAL}
WSGIScriptAlias /i ${script} process-group=imp
WSGIApplicationGroup %{GLOBAL}
${allow(dir)}
`
  const apache = await startApache(t, { config })
  await waitFor(() => marker(dir, 'startup'), 10000, 50, 'startup at daemon start')
  const first = JSON.parse((await apache.request('/i/x')).text).pid
  await apache.graceful()
  await waitFor(() => marker(dir, 'shutdown').includes(` ${first}`), 15000, 50, 'the old process\'s shutdown')
  await waitFor(() => marker(dir, 'startup').trim().split('\n').length >= 2, 15000, 50, 'a new startup')
  const second = JSON.parse((await apache.request('/i/x')).text)
  t.not(second.pid, first, 'a new process')
  t.equal(second.db, 'connected')
})

t.test('a lifespan shutdown that hangs does not keep the daemon past shutdown-timeout', async (t) => {
  const { dir, script } = privateCopy('lifespan')
  writeFileSync(join(dir, 'markers', 'shutdown_pause'), '60')
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess hang threads=2 shutdown-timeout=3
WSGIScriptAlias /h ${script} process-group=hang application-group=%{GLOBAL}
${allow(dir)}
`,
  })
  const pid = JSON.parse((await apache.request('/h/x')).text).pid
  const started = Date.now()
  process.kill(pid, 'SIGTERM')
  await waitFor(() => {
    try {
      process.kill(pid, 0)
      return false
    } catch {
      return true
    }
  }, 15000, 50, 'the daemon to exit')
  const took = Date.now() - started
  t.ok(took < 8000, `exited in ${took} ms`)
  await apache.waitForLog(/WSGI03212: ASGI lifespan shutdown of .* did not complete within/)
})

t.test('a preloaded application whose startup fails is not served: the daemon exits (status 3)', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess fail threads=2 connect-timeout=1 socket-timeout=2
WSGIScriptAlias /f ${asgiFixture('lifespan-fail')} process-group=fail application-group=%{GLOBAL}
${ALLOW_ASGI}
`,
  })
  await apache.waitForLog(/WSGI03211: ASGI lifespan startup of 'application' of script '[^']+' failed:/)
  await apache.waitForLog(/cannot reach the database at db:5432/)
  await apache.waitForLog(/WSGI02121: ASGI lifespan startup of script '[^']+' failed in daemon process 'fail': not serving/)
  await apache.waitForLog(/exited with (exit status|code) 3/)
  // Its requests wait in the socket's backlog for a daemon that never serves: socket-timeout.
  const r = await apache.request('/f/x', { timeoutMs: 20000 })
  t.ok(r.status >= 500, `nothing serves it (${r.status})`)
  t.notMatch(r.text, /served without a successful startup/)
})

t.test('a lazily started application whose startup fails: 500, and the next request tries again', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess lazyfail threads=2
WSGIProcessGroup lazyfail
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /f ${asgiFixture('lifespan-fail')}
${ALLOW_ASGI}
`,
  })
  t.equal((await apache.request('/f/x')).status, 500)
  t.equal((await apache.request('/f/x')).status, 500)
  t.equal(apache.log().match(/WSGI03211: ASGI lifespan startup/g)?.length, 2, 'tried (and logged) twice')
})

t.test('an application that raises on the lifespan scope is served without lifespan', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess nols threads=2
WSGIScriptAlias /n ${asgiFixture('lifespan-raise')} process-group=nols application-group=%{GLOBAL}
${ALLOW_ASGI}
`,
  })
  const r = await apache.request('/n/x')
  t.equal(r.status, 200)
  t.equal(r.text, 'state []')
  await apache.waitForLog(/WSGI03210: ASGI lifespan protocol not supported by .* \(ValueError: Django can only handle ASGI\/HTTP connections, not lifespan\.\); served without it\./)
})
