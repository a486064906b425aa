// Issue 7, faults under load: one of two daemon processes is killed with SIGKILL while a steady load
// runs. Only the requests it had in flight fail, each with a 5xx and none hanging past socket-timeout;
// Apache starts a replacement; requests sent from one second after the kill all succeed.
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'
import { runLoad, summarise } from '../helpers/load'

const THREADS = 4
const SOCKET_TIMEOUT = 5
const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=${THREADS} socket-timeout=${SOCKET_TIMEOUT}
WSGIProcessGroup pool
WSGIScriptAlias /pid ${fixture('pid-sleep')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

t.test('SIGKILL of one of two daemons under load: only its in-flight requests fail, with 5xx', async (t) => {
  const apache = await startApache(t, { config: CONFIG, logLevel: 'info' })
  await waitFor(() => apache.daemonPids().length === 2, 15000, 50, 'two daemon processes')
  // Warm both daemons (Python, the script) so the run measures the fault, not the start-up.
  await Promise.all(Array.from({ length: 16 }, () => apache.request('/pid?ms=5')))

  const [victim, survivor] = apache.daemonPids()
  const KILL_AT = 1500
  let killedAt = -1
  const run = await runLoad({
    port: apache.port,
    path: '/pid?ms=20',
    connections: 2 * THREADS,
    durationMs: 4500,
    timeoutMs: (SOCKET_TIMEOUT + 10) * 1000,
    keepBody: true,
    onTick: (elapsed) => {
      if (killedAt < 0 && elapsed >= KILL_AT) {
        process.kill(victim, 'SIGKILL')
        killedAt = elapsed
      }
    },
  })
  t.ok(killedAt > 0, `the victim ${victim} was killed at ${killedAt} ms`)
  const replaced = await waitFor(
    () => {
      const now = apache.daemonPids()
      return now.length === 2 && !now.includes(victim) && now.includes(survivor) ? now : null
    },
    15000,
    50,
    'a replacement daemon',
  )
  t.ok(replaced, 'Apache started a replacement daemon')

  const samples = run.samples
  const failed = samples.filter((s) => s.failure || s.status !== 200)
  const s = summarise(samples)
  t.comment(
    `SIGKILL under load: ${s.total} requests, ${s.ok} answered 200, ${failed.length} failed ` +
      `(${JSON.stringify(s.byStatus)} ${JSON.stringify(s.byFailure)}); p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms`,
  )
  t.ok(s.total > 200, `a real load ran (${s.total} requests)`)
  t.ok(failed.length <= THREADS, `at most the victim's ${THREADS} threads' requests failed (${failed.length})`)
  for (const f of failed) {
    t.ok(f.status >= 500 && f.status <= 599 && !f.failure, `failed request answered with a 5xx (${f.status} ${f.failure ?? ''})`)
    t.ok(f.start <= killedAt, `failed request was in flight at the kill (started ${f.start} ms)`)
    t.ok(f.end - killedAt < 1000, `failed request ended ${f.end - killedAt} ms after the kill`)
  }
  const slowest = Math.max(...samples.map((x) => x.end - x.start))
  t.ok(slowest < SOCKET_TIMEOUT * 1000, `no request hung past socket-timeout (slowest ${slowest} ms)`)
  const after = samples.filter((x) => x.start >= killedAt + 1000)
  t.ok(after.length > 50, `requests ran after the kill (${after.length})`)
  t.equal(after.filter((x) => x.failure || x.status !== 200).length, 0, 'every request from 1 s after the kill succeeded')
  const served = new Set(after.map((x) => Number(x.body.split(' ')[0])))
  t.ok(served.has(survivor), 'the survivor served after the kill')
  t.match(apache.log(), new RegExp(`WSGI01104: daemon process \\d of process group 'pool' \\(pid ${victim}\\) exited`), 'the death is logged')
})
