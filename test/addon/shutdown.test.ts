// shutdown(timeoutMs): workers stop, sub-interpreters end, Python finalises (atexit runs) — and it
// never hangs the process, whatever threads an application left running.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'

import { AddonProcess, body, fixture, spec, tempDir } from './harness'

interface ShutdownResult {
  result: boolean
  again: boolean
  elapsedMs: number
}

async function exitTime(t: Test, host: AddonProcess, op: 'exit' | 'leave'): Promise<number> {
  const t0 = performance.now()
  await host.call(op, { code: 0 })
  const exited = await host.exited
  t.equal(exited.code, 0, `the process exits normally (${op})`)
  return exited.at - t0
}

t.test('a clean shutdown finalises Python and runs atexit functions', async (t) => {
  const host = await AddonProcess.start({ verbose: true })
  t.teardown(() => host.kill())
  const dir = tempDir(t, 'addon-shutdown-')
  const record = join(dir, 'atexit.txt')
  const script = join(dir, 'app.wsgi')
  writeFileSync(
    script,
    `import atexit, mod_wsgi\n` +
      `def bye():\n    open(${JSON.stringify(record)}, 'a').write('atexit %s\\n' % (mod_wsgi.application_group or 'GLOBAL'))\n` +
      `atexit.register(bye)\n` +
      `def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n`,
  )
  for (const group of ['', 'one', 'two']) t.equal(body(await host.run(spec(script, { group }))).toString(), 'ok')
  const r = await host.call<ShutdownResult>('shutdown', { timeoutMs: 5000 })
  t.equal(r.result, true)
  t.equal(r.again, true, 'a second call gives the same answer')
  t.ok(r.elapsedMs < 2000, `quick (${r.elapsedMs.toFixed(0)} ms)`)
  t.same(readFileSync(record, 'utf8').trim().split('\n').sort(), ['atexit GLOBAL', 'atexit one', 'atexit two'])
  t.match(await host.logs(), /WSGI03005: Destroy interpreter 'one'\./)
  const after = await host.call<{ threw: boolean; message: string }>('submitAfter')
  t.equal(after.threw, true)
  t.match(after.message, /shut down/)
  const ms = await exitTime(t, host, 'exit')
  t.ok(ms < 2000, `exited in ${ms.toFixed(0)} ms`)
})

for (const group of ['', 'sub']) {
  t.test(`a non-daemon application thread in '${group}' does not keep the process alive`, async (t) => {
    const host = await AddonProcess.start()
    t.teardown(() => host.kill())
    const r = await host.run(spec(fixture('threads'), { group, query: 'daemon=0' }))
    t.equal(body(r).toString(), 'thread started, daemon=False')
    const s = await host.call<ShutdownResult>('shutdown', { timeoutMs: 1000 })
    if (s.result) t.comment(await host.logs())
    t.equal(s.result, false, 'had to give up')
    t.ok(s.elapsedMs >= 900 && s.elapsedMs < 1800, `within the timeout (${s.elapsedMs.toFixed(0)} ms)`)
    t.match(await host.logs(), /WSGI03051: Python finalisation did not finish within the shutdown timeout/)
    const ms = await exitTime(t, host, 'exit')
    t.ok(ms < 2000, `and the process still exits (${ms.toFixed(0)} ms)`)
  })
}

t.test('a daemon thread in a sub-interpreter: that interpreter is left alone', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  await host.run(spec(fixture('threads'), { group: 'sub', query: 'daemon=1' }))
  const s = await host.call<ShutdownResult>('shutdown', { timeoutMs: 3000 })
  t.equal(s.result, false)
  t.ok(s.elapsedMs < 1500)
  t.match(await host.logs(), /WSGI03052: Interpreter 'sub' still has running threads: it is not destroyed\./)
  t.ok((await exitTime(t, host, 'exit')) < 2000)
})

t.test('a daemon thread in the main interpreter does not stop finalisation', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  await host.run(spec(fixture('threads'), { query: 'daemon=1' }))
  const s = await host.call<ShutdownResult>('shutdown', { timeoutMs: 3000 })
  t.equal(s.result, true)
  t.ok((await exitTime(t, host, 'exit')) < 2000)
})

t.test('a request still running: shutdown gives up after the timeout', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  await host.run(spec(fixture('sleep'), { query: 's=0' }))
  void host.run(spec(fixture('sleep'), { query: 's=5' })).catch(() => undefined)
  await new Promise((r) => setTimeout(r, 200))
  const s = await host.call<ShutdownResult>('shutdown', { timeoutMs: 500 })
  t.equal(s.result, false)
  t.ok(s.elapsedMs >= 450 && s.elapsedMs < 1200, `${s.elapsedMs.toFixed(0)} ms`)
  t.match(await host.logs(), /WSGI03050: 1 worker thread\(s\) still busy at shutdown/)
  t.ok((await exitTime(t, host, 'exit')) < 2000)
})

t.test('requests streaming or waiting for input do not hold up the shutdown', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  // One request blocked on output (paused by its handler), one blocked reading a body that never ends.
  void host.run(spec(fixture('stream'), { query: 'size=104857600' }, { pauseOutput: { holdMs: 60000 } })).catch(() => undefined)
  void host
    .run(spec(fixture('echo'), { method: 'POST', query: 'mode=read' }, { body: { size: 10 }, keepInputOpen: true }))
    .catch(() => undefined)
  await new Promise((r) => setTimeout(r, 300))
  const s = await host.call<ShutdownResult>('shutdown', { timeoutMs: 3000 })
  t.equal(s.result, true)
  t.ok(s.elapsedMs < 1500, `${s.elapsedMs.toFixed(0)} ms`)
})

t.test('without shutdown(): the environment cleanup hook finalises and the process ends', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const dir = tempDir(t, 'addon-leave-')
  const record = join(dir, 'atexit.txt')
  const script = join(dir, 'app.wsgi')
  writeFileSync(
    script,
    `import atexit\natexit.register(lambda: open(${JSON.stringify(record)}, 'w').write('ran'))\n` +
      `def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n`,
  )
  await host.run(spec(script))
  const ms = await exitTime(t, host, 'leave')
  t.ok(ms < 3000, `ended in ${ms.toFixed(0)} ms`)
  t.ok(existsSync(record) && readFileSync(record, 'utf8') === 'ran', 'Python was finalised')
})
