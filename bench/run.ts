// Side-by-side benchmark: the same WSGI apps served through this module and through the original
// mod_wsgi (Debian's libapache2-mod-wsgi-py3) in daemon mode, on the same Apache with the same settings
// (only LoadModule differs), alternating the two in one run. See bench/README.md.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { benchArgs, exitWith, names, numbers } from './args'
import { BENCH_DIR, ORIGINAL_MODULE, WORKLOADS, cpuBusy, daemonRssMiB, median, prepareData, startServer, type Workload } from './common'

type Server = 'ours' | 'original'

export interface Options {
  workloads: string[]
  connections: number[]
  duration: number
  warmup: number
  repeat: number
  processes: number
  threads: number
  servers: Server[]
  /** What runs in each column: 'ours', 'original', or a snapshot directory (bench/snapshot.sh) in either. */
  kinds: Record<Server, string>
  /** Where the result table is written (a timestamped .md); '' for nowhere. */
  resultsDir: string
}

export function defaultOptions(): Options {
  return {
    workloads: ['hello'],
    connections: [16],
    duration: 8,
    warmup: 3,
    repeat: 3,
    processes: 1,
    threads: 15,
    servers: ['ours', 'original'],
    kinds: { ours: 'ours', original: 'original' },
    resultsDir: join(BENCH_DIR, 'results'),
  }
}

/** --servers: one or two of ours, original, a snapshot directory (either of ours may carry ':' and Node flags). */
function serverList(v: string): string[] {
  const named = v.split(',').filter(Boolean)
  if (named.length < 1 || named.length > 2) throw new Error('--servers: one or two of ours, original, SNAPSHOT_DIR')
  for (const k of named)
    if (k !== 'ours' && k !== 'original' && !existsSync(join(k, 'lib', 'daemon', 'main.js'))) throw new Error(`unknown server ${k} (not a snapshot directory)`)
  return named
}

export function parseArgs(argv: string[]): Options {
  const d = defaultOptions()
  const usage = 'usage: npm run bench -- [options]\n\nThe same WSGI apps through this module and through the original mod_wsgi, alternating (wrk).'
  const a = benchArgs(argv, usage, {
    workloads: {
      type: 'string',
      default: d.workloads.join(','),
      describe: `Workloads, comma-separated: ${Object.keys(WORKLOADS).join(', ')}, or all`,
      coerce: (v: string) => names(v, Object.keys(WORKLOADS), 'workload'),
    },
    connections: { type: 'string', default: d.connections.join(','), describe: 'Concurrent connections, comma-separated (one row each), e.g. 1,16,64', coerce: (v: string) => numbers(v, 'connections') },
    duration: { type: 'number', default: d.duration, describe: 'Seconds of each measured run (at least 1)' },
    warmup: { type: 'number', default: d.warmup, describe: 'Seconds of load before each measured run' },
    repeat: { type: 'number', default: d.repeat, describe: 'Alternating runs per server (medians are reported; at least 1)' },
    processes: { type: 'number', default: d.processes, describe: 'Daemon processes of each server' },
    threads: { type: 'number', default: d.threads, describe: 'Threads of each daemon process' },
    servers: {
      type: 'string',
      default: d.servers.map((s) => d.kinds[s]).join(','),
      describe: 'One or two of ours, original, or a snapshot directory (sh bench/snapshot.sh DIR): the first runs in the "ours" column, the second in the "original" one',
      coerce: serverList,
    },
    'results-dir': { type: 'string', default: d.resultsDir, defaultDescription: 'bench/results', describe: "Where the table is written (a timestamped .md); '' for nowhere" },
  })
    .check((a) => {
      if (!(a.duration >= 1) || !(a.warmup >= 0) || !(a.repeat >= 1)) throw new Error('--duration >= 1, --warmup >= 0, --repeat >= 1')
      return true
    })
    .parseSync()
  // Up to two servers: the first runs in the "ours" column, the second in the "original" one; either may
  // be a snapshot directory, to compare two builds of this module (sh bench/snapshot.sh DIR).
  const named = a.servers
  const servers: Server[] = named.length === 2 ? ['ours', 'original'] : [named[0] === 'original' ? 'original' : 'ours']
  const kinds = { ...d.kinds }
  servers.forEach((slot, n) => (kinds[slot] = named[n]))
  return {
    workloads: a.workloads,
    connections: a.connections,
    duration: a.duration,
    warmup: a.warmup,
    repeat: a.repeat,
    processes: a.processes,
    threads: a.threads,
    servers,
    kinds,
    resultsDir: a['results-dir'],
  }
}

export interface WrkResult {
  rps: number
  p50ms: number
  p99ms: number
  errors: number
  non2xx: number
}

function toMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s.trim())
  if (!m) return NaN
  const v = Number(m[1])
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
}

export function wrk(port: number, w: Workload, connections: number, seconds: number): WrkResult {
  const args = ['-t', String(Math.min(2, connections)), '-c', String(connections), '-d', `${seconds}s`, '--latency', '--timeout', '10s']
  if (w.lua) args.push('-s', join(BENCH_DIR, w.lua))
  args.push(`http://127.0.0.1:${port}${w.path}`)
  const out = execFileSync('wrk', args, { encoding: 'utf8' })
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0)
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50ms: toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99ms: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    errors: socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/),
  }
}

/** The targets (ratio ours / original of req/s, per workload and connection count). */
function ratioTarget(workload: string, connections: number): number | null {
  if (workload === 'hello') return connections === 16 ? 1.25 : 1.0
  if (workload === 'sendfile') return 2.0
  return 1.0
}

/** Daemon RSS may exceed the original's by at most this much (MiB) for these workloads. */
const RSS_MARGIN_MIB = 40
const RSS_TARGETS = ['hello', 'django']

export interface Row {
  workload: string
  connections: number
  ours: { rps: number; p50: number; p99: number }
  original: { rps: number; p50: number; p99: number }
  ratio: number
  errors: number
}

export interface BenchResult {
  text: string
  rows: Row[]
  /** Median daemon RSS (MiB) at the end of the runs, by workload and server. */
  rss: Record<string, Partial<Record<Server, number>>>
}

export async function runBench(o: Options, progress: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<BenchResult> {
  if (Object.values(o.kinds).includes('original') && !existsSync(ORIGINAL_MODULE))
    throw new Error(`the original mod_wsgi is not there (${ORIGINAL_MODULE}): run scripts/setup.sh (it unpacks Debian's libapache2-mod-wsgi-py3 under build/debian), set MOD_WSGI_ORIGINAL, or --servers ours`)
  const dataDir = prepareData()
  const rows: Row[] = []
  const rssRuns: Record<string, Record<Server, number[]>> = {}
  const load0 = loadavg()[0]
  try {
    for (const wname of o.workloads) {
      const w = WORKLOADS[wname]
      rssRuns[wname] = { ours: [], original: [] }
      for (const c of o.connections) {
        const results: Record<Server, WrkResult[]> = { ours: [], original: [] }
        for (let rep = 0; rep < o.repeat; rep++) {
          for (const kind of o.servers) {
            const a = await startServer(o.kinds[kind], o, dataDir)
            try {
              // Warm-up at the highest concurrency of the run, so that Apache has its threads.
              if (o.warmup > 0) wrk(a.port, w, Math.max(c, 16), o.warmup)
              const before = cpuBusy()
              const r = wrk(a.port, w, c, o.duration)
              const busy = (cpuBusy() - before) / 100
              results[kind].push(r)
              rssRuns[wname][kind].push(daemonRssMiB(a))
              progress(`${wname} c=${c} ${o.kinds[kind]} #${rep + 1}: ${r.rps.toFixed(0)} req/s p50 ${r.p50ms} ms p99 ${r.p99ms} ms ` +
                `(machine busy ${busy.toFixed(1)} CPU-s in ${o.duration} s) errors ${r.errors + r.non2xx}`)
            } finally {
              await a.cleanup()
            }
          }
        }
        const med = (k: Server, f: (r: WrkResult) => number) => (results[k].length ? median(results[k].map(f)) : NaN)
        const side = (k: Server) => ({ rps: med(k, (r) => r.rps), p50: med(k, (r) => r.p50ms), p99: med(k, (r) => r.p99ms) })
        const ours = side('ours')
        const original = side('original')
        rows.push({
          workload: wname,
          connections: c,
          ours,
          original,
          ratio: ours.rps / original.rps,
          errors: [...results.ours, ...results.original].reduce((a, r) => a + r.errors + r.non2xx, 0),
        })
      }
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
  const rss: BenchResult['rss'] = {}
  for (const [wname, byServer] of Object.entries(rssRuns)) {
    rss[wname] = {}
    for (const k of o.servers) if (byServer[k].length) rss[wname][k] = median(byServer[k])
  }
  const text = render(o, rows, rss, load0, loadavg()[0])
  if (o.resultsDir) {
    mkdirSync(o.resultsDir, { recursive: true })
    writeFileSync(join(o.resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.md`), text + '\n')
  }
  return { text, rows, rss }
}

function render(o: Options, rows: Row[], rss: BenchResult['rss'], load0: number, load1: number): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-')
  // Targets are judged only against the original mod_wsgi itself.
  const both = o.servers.length === 2 && o.kinds.ours === 'ours' && o.kinds.original === 'original'
  const lines = [
    `mod_wsgi bench, ${new Date().toISOString()}, processes=${o.processes} threads=${o.threads}, ` +
      `${o.duration}s runs after ${o.warmup}s warm-up, median of ${o.repeat}, load average ${load0.toFixed(2)} -> ${load1.toFixed(2)}`,
    '',
    `| workload | conns | ${o.kinds.ours} req/s | ${o.kinds.original} req/s | ratio | target | ${o.kinds.ours} p50/p99 ms | ${o.kinds.original} p50/p99 ms | errors |`,
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for (const r of rows) {
    const target = ratioTarget(r.workload, r.connections)
    let verdict = '-'
    if (both && target !== null) {
      const p99ok = !(r.workload === 'hello' && r.connections === 16) || r.ours.p99 <= r.original.p99
      verdict = `≥ ${target.toFixed(2)}${r.ratio >= target && p99ok ? ' met' : ' NOT met'}`
    }
    lines.push(
      `| ${WORKLOADS[r.workload].name} | ${r.connections} | ${f(r.ours.rps)} | ${f(r.original.rps)} | ${f(r.ratio, 2)} | ${verdict} | ` +
        `${f(r.ours.p50, 2)} / ${f(r.ours.p99, 2)} | ${f(r.original.p50, 2)} / ${f(r.original.p99, 2)} | ${r.errors} |`,
    )
  }
  lines.push('', `| workload | ${o.kinds.ours} daemon RSS MiB | ${o.kinds.original} daemon RSS MiB | difference | target |`, '|---|---|---|---|---|')
  for (const [wname, v] of Object.entries(rss)) {
    const diff = (v.ours ?? NaN) - (v.original ?? NaN)
    const target = RSS_TARGETS.includes(wname) && both ? `≤ +${RSS_MARGIN_MIB}${diff <= RSS_MARGIN_MIB ? ' met' : ' NOT met'}` : '-'
    lines.push(`| ${WORKLOADS[wname].name} | ${f(v.ours ?? NaN, 1)} | ${f(v.original ?? NaN, 1)} | ${f(diff, 1)} | ${target} |`)
  }
  const errors = rows.reduce((a, r) => a + r.errors, 0)
  lines.push('', `request errors and non-2xx responses in all runs: ${errors}${errors === 0 ? ' (target met)' : ' (target NOT met)'}`)
  return lines.join('\n')
}

if (require.main === module) {
  Promise.resolve()
    .then(() => runBench(parseArgs(process.argv.slice(2))))
    .then((r) => console.log(r.text))
    .catch(exitWith)
}
