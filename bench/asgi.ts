// Side-by-side benchmark of ASGI serving: the same plain ASGI application (bench/apps/asgi_app.py)
// served by this module (WSGIScriptAlias, one daemon process) and by uvicorn (Debian's, with uvloop and
// httptools, one worker) behind Apache's mod_proxy_http on the same Apache build and tuning: the setup
// users run today. The two alternate in one run; medians of the repeats. See bench/README.md.
//   npm run bench:asgi -- --workloads hello,stream,upload --connections 16 --repeat 3
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { Apache, request } from '../test/helpers/apache'
import { APACHE_TUNING, BENCH_DIR, cpuBusy, daemonRssMiB, median, type Workload } from './common'
import { wrk, type WrkResult } from './run'
import { type Running, serverTicks, startUvicornBehindApache } from './uvicorn'
import { benchArgs, exitWith, names, numbers } from './args'

type Server = 'ours' | 'uvicorn'
const SERVERS: Server[] = ['ours', 'uvicorn']

export const ASGI_WORKLOADS: Record<string, Workload> = {
  hello: { name: 'hello world', path: '/hello' },
  stream: { name: '1 MiB streamed response (64 KiB messages)', path: '/stream?size=1048576' },
  upload: { name: '1 MiB upload', path: '/echo', lua: 'post-1m.lua', postBytes: 1 << 20 },
}

/** The targets: ours / uvicorn req/s, and p99 no worse. */
const TARGETS: Record<string, number> = { hello: 1.25, stream: 1.0, upload: 1.0 }

export interface AsgiOptions {
  workloads: string[]
  connections: number[]
  duration: number
  warmup: number
  repeat: number
  threads: number
  loop: 'asyncio' | 'uvloop'
  resultsDir: string
}

export function parseArgs(argv: string[]): AsgiOptions {
  const usage = 'usage: npm run bench:asgi -- [options]\n\nASGI hello/stream/upload through this module and through uvicorn behind mod_proxy_http, alternating.'
  const a = benchArgs(argv, usage, {
    workloads: {
      type: 'string',
      default: 'hello,stream,upload',
      describe: `Workloads, comma-separated: ${Object.keys(ASGI_WORKLOADS).join(', ')}, or all`,
      coerce: (v: string) => names(v, Object.keys(ASGI_WORKLOADS), 'workload'),
    },
    connections: { type: 'string', default: '16', describe: 'Concurrent connections, comma-separated (one row each), e.g. 1,16,64', coerce: (v: string) => numbers(v, 'connections') },
    duration: { type: 'number', default: 8, describe: 'Seconds of each measured run' },
    warmup: { type: 'number', default: 3, describe: 'Seconds of load before each measured run' },
    repeat: { type: 'number', default: 3, describe: 'Alternating runs per server (medians are reported)' },
    threads: { type: 'number', default: 15, describe: 'Threads of our daemon process' },
    loop: { choices: ['asyncio', 'uvloop'] as const, default: 'asyncio' as const, describe: 'asgi-loop of our daemon (uvicorn always uses uvloop)' },
    'results-dir': { type: 'string', default: join(BENCH_DIR, 'results'), defaultDescription: 'bench/results', describe: "Where the table is written (asgi-*.md); '' for nowhere" },
  }).parseSync()
  return {
    workloads: a.workloads,
    connections: a.connections,
    duration: a.duration,
    warmup: a.warmup,
    repeat: a.repeat,
    threads: a.threads,
    loop: a.loop,
    resultsDir: a['results-dir'],
  }
}

async function startOurs(o: AsgiOptions): Promise<Running> {
  const apps = join(BENCH_DIR, 'apps')
  const apache = new Apache({
    logLevel: 'warn',
    config: `${APACHE_TUNING}LogLevel warn
WSGIDaemonProcess bench processes=1 threads=${o.threads} asgi-loop=${o.loop} display-name=(wsgi:bench)
WSGIProcessGroup bench
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias / ${apps}/asgi_app.py callable-object=app
<Directory ${apps}>
  Require all granted
</Directory>
`,
  })
  await apache.start()
  return { apache, uvicorn: null, rss: () => daemonRssMiB(apache), stop: () => apache.cleanup() }
}

function startUvicorn(): Promise<Running> {
  return startUvicornBehindApache({
    app: 'asgi_app:app',
    readyPath: '/hello',
    modules: ['proxy', 'proxy_http'],
    proxy: (port) => `ProxyPass / http://127.0.0.1:${port}/\nProxyPassReverse / http://127.0.0.1:${port}/\n`,
  })
}

export interface Side {
  rps: number
  p50: number
  p99: number
  /** CPU time per request (µs) of Apache's children, and of the daemon (ours) or uvicorn. */
  apacheUs: number
  pythonUs: number
}

export interface AsgiRow {
  workload: string
  connections: number
  ours: Side
  uvicorn: Side
  ratio: number
  errors: number
}

export interface AsgiBenchResult {
  text: string
  rows: AsgiRow[]
  /** Median resident memory (MiB) at the end of the runs: the daemon process, the uvicorn process. */
  rss: Record<string, Record<Server, number>>
}

export async function runAsgiBench(o: AsgiOptions, progress: (l: string) => void = (l) => process.stderr.write(l + '\n')): Promise<AsgiBenchResult> {
  const rows: AsgiRow[] = []
  const rssRuns: Record<string, Record<Server, number[]>> = {}
  const load0 = loadavg()[0]
  for (const wname of o.workloads) {
    const w = ASGI_WORKLOADS[wname]
    rssRuns[wname] = { ours: [], uvicorn: [] }
    for (const c of o.connections) {
      const results: Record<Server, WrkResult[]> = { ours: [], uvicorn: [] }
      const cpu: Record<Server, Array<{ apacheUs: number; pythonUs: number }>> = { ours: [], uvicorn: [] }
      for (let rep = 0; rep < o.repeat; rep++) {
        for (const kind of SERVERS) {
          const s = kind === 'ours' ? await startOurs(o) : await startUvicorn()
          try {
            const first = await request(s.apache.port, w.path, w.postBytes ? { method: 'POST', body: Buffer.alloc(w.postBytes, 0x61) } : {})
            if (first.status !== 200) throw new Error(`${kind} ${w.path}: ${first.status}\n${s.apache.log().slice(-2000)}`)
            if (o.warmup > 0) wrk(s.apache.port, w, Math.max(c, 16), o.warmup)
            const before = cpuBusy()
            const ticks0 = serverTicks(s)
            const r = wrk(s.apache.port, w, c, o.duration)
            const ticks1 = serverTicks(s)
            const busy = (cpuBusy() - before) / 100
            results[kind].push(r)
            const requests = r.rps * o.duration
            cpu[kind].push({
              apacheUs: ((ticks1.apache - ticks0.apache) * 10000) / requests,
              pythonUs: ((ticks1.python - ticks0.python) * 10000) / requests,
            })
            rssRuns[wname][kind].push(s.rss())
            const last = cpu[kind][cpu[kind].length - 1]
            progress(`${wname} c=${c} ${kind} #${rep + 1}: ${r.rps.toFixed(0)} req/s p50 ${r.p50ms} ms p99 ${r.p99ms} ms, ` +
              `CPU/request Apache ${last.apacheUs.toFixed(0)} µs + ${kind === 'ours' ? 'daemon' : 'uvicorn'} ${last.pythonUs.toFixed(0)} µs ` +
              `(machine busy ${busy.toFixed(1)} CPU-s in ${o.duration} s) errors ${r.errors + r.non2xx}`)
          } finally {
            await s.stop()
          }
        }
      }
      const side = (k: Server): Side => ({
        rps: median(results[k].map((r) => r.rps)),
        p50: median(results[k].map((r) => r.p50ms)),
        p99: median(results[k].map((r) => r.p99ms)),
        apacheUs: median(cpu[k].map((x) => x.apacheUs)),
        pythonUs: median(cpu[k].map((x) => x.pythonUs)),
      })
      const ours = side('ours')
      const uvicorn = side('uvicorn')
      rows.push({
        workload: wname,
        connections: c,
        ours,
        uvicorn,
        ratio: ours.rps / uvicorn.rps,
        errors: [...results.ours, ...results.uvicorn].reduce((a, r) => a + r.errors + r.non2xx, 0),
      })
    }
  }
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-')
  const lines = [
    `mod_wsgi ASGI bench, ${new Date().toISOString()}: this module (1 daemon process, threads=${o.threads}, ${o.loop}) vs ` +
      `uvicorn (1 worker, uvloop, httptools) behind mod_proxy_http; ${o.duration}s runs after ` +
      `${o.warmup}s warm-up, median of ${o.repeat}, load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`,
    '',
    '| workload | conns | ours req/s | uvicorn+proxy req/s | ratio | target | ours p50/p99 ms | uvicorn p50/p99 ms | errors |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for (const r of rows) {
    const target = TARGETS[r.workload]
    const met = r.ratio >= target && r.ours.p99 <= r.uvicorn.p99
    lines.push(`| ${ASGI_WORKLOADS[r.workload].name} | ${r.connections} | ${f(r.ours.rps)} | ${f(r.uvicorn.rps)} | ${f(r.ratio, 2)} | ` +
      `≥ ${target.toFixed(2)}, p99 no worse: ${met ? 'met' : 'NOT met'} | ${f(r.ours.p50, 2)} / ${f(r.ours.p99, 2)} | ` +
      `${f(r.uvicorn.p50, 2)} / ${f(r.uvicorn.p99, 2)} | ${r.errors} |`)
  }
  lines.push(
    '',
    'CPU time per request (µs), steadier than req/s on a shared machine: Apache\'s children + the daemon (ours) or uvicorn',
    '',
    '| workload | conns | ours Apache + daemon | uvicorn: Apache + uvicorn | ratio (uvicorn / ours) |',
    '|---|---|---|---|---|',
  )
  for (const r of rows) {
    const ours = r.ours.apacheUs + r.ours.pythonUs
    const uv = r.uvicorn.apacheUs + r.uvicorn.pythonUs
    lines.push(`| ${ASGI_WORKLOADS[r.workload].name} | ${r.connections} | ${f(r.ours.apacheUs)} + ${f(r.ours.pythonUs)} = ${f(ours)} | ` +
      `${f(r.uvicorn.apacheUs)} + ${f(r.uvicorn.pythonUs)} = ${f(uv)} | ${f(uv / ours, 2)} |`)
  }
  lines.push('', '| workload | ours daemon RSS MiB | uvicorn RSS MiB |', '|---|---|---|')
  const rss: AsgiBenchResult['rss'] = {}
  for (const [wname, v] of Object.entries(rssRuns)) {
    rss[wname] = { ours: median(v.ours), uvicorn: median(v.uvicorn) }
    lines.push(`| ${ASGI_WORKLOADS[wname].name} | ${f(rss[wname].ours, 1)} | ${f(rss[wname].uvicorn, 1)} |`)
  }
  const text = lines.join('\n')
  if (o.resultsDir) {
    mkdirSync(o.resultsDir, { recursive: true })
    writeFileSync(join(o.resultsDir, `asgi-${new Date().toISOString().replace(/[:.]/g, '-')}.md`), text + '\n')
  }
  return { text, rows, rss }
}

if (require.main === module) {
  Promise.resolve()
    .then(() => runAsgiBench(parseArgs(process.argv.slice(2))))
    .then((r) => console.log(r.text))
    .catch(exitWith)
}
