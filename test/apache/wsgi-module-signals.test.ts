// Issue 3, item 8: the `mod_wsgi` module seen by applications (the installed package extended with
// process_group, application_group and version when it is importable, else a bare module, as mod_wsgi
// does), and signal.signal() from application code: with WSGIRestrictSignal (the default) a logged warning
// and no effect, so Node keeps its signals — a SIGTERM still stops the daemon cleanly and Apache starts
// another.
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, ROOT, startApache, waitFor } from '../helpers/apache'

t.test('the mod_wsgi module', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess bare threads=3
WSGIDaemonProcess package threads=3 python-path=${join(ROOT, 'python')}
WSGIScriptAlias /bare ${fixture('mod-wsgi-module')} process-group=bare application-group=%{GLOBAL}
WSGIScriptAlias /package ${fixture('mod-wsgi-module')} process-group=package application-group=%{GLOBAL}
WSGIScriptAlias /package-sub ${fixture('mod-wsgi-module')} process-group=package application-group=sub
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const get = async (path: string) => JSON.parse((await apache.request(path)).text)

  const bare = await get('/bare')
  t.equal(bare.file, null, 'no mod_wsgi package on the path: a bare module')
  t.equal(bare.process_group, 'bare')
  t.equal(bare.application_group, '')
  t.same(bare.version, [4, 1, 0])
  t.equal(bare.threads_per_process, 3)
  t.match(bare.server, /^ImportError: No module named 'mod_wsgi\.server'; 'mod_wsgi' is not a package/)

  const pkg = await get('/package')
  t.equal(pkg.file, join(ROOT, 'python', 'mod_wsgi', '__init__.py'), 'the installed package')
  t.equal(pkg.process_group, 'package', 'extended with process_group')
  t.equal(pkg.application_group, '')
  t.same(pkg.version, [4, 1, 0])
  t.equal(pkg.server, 'importable', 'and still a package (mod_wsgi.server imports)')

  const sub = await get('/package-sub')
  t.equal(sub.file, pkg.file, 'in a sub-interpreter too')
  t.equal(sub.application_group, 'sub')
})

t.test('signal.signal() from an application', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess sig threads=2
WSGIProcessGroup sig
WSGIScriptAlias /signal ${fixture('signal')}
WSGIScriptAlias /info ${fixture('mod-wsgi-module')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const pid: number = JSON.parse((await apache.request('/info')).text).pid
  const r = await apache.request('/signal')
  t.equal(r.text, 'returned handler', 'WSGIRestrictSignal: the call returns without installing anything')
  await apache.waitForLog(/\[wsgi:warn\] \[pid \d+:tid \d+\] WSGI03\d{3}: Callback registration for signal 15 ignored\./)
  t.match(apache.log(), /File "[^"]*signal\/app\.wsgi", line \d+, in application/, 'with where it came from')

  // Node still owns SIGTERM: the daemon stops as asked, and the Apache parent starts another.
  process.kill(pid, 'SIGTERM')
  await apache.waitForLog(new RegExp(`\\[pid ${pid}:tid \\d+\\] WSGI02020: Shutdown requested 'sig' \\(SIGTERM\\)`))
  const next = await waitFor(async () => {
    const x = await apache.request('/info').catch(() => null)
    if (x?.status !== 200) return null
    const p: number = JSON.parse(x.text).pid
    return p !== pid ? p : null
  }, 20000, 200, 'a new daemon process')
  t.not(next, pid, `a new daemon process ${next} serves`)
})

t.test('WSGIRestrictSignal Off: signal.signal() behaves as plain Python (worker threads cannot use it)', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIRestrictSignal Off
WSGIDaemonProcess sig threads=2
WSGIProcessGroup sig
WSGIScriptAlias /signal ${fixture('signal')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const r = await apache.request('/signal')
  t.equal(r.text, 'raised ValueError')
  t.notMatch(apache.log(), /Callback registration for signal/)
})
