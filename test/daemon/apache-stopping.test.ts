// SIGUSR2, which the Apache parent sends when its graceful stop begins (native/apache/wsgi_stop.c): the
// daemon goes on serving, idle or not, until the SIGTERM that follows the end of Apache's children, for
// at most graceful-timeout when one is set; then its normal shutdown (shutdown-timeout) as ever.
import t from 'tap'
import { fixture, sleep, skipReason, startDaemon, text } from './harness'

const skip = skipReason()
if (skip) t.plan(0, skip)

t.test('SIGUSR2 without graceful-timeout: serves on, idle or not, until SIGTERM; exit 0', async (t) => {
  const d = await startDaemon(t, { options: { threads: 2 } })
  d.signal('SIGUSR2')
  await d.waitForLog(/WSGI02150: Apache is stopping gracefully: process 'myapp' serves the requests its children still forward until they are gone, then stops\./)
  // Idle for a while: a graceful restart (SIGUSR1) would have ended the process by now.
  await sleep(500)
  t.equal(d.exit, null, 'still running while idle')
  const kept = await d.connect()
  t.equal(text(await kept.request({ script: fixture('daemon-sleep'), query: 's=0.1' })), 'slept', 'a request on a connection made before')
  const fresh = await d.connect()
  t.equal(text(await fresh.request({ script: fixture('daemon-sleep'), query: 's=0.1' })), 'slept', 'and on a new connection')
  const running = kept.request({ script: fixture('daemon-sleep'), query: 's=1' })
  await sleep(200)
  d.signal('SIGTERM')
  t.equal(text(await running), 'slept', 'a request running at SIGTERM finishes (shutdown-timeout)')
  const exit = await d.exited
  t.equal(exit.code, 0, 'exit 0')
  t.match(d.stderr, /WSGI02029: Exiting process 'myapp' \(status 0\)/)
})

t.test('SIGUSR2 with graceful-timeout: at its end the normal shutdown, then 503 for what still runs', async (t) => {
  const d = await startDaemon(t, { options: { threads: 2, graceful_timeout: 1, shutdown_timeout: 1 } })
  const c = await d.connect()
  const stuck = c.request({ script: fixture('daemon-sleep'), query: 's=30' }, 20000)
  await sleep(200)
  const t0 = Date.now()
  d.signal('SIGUSR2')
  await d.waitForLog(/WSGI02150: .*for at most 1 seconds \(graceful-timeout\), then stops\./)
  const a = await stuck
  t.equal(a.kind === 'error' ? a.status : a.kind, 503, 'the request still running after graceful- and shutdown-timeout gets 503')
  const exit = await d.exited
  const took = exit.at - t0
  t.equal(exit.code, 0, 'exit 0')
  // 1 s graceful + 1 s shutdown + Python's finalisation; far below the 30 s the request wanted.
  t.ok(took >= 1800 && took < 10000, `stopped after ${took} ms`)
  t.match(d.stderr, /WSGI02027: Graceful timeout expired with 1 active requests/)
  t.match(d.stderr, /WSGI02028: Aborting process 'myapp': shutdown timeout expired with 1 requests still active/)
})

t.test('SIGUSR2 during a graceful restart (SIGUSR1) changes nothing: the restart goes on', async (t) => {
  const d = await startDaemon(t, { options: { threads: 2, graceful_timeout: 5 } })
  const c = await d.connect()
  const running = c.request({ script: fixture('daemon-sleep'), query: 's=0.5' })
  await sleep(100)
  d.signal('SIGUSR1')
  await d.waitForLog(/WSGI02021/)
  d.signal('SIGUSR2')
  t.equal(text(await running), 'slept')
  const exit = await d.exited
  t.equal(exit.code, 0, 'exits once idle, as a graceful restart does')
  t.notMatch(d.stderr, /WSGI02150/, 'no second stop message')
})
