// Which CPython a group embeds and which addon build carries it (src/native/python-select.ts), on
// made-up installations: read from a virtualenv's pyvenv.cfg (venv's `version`, virtualenv's
// `version_info`), from a prefix's only lib/python3.N, or from python-executable; refused, in one line
// naming the Python and what to do, when it cannot be embedded. (apache2 -t makes the same checks:
// test/apache/python-versions.test.ts.)
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  AddonNotBuiltError,
  minorVersion,
  parsePyvenvCfg,
  PythonSelectError,
  selectPython,
  type PythonRequest,
} from '../../src/native/python-select'

const work = mkdtempSync(join(tmpdir(), 'mod_wsgi-pyselect-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const root = join(work, 'project')
const file = (p: string, text = '') => {
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, text)
  return p
}
// Addon builds: 3.12 has its own; the default build says 3.11.
file(join(root, 'build', 'py3.12', 'wsgi_bridge.node'))
file(join(root, 'build', 'py3.12', 'python_preload.node'))
file(join(root, 'build', 'Release', 'wsgi_bridge.node'))
file(join(root, 'build', 'Release', 'python_preload.node'))
file(join(root, 'build', 'Release', 'python-version'), '3.11\n')

/** An installation: lib/python3.N/os.py, bin/python3.N, and (unless `shared` is false) its libpython. */
function install(name: string, versions: string[], opts: { shared?: boolean; libdir?: string } = {}): string {
  const prefix = join(work, name)
  for (const v of versions) {
    file(join(prefix, 'lib', `python${v}`, 'os.py'))
    file(join(prefix, 'bin', `python${v}`))
    if (opts.shared !== false) file(join(prefix, opts.libdir ?? 'lib', `libpython${v}.so.1.0`))
  }
  return prefix
}

function venv(name: string, base: string, version: string, cfg: string): string {
  const dir = join(work, name)
  file(join(dir, 'pyvenv.cfg'), cfg)
  mkdirSync(join(dir, 'lib', `python${version}`, 'site-packages'), { recursive: true })
  mkdirSync(join(dir, 'bin'), { recursive: true })
  symlinkSync(join(base, 'bin', `python${version}`), join(dir, 'bin', 'python'))
  return dir
}

const select = (r: Partial<PythonRequest>) => selectPython({ home: null, executable: null, root, ...r })
function refused(tt: { ok(v: unknown, m: string): unknown; fail(m: string): unknown }, r: Partial<PythonRequest>, re: RegExp, what: string) {
  try {
    select(r)
    tt.fail(`${what}: accepted`)
  } catch (e) {
    tt.ok(e instanceof PythonSelectError && re.test(e.message), `${what}: ${(e as Error).message}`)
  }
}

const py312 = install('py312', ['3.12'])
const debian = install('debian', ['3.11'], { libdir: join('lib', 'x86_64-linux-gnu') })

t.test('pyvenv.cfg and version strings', async (t) => {
  const cfg = parsePyvenvCfg('home = /opt/py/bin\ninclude-system-site-packages = false\nVersion = 3.12.4\n  version_info=3.12.4.final.0  \n')
  t.equal(cfg.get('home'), '/opt/py/bin')
  t.equal(cfg.get('version'), '3.12.4', 'keys case-insensitive')
  t.equal(cfg.get('version_info'), '3.12.4.final.0')
  t.equal(minorVersion('3.12.4'), '3.12')
  t.equal(minorVersion('3.10.13.final.0'), '3.10')
  t.equal(minorVersion('3.9'), '3.9')
  t.equal(minorVersion('three'), null)
})

t.test("no python-home: Debian's Python, the default build, nothing preloaded", async (t) => {
  const s = select({})
  t.match(s, { version: '3.11', programName: '/usr/bin/python3.11', library: null, home: null })
  t.equal(s.addon, join(root, 'build', 'Release', 'wsgi_bridge.node'))
})

t.test("a venv (python -m venv): the base installation's version, library and addon", async (t) => {
  const v = venv('venv312', py312, '3.12', `home = ${py312}/bin\nversion = 3.12.4\n`)
  const s = select({ home: `${v}/` })
  t.match(s, { version: '3.12', minor: 12, prefix: py312, venv: v, home: v, programName: join(v, 'bin', 'python') })
  t.equal(s.library, join(py312, 'lib', 'libpython3.12.so.1.0'))
  t.equal(s.addon, join(root, 'build', 'py3.12', 'wsgi_bridge.node'))
  t.equal(s.preload, join(root, 'build', 'py3.12', 'python_preload.node'))
})

t.test('a virtualenv (pypa): version_info; a Debian-style multiarch libpython; the default build when it is that version', async (t) => {
  const v = venv('virtualenv311', debian, '3.11', `home = ${debian}/bin\nimplementation = CPython\nversion_info = 3.11.2.final.0\n`)
  const s = select({ home: v })
  t.match(s, { version: '3.11', prefix: debian })
  t.equal(s.library, join(debian, 'lib', 'x86_64-linux-gnu', 'libpython3.11.so.1.0'))
  t.equal(s.addon, join(root, 'build', 'Release', 'wsgi_bridge.node'), 'build/Release/python-version says 3.11')
})

t.test('a prefix, and python-executable', async (t) => {
  t.match(select({ home: py312 }), { version: '3.12', venv: null, home: py312, programName: join(py312, 'bin', 'python3.12') })
  symlinkSync('python3.12', join(py312, 'bin', 'python3'))
  const s = select({ executable: join(py312, 'bin', 'python3') })
  t.match(s, { version: '3.12', prefix: py312, home: null, programName: join(py312, 'bin', 'python3') }, 'a symlink is followed for the version')
  const v = venv('venv312b', py312, '3.12', `home = ${py312}/bin\nversion = 3.12.1\n`)
  t.match(select({ executable: join(v, 'bin', 'python') }), { venv: v, version: '3.12' }, "a virtualenv's python")
})

t.test('refused, saying which Python and what to do', async (t) => {
  const static312 = install('static312', ['3.12'], { shared: false })
  refused(t, { home: static312 }, /^Python 3\.12 under \S+static312 has no shared library libpython3\.12\.so\.1\.0 and cannot be embedded: rebuild that Python with --enable-shared \(pyenv: env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install 3\.12\)/, 'no shared libpython')
  refused(t, { home: install('two', ['3.11', '3.12']) }, /holds several Pythons \(3\.11, 3\.12\): name one with python-executable=/, 'two Pythons in one prefix')
  refused(t, { home: install('old', ['3.7']) }, /is Python 3\.7: this mod_wsgi embeds CPython 3\.8 to 3\.13$/, 'too old')
  refused(t, { home: install('new', ['3.14']) }, /is Python 3\.14: this mod_wsgi embeds CPython 3\.8 to 3\.13$/, 'too new')
  refused(t, { home: install('ft', ['3.13t']) }, /is a free-threaded build of Python 3\.13, which cannot be embedded/, 'free-threaded')
  refused(t, { home: join(work, 'nowhere') }, /python-home \S+nowhere is not a directory/, 'missing')
  refused(t, { home: root }, /is neither a virtualenv \(no pyvenv\.cfg\) nor a Python installation/, 'not a Python')
  const gone = venv('orphan', join(work, 'gone'), '3.12', `home = ${join(work, 'gone', 'bin')}\nversion = 3.12.0\n`)
  refused(t, { home: gone }, /the Python 3\.12 that virtualenv \S+orphan was made from is gone/, 'base removed')
  refused(t, { executable: 'bin/python3' }, /is not an absolute path/, 'relative executable')

  const py313 = install('py313', ['3.13'])
  try {
    select({ home: py313 })
    t.fail('accepted without an addon')
  } catch (e) {
    t.ok(e instanceof AddonNotBuiltError, 'AddonNotBuiltError')
    t.match((e as AddonNotBuiltError).message, `the addon for Python 3.13 is not built (for Python 3.13 under ${py313}): run sh ${root}/scripts/build.sh addon --python ${py313}/bin/python3.13`)
    t.equal((e as AddonNotBuiltError).version, '3.13')
    t.equal((e as AddonNotBuiltError).executable, join(py313, 'bin', 'python3.13'), 'what mod_wsgi-express builds for')
  }
})
