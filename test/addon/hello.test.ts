// Hello world, the environ and interpreter options, logging, and the per-request cost, driving the
// addon directly (no Apache) with Debian's Python.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

import { AddonProcess, body, fixture, header, requestVars, spec, tempDir } from './harness'
import { buildRequest } from './wire'

t.test('hello world: one event with HEAD, BODY and END', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  for (let i = 0; i < 3; i++) {
    const r = await host.run(spec(fixture('hello')))
    t.same(r.violations, [])
    t.equal(r.head?.status, 200)
    t.equal(r.head?.statusLine, '200 OK')
    t.same(r.head?.headers, [['Content-Type', 'text/plain'], ['Content-Length', '12']])
    t.equal(body(r).toString(), 'Hello World!')
    t.equal(r.end, 0)
    t.equal(r.events, 1)
  }
})

t.test('environ contents and the interpreter', async (t) => {
  const host = await AddonProcess.start({ multithread: true, multiprocess: false })
  t.teardown(() => host.kill())
  const script = fixture('environ')
  const r = await host.run(
    spec(script, {
      query: 'a=1&b=%C3%A9',
      scheme: 'https',
      extra: { HTTP_X_LATIN: 'caf\u00e9', HTTP_COOKIE: 'k=v' },
    }),
  )
  t.same(r.violations, [])
  t.equal(r.head?.status, 200)
  const env = JSON.parse(body(r).toString())
  const types = env.__types__
  t.equal(env['wsgi.version'], '(1, 0)')
  t.equal(env['wsgi.url_scheme'], 'https')
  t.equal(types['wsgi.input'], 'Input')
  t.same(env.__input__, ['read', 'readline', 'readlines', '__iter__'])
  t.equal(types['wsgi.errors'], 'Log')
  t.equal(env['wsgi.multithread'], 'True')
  t.equal(env['wsgi.multiprocess'], 'False')
  t.equal(env['wsgi.run_once'], 'False')
  t.match(env['wsgi.file_wrapper'], /FileWrapper/)
  t.equal(env['mod_wsgi.version'], '(4, 1, 0)')
  t.equal(env['mod_wsgi.process_group'], 'testgroup')
  t.equal(env['mod_wsgi.application_group'], '')
  t.equal(env['mod_wsgi.callable_object'], 'application')
  t.equal(env['mod_wsgi.script_reloading'], '1')
  t.notOk('mod_wsgi.url_scheme' in env, 'the scheme variable becomes wsgi.url_scheme only')
  t.match(env['mod_wsgi.request_start'], /^\d+$/)
  t.equal(env.REQUEST_METHOD, 'GET')
  t.equal(env.QUERY_STRING, 'a=1&b=%C3%A9')
  t.equal(env.SCRIPT_FILENAME, script)
  t.equal(env.HTTP_X_LATIN, 'caf\u00e9', 'bytes are decoded as ISO-8859-1')
  for (const [k, v] of Object.entries(types)) {
    if (!k.startsWith('wsgi.') && k !== 'mod_wsgi.version') t.equal(v, 'str', `${k} is a str`)
  }
  t.same(env.__mod_wsgi__, { process_group: 'testgroup', application_group: '', version: [4, 1, 0] })
  const md5 = createHash('md5').update(script).digest('hex')
  t.equal(env.__sys__.name, `_mod_wsgi_${md5}`, 'module named like mod_wsgi does')
  t.equal(env.__sys__.file, script)
  t.type(env.__sys__.mtime, 'number')
  t.same(env.__sys__.argv, ['mod_wsgi'])
  t.equal(env.__sys__.executable, '/usr/bin/python3.11')
  t.equal(env.__sys__.prefix, '/usr')
  t.ok(
    env.__sys__.path.some((p: string) => p === '/usr/lib/python3/dist-packages'),
    "Debian's dist-packages is on sys.path",
  )
  t.notOk(
    env.__sys__.path.some((p: string) => p.includes('pyenv')),
    'nothing of the pyenv python3 on PATH leaks in',
  )
})

t.test('interpreter options: path, cwd first, optimize, bytecode, warnings, hash seed', async (t) => {
  const dir = tempDir(t, 'addon-path-')
  const fromPth = join(dir, 'from-pth')
  mkdirSync(fromPth)
  writeFileSync(join(dir, 'extra.pth'), fromPth + '\n')
  const host = await AddonProcess.start({
    path: [dir],
    cwdFirstOnPath: true,
    optimize: 1,
    dontWriteBytecode: true,
    warnings: ['ignore::DeprecationWarning'],
    hashSeed: 12345,
  })
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('environ')))
  t.same(r.violations, [])
  const sys = JSON.parse(body(r).toString()).__sys__
  t.equal(sys.path[0], '', "'' is first on sys.path")
  const at = sys.path.indexOf(dir)
  const site = sys.path.findIndex((p: string) => /(site|dist)-packages$/.test(p))
  t.ok(at > 0 && at < site, 'python-path entries come before site-packages')
  const pth = sys.path.indexOf(fromPth)
  t.ok(pth > 0 && pth < site, '.pth files of python-path entries are processed')
  t.equal(sys.flags_optimize, 1)
  t.equal(sys.dont_write_bytecode, true)
  t.same(sys.warnoptions, ['ignore::DeprecationWarning'])
  const expected = spawnSync('/usr/bin/python3.11', ['-c', "print(hash('mod_wsgi'))"], {
    env: { PYTHONHASHSEED: '12345' },
    encoding: 'utf8',
  }).stdout.trim()
  t.equal(sys.hash_seed_check, expected, 'the hash seed is applied')
})

t.test('python-home: a virtualenv is found through its bin/python and pyvenv.cfg', async (t) => {
  const venv = tempDir(t, 'addon-venv-')
  const made = spawnSync('/usr/bin/python3.11', ['-m', 'venv', '--without-pip', venv], { encoding: 'utf8' })
  t.equal(made.status, 0, made.stderr)
  const host = await AddonProcess.start({ programName: join(venv, 'bin', 'python'), home: venv })
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('environ')))
  t.equal(r.head?.status, 200)
  const sys = JSON.parse(body(r).toString()).__sys__
  t.equal(sys.prefix, venv)
  t.equal(sys.executable, join(venv, 'bin', 'python'))
  t.ok(sys.path.includes(join(venv, 'lib', 'python3.11', 'site-packages')), "the virtualenv's site-packages")
  t.notOk(sys.path.includes('/usr/lib/python3/dist-packages'), 'not the system one')
})

t.test('HEAD requests send the head without body bytes', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('hello'), { method: 'HEAD' }))
  t.same(r.violations, [])
  t.equal(r.head?.status, 200)
  t.equal(header(r, 'content-length'), '12')
  t.equal(r.bodyLength, 0)
  t.equal(r.end, 0)
})

t.test('print, sys.stderr and wsgi.errors go to the error log, one line per line', async (t) => {
  const host = await AddonProcess.start({ restrictStdout: false })
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('print')))
  t.equal(body(r).toString(), 'printed')
  const line = (text: string) =>
    new RegExp(
      `^\\[\\w{3} \\w{3} \\d{2} \\d{2}:\\d{2}:\\d{2}\\.\\d{6} \\d{4}\\] \\[wsgi:error\\] \\[pid ${host.child.pid}:tid \\d+\\] ${text}$`,
      'm',
    )
  t.match(await host.logs(), line('print-line to stdout'))
  t.match(await host.logs(), line('stderr-line one'))
  t.match(await host.logs(), line('stderr-line two'))
  t.match(await host.logs(), line('partial stderr line completed'))
  t.match(await host.logs(), line('\\[client 127\\.0\\.0\\.1:40000\\] wsgi\\.errors line'))
  t.match(await host.logs(), line('\\[client 127\\.0\\.0\\.1:40000\\] unterminated wsgi\\.errors text'), 'flushed at the end')
})

t.test('restricted stdout raises in the application', async (t) => {
  const host = await AddonProcess.start({ restrictStdout: true })
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('print')))
  t.equal(r.error?.status, 500)
  t.match(await host.logs(), /OSError: sys\.stdout access restricted by mod_wsgi/)
})

t.test('malformed REQUEST payloads are refused by submit()', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const good = buildRequest(requestVars(fixture('hello')))
  await t.rejects(host.run({ payload: good.subarray(0, good.length - 3).toString('base64') }), /malformed REQUEST/)
  await t.rejects(host.run({ payload: Buffer.concat([good, Buffer.from([0])]).toString('base64') }), /malformed/)
  const r = await host.run({ payload: good.toString('base64') })
  t.equal(r.head?.status, 200, 'the bridge still serves')
})

t.test('per-request cost of a hello-world round trip', async (t) => {
  const host = await AddonProcess.start({ threads: 1 })
  t.teardown(() => host.kill())
  const payload = buildRequest(requestVars(fixture('hello'), { reloading: false })).toString('base64')
  const cost = await host.call<{ cpuUs: number; wallUs: number }>('bench', { payload, n: 5000 })
  t.comment(`hello world through the addon: ${cost.cpuUs.toFixed(1)} us CPU, ${cost.wallUs.toFixed(1)} us wall per request`)
  t.ok(cost.cpuUs < 200, `CPU per request is small (${cost.cpuUs.toFixed(1)} us)`)
})
