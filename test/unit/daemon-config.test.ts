// MOD_WSGI_DAEMON_CONFIG parsing: the documented example parses to the typed object; every kind of
// malformed input is refused with the field named.
import t from 'tap'
import { ConfigError, parseDaemonConfig } from '../../src/config/daemon-config'
import { pythonOptions, pythonRequest } from '../../src/daemon/python-options'
import { processTitle } from '../../src/daemon/process-title'
import { sampleConfig } from './sample-config'

const parse = (o: unknown) => parseDaemonConfig(JSON.stringify(o))

function refused(tt: { ok(v: unknown, m: string): unknown; fail(m: string): unknown }, input: string | undefined, field: RegExp, what: string) {
  try {
    parseDaemonConfig(input)
    tt.fail(`${what}: accepted`)
  } catch (e) {
    tt.ok(e instanceof ConfigError && field.test(e.message), `${what}: ${(e as Error).message}`)
  }
}

t.test('the documented example parses', async (t) => {
  const c = parse(sampleConfig({ python: { import_scripts: [{ script: '/srv/app/wsgi.py', application_group: '' }] } }))
  t.equal(c.group, 'myapp')
  t.equal(c.processIndex, 1)
  t.equal(c.server.logLevel, 'warn')
  t.equal(c.server.apacheUid, 33)
  t.same(c.python.importScripts, [{ script: '/srv/app/wsgi.py', applicationGroup: '' }])
  t.equal(c.python.hashSeed, null)
  t.equal(c.options.threads, 15)
  t.equal(c.options.shutdownTimeout, 5)
  t.equal(c.options.supplementaryGroups, null)
  t.equal(c.options.umask, null)
  t.equal(c.options.headerBufferSize, 32768)
})

t.test('optional shapes', async (t) => {
  const c = parse(
    sampleConfig({
      group: '',
      python: { hash_seed: 'random', path: ['/a', '/b'], warnings: ['ignore::DeprecationWarning'] },
      options: { supplementary_groups: [4, 24], umask: 0o22, home: '/srv', display_name: '%{GROUP}', cpu_priority: -5 },
    }),
  )
  t.equal(c.group, '')
  t.equal(c.python.hashSeed, 'random')
  t.same(c.options.supplementaryGroups, [4, 24])
  t.equal(c.options.umask, 0o22)
  t.equal(c.options.cpuPriority, -5)
  t.equal(parse(sampleConfig({ python: { hash_seed: 4294967295 } })).python.hashSeed, 4294967295)
  t.equal(parse({ ...sampleConfig(), extra_field_from_newer_module: true }).group, 'myapp', 'unknown fields ignored')
})

t.test('malformed input is refused naming the field', async (t) => {
  refused(t, undefined, /not set/, 'missing variable')
  refused(t, '', /not set/, 'empty variable')
  refused(t, '{not json', /not valid JSON/, 'bad JSON')
  refused(t, '[]', /JSON object/, 'array')
  refused(t, JSON.stringify({ ...sampleConfig(), format: 2 }), /format 2/, 'other format')
  const cases: Array<[Record<string, unknown>, RegExp, string]> = [
    [sampleConfig({ options: { threads: 0 } }), /options\.threads/, 'threads 0'],
    [sampleConfig({ options: { threads: '15' } }), /options\.threads/, 'threads as string'],
    [sampleConfig({ options: { threads: 1.5 } }), /options\.threads/, 'fractional threads'],
    [sampleConfig({ options: { uid: -1 } }), /options\.uid/, 'negative uid'],
    [sampleConfig({ options: { supplementary_groups: ['wheel'] } }), /supplementary_groups/, 'group names'],
    [sampleConfig({ options: { umask: 0o1000 } }), /options\.umask/, 'umask too big'],
    [sampleConfig({ options: { cpu_priority: 21 } }), /cpu_priority/, 'nice 21'],
    [sampleConfig({ options: { home: 5 } }), /options\.home/, 'home as number'],
    [sampleConfig({ server: { log_level: 'verbose' } }), /server\.log_level/, 'unknown log level'],
    [sampleConfig({ python: { hash_seed: -1 } }), /hash_seed/, 'negative hash seed'],
    [sampleConfig({ python: { hash_seed: 4294967296 } }), /hash_seed/, 'hash seed too big'],
    [sampleConfig({ python: { optimize: 3 } }), /python\.optimize/, 'optimize 3'],
    [sampleConfig({ python: { path: '/a:/b' } }), /python\.path/, 'path as string'],
    [sampleConfig({ python: { import_scripts: [{ script: '/x' }] } }), /import_scripts\[0\]\.application_group/, 'import script without group'],
    [sampleConfig({ python: { restrict_signal: 'yes' } }), /restrict_signal/, 'boolean as string'],
  ]
  for (const [cfg, re, what] of cases) refused(t, JSON.stringify(cfg), re, what)
  const noOptions = sampleConfig()
  delete noOptions.options
  refused(t, JSON.stringify(noOptions), /options is missing/, 'missing options')
  const noTimeout = sampleConfig()
  delete (noTimeout.options as Record<string, unknown>).shutdown_timeout
  refused(t, JSON.stringify(noTimeout), /options\.shutdown_timeout is missing/, 'missing option')
})

t.test('PythonOptions derived from the configuration', async (t) => {
  const c = parse(
    sampleConfig({
      python: { path: ['/lib/a', '/lib/b'], hash_seed: 7, optimize: 2 },
      options: { python_path: ['/lib/b', '/first'], threads: 1, home: '/srv/app', multiprocess: true },
      server: { log_level: 'trace3' },
    }),
  )
  const p = pythonOptions(c)
  t.equal(p.programName, '/usr/bin/python3.11')
  t.equal(p.home, null)
  t.same(p.path, ['/lib/b', '/first', '/lib/a'], 'group entries first, no duplicates')
  t.equal(p.cwdFirstOnPath, true, 'home= puts the working directory first')
  t.equal(p.hashSeed, 7)
  t.equal(p.optimize, 2)
  t.equal(p.multithread, false)
  t.equal(p.multiprocess, true)
  t.equal(p.logLevel, 'debug', 'trace levels map to debug')
  t.equal(p.processGroup, 'myapp')
  const venv = pythonOptions(parse(sampleConfig({ options: { python_home: '/venv/' } })))
  t.equal(venv.programName, '/venv/bin/python')
  t.equal(venv.home, '/venv/')
  t.equal(venv.cwdFirstOnPath, false)
})

t.test('process title', async (t) => {
  t.equal(processTitle(parse(sampleConfig())), '(wsgi:myapp)')
  t.equal(processTitle(parse(sampleConfig({ group: '' }))), '(wsgi:)')
  t.equal(processTitle(parse(sampleConfig({ options: { display_name: '%{GROUP}' } }))), '(wsgi:myapp)')
  t.equal(processTitle(parse(sampleConfig({ options: { display_name: 'my-site' } }))), 'my-site')
})

t.test('mod_wsgi 6 fields (optional): per_interpreter_gil, interrupt_timeout, switch_interval, python_executable', async (t) => {
  const none = parse(sampleConfig())
  t.equal(none.python.perInterpreterGil, false, 'absent: off')
  t.equal(none.options.interruptTimeout, 0)
  t.equal(none.options.switchInterval, null)
  t.equal(none.options.pythonExecutable, null)
  const c = parse(
    sampleConfig({
      python: { per_interpreter_gil: true },
      options: { interrupt_timeout: 10, switch_interval: 0.002, python_executable: '/opt/py/bin/python3.12' },
    }),
  )
  t.equal(c.python.perInterpreterGil, true)
  t.equal(c.options.interruptTimeout, 10)
  t.equal(c.options.switchInterval, 0.002)
  t.equal(c.options.pythonExecutable, '/opt/py/bin/python3.12')
  const p = pythonOptions(c)
  t.equal(p.perInterpreterGil, true)
  t.equal(p.switchInterval, 0.002)
  t.same(pythonRequest(c), { home: null, executable: '/opt/py/bin/python3.12' }, 'python-executable wins over WSGIPythonHome')
  t.same(pythonRequest(parse(sampleConfig({ python: { home: '/g' }, options: { python_home: '/v' } }))), { home: '/v', executable: null })
  t.same(pythonRequest(parse(sampleConfig({ python: { home: '/g' } }))), { home: '/g', executable: null })
  refused(t, JSON.stringify(sampleConfig({ options: { switch_interval: 0 } })), /options\.switch_interval must be null or a number in/, 'switch_interval 0')
  refused(t, JSON.stringify(sampleConfig({ options: { switch_interval: '0.1' } })), /options\.switch_interval/, 'switch_interval as string')
  refused(t, JSON.stringify(sampleConfig({ options: { interrupt_timeout: -1 } })), /options\.interrupt_timeout/, 'interrupt_timeout -1')
  refused(t, JSON.stringify(sampleConfig({ python: { per_interpreter_gil: 'yes' } })), /python\.per_interpreter_gil must be true or false/, 'per_interpreter_gil as string')
})
