// The Python options of WSGIDaemonProcess and their global counterparts through a real Apache, observed
// by the application: python-home / WSGIPythonHome (a virtual environment: sys.prefix), python-path /
// WSGIPythonPath (sys.path, through site.addsitedir so .pth files count; the group's entries first),
// python-eggs / WSGIPythonEggs (PYTHON_EGG_CACHE), stack-size (the stack of the thread running the request).
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { assertRefused, fixture, FIXTURES, startApache } from '../helpers/apache'

const work = mkdtempSync(join(tmpdir(), 'wsgi-python-opts-'))
chmodSync(work, 0o755)
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const dir = (name: string) => {
  const d = join(work, name)
  mkdirSync(d, { recursive: true, mode: 0o755 })
  return d
}

const venv = join(work, 'venv')
const made = spawnSync('/usr/bin/python3.11', ['-m', 'venv', '--without-pip', venv], { encoding: 'latin1' })
const globalPath = dir('global-path')
const groupPath1 = dir('group-path-1')
const groupPath2 = dir('group-path-2')
const fromPth = dir('from-pth')
writeFileSync(join(groupPath1, 'extra.pth'), `${fromPth}\n`)

t.test('python-home, python-path, python-eggs, stack-size and the global directives', async (t) => {
  t.equal(made.status, 0, `a virtual environment was made: ${made.stderr}`)
  const apache = await startApache(t, {
    config: `
WSGIPythonHome ${venv}
WSGIPythonPath ${globalPath}
WSGIPythonEggs ${dir('global-eggs')}
WSGIDaemonProcess ga threads=1
WSGIDaemonProcess gb python-home=/usr python-path=${groupPath1}:${groupPath2} python-eggs=${dir('group-eggs')} \\
    stack-size=524288 threads=2
WSGIScriptAlias /ga ${fixture('process-observe')} process-group=ga
WSGIScriptAlias /gb ${fixture('process-observe')} process-group=gb
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const a = JSON.parse((await apache.request('/ga')).text)
  t.equal(a.prefix, venv, 'WSGIPythonHome: sys.prefix is the virtual environment')
  t.equal(a.base_prefix, '/usr', 'based on the system Python')
  t.ok(a.sys_path.includes(globalPath), 'WSGIPythonPath is on sys.path')
  t.notOk(a.sys_path.some((p: string) => p.startsWith('/usr/lib/python3/dist-packages')), "the venv's isolation: no system dist-packages")
  t.equal(a.env.PYTHON_EGG_CACHE, join(work, 'global-eggs'), 'WSGIPythonEggs: PYTHON_EGG_CACHE')
  t.equal(a.thread_stack_size, 8 * 1024 * 1024, 'stack-size not given: the usual 8 MiB')

  const b = JSON.parse((await apache.request('/gb')).text)
  t.equal(b.prefix, '/usr', 'python-home wins over WSGIPythonHome')
  const i1 = b.sys_path.indexOf(groupPath1)
  const i2 = b.sys_path.indexOf(groupPath2)
  const ig = b.sys_path.indexOf(globalPath)
  t.ok(i1 >= 0 && i2 > i1 && ig > i2, `python-path entries in order, before WSGIPythonPath (${i1}, ${i2}, ${ig})`)
  t.ok(b.sys_path.includes(fromPth), "python-path goes through site.addsitedir: the directory's .pth file counts")
  t.ok(i1 < b.sys_path.findIndex((p: string) => p.endsWith('dist-packages')), 'before site-packages')
  t.equal(b.env.PYTHON_EGG_CACHE, join(work, 'group-eggs'), 'python-eggs wins over WSGIPythonEggs')
  t.equal(b.thread_stack_size, 524288, 'stack-size=524288 is the stack of the worker thread')
})

t.test('apache2 -t names the directive and the option on a bad Python option', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['WSGIDaemonProcess g python-home=venv', /WSGIDaemonProcess 'g': option 'python-home' must be an absolute directory path, not 'venv'/],
    ['WSGIDaemonProcess g stack-size=0', /option 'stack-size' must be a size in bytes greater than 0, not '0'/],
    ['WSGIDaemonProcess g stack-size=512k', /option 'stack-size' must be a size in bytes greater than 0, not '512k'/],
    ['WSGIPythonHome relative/dir', /WSGIPythonHome must be an absolute directory path, not 'relative\/dir'/],
    ['<VirtualHost *:80>\nWSGIPythonPath /tmp\n</VirtualHost>', /WSGIPythonPath cannot occur within <VirtualHost> section/],
    ['<VirtualHost *:80>\nWSGIPythonEggs /tmp\n</VirtualHost>', /WSGIPythonEggs cannot occur within <VirtualHost> section/],
  ]
  for (const [config, message] of bad) await assertRefused(t, config, message)
})
