// Restarts under load, side by side (issue 14): for each event that restarts daemon processes, a wrk run
// (16 connections, 2 processes x 8 threads, hello world) with the event fired during it, through this
// module and through the original mod_wsgi (Debian's 4.9.4) in daemon mode on the same Apache; plus the
// same run without any event, and Apache serving a static file through the same graceful restart (its
// own loss, the floor for that event). Prints per event: requests completed, failed requests (socket
// errors + non-2xx), p99, and the targets. See bench/README.md ("Restarts").
//
//   npm run bench:restarts -- [--duration 14] [--events none,touch,sigusr1,graceful,max-requests,restart-interval,sigkill]
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Apache, cmdline, childPids, makeTempDir, request, sleep, waitFor } from '../test/helpers/apache'
import { runWrk, type WrkResult } from '../test/helpers/wrk'
import { benchArgs, exitWith, names } from './args'
import { APACHE_TUNING, ORIGINAL_MODULE, median } from './common'

type Server = 'ours' | 'original' | 'static'
const EVENTS = ['none', 'touch', 'sigusr1', 'graceful', 'max-requests', 'restart-interval', 'sigkill'] as const
type Event = (typeof EVENTS)[number]

interface Options {
  duration: number
  events: Event[]
  repeat: number
}

function parseArgs(argv: string[]): Options {
  const usage = 'usage: npm run bench:restarts -- [options]\n\nRestarts of the daemons during a wrk run, through this module and through the original mod_wsgi.'
  const a = benchArgs(argv, usage, {
    duration: { type: 'number', default: 14, describe: 'Seconds of each wrk run (the event fires during it)' },
    events: {
      type: 'string',
      default: EVENTS.join(','),
      describe: `Events, comma-separated: ${EVENTS.join(', ')}, or all`,
      coerce: (v: string) => names(v, EVENTS, 'event'),
    },
    repeat: { type: 'number', default: 1, describe: 'Runs of each event and server' },
  }).parseSync()
  return { duration: a.duration, events: a.events, repeat: a.repeat }
}

function siteConfig(dir: string, event: Event): string {
  const extra = event === 'max-requests' ? ' maximum-requests=500' : event === 'restart-interval' ? ' restart-interval=2' : ''
  return `${APACHE_TUNING}LogLevel warn
WSGIDaemonProcess bench processes=2 threads=8 display-name=(wsgi:bench)${extra}
WSGIProcessGroup bench
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /hello ${join(dir, 'hello.wsgi')}
<Directory ${dir}>
  Require all granted
</Directory>
`
}

const HELLO = `def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '12')])
    return [b'Hello World!']
`

function daemons(apache: Apache): number[] {
  const out: number[] = []
  const stack = [apache.pid]
  while (stack.length) {
    const pid = stack.pop() as number
    for (const c of childPids(pid)) {
      stack.push(c)
      if (cmdline(c).includes('(wsgi:bench)')) out.push(c)
    }
  }
  return out
}

async function fire(event: Event, apache: Apache, dir: string): Promise<void> {
  switch (event) {
    case 'touch': {
      const t = new Date(Date.now() + 1000)
      utimesSync(join(dir, 'hello.wsgi'), t, t)
      return
    }
    case 'sigusr1':
      for (const pid of daemons(apache)) process.kill(pid, 'SIGUSR1')
      return
    case 'graceful':
      await apache.graceful()
      return
    case 'sigkill': {
      const [victim] = daemons(apache)
      if (victim) process.kill(victim, 'SIGKILL')
      return
    }
    default:
  }
}

interface Row {
  server: Server
  event: Event
  requests: number
  failed: number
  p99: number
}

async function one(server: Server, event: Event, o: Options): Promise<Row> {
  const dir = makeTempDir('mod_wsgi-bench-restarts-')
  writeFileSync(join(dir, 'hello.wsgi'), HELLO, { mode: 0o644 })
  mkdirSync(join(dir, 'htdocs'), { mode: 0o755 })
  writeFileSync(join(dir, 'htdocs', 'static.txt'), 'Hello World!', { mode: 0o644 })
  const apache = new Apache({
    config: server === 'static' ? `${APACHE_TUNING}LogLevel warn\nAlias /hello ${join(dir, 'htdocs', 'static.txt')}\n<Directory ${dir}/htdocs>\n  Require all granted\n</Directory>\n` : siteConfig(dir, event),
    modulePath: server === 'original' ? ORIGINAL_MODULE : undefined,
    noWsgi: server === 'static',
    logLevel: 'warn',
  })
  try {
    await apache.start()
    await waitFor(async () => (await request(apache.port, '/hello')).status === 200, 20000, 100, 'the server to answer')
    const url = `http://127.0.0.1:${apache.port}/hello`
    await runWrk({ url, connections: 16, seconds: 2 })
    const at = Math.round((o.duration * 1000) / 3)
    const [w] = await Promise.all([
      runWrk({ url, connections: 16, seconds: o.duration, timeoutSeconds: 30 }),
      (async () => {
        await sleep(at)
        await fire(event, apache, dir)
      })(),
    ])
    return { server, event, ...summary(w) }
  } finally {
    await apache.cleanup()
    rmSync(dir, { recursive: true, force: true })
  }
}

function summary(w: WrkResult): { requests: number; failed: number; p99: number } {
  const e = w.errors
  return { requests: w.requests, failed: e.connect + e.read + e.write + e.timeout + w.non2xx, p99: w.latency.p99 }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const rows: Row[] = []
  for (let r = 0; r < o.repeat; r++) {
    for (const event of o.events) {
      for (const server of ['ours', 'original'] as const) {
        const row = await one(server, event, o)
        rows.push(row)
        process.stderr.write(`${server} ${event}: ${row.requests} requests, ${row.failed} failed, p99 ${row.p99} ms\n`)
      }
      if (event === 'graceful') {
        const row = await one('static', event, o)
        rows.push(row)
        process.stderr.write(`static graceful: ${row.requests} requests, ${row.failed} failed\n`)
      }
    }
  }
  const pick = (server: Server, event: Event) => {
    const rs = rows.filter((x) => x.server === server && x.event === event)
    return rs.length ? { requests: median(rs.map((x) => x.requests)), failed: median(rs.map((x) => x.failed)), p99: median(rs.map((x) => x.p99)) } : null
  }
  const base = pick('ours', 'none')
  const lines = [
    `mod_wsgi restarts bench, ${new Date().toISOString()}, 2 processes x 8 threads, hello world, wrk 16 connections, ${o.duration} s, event at ${Math.round(o.duration / 3)} s, median of ${o.repeat}`,
    '',
    '| event | ours: requests / failed / p99 ms | original: requests / failed / p99 ms | targets |',
    '|---|---|---|---|',
  ]
  for (const event of o.events) {
    const a = pick('ours', event)
    const b = pick('original', event)
    if (!a || !b) continue
    const targets: string[] = []
    const staticLoss = pick('static', 'graceful')?.failed ?? 0
    const allowed = event === 'graceful' ? staticLoss : 0
    if (event !== 'none' && event !== 'sigkill') targets.push(`failed ≤ ${allowed}: ${a.failed <= allowed ? 'met' : 'NOT met'}`)
    if (base && event !== 'none' && event !== 'sigkill')
      targets.push(`p99 ≤ 3× ${base.p99} ms: ${a.p99 <= 3 * base.p99 ? 'met' : 'NOT met'}`)
    if (base && (event === 'max-requests' || event === 'restart-interval')) {
      targets.push(`≥ 90 % of no-event: ${(a.requests / base.requests * 100).toFixed(0)} % ${a.requests >= 0.9 * base.requests ? 'met' : 'NOT met'}`)
      targets.push(`≥ 1.5× original: ${(a.requests / b.requests).toFixed(2)}× ${a.requests >= 1.5 * b.requests ? 'met' : 'NOT met'}`)
    }
    if (event === 'graceful') targets.push(`(Apache alone, static file: ${staticLoss} failed)`)
    lines.push(`| ${event} | ${a.requests} / ${a.failed} / ${a.p99} | ${b.requests} / ${b.failed} / ${b.p99} | ${targets.join('; ')} |`)
  }
  process.stdout.write(`${lines.join('\n')}\n`)
}

main().catch(exitWith)
