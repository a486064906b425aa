// Issue 18: a process group's CPython is the one its virtualenv was made from. One Apache runs groups
// whose python-home virtualenvs are of Debian's 3.11 and of the machine's pyenv CPythons (3.9 to 3.13,
// each present one), plus one group naming a bare pyenv Python with python-executable=; each reports
// its sys.version and passes the WSGI validator apps. A Python that cannot be embedded fails
// `apache2 -t` with one line naming it and what to install or run. A version absent from this machine
// is reported skipped with the reason; a present one whose addon is not built yet is built first.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Apache, ALLOW_FIXTURES, assertRefused, fixture, makeTempDir, startApache } from '../helpers/apache'
import { DEBIAN_PYTHON, readyPython, staticPython, testVenv, type TestPython } from '../helpers/pythons'

const work = makeTempDir('mod_wsgi-pyversions-')
t.teardown(() => rmSync(work, { recursive: true, force: true }))

const OTHER_VERSIONS = ['3.9', '3.10', '3.12', '3.13']
const ready = new Map<string, TestPython>([['3.11', DEBIAN_PYTHON]])
const absent = new Map<string, string>()
for (const v of OTHER_VERSIONS) {
  const py = readyPython(v)
  if (typeof py === 'string') absent.set(v, py)
  else ready.set(v, py)
}
const group = (v: string) => `py${v.replace('.', '')}`
const venvs = new Map([...ready].map(([v, py]) => [v, testVenv(py)]))

t.test('groups of different CPython versions side by side in one Apache', async (t) => {
  const groups = [...ready.keys()]
    .map(
      (v) => `
WSGIDaemonProcess ${group(v)} python-home=${venvs.get(v)} threads=3
WSGIScriptAlias /${group(v)}/info ${fixture('python-info')} process-group=${group(v)} application-group=%{GLOBAL}
WSGIScriptAlias /${group(v)}/sub ${fixture('python-info')} process-group=${group(v)} application-group=sub
WSGIScriptAlias /${group(v)}/v ${fixture('validated-apps')} process-group=${group(v)}
WSGIScriptAlias /${group(v)}/env ${fixture('validated-environ')} process-group=${group(v)}`,
    )
    .join('\n')
  const bare = ready.get('3.12') ?? ready.get('3.13') ?? null
  const apache = await startApache(t, {
    config: `${groups}
${bare ? `WSGIDaemonProcess bare python-executable=${bare.executable} threads=1
WSGIScriptAlias /bare ${fixture('python-info')} process-group=bare` : ''}
${ALLOW_FIXTURES}
`,
  })
  for (const [v, py] of ready) {
    await t.test(`Python ${v}${v === '3.11' ? " (Debian's, a virtualenv of /usr/bin/python3)" : ` (${py.prefix})`}`, async (t) => {
      const r = await apache.request(`/${group(v)}/info`)
      t.equal(r.status, 200, r.status === 200 ? `${group(v)} answers` : r.text)
      const info = JSON.parse(r.text)
      t.match(info.version, new RegExp(`^${v.replace('.', '\\.')}\\.`), `sys.version is ${v}: ${info.version.split('\n')[0]}`)
      t.equal(info.prefix, venvs.get(v), 'sys.prefix: the virtualenv')
      t.equal(info.base_prefix, py.prefix, 'sys.base_prefix: the installation it was made from')
      t.equal(info.request_timeout_class, 'BaseException', 'mod_wsgi.RequestTimeout derives from BaseException')
      const sub = JSON.parse((await apache.request(`/${group(v)}/sub`)).text)
      t.equal(sub.application_group, 'sub', 'a sub-interpreter of the same Python')
      t.equal(sub.version, info.version)
      t.equal(sub.pid, info.pid, 'in the same process')

      t.equal((await apache.request(`/${group(v)}/v/write`)).text, 'written returned', 'validator: write() then a list')
      const gen = await apache.request(`/${group(v)}/v/generator?n=3`)
      t.equal(gen.body.length, 3 * 65536, 'validator: a generator')
      const body = `first line\n${'x'.repeat(3000)}`
      t.equal((await apache.request(`/${group(v)}/v/echo`, { method: 'POST', body })).text, body, 'validator: wsgi.input')
      const exc = await apache.request(`/${group(v)}/v/exc-info`)
      t.equal(exc.status, 500, 'validator: start_response with exc_info')
      const env = await apache.request(`/${group(v)}/env/some/path?a=1`)
      t.equal(env.status, 200, `validator: the environ (${env.text.slice(0, 200)})`)
    })
  }
  for (const [v, why] of absent) t.test(`Python ${v}`, { skip: why }, async () => {})
  if (bare)
    await t.test(`python-executable=${bare.executable}: a Python without a virtualenv`, async (t) => {
      const info = JSON.parse((await apache.request('/bare')).text)
      t.match(info.version, new RegExp(`^${bare.version.replace('.', '\\.')}\\.`))
      t.equal(info.prefix, bare.prefix, 'sys.prefix: that installation')
    })
  t.notMatch(apache.log(), /AssertionError|WSGIWarning|Exception occurred|WSGI0210[01]/, 'no validator complaint, no start failure')
})

const stat = staticPython('3.12') ?? staticPython('3.13')
t.test('apache2 -t refuses a virtualenv of a Python without a shared libpython, in one line', { skip: stat === null && 'no pyenv CPython 3.12 or 3.13 to copy without its libpython' }, async (t) => {
  if (stat !== null) {
    const venv = testVenv(stat, `py${stat.version}-no-libpython`)
    await assertRefused(
      t,
      `WSGIDaemonProcess static python-home=${venv}`,
      new RegExp(
        `WSGI01400: WSGIDaemonProcess 'static' \\([^)]*\\) cannot embed its Python: virtualenv ${venv} \\(Python ${stat.version.replace('.', '\\.')} of ${stat.prefix}\\) ` +
          `has no shared library libpython${stat.version.replace('.', '\\.')}\\.so\\.1\\.0 and cannot be embedded: rebuild that Python with --enable-shared`,
      ),
      'a virtualenv of a Python built without --enable-shared',
    )
  }
})

t.test('apache2 -t refuses other Pythons that cannot be embedded, in one line', async (t) => {
  // A prefix holding two Pythons, one too old, a free-threaded one: made of empty landmarks.
  const fake = (name: string, versions: string[]) => {
    for (const v of versions) {
      mkdirSync(join(work, name, 'lib', `python${v}`), { recursive: true })
      writeFileSync(join(work, name, 'lib', `python${v}`, 'os.py'), '')
    }
    return join(work, name)
  }
  await assertRefused(t, `WSGIDaemonProcess two python-home=${fake('two', ['3.11', '3.12'])}`,
    /cannot embed its Python: python-home \S+\/two holds several Pythons \(3\.11, 3\.12\): name one with python-executable=\S+\/two\/bin\/python3\.N/)
  await assertRefused(t, `WSGIDaemonProcess old python-home=${fake('old', ['3.7'])}`,
    /cannot embed its Python: Python 3\.7 under \S+\/old: this mod_wsgi embeds CPython 3\.8 to 3\.13/)
  await assertRefused(t, `WSGIDaemonProcess ft python-home=${fake('ft', ['3.13t'])}`,
    /cannot embed its Python: Python 3\.13t under \S+\/ft is a free-threaded build, which cannot be embedded/)
  await assertRefused(t, `WSGIDaemonProcess none python-home=${work}`,
    /python-home \S+ is neither a virtualenv \(no pyvenv\.cfg\) nor a Python installation \(no lib\/python3\.N\/os\.py\)/)
  await assertRefused(t, `WSGIPythonHome ${join(work, 'missing')}\nWSGIScriptAlias / ${fixture('hello')}`,
    /WSGI01400: The default process group cannot embed its Python: python-home \S+\/missing is not a directory/, 'WSGIPythonHome for the default group')
  await assertRefused(t, `WSGIDaemonProcess both python-home=/usr python-executable=/usr/bin/python3.11`,
    /WSGIDaemonProcess 'both': options 'python-home' and 'python-executable' cannot both be given/)
  await assertRefused(t, `WSGIDaemonProcess rel python-executable=bin/python3`,
    /WSGIDaemonProcess 'rel': option 'python-executable' must be the absolute path of a Python's bin\/python3\.N, not 'bin\/python3'/)

  // A virtualenv whose base Python was removed.
  const orphan = join(work, 'orphan')
  mkdirSync(join(orphan, 'bin'), { recursive: true })
  writeFileSync(join(orphan, 'pyvenv.cfg'), `home = ${join(work, 'gone', 'bin')}\nversion = 3.12.4\n`)
  symlinkSync(join(work, 'gone', 'bin', 'python3.12'), join(orphan, 'bin', 'python'))
  await assertRefused(t, `WSGIDaemonProcess orphan python-home=${orphan}`,
    /the Python 3\.12 that virtualenv \S+\/orphan was made from is gone \(no \S+\/gone\/lib\/python3\.12\): reinstall it or recreate the virtualenv/)
})

const other = ready.get('3.12') ?? ready.get('3.13')
t.test('apache2 -t: an addon not built for the Python says what to run', { skip: other === undefined && 'no pyenv CPython 3.12 or 3.13' }, async (t) => {
  const py = other as TestPython
  // The module finds the addons beside its daemon's main.js: point it at a tree with none built.
  const elsewhere = join(work, 'elsewhere')
  mkdirSync(join(elsewhere, 'lib', 'daemon'), { recursive: true })
  const a = new Apache({ config: `WSGIDaemonProcess g python-home=${venvs.get(py.version)}` })
  a.port = 1
  a.writeConfig()
  const r = spawnSync('/usr/sbin/apache2', ['-d', a.dir, '-f', a.conf, '-t'], {
    encoding: 'latin1',
    env: { ...process.env, MOD_WSGI_DAEMON_MAIN: join(elsewhere, 'lib', 'daemon', 'main.js') },
  })
  await a.cleanup()
  t.not(r.status, 0)
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('WSGI01400'))
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], new RegExp(`the addon for Python ${py.version.replace('.', '\\.')} is not built \\(for virtualenv .*\\): run sh ${elsewhere}/scripts/build\\.sh addon --python ${venvs.get(py.version)}/bin/python`))
})

t.test('WSGIPerInterpreterGIL On with a Python before 3.12: accepted, with a warning', async (t) => {
  const a = new Apache({ config: `WSGIPerInterpreterGIL On\nWSGIDaemonProcess old311 threads=1` })
  const r = a.configTest()
  await a.cleanup()
  t.equal(r.status, 0, r.output)
  t.match(r.output, /WSGI01401: WSGIPerInterpreterGIL On has no effect in process group 'old311': its Python 3\.11 has one GIL for all interpreters \(a GIL per interpreter needs CPython 3\.12 or later\)/)
  await assertRefused(t, 'WSGIPerInterpreterGIL Maybe', /WSGIPerInterpreterGIL must be On or Off, not 'Maybe'/)
})

t.test('a Python the daemon user cannot read: the daemon says so in one line', async (t) => {
  const hidden = join(work, 'private')
  mkdirSync(hidden, { mode: 0o700 })
  chmodSync(hidden, 0o700)
  const venv = join(hidden, 'venv')
  const made = spawnSync('/usr/bin/python3', ['-m', 'venv', '--without-pip', venv], { encoding: 'latin1' })
  t.equal(made.status, 0, made.stderr)
  const apache = await startApache(t, {
    config: `WSGIDaemonProcess hidden python-home=${venv} threads=1\nWSGIScriptAlias / ${fixture('python-info')} process-group=hidden\n${ALLOW_FIXTURES}`,
  })
  const line = await apache.waitForLog(/WSGI02101: [^\n]*/)
  t.match(line, new RegExp(`Python 3\\.11 \\(virtualenv ${venv}\\) of daemon process 'hidden' is not readable by its user 'www-data' \\(uid 33\\): .*pyvenv\\.cfg`))
  t.notMatch(apache.log(), /No module named 'encodings'/, 'not a confusing failure deep in Python')
})
