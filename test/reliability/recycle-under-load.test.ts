// A restart the daemon chooses (maximum-requests here) is never taken for a crash loop, and its
// replacement is started first: the process asks for a successor, which the Apache parent starts at once
// (the doorbell), and stops only once the successor is ready. Under wrk, 2 processes x 8 threads with
// maximum-requests=200 recycle several times a second; every request succeeds, no back-off is logged,
// and the log shows each successor ready before its predecessor exits. The time from asking to the
// successor being ready is reported (measured, not asserted).
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
  const lines = log.split('\n')
  const successors = lines.filter((l) => /WSGI01116: started daemon process \d of process group 'pool' \(pid \d+\) to replace pid \d+ \(maximum-requests\)/.test(l))
  t.ok(successors.length >= 4, `successors started for maximum-requests: ${successors.length}`)
  t.notMatch(log, /soon after starting/, 'no exit counted as a quick one')
  t.notMatch(log, /after a delay/, 'no process started after a delay')
  t.notMatch(log, /WSGI01104/, 'no process had to be replaced after it exited: each successor came first')

  // Start before stop: each old process exits only once its successor said it was ready.
  const readyAt = new Map<number, number>()
  const exitAt = new Map<number, number>()
  for (const l of lines) {
    const pid = Number(/\[pid (\d+):/.exec(l)?.[1])
    if (/WSGI02050: Process 'pool' ready to serve/.test(l)) readyAt.set(pid, lineTime(l))
    if (/WSGI02029: Exiting process 'pool'/.test(l)) exitAt.set(pid, lineTime(l))
  }
  const waits: number[] = []
  let checked = 0
  for (const l of successors) {
    const [, succ, old] = /\(pid (\d+)\) to replace pid (\d+)/.exec(l) ?? []
    const asked = lines.find((x) => x.includes(`[pid ${old}:`) && x.includes('WSGI02051'))
    const ready = readyAt.get(Number(succ))
    const exited = exitAt.get(Number(old))
    if (ready === undefined || exited === undefined || asked === undefined) continue
    checked++
    if (exited < ready) t.fail(`pid ${old} exited before its successor ${succ} was ready`)
    waits.push(ready - lineTime(asked))
  }
  t.ok(checked >= 3, `start-before-stop checked for ${checked} replacements`)
  waits.sort((a, b) => a - b)
  t.comment(`asked for a successor -> successor ready, ms: min ${waits[0]}, median ${waits[Math.floor(waits.length / 2)]}, max ${waits[waits.length - 1]}`)
})
