// The side-by-side benchmark (bench/run.ts) runs end to end: one second of hello world per server, the
// result table with its targets and the daemons' RSS. Timing is never asserted here (the machine is
// shared and noisy); only that the script works and that no request failed.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { defaultOptions, parseArgs, runBench } from '../../bench/run'
import { ORIGINAL_MODULE } from '../../bench/common'

t.test('bench/run.ts: one second of hello world through each server', async (t) => {
  const servers = existsSync(ORIGINAL_MODULE) ? (['ours', 'original'] as const) : (['ours'] as const)
  const lines: string[] = []
  const r = await runBench(
    { ...defaultOptions(), workloads: ['hello'], connections: [4], duration: 1, warmup: 0, repeat: 1, threads: 2, servers: [...servers], resultsDir: '' },
    (l) => lines.push(l),
  )
  t.equal(lines.length, servers.length, 'one progress line per run')
  t.equal(r.rows.length, 1)
  const row = r.rows[0]
  t.ok(row.ours.rps > 0, `ours answered (${row.ours.rps.toFixed(0)} req/s)`)
  t.ok(row.ours.p99 > 0 && row.ours.p50 <= row.ours.p99, 'latency percentiles parsed')
  t.equal(row.errors, 0, 'no request errors and no non-2xx')
  t.ok((r.rss.hello?.ours ?? 0) > 10, `daemon RSS measured (${r.rss.hello?.ours?.toFixed(1)} MiB)`)
  t.match(r.text, /\| hello world \| 4 \|/, 'the table has the row')
  t.match(r.text, /daemon RSS MiB/, 'and the RSS table')
  if (servers.length === 2) {
    t.ok(row.original.rps > 0, 'the original answered')
    t.ok(Number.isFinite(row.ratio), 'a ratio')
  }
})

t.test('bench/run.ts --servers: the original, this build, or a snapshot directory in either column', async (t) => {
  const root = join(__dirname, '..', '..') // has lib/daemon/main.js, as a snapshot does
  t.same(parseArgs([]).kinds, { ours: 'ours', original: 'original' })
  const pair = parseArgs(['--servers', `${root},ours`])
  t.same(pair.servers, ['ours', 'original'])
  t.same(pair.kinds, { ours: root, original: 'ours' }, 'the snapshot in the first column, this build in the second')
  t.same(parseArgs(['--servers', 'original']).servers, ['original'])
  t.throws(() => parseArgs(['--servers', '/nonexistent']), /not a snapshot directory/)
  t.throws(() => parseArgs(['--servers', 'ours,original,ours']), /one or two/)
})
