// What watching the daemons costs (issue 17): hello world at 16 connections (wrk -t2), processes=1
// threads=15, through this module with wsgi-status, wsgi-metrics and mod_status's page configured and
// each scraped once a second during the run ("observed"), side by side with the same server without them
// ("plain"), alternating, a fresh Apache each run. The daemons count every request on the board in both
// (that is not switchable); compare a build without it with `npm run bench -- --servers DIR,ours`.
// Target: observed within 2 % of plain (median req/s of the pairs).
//
//   npm run bench:status -- [--duration 8] [--warmup 2] [--repeat 3] [--connections 16]
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Apache, request, sleep, waitFor } from '../test/helpers/apache'
import { runWrk } from '../test/helpers/wrk'
import { APACHE_TUNING, BENCH_DIR, median } from './common'

type Mode = 'plain' | 'observed'

interface Options {
  duration: number
  warmup: number
  repeat: number
  connections: number
}

function parseArgs(argv: string[]): Options {
  const o: Options = { duration: 8, warmup: 2, repeat: 3, connections: 16 }
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1])
    if (argv[i] === '--duration') o.duration = v
    else if (argv[i] === '--warmup') o.warmup = v
    else if (argv[i] === '--repeat') o.repeat = v
    else if (argv[i] === '--connections') o.connections = v
    else continue
    i++
  }
  return o
}

const OBSERVED = `
ExtendedStatus On
<Location /server-status>
  SetHandler server-status
</Location>
<Location /wsgi-status>
  SetHandler wsgi-status
</Location>
<Location /wsgi-metrics>
  SetHandler wsgi-metrics
</Location>
`

function config(mode: Mode): string {
  const app = join(BENCH_DIR, 'apps')
  return `${APACHE_TUNING}LogLevel warn
WSGIDaemonProcess bench processes=1 threads=15 display-name=(wsgi:bench)
WSGIProcessGroup bench
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /hello ${app}/hello.wsgi
<Directory ${app}>
  Require all granted
</Directory>
${mode === 'observed' ? OBSERVED : ''}`
}

/** The cumulative CPU time of the whole machine (/proc/stat), to see how busy it was during a run. */
function cpuBusy(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const idle = f[3] + f[4]
  const total = f.reduce((a: number, b: number) => a + b, 0)
  return { busy: total - idle, total }
}

async function one(mode: Mode, o: Options): Promise<{ rps: number; p99: number; scrapes: number; errors: number }> {
  const apache = new Apache({ config: config(mode), modules: mode === 'observed' ? ['status'] : [], logLevel: 'warn' })
  try {
    await apache.start()
    await waitFor(async () => (await request(apache.port, '/hello')).status === 200, 20000, 100, 'the server to answer')
    const url = `http://127.0.0.1:${apache.port}/hello`
    await runWrk({ url, connections: o.connections, seconds: o.warmup })
    let scraping = mode === 'observed'
    let scrapes = 0
    const scraper = (async () => {
      while (scraping) {
        for (const p of ['/wsgi-metrics', '/wsgi-status', '/server-status?auto']) {
          const r = await request(apache.port, p)
          if (r.status === 200) scrapes++
        }
        await sleep(1000)
      }
    })()
    const w = await runWrk({ url, connections: o.connections, seconds: o.duration, timeoutSeconds: 30 })
    scraping = false
    await scraper
    return { rps: w.rps, p99: w.latency.p99, scrapes, errors: w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout + w.non2xx }
  } finally {
    await apache.cleanup()
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const rows: Record<Mode, Array<{ rps: number; p99: number }>> = { plain: [], observed: [] }
  const start = cpuBusy()
  for (let r = 0; r < o.repeat; r++) {
    // Alternating, and each pair in the other order than the last, so that drift favours neither.
    const order: Mode[] = r % 2 === 0 ? ['plain', 'observed'] : ['observed', 'plain']
    for (const mode of order) {
      const before = cpuBusy()
      const x = await one(mode, o)
      const after = cpuBusy()
      rows[mode].push(x)
      const busy = ((after.busy - before.busy) / Math.max(1, after.total - before.total)) * 100
      process.stderr.write(`${mode}: ${x.rps.toFixed(0)} req/s, p99 ${x.p99} ms, ${x.scrapes} scrapes, ${x.errors} errors (machine ${busy.toFixed(0)} % busy)\n`)
    }
  }
  const end = cpuBusy()
  const plain = median(rows.plain.map((x) => x.rps))
  const observed = median(rows.observed.map((x) => x.rps))
  const ratio = observed / plain
  const lines = [
    `mod_wsgi status cost, ${new Date().toISOString()}, hello world, processes=1 threads=15, wrk -t2 -c${o.connections}, ${o.duration} s after ${o.warmup} s warm-up, median of ${o.repeat} alternating pairs (machine ${(((end.busy - start.busy) / Math.max(1, end.total - start.total)) * 100).toFixed(0)} % busy overall)`,
    '',
    '| server | req/s | p99 ms |',
    '|---|---|---|',
    `| plain | ${plain.toFixed(0)} | ${median(rows.plain.map((x) => x.p99))} |`,
    `| observed: wsgi-status, wsgi-metrics, server-status each scraped every second | ${observed.toFixed(0)} | ${median(rows.observed.map((x) => x.p99))} |`,
    '',
    `observed / plain: ${ratio.toFixed(3)} (target ≥ 0.98: ${ratio >= 0.98 ? 'met' : 'NOT met'})`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
