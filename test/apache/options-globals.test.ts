// The global Python directives through a real Apache, observed by the application: WSGIPythonHashSeed
// (the same hash('abc') across restarts for a number; a new one each start for random),
// WSGIDontWriteBytecode (no .pyc written), WSGIPythonOptimize, WSGIPythonWarnings, WSGIImportScript
// (preloaded into a named process and application group at daemon start), WSGILazyInitialization (no
// Python in Apache's own processes either way), WSGIVerboseDebugging, WSGIRestrictSignal,
// WSGIRestrictStdin, WSGIRestrictStdout and WSGISocketPrefix. Two Apaches: every directive "on", then off.
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Apache, assertRefused, childPids, fixture, FIXTURES, PYTHON, startApache, waitFor } from '../helpers/apache'
import { daemonOf, groupPids } from '../helpers/daemons'

const WWW_DATA = 33
const work = mkdtempSync(join(tmpdir(), 'wsgi-globals-'))
chmodSync(work, 0o755)
t.teardown(() => rmSync(work, { recursive: true, force: true }))

/** A directory the daemons (www-data) may write, holding the module `globmod`. */
function moduleDir(name: string): string {
  const d = join(work, name)
  mkdirSync(d, { mode: 0o755 })
  writeFileSync(
    join(d, 'globmod.py'),
    'def documented():\n    """a docstring"""\n\n\ndef assert_runs():\n    try:\n        assert False\n    except AssertionError:\n        return True\n    return False\n',
  )
  chownSync(d, WWW_DATA, WWW_DATA)
  return d
}

const expectedHash = (seed: string) =>
  Number(spawnSync(PYTHON, ['-c', "print(hash('abc'))"], { env: { PYTHONHASHSEED: seed }, encoding: 'latin1' }).stdout.trim())

/** Does any Apache process (parent and children, not the daemons) map libpython? */
function apacheHasPython(apache: Apache): boolean {
  const daemons = apache.daemonPids()
  return [apache.pid, ...childPids(apache.pid).filter((p) => !daemons.includes(p))].some((p) => {
    try {
      return readFileSync(`/proc/${p}/maps`, 'latin1').includes('libpython')
    } catch {
      return false
    }
  })
}

const routes = `
WSGIProcessGroup g
WSGIScriptAlias /info ${fixture('process-observe')}
WSGIScriptAlias /import ${fixture('import-module')}
WSGIScriptAlias /stdio ${fixture('stdio')}
WSGIScriptAlias /signal ${fixture('signal')}
WSGIScriptAlias /embedded ${fixture('hello-world')} process-group=%{GLOBAL}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

t.test('every global directive on', async (t) => {
  const modules = moduleDir('on')
  const marker = join(work, 'marker')
  writeFileSync(marker, '')
  chownSync(marker, WWW_DATA, WWW_DATA)
  process.env.PRELOAD_MARKER = marker
  t.teardown(() => {
    delete process.env.PRELOAD_MARKER
  })
  const apache = await startApache(t, {
    config: `
WSGISocketPrefix run/relative-prefix
WSGIPythonHashSeed 12345
WSGIDontWriteBytecode On
WSGIPythonOptimize 2
WSGIPythonWarnings ignore::DeprecationWarning
WSGIPythonWarnings error::UserWarning
WSGIVerboseDebugging On
WSGIRestrictSignal On
WSGIRestrictStdin On
WSGIRestrictStdout On
WSGILazyInitialization On
WSGIRestrictEmbedded On
WSGIPythonPath ${modules}
WSGIDaemonProcess g threads=2
WSGIDaemonProcess other threads=1
WSGIImportScript ${fixture('daemon-preload')} process-group=g application-group=preloaded
WSGIScriptAlias /pre ${fixture('daemon-preload')}
WSGIScriptAlias /pre-global ${fixture('daemon-preload')}
WSGIScriptAlias /pre-other ${fixture('daemon-preload')}
<Location /pre>
  WSGIApplicationGroup preloaded
</Location>
<Location /pre-global>
  WSGIApplicationGroup %{GLOBAL}
</Location>
<Location /pre-other>
  WSGIProcessGroup other
  WSGIApplicationGroup preloaded
</Location>
${routes}
`,
  })

  // WSGIImportScript: imported at daemon start, before any request, in that process group only.
  const g = await daemonOf(apache, 'g')
  const other = await daemonOf(apache, 'other')
  const lines = await waitFor(() => {
    const l = readFileSync(marker, 'latin1').trim()
    return l ? l.split('\n') : null
  }, 15000, 50, 'the preload')
  t.same(lines, [String(g)], "WSGIImportScript: imported by g's daemon at start, before any request, and not by other")
  t.equal((await apache.request('/pre')).text, '1', 'a request to that application group uses the preloaded module')
  t.equal((await apache.request('/pre-global')).text, '1', 'another application group of g imports it for itself')
  t.equal((await apache.request('/pre-other')).text, '1')
  t.same(readFileSync(marker, 'latin1').trim().split('\n'), [String(g), String(g), String(other)], 'two more imports, each at its first request')

  const info = JSON.parse((await apache.request('/info')).text)
  t.equal(info.hash_abc, expectedHash('12345'), "WSGIPythonHashSeed 12345: hash('abc') as with PYTHONHASHSEED=12345")
  t.equal(info.flags.hash_randomization, 1)
  t.equal(info.dont_write_bytecode, true, 'WSGIDontWriteBytecode On: sys.dont_write_bytecode')
  t.equal(info.flags.dont_write_bytecode, 1)
  t.equal(info.flags.optimize, 2, 'WSGIPythonOptimize 2: sys.flags.optimize')
  t.equal(info.debug, false, '__debug__ is False')
  t.same(info.warnoptions, ['ignore::DeprecationWarning', 'error::UserWarning'], 'WSGIPythonWarnings: sys.warnoptions, in order')
  t.same(info.warning_filters.slice(0, 2), [['error', 'UserWarning'], ['ignore', 'DeprecationWarning']], 'the filters are installed (the last given first)')

  const imported = JSON.parse((await apache.request('/import?name=globmod')).text)
  t.equal(imported.file, join(modules, 'globmod.py'), 'WSGIPythonPath: the module comes from there')
  t.same(imported.pycache, [], 'WSGIDontWriteBytecode On: no .pyc written')
  t.equal(imported.doc, null, 'optimize 2: docstrings stripped')
  t.equal(imported.assert_runs, false, 'optimize 2: asserts stripped')

  const stdio = JSON.parse((await apache.request('/stdio')).text)
  t.equal(stdio.stdin, 'OSError: sys.stdin access restricted by mod_wsgi', 'WSGIRestrictStdin On')
  t.equal(stdio.stdout, 'OSError: sys.stdout access restricted by mod_wsgi', 'WSGIRestrictStdout On')
  t.equal((await apache.request('/signal')).text, 'returned handler', 'WSGIRestrictSignal On: signal.signal() is a no-op')
  t.match(apache.log(), /WSGI03030: .*Callback registration for signal 15 ignored\./, 'and says so')

  const log = apache.log()
  t.match(log, /WSGI03002: Initializing Python\./, 'WSGIVerboseDebugging On: each step is logged')
  t.match(log, /WSGI03003: Create interpreter 'preloaded'\./)
  t.notOk(apacheHasPython(apache), 'WSGILazyInitialization On: no Python in the Apache processes')

  const embedded = await apache.request('/embedded')
  t.equal(embedded.status, 500, 'WSGIRestrictEmbedded On: a request without a daemon process group fails')
  t.match(apache.log(), /WSGI01237: Embedded mode of mod_wsgi disabled by runtime configuration/)

  const sockets = readdirSync(join(apache.dir, 'run')).filter((f) => f.startsWith('relative-prefix.') && f.endsWith('.sock'))
  t.equal(sockets.length, 2, `WSGISocketPrefix run/relative-prefix, relative to ServerRoot: ${sockets.join(', ')}`)
  for (const s of sockets) t.equal(statSync(join(apache.dir, 'run', s)).mode & 0o777, 0o600)

  // The same seed after a restart of the daemon.
  process.kill(g, 'SIGKILL')
  const g2 = await daemonOf(apache, 'g', [g])
  const again = JSON.parse((await apache.request('/info')).text)
  t.equal(again.pid, g2)
  t.equal(again.hash_abc, info.hash_abc, "a new daemon: the same hash('abc')")
})

t.test('every global directive off (or random)', async (t) => {
  const modules = moduleDir('off')
  const apache = await startApache(t, {
    config: `
WSGIPythonHashSeed random
WSGIDontWriteBytecode Off
WSGIVerboseDebugging Off
WSGIRestrictSignal Off
WSGIRestrictStdin Off
WSGIRestrictStdout Off
WSGILazyInitialization Off
WSGIRestrictEmbedded Off
WSGIPythonPath ${modules}
WSGIDaemonProcess g threads=2
${routes}
`,
  })
  const g = await daemonOf(apache, 'g')
  const info = JSON.parse((await apache.request('/info')).text)
  t.equal(info.dont_write_bytecode, false)
  t.equal(info.flags.optimize, 0, 'no WSGIPythonOptimize: 0')
  t.equal(info.debug, true)
  t.same(info.warnoptions, [])
  const imported = JSON.parse((await apache.request('/import?name=globmod')).text)
  t.match(imported.pycache, [/^globmod\.cpython-311\.pyc$/], 'WSGIDontWriteBytecode Off: the .pyc is written')
  t.equal(imported.doc, 'a docstring')
  t.equal(imported.assert_runs, true)

  const stdio = JSON.parse((await apache.request('/stdio')).text)
  t.equal(stdio.stdin, "ok: ''", 'WSGIRestrictStdin Off: reading stdin gives end of file')
  t.equal(stdio.stdout, 'ok: None', 'WSGIRestrictStdout Off: printing works')
  t.ok(await apache.waitForLog(/stdio-fixture printed to stdout/), 'and goes to the error log')
  t.match((await apache.request('/signal')).text, /^raised ValueError$/, "WSGIRestrictSignal Off: Python's own signal.signal() (not the main thread: ValueError)")
  t.notMatch(apache.log(), /WSGI03002|WSGI03003/, 'WSGIVerboseDebugging Off: no step lines')
  t.notOk(apacheHasPython(apache), 'WSGILazyInitialization Off: still no Python in the Apache processes')
  const embedded = await apache.request('/embedded')
  t.equal(embedded.text, 'Hello World!', 'WSGIRestrictEmbedded Off: a request without a process group is served')
  t.ok(await daemonOf(apache, ''), 'by the implicit default group (wsgi:)')

  process.kill(g, 'SIGKILL')
  await daemonOf(apache, 'g', [g])
  const again = JSON.parse((await apache.request('/info')).text)
  t.not(again.hash_abc, info.hash_abc, "WSGIPythonHashSeed random: a new daemon hashes 'abc' differently")
  t.equal(groupPids(apache, 'g').length, 1)
  t.ok(existsSync(join(modules, '__pycache__')))
})

t.test('apache2 -t names the directive on a bad global value', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['WSGIPythonHashSeed -1', /WSGIPythonHashSeed must be "random" or an integer from 0 to 4294967295, not '-1'/],
    ['WSGIPythonHashSeed 0x10', /WSGIPythonHashSeed must be "random" or an integer from 0 to 4294967295, not '0x10'/],
    ['WSGIDontWriteBytecode yes', /WSGIDontWriteBytecode must be On or Off, not 'yes'/],
    ['WSGIPythonOptimize -1', /WSGIPythonOptimize must be 0, 1 or 2, not '-1'/],
    ['WSGIPythonWarnings ""', /WSGIPythonWarnings takes one argument, a warning filter as for python -W/],
    ['WSGILazyInitialization 1', /WSGILazyInitialization must be On or Off, not '1'/],
    ['WSGIVerboseDebugging x', /WSGIVerboseDebugging must be On or Off, not 'x'/],
    ['WSGIRestrictStdin maybe', /WSGIRestrictStdin must be On or Off, not 'maybe'/],
    ['WSGIRestrictStdout maybe', /WSGIRestrictStdout must be On or Off, not 'maybe'/],
    ['WSGISocketPrefix ""', /WSGISocketPrefix takes one argument, path prefix of the daemon process sockets/],
    ['WSGIImportScript /x.py process-group=%{ENV:X} application-group=a', /WSGIImportScript: option 'process-group' must name a process group or be %\{GLOBAL\}, not '%\{ENV:X\}'/],
    ['<VirtualHost *:80>\nWSGIPythonHashSeed 1\n</VirtualHost>', /WSGIPythonHashSeed cannot occur within <VirtualHost> section/],
    ['<VirtualHost *:80>\nWSGIDontWriteBytecode On\n</VirtualHost>', /WSGIDontWriteBytecode cannot occur within <VirtualHost> section/],
    ['<VirtualHost *:80>\nWSGIRestrictSignal On\n</VirtualHost>', /WSGIRestrictSignal cannot occur within <VirtualHost> section/],
  ]
  for (const [config, message] of bad) await assertRefused(t, config, message)
})
