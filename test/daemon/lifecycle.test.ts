// How a daemon stops: signals (graceful and not), maximum-requests, timeouts and limits; exit statuses
// (0 when asked, 4 when restarting itself); GOAWAY on idle connections; a signal during initialisation.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Daemon, fixture, requestFrames, skipReason, startDaemon, text, waitFor } from './harness'

const skip = skipReason()
if (skip) t.plan(0, skip)

t.test('SIGUSR1: GOAWAY on idle connections, running requests finish, exit 0', async (t) => {
  const d = await startDaemon(t, { options: { threads: 2, graceful_timeout: 10 } })
  const idle = await d.connect()
  const busy = await d.connect()
  const running = busy.request({ script: fixture('daemon-sleep'), query: 's=1' })
  await new Promise((r) => setTimeout(r, 200))
  d.signal('SIGUSR1')
  const goaway = await idle.answer(5000)
  t.equal(goaway.kind, 'goaway', 'idle connection told to go away')
  await idle.closed()
  t.equal(text(await running), 'slept', 'the running request completed')
  t.equal((await busy.answer(5000)).kind, 'goaway', 'then its connection gets GOAWAY too')
  const exit = await d.exited
  t.equal(exit.code, 0)
  t.match(d.stderr, /WSGI02021: Graceful shutdown requested 'myapp' \(SIGUSR1\)/)
})

t.test('anything sent after GOAWAY is ignored', async (t) => {
  const d = await startDaemon(t, { options: { graceful_timeout: 5 } })
  const c = await d.connect()
  const busy = await d.connect()
  const running = busy.request({ script: fixture('daemon-sleep'), query: 's=0.5' })
  await new Promise((r) => setTimeout(r, 100))
  d.signal('SIGUSR1')
  t.equal((await c.answer()).kind, 'goaway')
  for (const f of requestFrames({ script: fixture('daemon-echo'), body: Buffer.from('x') })) c.write(f)
  t.equal((await c.answer()).kind, 'closed', 'no answer to a request after GOAWAY')
  await running
  t.equal((await d.exited).code, 0)
})

t.test('maximum-requests: restart after that many requests, exit 4', async (t) => {
  // The readiness probe is request 1.
  const d = await startDaemon(t, { options: { maximum_requests: 3 } })
  const c = await d.connect()
  t.equal(text(await c.request({ script: fixture('daemon-echo'), body: Buffer.from('2') })), '2')
  t.equal(text(await c.request({ script: fixture('daemon-echo'), body: Buffer.from('3') })), '3')
  t.equal((await c.answer(5000)).kind, 'goaway', 'the connection is told to go away after the last one')
  const exit = await d.exited
  t.equal(exit.code, 4)
  t.match(d.stderr, /WSGI02022: Maximum requests reached, triggering immediate shutdown 'myapp'/)
})

t.test('a request arriving during the stop gets GOAWAY (not processed, may be retried)', async (t) => {
  const d = await startDaemon(t, { options: { threads: 1, shutdown_timeout: 5 } })
  const busy = await d.connect()
  const queued = await d.connect()
  const p1 = busy.request({ script: fixture('daemon-sleep'), query: 's=0.8' })
  await new Promise((r) => setTimeout(r, 100))
  const p2 = queued.request({ script: fixture('daemon-echo'), body: Buffer.from('q') })
  await new Promise((r) => setTimeout(r, 100))
  d.signal('SIGTERM')
  t.equal((await p2).kind, 'goaway', 'the queued request was not run')
  t.equal(text(await p1), 'slept')
  t.equal((await d.exited).code, 0)
})

t.test('graceful period: requests are still accepted and run; the process ends once idle', async (t) => {
  const d = await startDaemon(t, { options: { threads: 1, graceful_timeout: 10 } })
  const busy = await d.connect()
  const later = await d.connect()
  const p1 = busy.request({ script: fixture('daemon-sleep'), query: 's=0.8' })
  await new Promise((r) => setTimeout(r, 150))
  const sent = Date.now()
  d.signal('SIGUSR1')
  await d.waitForLog(/WSGI02021: Graceful shutdown requested/)
  const p2 = later.request({ script: fixture('daemon-echo'), body: Buffer.from('q') })
  t.equal(text(await p1), 'slept')
  t.equal(text(await p2), 'q', 'a request sent during the graceful period ran (queued behind the busy thread)')
  const exit = await d.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - sent < 4000, `exited once idle, long before graceful-timeout (${exit.at - sent} ms)`)
})

t.test('SIGTERM: exits within shutdown-timeout even with a request stuck', async (t) => {
  const d = await startDaemon(t, { options: { shutdown_timeout: 2 } })
  const c = await d.connect()
  const stuck = c.request({ script: fixture('daemon-sleep'), query: 's=60' })
  await new Promise((r) => setTimeout(r, 300))
  const sent = Date.now()
  d.signal('SIGTERM')
  const exit = await d.exited
  const took = exit.at - sent
  t.equal(exit.code, 0)
  t.ok(took >= 1900, `waited for the request (${took} ms)`)
  t.ok(took < 4500, `exited within shutdown-timeout and a little (${took} ms)`)
  const a = await stuck
  t.ok(a.kind === 'error' || a.kind === 'closed', `stuck request answered ${a.kind}`)
  if (a.kind === 'error') t.equal(a.status, 503)
  t.match(d.stderr, /WSGI02020: Shutdown requested 'myapp' \(SIGTERM\)/)
  t.match(d.stderr, /WSGI02028: Aborting process 'myapp'/)
})

t.test('SIGTERM while idle exits at once', async (t) => {
  const d = await startDaemon(t)
  const sent = Date.now()
  d.signal('SIGINT')
  const exit = await d.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - sent < 2000, `${exit.at - sent} ms`)
})

t.test('request-timeout: the hung request gets 504, the process restarts', async (t) => {
  const d = await startDaemon(t, { options: { threads: 1, request_timeout: 1, shutdown_timeout: 2 } })
  const c = await d.connect()
  const started = Date.now()
  const a = await c.request({ script: fixture('daemon-sleep'), query: 's=60' })
  t.equal(a.kind, 'error')
  if (a.kind === 'error') t.equal(a.status, 504)
  const after = Date.now() - started
  t.ok(after >= 900 && after < 3000, `answered after ${after} ms`)
  const exit = await d.exited
  t.equal(exit.code, 4)
  t.match(d.stderr, /WSGI02024: Daemon process request time limit exceeded, stopping process 'myapp': the active request has run for \d+ ms/)
})

t.test('inactivity-timeout: idle process restarts', async (t) => {
  const d = await startDaemon(t, { options: { inactivity_timeout: 1 } })
  const exit = await d.exited
  t.equal(exit.code, 4)
  t.match(d.stderr, /WSGI02023: Daemon process inactivity timer expired, stopping process 'myapp'/)
})

t.test('inactivity-timeout never interrupts a request', async (t) => {
  const d = await startDaemon(t, { options: { inactivity_timeout: 1 } })
  const c = await d.connect()
  t.equal(text(await c.request({ script: fixture('daemon-sleep'), query: 's=2' })), 'slept')
  c.close()
  t.equal((await d.exited).code, 4)
})

t.test('deadlock-timeout: GIL never released, process restarts anyway', async (t) => {
  const d = await startDaemon(t, { options: { threads: 2, deadlock_timeout: 2, shutdown_timeout: 2 } })
  const c = await d.connect()
  const p = c.request({ script: fixture('daemon-busy'), query: 'mode=gil' }, 60000)
  const exit = await d.exited
  t.equal(exit.code === 4 || exit.signal === 'SIGALRM', true, `exit ${exit.code}/${exit.signal} (4, or ended by its own last-resort alarm)`)
  t.match(d.stderr, /WSGI02025: Daemon process deadlock timer expired/)
  const a = await p
  t.ok(a.kind === 'error' || a.kind === 'closed', a.kind)
})

t.test('cpu-time-limit: SIGXCPU makes a graceful restart', async (t) => {
  const d = await startDaemon(t, { options: { cpu_time_limit: 2, shutdown_timeout: 2 } })
  const c = await d.connect()
  // Burns until the process has used 4 s of CPU (not 4 s of wall time, which a busy machine would
  // turn into less than the 2 s limit, and then nothing would ever happen).
  const p = c.request({ script: fixture('cpu-burn'), query: 'cpu=4&max=60' }, 90000)
  const exit = await d.exited
  t.equal(exit.code, 4)
  t.match(d.stderr, /WSGI02026: Exceeded CPU time limit 'myapp'/)
  await p
})

t.test('WSGIImportScript preloads before serving', async (t) => {
  // The daemon runs as www-data: the marker's directory must be writable by it.
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-preload-'))
  chmodSync(dir, 0o777)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const marker = join(dir, 'marker')
  const d = new Daemon({
    python: { import_scripts: [{ script: fixture('daemon-preload'), application_group: '' }] },
    env: { PRELOAD_MARKER: marker },
  })
  t.teardown(() => d.cleanup())
  await d.ready()
  t.ok(existsSync(marker))
  t.equal(readFileSync(marker, 'utf8').trim(), String(d.pid), 'imported in the daemon, once')
  const c = await d.connect()
  t.equal(text(await c.request({ script: fixture('daemon-preload') })), '1', 'the request used the preloaded module')
  c.close()
})

t.test('a signal during initialisation stops cleanly, without waiting for a hung import', async (t) => {
  const d = new Daemon({
    python: { import_scripts: [{ script: fixture('daemon-slow-import'), application_group: '' }] },
    options: { shutdown_timeout: 1 },
    env: { SLOW_IMPORT_SECONDS: '30' },
  })
  t.teardown(() => d.cleanup())
  await d.waitForLog(/WSGI02003: Starting process/, 20000)
  await new Promise((r) => setTimeout(r, 300))
  const sent = Date.now()
  d.signal('SIGTERM')
  const exit = await d.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - sent < 3000, `exited ${exit.at - sent} ms after the signal`)
  t.match(d.stderr, /WSGI02018: Signal SIGTERM received while initialising process 'myapp'/)
  t.notMatch(d.stderr, /WSGI02031/, 'no internal error')
})

t.test('a signal before Python starts stops cleanly too', async (t) => {
  const d = new Daemon({})
  t.teardown(() => d.cleanup())
  // Before Node has run any of our code a signal has its default action (Node's own SIGTERM handler
  // re-raises it); the daemon installs its handlers first thing, before Python, all in one loop. Wait
  // until the kernel shows SIGXCPU caught (Node itself never catches it, and the daemon installs it
  // after SIGTERM), then send SIGTERM.
  const caught = () => {
    try {
      const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${d.pid}/status`, 'latin1'))
      return m !== null && (BigInt(`0x${m[1]}`) & (1n << 23n)) !== 0n
    } catch {
      return false
    }
  }
  await waitFor(caught, 10000, 'the daemon\'s signal handlers')
  d.signal('SIGTERM')
  const exit = await d.exited
  t.equal(exit.signal, null, 'not killed by the signal')
  t.equal(exit.code, 0)
})

t.test('a signal before any JavaScript ran ends the daemon, never crashes or hangs it', async (t) => {
  const d = new Daemon({})
  t.teardown(() => d.cleanup())
  await waitFor(() => existsSync(`/proc/${d.pid}/cmdline`) && readFileSync(`/proc/${d.pid}/cmdline`, 'latin1').includes('main.js'), 5000, 'exec')
  d.signal('SIGTERM')
  const exit = await d.exited
  // Node's own handler ends the process by the signal until the daemon's handler exists (exit 0 then).
  t.ok((exit.signal === null && exit.code === 0) || exit.signal === 'SIGTERM', `ended by ${exit.signal ?? `exit ${exit.code}`}`)
})
