// mod_wsgi-express and the Python of the daemons (issue 18): started from an activated virtualenv
// ($VIRTUAL_ENV) it serves with that virtualenv's CPython; --python-home of a Python whose addon is not
// built builds it on first use (scripts/build.sh; CPython 3.8 here, which setup.sh leaves to this);
// --python-executable, --per-interpreter-gil, --switch-interval and --interrupt-timeout reach the
// generated configuration and the application; a Python that cannot be embedded stops with one line.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { fixture, request } from '../helpers/apache'
import { addonBuilt, pyenvPython, readyPython, staticPython, testVenv, type TestPython } from '../helpers/pythons'
import { EXPRESS, startExpress, tempDir } from './express-helpers'

const info = async (port: number) => JSON.parse((await request(port, '/')).text)
const named = (v: string) => new RegExp(`^${v.replace('.', '\\.')}\\.`)

const py312 = readyPython('3.12')
t.test('start-server from an activated virtualenv serves with its Python', { skip: typeof py312 === 'string' && py312 }, async (t) => {
  const venv = testVenv(py312 as TestPython)
  const s = await startExpress(t, [fixture('python-info')], { env: { ...process.env, VIRTUAL_ENV: venv } })
  const i = await info(s.port)
  t.match(i.version, named('3.12'), `sys.version: ${i.version}`)
  t.equal(i.prefix, venv)
  t.match(readFileSync(join(s.root, 'httpd.conf'), 'utf8'), `python-home='${venv}'`)
})

const py38 = pyenvPython('3.8')
t.test('--python-home of a Python whose addon is not built: built on first use', { skip: py38 === null && 'no pyenv CPython 3.8' }, async (t) => {
  const venv = testVenv(py38 as TestPython)
  const wasBuilt = addonBuilt('3.8')
  const dir = tempDir(t, 'mod_wsgi-express-py38-')
  // setup-server prepares everything start-server does, the build included, without starting Apache.
  const setup = spawnSync(process.execPath, [EXPRESS, 'setup-server', fixture('python-info'), '--python-home', venv, '--server-root', join(dir, 'root')], {
    encoding: 'utf8',
    timeout: 100000,
  })
  t.equal(setup.status, 0, setup.status === 0 ? 'setup-server' : setup.stderr.slice(-2000))
  if (wasBuilt) t.pass('(the addon for 3.8 was already built on this machine)')
  else t.match(setup.stderr, /mod_wsgi-express: building the addon for Python 3\.8 \(.*\), once; this takes about a minute\.\.\./)
  t.ok(addonBuilt('3.8'), 'build/py3.8/wsgi_bridge.node')
  const s = await startExpress(t, [fixture('python-info'), '--python-home', venv])
  const i = await info(s.port)
  t.match(i.version, named('3.8'), `sys.version: ${i.version.split('\n')[0]}`)
})

const py313 = readyPython('3.13')
t.test('--python-executable, --per-interpreter-gil, --switch-interval, --interrupt-timeout', { skip: typeof py313 === 'string' && py313 }, async (t) => {
  const py = py313 as TestPython
  const s = await startExpress(t, [
    fixture('python-info'),
    '--python-executable', py.executable,
    '--per-interpreter-gil',
    '--switch-interval', '0.002',
    '--interrupt-timeout', '7',
  ])
  const conf = readFileSync(join(s.root, 'httpd.conf'), 'utf8')
  t.match(conf, `python-executable='${py.executable}'`)
  t.match(conf, /^WSGIPerInterpreterGIL On$/m)
  t.match(conf, /switch-interval=0\.002/)
  t.match(conf, /interrupt-timeout=7/)
  const i = await info(s.port)
  t.match(i.version, named('3.13'))
  t.equal(i.prefix, py.prefix, 'no virtualenv: the installation itself')
  t.equal(i.switch_interval, 0.002)
})

t.test('a Python that cannot be embedded, or a bad option: one line, exit status 2', async (t) => {
  const bad = spawnSync(process.execPath, [EXPRESS, 'setup-server', '--switch-interval', '5ms'], { encoding: 'utf8' })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /mod_wsgi-express: --switch-interval must be a number of seconds from 0\.000001 to 60, not '5ms'/)
  const both = spawnSync(process.execPath, [EXPRESS, 'setup-server', '--python-home', '/usr', '--python-executable', '/usr/bin/python3'], { encoding: 'utf8' })
  t.equal(both.status, 2)
  t.match(both.stderr, /--python-home and --python-executable cannot both be given/)
  const stat = staticPython('3.12') ?? staticPython('3.13')
  if (stat === null) return
  const venv = testVenv(stat, `py${stat.version}-no-libpython`)
  const dir = tempDir(t, 'mod_wsgi-express-static-')
  const r = spawnSync(process.execPath, [EXPRESS, 'setup-server', '--python-home', venv, '--server-root', join(dir, 'root')], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr.trim(), new RegExp(`^mod_wsgi-express: cannot embed the Python: virtualenv ${venv} .* has no shared library libpython${stat.version.replace('.', '\\.')}\\.so\\.1\\.0 and cannot be embedded: rebuild that Python with --enable-shared`))
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
})
