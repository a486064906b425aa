// Issue 7, faults under load: a request that never ends. request-timeout restarts its process, the
// error log shows where it was stuck (a Python stack dump naming the function), the hung request gets a
// 504, and the other requests go on: those in flight in the restarting process at that moment are
// answered with a 5xx, the rest are served by the other process and then by the replacement.
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'
import { runLoad, summarise } from '../helpers/load'

const THREADS = 2
const REQUEST_TIMEOUT = 1
const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=${THREADS} request-timeout=${REQUEST_TIMEOUT} socket-timeout=20
WSGIProcessGroup pool
WSGIScriptAlias /hang ${fixture('hang')}
WSGIScriptAlias /hold ${fixture('hold')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

t.test('request-timeout under load: stack in the log, 504, restart, others resume', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  await waitFor(() => apache.daemonPids().length === 2, 15000, 50, 'two daemon processes')
  await Promise.all(Array.from({ length: 8 }, () => apache.request('/hold?ms=5')))
  const before = apache.daemonPids()

  let hung: Promise<{ status: number; ms: number }> | null = null
  const HANG_AT = 800
  let hangAt = -1
  let restartedAt = -1
  const run = await runLoad({
    port: apache.port,
    path: '/hold?ms=10',
    connections: 3,
    durationMs: 6000,
    timeoutMs: 25000,
    onTick: (elapsed) => {
      if (hung === null && elapsed >= HANG_AT) {
        hangAt = elapsed
        const began = Date.now()
        hung = apache.request('/hang', { timeoutMs: 25000 }).then((r) => ({ status: r.status, ms: Date.now() - began }))
      }
      if (restartedAt < 0 && hangAt >= 0 && apache.log().includes('WSGI02024')) restartedAt = elapsed
    },
  })
  t.ok(hung, 'the hanging request was sent')
  const h = await (hung as unknown as Promise<{ status: number; ms: number }>)
  t.equal(h.status, 504, `the hung request got 504 after ${h.ms} ms`)
  // One stuck request over two threads: the mean age per thread passes 1 s after about 2 s.
  t.ok(h.ms < (REQUEST_TIMEOUT * THREADS + 5) * 1000, 'within request-timeout (over the threads) and a margin')

  const log = await apache.waitForLog(/WSGI02024: Daemon process request time limit exceeded, stopping process 'pool'[^\n]*/)
  t.ok(log, 'request-timeout is logged')
  await apache.waitForLog(/stuck_in_here_forever/, 5000)
  t.match(apache.log(), /WSGI03040[^\n]*request-timeout expired/, 'a stack dump was written for it')
  t.match(apache.log(), /File "[^"]*hang\/app\.wsgi", line \d+,? in stuck_in_here_forever/, 'naming the function the request was stuck in')
  const after = await waitFor(
    () => {
      const now = apache.daemonPids()
      return now.length === 2 && now.some((p) => !before.includes(p)) ? now : null
    },
    15000,
    50,
    'the restarted process',
  )
  t.ok(after, 'Apache started a replacement process')

  const s = summarise(run.samples)
  const failed = run.samples.filter((x) => x.failure || x.status !== 200)
  t.comment(
    `hung app under load: ${s.total} other requests, ${JSON.stringify(s.byStatus)} ${JSON.stringify(s.byFailure)}; ` +
      `request-timeout fired at about ${restartedAt} ms (hang sent at ${hangAt} ms); p99 ${s.p99} ms, max ${s.max} ms`,
  )
  t.ok(s.total > 100, `other requests ran (${s.total})`)
  t.ok(failed.length <= THREADS - 1, `at most the other requests in flight in the restarting process failed (${failed.length})`)
  for (const f of failed) t.ok(f.status >= 500 && !f.failure, `each answered with a 5xx (${f.status} at ${f.start}-${f.end} ms)`)
  const late = run.samples.filter((x) => restartedAt > 0 && x.start > restartedAt + 1000)
  t.ok(late.length > 20, `requests ran after the restart (${late.length})`)
  t.equal(late.filter((x) => x.failure || x.status !== 200).length, 0, 'all of them succeeded')
})
