// Issue 7, faults under load: overload. A slow application, many more clients than threads: queue-timeout
// sheds what waited too long with 503 (and a log line), the requests that are answered stay bounded in
// time (p99 under queue-timeout plus the application's time plus a margin), nothing else fails. With one
// process requests wait in its queue; with two they also wait in the socket's backlog (a full process
// does not accept), and queue-timeout applies the same way.
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'
import { runLoad, summarise } from '../helpers/load'

const APP_MS = 100
const QUEUE_TIMEOUT = 1

for (const processes of [1, 2]) {
  t.test(`overload, ${processes} process(es) x 2 threads, 24 clients: 503 sheds, p99 bounded`, async (t) => {
    const apache = await startApache(t, {
      config: `
WSGIDaemonProcess slow processes=${processes} threads=2 queue-timeout=${QUEUE_TIMEOUT} socket-timeout=20
WSGIProcessGroup slow
WSGIScriptAlias /hold ${fixture('hold')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
    })
    await waitFor(() => apache.daemonPids().length === processes, 15000, 50, 'the daemons')
    await Promise.all(Array.from({ length: 4 * processes }, () => apache.request('/hold?ms=1')))

    const run = await runLoad({ port: apache.port, path: `/hold?ms=${APP_MS}`, connections: 24, durationMs: 5000, timeoutMs: 20000 })
    const s = summarise(run.samples)
    const shed = s.byStatus['503'] ?? 0
    const capacity = Math.round(((2 * processes * 1000) / APP_MS) * (run.durationMs / 1000))
    t.comment(
      `overload ${processes}x2 threads, ${APP_MS} ms app, 24 clients, ${run.durationMs} ms: ${s.total} requests ` +
        `(capacity about ${capacity}), ${s.ok} answered 200, ${shed} shed with 503 ` +
        `${JSON.stringify(s.byFailure)}; answered p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms`,
    )
    t.ok(shed > 0, 'queue-timeout shed requests with 503')
    t.ok(s.ok > capacity / 2, `the threads kept serving (${s.ok} answered)`)
    t.same(Object.keys(s.byStatus).sort(), ['200', '503'], 'every request was answered 200 or 503')
    t.same(s.byFailure, {}, 'no connection failed or timed out')
    const bound = (QUEUE_TIMEOUT * 1000 + APP_MS) * 1.5 + 500
    t.ok(s.p99 < bound, `p99 of the answered requests (${s.p99} ms) stays under ${bound} ms`)
    const shedLatency = run.samples.filter((x) => x.status === 503).map((x) => x.end - x.start)
    t.ok(Math.max(...shedLatency) < 10000, `503s come promptly too (slowest ${Math.max(...shedLatency)} ms)`)
    t.match(apache.log(), /WSGI02041: Queue timeout expired for WSGI daemon process 'slow' \(request waited \d+ ms\)/, 'the shedding is logged')
    t.match(apache.log(), /WSGI01224: Daemon process 'slow' failed the request with status 503/, 'and by the Apache child')
  })
}
