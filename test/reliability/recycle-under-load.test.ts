// A restart the daemon chooses (maximum-requests here) is never taken for a crash loop: the Apache parent
// replaces the process at once, without the growing delay it keeps for processes that die at start, and
// logs no "soon after starting". Under wrk, 2 processes x 8 threads with maximum-requests=200 recycle
// every second or so; every request still succeeds. The time from an old process's exit to its
// replacement being ready is read from the log and reported (it is measured, not asserted tightly).
import t from 'tap'
import { ALLOW_FIXTURES, fixture, startApache, waitFor } from '../helpers/apache'
import { runWrk, wrkAvailable } from '../helpers/wrk'

const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=8 maximum-requests=200
WSGIProcessGroup pool
WSGIScriptAlias /hello ${fixture('hello-world')}
${ALLOW_FIXTURES}
`
const PREAMBLE = 'MaxKeepAliveRequests 0\nKeepAliveTimeout 30'

/** Apache's default ErrorLogFormat time, "[Mon Dec 07 01:02:03.456789 2026]", in ms since the epoch. */
function lineTime(line: string): number {
  const m = /^\[\w{3} (\w{3}) (\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6}) (\d{4})\]/.exec(line)
  if (!m) return NaN
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(m[1])
  return new Date(Number(m[7]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]) / 1000).getTime()
}

t.test('maximum-requests under wrk: replaced at once, never backed off', { skip: wrkAvailable() ? false : 'wrk is not installed' }, async (t) => {
  const apache = await startApache(t, { config: CONFIG, preamble: PREAMBLE })
  await waitFor(() => apache.daemonPids().length === 2, 15000, 50, 'two daemon processes')
  const w = await runWrk({ url: `http://127.0.0.1:${apache.port}/hello`, connections: 16, seconds: 6 })
  t.comment(`wrk: ${w.requests} requests, ${w.rps} req/s, p99 ${w.latency.p99} ms, errors ${JSON.stringify(w.errors)}, non-2xx ${w.non2xx}`)
  t.equal(w.non2xx, 0, 'no failed response')
  t.equal(w.errors.timeout, 0, 'no request left unanswered')

  const log = apache.log()
  const exits = log.split('\n').filter((l) => /WSGI01104: daemon process \d of process group 'pool' \(pid \d+\) exited with code 4 /.test(l))
  t.ok(exits.length >= 4, `processes recycled by maximum-requests: ${exits.length}`)
  t.notMatch(log, /soon after starting/, 'no exit counted as a quick one')
  t.notMatch(log, /WSGI01102: [^\n]*after a delay/, 'no replacement started after a delay')
  t.match(exits[0], /\[wsgi:info\]/, 'a deliberate restart is logged at info, not as an error')

  // From each old process's exit to the next process being ready.
  const lines = log.split('\n')
  const exitAt = lines.filter((l) => /WSGI02029: Exiting process 'pool' \(status 4\)/.test(l)).map(lineTime)
  const readyAt = lines.filter((l) => /WSGI02050: Process 'pool' ready to serve/.test(l)).map(lineTime)
  const gaps = exitAt.map((e) => (readyAt.find((r) => r >= e) ?? NaN) - e).filter((g) => !Number.isNaN(g))
  gaps.sort((a, b) => a - b)
  t.ok(gaps.length > 0, 'replacements became ready')
  t.comment(`exit -> replacement ready, ms: min ${gaps[0]}, median ${gaps[Math.floor(gaps.length / 2)]}, max ${gaps[gaps.length - 1]} (${gaps.length} restarts)`)
  // Loose: Apache's main loop notices a death within a second, a daemon starts in well under one.
  t.ok(gaps[Math.floor(gaps.length / 2)] < 5000, 'the median replacement is ready within seconds, not after a back-off')
})
