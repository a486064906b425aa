// Node's own settings for the daemons (docs/daemon-config.md): MOD_WSGI_NODE_FLAGS of the Apache parent,
// for profiling, proved with --cpu-prof (the real daemon writes a CPU profile of its main thread when it
// stops, into a directory whose name has a space: the word is quoted); and the module's NODE_OPTIONS,
// which replaces the parent's and which applications never see.
import t from 'tap'
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fixture, makeTempDir, startApache, waitFor } from '../helpers/apache'

t.test('MOD_WSGI_NODE_FLAGS reach the daemon: --cpu-prof writes a profile when it stops', async (t) => {
  const base = makeTempDir('mod_wsgi-node-flags-')
  const dir = join(base, 'cpu profiles')
  mkdirSync(dir)
  chmodSync(dir, 0o777) // the daemon writes it as www-data
  process.env.MOD_WSGI_NODE_FLAGS = `--cpu-prof "--cpu-prof-dir=${dir}"`
  t.teardown(() => {
    delete process.env.MOD_WSGI_NODE_FLAGS
    rmSync(base, { recursive: true, force: true })
  })
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g threads=2
WSGIScriptAlias /g ${fixture('hello-world')} process-group=g
`,
  })
  const r = await apache.request('/g')
  t.equal(r.status, 200, 'the daemon serves as usual')
  t.same(readdirSync(dir), [], 'nothing written while it runs')
  await apache.stop()
  const profiles = await waitFor(
    () => {
      const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
      return files.length > 0 ? files : undefined
    },
    15000,
    50,
    'a .cpuprofile',
  )
  const texts = (profiles ?? []).map((f) => readFileSync(join(dir, f), 'utf8'))
  t.ok(texts.some((s) => s.includes('daemon/main.js')), "a profile of the daemon's main thread")
})

t.test("the daemon starts with the module's NODE_OPTIONS, not the parent's, and applications never see it", async (t) => {
  const saved = process.env.NODE_OPTIONS
  process.env.NODE_OPTIONS = '--title=not-for-daemons'
  t.teardown(() => {
    if (saved === undefined) delete process.env.NODE_OPTIONS
    else process.env.NODE_OPTIONS = saved
  })
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g threads=1
WSGIScriptAlias /g ${fixture('node-options')} process-group=g
`,
  })
  const r = await apache.request('/g')
  t.equal(r.status, 200)
  t.equal((JSON.parse(r.text) as { environ: string | null }).environ, null, 'removed before the application runs')
  // /proc/PID/environ keeps the environment the process started with.
  const [daemon] = apache.daemonPids()
  const initial = readFileSync(`/proc/${daemon}/environ`, 'latin1').split('\0').filter((e) => e.startsWith('NODE_OPTIONS='))
  t.same(initial, ['NODE_OPTIONS=--max-semi-space-size=1'], "started with the module's V8 settings only")
})
