// The ASGI benchmark (bench/asgi.ts) runs end to end: one second of hello world through this module and
// through uvicorn behind mod_proxy_http, the table and the RSS of each side. Timing is never asserted.
import t from 'tap'
import { parseArgs, runAsgiBench } from '../../bench/asgi'

t.test('bench/asgi.ts: one second of ASGI hello world through each server', async (t) => {
  const lines: string[] = []
  const r = await runAsgiBench(
    { ...parseArgs([]), workloads: ['hello'], connections: [4], duration: 1, warmup: 0, repeat: 1, threads: 2, resultsDir: '' },
    (l) => lines.push(l),
  )
  t.equal(lines.length, 2, 'one progress line per server')
  const row = r.rows[0]
  t.ok(row.ours.rps > 0 && row.uvicorn.rps > 0, `both answered (${row.ours.rps.toFixed(0)} and ${row.uvicorn.rps.toFixed(0)} req/s)`)
  t.equal(row.errors, 0, 'no request errors and no non-2xx')
  t.ok(r.rss.hello.ours > 10 && r.rss.hello.uvicorn > 10, 'both RSS measured')
  t.match(r.text, /\| hello world \| 4 \|/)
})

t.test('bench/asgi.ts arguments', async (t) => {
  t.same(parseArgs([]).workloads, ['hello', 'stream', 'upload'])
  t.equal(parseArgs(['--loop', 'uvloop']).loop, 'uvloop')
  t.throws(() => parseArgs(['--workloads', 'nope']), /unknown workload/)
})
