// Application groups (the main interpreter and sub-interpreters) with working codecs, script
// reloading, WSGIImportScript preloading and WSGIRestrictSignal.
import { utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

import { AddonProcess, body, fixture, spec, tempDir } from './harness'

t.test('each application group has its own interpreter, with codecs', async (t) => {
  const host = await AddonProcess.start({ threads: 3 })
  t.teardown(() => host.kill())
  const groups = ['', 'alpha', 'beta', 'alpha', '', 'alpha']
  // Concurrently, so that groups are created while others run.
  const { results } = await host.runAll(groups.map((group) => spec(fixture('subinterp'), { group })))
  const seen = new Map<string, { id: number; modules: number }>()
  for (const [i, r] of results.entries()) {
    t.same(r.violations, [])
    t.equal(r.head?.status, 200)
    const out = JSON.parse(body(r).toString())
    const group = groups[i]
    t.equal(out.application_group, group, 'mod_wsgi.application_group')
    t.equal(out.environ_group, group)
    t.equal(out.idna, 'xn--bcher-kva.example', `idna works in '${group}'`)
    t.equal(out.utf16, 'fffe7800')
    t.equal(out.cp1252, '80')
    t.equal(out.ascii, '78')
    const prev = seen.get(group)
    if (prev) {
      t.equal(out.interpreter_id, prev.id, 'same group, same interpreter')
      t.equal(out.modules_id, prev.modules)
    } else seen.set(group, { id: out.interpreter_id, modules: out.modules_id })
  }
  t.equal(seen.get('')!.id, 0, "'' is the main interpreter")
  const ids = [...seen.values()].map((s) => s.id)
  t.equal(new Set(ids).size, 3, 'three distinct interpreters')
  const modules = [...seen.values()].map((s) => s.modules)
  t.equal(new Set(modules).size, 3, 'separate module state')
  const again = JSON.parse(body(await host.run(spec(fixture('subinterp'), { group: 'beta' }))).toString())
  t.equal(again.hits, 2, 'module state persists within the group')
})

t.test('script reloading in the default group: the script is reloaded', async (t) => {
  const host = await AddonProcess.start({ logLevel: 'info', processGroup: '' })
  t.teardown(() => host.kill())
  const dir = tempDir(t, 'addon-reload-')
  const script = join(dir, 'app.wsgi')
  const version = (v: string, stamp: number) => {
    writeFileSync(
      script,
      `COUNT = [0]\ndef application(environ, start_response):\n    COUNT[0] += 1\n` +
        `    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'${v} %d' % COUNT[0]]\n`,
    )
    utimesSync(script, stamp, stamp)
  }
  version('one', 1000000)
  t.equal(body(await host.run(spec(script))).toString(), 'one 1')
  t.equal(body(await host.run(spec(script))).toString(), 'one 2', 'loaded once')
  version('two', 1000100)
  const mark = host.logLength
  t.equal(body(await host.run(spec(script))).toString(), 'two 1', 'a changed mtime reloads it, fresh')
  t.match(await host.logs(mark), /WSGI03014: Reloading WSGI script '.*app\.wsgi'\./)
  version('three', 1000200)
  t.equal(body(await host.run(spec(script, { reloading: false }))).toString(), 'two 2', 'not with reloading off')
  t.equal(body(await host.run(spec(script))).toString(), 'three 1')
})

t.test('script reloading in a daemon process group: GOAWAY, the process restarts (as mod_wsgi)', async (t) => {
  const host = await AddonProcess.start({ logLevel: 'info' })
  t.teardown(() => host.kill())
  const dir = tempDir(t, 'addon-restart-')
  const script = join(dir, 'app.wsgi')
  const write = (v: string, stamp: number) => {
    writeFileSync(script, `def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'${v}']\n`)
    utimesSync(script, stamp, stamp)
  }
  write('one', 1000000)
  t.equal(body(await host.run(spec(script))).toString(), 'one')
  write('two', 1000100)
  const mark = host.logLength
  const r = await host.run(spec(script))
  t.same(r.violations, [])
  t.equal(r.goaway, true, 'not run: GOAWAY, so that the Apache child sends it to the next process')
  t.notOk(r.head)
  t.match(await host.logs(mark), /WSGI03015: WSGI script '.*app\.wsgi' has changed: daemon process 'testgroup' restarts/)
  t.notMatch(await host.logs(mark), /Reloading WSGI script/, 'the module is not reloaded in place')
  t.equal(body(await host.run(spec(script, { reloading: false }))).toString(), 'one', 'with reloading off the old one serves')
})

t.test('preload (WSGIImportScript)', async (t) => {
  const host = await AddonProcess.start({ logLevel: 'info' })
  t.teardown(() => host.kill())
  const ok = await host.call<{ ok: boolean }>('preload', { script: fixture('subinterp'), group: 'pre' })
  t.same(ok, { ok: true })
  const mark = host.logLength
  const r = await host.run(spec(fixture('subinterp'), { group: 'pre' }))
  const out = JSON.parse(body(r).toString())
  t.equal(out.application_group, 'pre')
  t.equal(out.hits, 1)
  t.notMatch(await host.logs(mark), /Loading Python script file/, 'the request found it loaded')
  const dir = tempDir(t, 'addon-preload-')
  const broken = join(dir, 'broken.wsgi')
  writeFileSync(broken, 'raise KeyError("preload failure")\n')
  const bad = await host.call<{ ok: boolean; error: string }>('preload', { script: broken, group: 'pre' })
  t.equal(bad.ok, false)
  t.match(bad.error, /cannot be loaded as Python module.*KeyError: 'preload failure'/)
})

t.test('WSGIRestrictSignal', async (t) => {
  const restricted = await AddonProcess.start({ restrictSignal: true })
  t.teardown(() => restricted.kill())
  const r = await restricted.run(spec(fixture('signal')))
  t.equal(body(r).toString(), 'returned handler', 'signal.signal() returns without installing')
  t.match(await restricted.logs(), /\[wsgi:warn\] .*WSGI03030: Callback registration for signal 15 ignored\./)
  t.match(await restricted.logs(), /File ".*signal\/app\.wsgi", line \d+, in application/, 'with the caller')
  const r2 = await restricted.run(spec(fixture('signal'), { group: 'sub' }))
  t.equal(body(r2).toString(), 'returned handler', 'in sub-interpreters too')

  const open = await AddonProcess.start({ restrictSignal: false })
  t.teardown(() => open.kill())
  const r3 = await open.run(spec(fixture('signal')))
  t.equal(body(r3).toString(), 'raised ValueError', "Python's own rule: only the main thread")
})
