// Side-by-side benchmark of WebSocket serving: the same plain ASGI echo application
// (bench/apps/ws_app.py) served by this module (WSGIScriptAlias, one daemon process, the Apache child
// relaying the upgraded connection) and by uvicorn (Debian's, with uvloop and websockets, one worker)
// behind Apache's mod_proxy_wstunnel on the same Apache build and tuning: the setup users run today.
// The load client is Node's `ws` in a process of its own (bench/ws-load.ts). The two servers alternate
// in one run; medians of the repeats. See bench/README.md.
//   npm run bench:ws -- --workloads echo,big,idle --repeat 3
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { Apache, waitFor } from '../test/helpers/apache'
import { benchArgs, exitWith, names } from './args'
import { APACHE_TUNING, BENCH_DIR, daemonRssMiB, median } from './common'
import { type Running, serverTicks, startUvicornBehindApache } from './uvicorn'

type Server = 'ours' | 'uvicorn'
const SERVERS: Server[] = ['ours', 'uvicorn']
const LOAD = join(__dirname, 'ws-load.js')

interface WsWorkload {
  name: string
  connections: number
  size: number
  binary: boolean
  /** Round trips per second, ours / uvicorn, at least (p99 no worse); 0: not a throughput workload. */
  target: number
  idle?: boolean
}

export const WS_WORKLOADS: Record<string, WsWorkload> = {
  echo: { name: 'echo, 32-byte text, 16 connections', connections: 16, size: 32, binary: false, target: 1.25 },
  big: { name: 'echo, 1 MiB binary, 4 connections', connections: 4, size: 1 << 20, binary: true, target: 1.0 },
  idle: { name: '200 open idle connections', connections: 200, size: 0, binary: false, target: 0, idle: true },
}

interface Options {
  workloads: string[]
  duration: number
  warmup: number
  repeat: number
  resultsDir: string
}

function parseArgs(argv: string[]): Options {
  const usage = 'usage: npm run bench:ws -- [options]\n\nWebSocket echo and idle connections through this module and through uvicorn behind mod_proxy_wstunnel, alternating.'
  const a = benchArgs(argv, usage, {
    workloads: {
      type: 'string',
      default: 'echo,big,idle',
      describe: `Workloads, comma-separated: ${Object.keys(WS_WORKLOADS).join(', ')}, or all`,
      coerce: (v: string) => names(v, Object.keys(WS_WORKLOADS), 'workload'),
    },
    duration: { type: 'number', default: 8, describe: 'Seconds of each measured run (idle: how long the connections are held)' },
    warmup: { type: 'number', default: 2, describe: 'Seconds of load before each measured run' },
    repeat: { type: 'number', default: 3, describe: 'Alternating runs per server (medians are reported)' },
    'results-dir': { type: 'string', default: join(BENCH_DIR, 'results'), defaultDescription: 'bench/results', describe: "Where the table is written (websocket-*.md); '' for nowhere" },
  }).parseSync()
  return { workloads: a.workloads, duration: a.duration, warmup: a.warmup, repeat: a.repeat, resultsDir: a['results-dir'] }
}

/** A server under measurement and the URL its clients open. */
type RunningWs = Running & { url: string }

async function startOurs(): Promise<RunningWs> {
  const apps = join(BENCH_DIR, 'apps')
  const apache = new Apache({
    logLevel: 'warn',
    config: `${APACHE_TUNING}LogLevel warn
WSGIDaemonProcess bench processes=1 threads=15 display-name=(wsgi:bench)
WSGIProcessGroup bench
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias / ${apps}/ws_app.py callable-object=app
<Directory ${apps}>
  Require all granted
</Directory>
`,
  })
  await apache.start()
  return { apache, uvicorn: null, url: `ws://127.0.0.1:${apache.port}/echo`, rss: () => daemonRssMiB(apache), stop: () => apache.cleanup() }
}

async function startUvicorn(): Promise<RunningWs> {
  const s = await startUvicornBehindApache({
    app: 'ws_app:app',
    args: ['--ws', 'websockets'],
    readyPath: '/',
    modules: ['proxy', 'proxy_http', 'proxy_wstunnel'],
    proxy: (port) => `ProxyPass / ws://127.0.0.1:${port}/\n`,
  })
  return { ...s, url: `ws://127.0.0.1:${s.apache.port}/echo` }
}

interface LoadResult {
  roundTrips: number
  perSecond: number
  p50: number
  p99: number
  errors: number
}

function load(url: string, w: WsWorkload, seconds: number): LoadResult {
  const args = [LOAD, url, '--connections', String(w.connections), '--seconds', String(seconds), '--size', String(w.size)]
  if (w.binary) args.push('--binary')
  return JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', timeout: (seconds + 60) * 1000 }).trim())
}

/** Opens `w.connections` idle WebSockets, holds them `seconds`, and reports the server's resident
 *  memory before and with them, and how many were still alive. */
async function idle(s: RunningWs, w: WsWorkload, seconds: number): Promise<{ before: number; held: number; alive: number }> {
  const before = s.rss()
  const child = spawn(process.execPath, [LOAD, s.url, '--connections', String(w.connections), '--idle'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines: string[] = []
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)))
  await waitFor(() => lines.length > 0, 60000, 50, 'the idle connections to open')
  await new Promise((r) => setTimeout(r, seconds * 1000))
  const held = s.rss()
  child.stdin.write('go\n')
  await waitFor(() => lines.length > 1, 30000, 50, 'the idle connections to answer')
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)))
  return { before, held, alive: JSON.parse(lines[1]).alive }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const load0 = loadavg()[0]
  const out: string[] = []
  const rows: string[] = []
  const cpuRows: string[] = []
  const idleRows: string[] = []
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-')
  for (const wname of o.workloads) {
    const w = WS_WORKLOADS[wname]
    const res: Record<Server, LoadResult[]> = { ours: [], uvicorn: [] }
    const cpu: Record<Server, Array<{ apache: number; python: number }>> = { ours: [], uvicorn: [] }
    const idles: Record<Server, Array<{ before: number; held: number; alive: number }>> = { ours: [], uvicorn: [] }
    for (let rep = 0; rep < o.repeat; rep++) {
      for (const kind of SERVERS) {
        const s = kind === 'ours' ? await startOurs() : await startUvicorn()
        try {
          if (w.idle) {
            const r = await idle(s, w, o.duration)
            idles[kind].push(r)
            process.stderr.write(`${wname} ${kind} #${rep + 1}: RSS ${f(r.before, 1)} -> ${f(r.held, 1)} MiB with ${w.connections} open, ${r.alive} alive\n`)
            continue
          }
          if (o.warmup > 0) load(s.url, w, o.warmup)
          const t0 = serverTicks(s)
          const r = load(s.url, w, o.duration)
          const t1 = serverTicks(s)
          res[kind].push(r)
          cpu[kind].push({ apache: ((t1.apache - t0.apache) * 10000) / r.roundTrips, python: ((t1.python - t0.python) * 10000) / r.roundTrips })
          const c = cpu[kind][cpu[kind].length - 1]
          process.stderr.write(`${wname} ${kind} #${rep + 1}: ${f(r.perSecond)} round trips/s p50 ${f(r.p50, 2)} ms p99 ${f(r.p99, 2)} ms, ` +
            `CPU per round trip Apache ${f(c.apache)} µs + ${kind === 'ours' ? 'daemon' : 'uvicorn'} ${f(c.python)} µs, errors ${r.errors}, RSS ${f(s.rss(), 1)} MiB\n`)
        } finally {
          await s.stop()
        }
      }
    }
    if (w.idle) {
      const m = (k: Server, key: 'before' | 'held' | 'alive') => median(idles[k].map((x) => x[key]))
      idleRows.push(`| ${w.name} | ${f(m('ours', 'before'), 1)} -> ${f(m('ours', 'held'), 1)} (${f(((m('ours', 'held') - m('ours', 'before')) * 1024) / w.connections, 0)} KiB each), ${f(m('ours', 'alive'))} alive | ` +
        `${f(m('uvicorn', 'before'), 1)} -> ${f(m('uvicorn', 'held'), 1)} (${f(((m('uvicorn', 'held') - m('uvicorn', 'before')) * 1024) / w.connections, 0)} KiB each), ${f(m('uvicorn', 'alive'))} alive |`)
      continue
    }
    const side = (k: Server) => ({
      rps: median(res[k].map((r) => r.perSecond)),
      p50: median(res[k].map((r) => r.p50)),
      p99: median(res[k].map((r) => r.p99)),
      errors: res[k].reduce((a, r) => a + r.errors, 0),
      apache: median(cpu[k].map((c) => c.apache)),
      python: median(cpu[k].map((c) => c.python)),
    })
    const ours = side('ours')
    const uv = side('uvicorn')
    const ratio = ours.rps / uv.rps
    const met = ratio >= w.target && ours.p99 <= uv.p99
    rows.push(`| ${w.name} | ${f(ours.rps)} | ${f(uv.rps)} | ${f(ratio, 2)} | ≥ ${w.target.toFixed(2)}, p99 no worse: ${met ? 'met' : 'NOT met'} | ` +
      `${f(ours.p50, 2)} / ${f(ours.p99, 2)} | ${f(uv.p50, 2)} / ${f(uv.p99, 2)} | ${ours.errors + uv.errors} |`)
    cpuRows.push(`| ${w.name} | ${f(ours.apache)} + ${f(ours.python)} = ${f(ours.apache + ours.python)} | ` +
      `${f(uv.apache)} + ${f(uv.python)} = ${f(uv.apache + uv.python)} | ${f((uv.apache + uv.python) / (ours.apache + ours.python), 2)} |`)
  }
  out.push(
    `mod_wsgi WebSocket bench, ${new Date().toISOString()}: this module (1 daemon process) vs uvicorn (1 worker, uvloop, ` +
      `websockets) behind mod_proxy_wstunnel; Node ws client in its own process; ${o.duration}s runs after ${o.warmup}s warm-up, ` +
      `median of ${o.repeat}, load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`,
    '',
  )
  if (rows.length > 0)
    out.push(
      '| workload | ours round trips/s | uvicorn+wstunnel round trips/s | ratio | target | ours p50/p99 ms | uvicorn p50/p99 ms | errors |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      'CPU time per round trip (µs): Apache\'s children + the daemon (ours) or uvicorn',
      '',
      '| workload | ours Apache + daemon | uvicorn: Apache + uvicorn | ratio (uvicorn / ours) |',
      '|---|---|---|---|',
      ...cpuRows,
      '',
    )
  if (idleRows.length > 0)
    out.push('| workload | ours daemon RSS MiB | uvicorn RSS MiB |', '|---|---|---|', ...idleRows)
  const text = out.join('\n')
  console.log(text)
  if (o.resultsDir) {
    mkdirSync(o.resultsDir, { recursive: true })
    writeFileSync(join(o.resultsDir, `websocket-${new Date().toISOString().replace(/[:.]/g, '-')}.md`), text + '\n')
  }
}

main().catch(exitWith)
