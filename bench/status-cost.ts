// What watching the daemons costs (issue 17): hello world at 16 connections (wrk -t2), processes=1
// threads=15, through this module with wsgi-status, wsgi-metrics and mod_status's page configured and
// each scraped once a second during the run ("observed"), side by side with the same server without them
// ("plain"), alternating, a fresh Apache each run. The daemons count every request on the board in both
// (that is not switchable); compare a build without it with `npm run bench -- --servers DIR,ours`.
// Target: observed within 2 % of plain (median req/s of the pairs). Req/s varies by 10-20 % on a shared
// 2-core machine, so each run also gives the CPU time (utime + stime) Apache's children and the daemons
// spent per request served, which other load does not change: the cost shows there first.
//
//   npm run bench:status -- [--duration 8] [--warmup 2] [--repeat 3] [--connections 16]
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Apache, request, sleep, waitFor } from '../test/helpers/apache'
import { runWrk } from '../test/helpers/wrk'
import { benchArgs, exitWith, names } from './args'
import { APACHE_TUNING, BENCH_DIR, median, processTicks, serverProcesses } from './common'

/** plain: no status handler; observed: wsgi-status and wsgi-metrics, each scraped every second;
 *  mod_status: those and Apache's mod_status page (/server-status?auto scraped too), whose
 *  ExtendedStatus (On once mod_status is loaded) Apache pays for on every request; unscraped: the
 *  handlers of observed configured, never asked. */
const MODES = ['plain', 'observed', 'mod_status', 'unscraped'] as const
type Mode = (typeof MODES)[number]

interface Options {
  modes: Mode[]
  duration: number
  warmup: number
  repeat: number
  connections: number
}

function parseArgs(argv: string[]): Options {
  const usage = 'usage: npm run bench:status -- [options]\n\nHello world with and without wsgi-status, wsgi-metrics and mod_status scraped, alternating.'
  const a = benchArgs(argv, usage, {
    modes: {
      type: 'string',
      default: 'plain,observed,mod_status',
      describe:
        'Servers, comma-separated, or all: plain (no status handlers), observed (wsgi-status and wsgi-metrics scraped every ' +
        'second), mod_status (those and /server-status?auto scraped), unscraped (the handlers configured, never asked)',
      coerce: (v: string) => names(v, MODES, 'mode'),
    },
    duration: { type: 'number', default: 8, describe: 'Seconds of each measured run' },
    warmup: { type: 'number', default: 2, describe: 'Seconds of load before each measured run' },
    repeat: { type: 'number', default: 3, describe: 'Alternating runs per mode (medians are reported)' },
    connections: { type: 'number', default: 16, describe: 'Concurrent connections (wrk -c)' },
  }).parseSync()
  return { modes: a.modes, duration: a.duration, warmup: a.warmup, repeat: a.repeat, connections: a.connections }
}

const MOD_STATUS = `
ExtendedStatus On
<Location /server-status>
  SetHandler server-status
</Location>
`

const OBSERVED = `
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
${mode !== 'plain' ? OBSERVED : ''}${mode === 'mod_status' ? MOD_STATUS : ''}`
}

/** The cumulative CPU time of the whole machine (/proc/stat), to see how busy it was during a run. */
function cpuBusy(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const idle = f[3] + f[4]
  const total = f.reduce((a: number, b: number) => a + b, 0)
  return { busy: total - idle, total }
}

interface Run {
  rps: number
  p99: number
  scrapes: number
  errors: number
  /** CPU µs of Apache's children and the daemons per request served. */
  cpuUs: number
}

async function one(mode: Mode, o: Options): Promise<Run> {
  const apache = new Apache({ config: config(mode), modules: mode === 'mod_status' ? ['status'] : [], logLevel: 'warn' })
  try {
    await apache.start()
    await waitFor(async () => (await request(apache.port, '/hello')).status === 200, 20000, 100, 'the server to answer')
    const url = `http://127.0.0.1:${apache.port}/hello`
    await runWrk({ url, connections: o.connections, seconds: o.warmup })
    const { children, daemons } = serverProcesses(apache)
    const pids = [...children, ...daemons]
    const ticks0 = pids.reduce((a, p) => a + processTicks(p), 0)
    let scraping = mode === 'observed' || mode === 'mod_status'
    let scrapes = 0
    const scraper = (async () => {
      while (scraping) {
        for (const p of mode === 'mod_status' ? ['/wsgi-metrics', '/wsgi-status', '/server-status?auto'] : ['/wsgi-metrics', '/wsgi-status']) {
          const r = await request(apache.port, p)
          if (r.status === 200) scrapes++
        }
        await sleep(1000)
      }
    })()
    const w = await runWrk({ url, connections: o.connections, seconds: o.duration, timeoutSeconds: 30 })
    scraping = false
    await scraper
    const ticks = pids.reduce((a, p) => a + processTicks(p), 0) - ticks0
    return {
      rps: w.rps,
      p99: w.latency.p99,
      scrapes,
      errors: w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout + w.non2xx,
      cpuUs: (ticks * 10000) / Math.max(1, w.requests),
    }
  } finally {
    await apache.cleanup()
  }
}

const TITLES: Record<Mode, string> = {
  plain: 'plain',
  observed: 'wsgi-status and wsgi-metrics, each scraped every second',
  mod_status: 'and mod_status (ExtendedStatus On), /server-status?auto scraped every second too',
  unscraped: 'wsgi-status and wsgi-metrics configured, not scraped',
}

/** CPU µs Apache's children spend on one request of each status page (1000 of each, one at a time). */
async function scrapeCost(): Promise<Record<string, number>> {
  const apache = new Apache({ config: config('mod_status'), modules: ['status'], logLevel: 'warn' })
  const out: Record<string, number> = {}
  try {
    await apache.start()
    await waitFor(async () => (await request(apache.port, '/hello')).status === 200, 20000, 100, 'the server to answer')
    for (const path of ['/wsgi-metrics', '/wsgi-status', '/server-status?auto']) {
      const { children } = serverProcesses(apache)
      const t0 = children.reduce((a, p) => a + processTicks(p), 0)
      for (let i = 0; i < 1000; i++) await request(apache.port, path)
      out[path] = ((children.reduce((a, p) => a + processTicks(p), 0) - t0) * 10000) / 1000
    }
  } finally {
    await apache.cleanup()
  }
  return out
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const rows: Record<Mode, Run[]> = { plain: [], observed: [], mod_status: [], unscraped: [] }
  const start = cpuBusy()
  for (let r = 0; r < o.repeat; r++) {
    // Alternating, and each pair in the other order than the last, so that drift favours neither.
    const order: Mode[] = r % 2 === 0 ? o.modes : [...o.modes].reverse()
    for (const mode of order) {
      const before = cpuBusy()
      const x = await one(mode, o)
      const after = cpuBusy()
      rows[mode].push(x)
      const busy = ((after.busy - before.busy) / Math.max(1, after.total - before.total)) * 100
      process.stderr.write(`${mode}: ${x.rps.toFixed(0)} req/s, p99 ${x.p99} ms, ${x.cpuUs.toFixed(1)} µs CPU per request, ${x.scrapes} scrapes, ${x.errors} errors (machine ${busy.toFixed(0)} % busy)\n`)
    }
  }
  const end = cpuBusy()
  const rps = (m: Mode) => median(rows[m].map((x) => x.rps))
  const p99 = (m: Mode) => median(rows[m].map((x) => x.p99))
  const cpu = (m: Mode) => median(rows[m].map((x) => x.cpuUs))
  const scrapes = await scrapeCost()
  const lines = [
    `mod_wsgi status cost, ${new Date().toISOString()}, hello world, processes=1 threads=15, wrk -t2 -c${o.connections}, ${o.duration} s after ${o.warmup} s warm-up, median of ${o.repeat} alternating runs of each (machine ${(((end.busy - start.busy) / Math.max(1, end.total - start.total)) * 100).toFixed(0)} % busy overall)`,
    '',
    '| server | req/s | p99 ms | CPU µs per request (Apache children + daemons) |',
    '|---|---|---|---|',
    ...o.modes.map((m) => `| ${TITLES[m]} | ${rps(m).toFixed(0)} | ${p99(m)} | ${cpu(m).toFixed(1)} |`),
    '',
    `One scrape, CPU µs in Apache's child: ${Object.entries(scrapes).map(([p, us]) => `${p} ${us.toFixed(0)}`).join(', ')}`,
    '',
    ...o.modes
      .filter((m) => m !== 'plain' && o.modes.includes('plain'))
      .map((m) => `${m} / plain: req/s ${(rps(m) / rps('plain')).toFixed(3)}${m === 'observed' ? ` (target ≥ 0.98: ${rps(m) >= 0.98 * rps('plain') ? 'met' : 'NOT met'})` : ''}, CPU per request ${(cpu(m) / cpu('plain')).toFixed(3)}`),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
}

main().catch(exitWith)
