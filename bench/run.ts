// Side-by-side benchmark: the same WSGI apps served through this module and through the original
// mod_wsgi (Debian's libapache2-mod-wsgi-py3) in daemon mode, on the same Apache with the same settings
// (only LoadModule differs), alternating the two in one run. See bench/README.md.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH_DIR, WORKLOADS, cpuBusy, daemonRssMiB, median, prepareData, startServer, type Workload } from './common'

interface Options {
  workloads: string[]
  connections: number[]
  duration: number
  warmup: number
  repeat: number
  processes: number
  threads: number
  servers: Array<'ours' | 'original'>
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    workloads: ['hello'],
    connections: [16],
    duration: 8,
    warmup: 3,
    repeat: 3,
    processes: 1,
    threads: 15,
    servers: ['ours', 'original'],
  }
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i], argv[i + 1]]
    const list = () => (v ?? '').split(',').filter(Boolean)
    switch (k) {
      case '--workloads': o.workloads = v === 'all' ? Object.keys(WORKLOADS) : list(); i++; break
      case '--connections': o.connections = list().map(Number); i++; break
      case '--duration': o.duration = Number(v); i++; break
      case '--warmup': o.warmup = Number(v); i++; break
      case '--repeat': o.repeat = Number(v); i++; break
      case '--processes': o.processes = Number(v); i++; break
      case '--threads': o.threads = Number(v); i++; break
      case '--servers': o.servers = list() as Options['servers']; i++; break
      case '--help':
        console.log('usage: npm run bench -- [--workloads hello,django,64k,generator,sendfile,post|all] [--connections 1,16,64]\n' +
          '       [--duration S] [--warmup S] [--repeat N] [--processes N] [--threads N] [--servers ours,original]')
        process.exit(0)
      default:
        throw new Error(`unknown argument ${k}`)
    }
  }
  for (const w of o.workloads) if (!WORKLOADS[w]) throw new Error(`unknown workload ${w}`)
  return o
}

interface WrkResult {
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

function wrk(port: number, w: Workload, connections: number, seconds: number): WrkResult {
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

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const dataDir = prepareData()
  mkdirSync(join(BENCH_DIR, 'results'), { recursive: true })
  const rows: string[] = []
  const header = `| workload | conns | ours req/s | original req/s | ratio | ours p50/p99 ms | original p50/p99 ms | errors |`
  rows.push(header, '|---|---|---|---|---|---|---|---|')
  const rss: Record<string, number[]> = { ours: [], original: [] }
  for (const wname of o.workloads) {
    const w = WORKLOADS[wname]
    for (const c of o.connections) {
      const results: Record<string, WrkResult[]> = { ours: [], original: [] }
      for (let rep = 0; rep < o.repeat; rep++) {
        for (const kind of o.servers) {
          const a = await startServer(kind, o, dataDir)
          try {
            wrk(a.port, w, Math.max(c, 16), o.warmup)
            const before = cpuBusy()
            const r = wrk(a.port, w, c, o.duration)
            const busy = (cpuBusy() - before) / 100
            results[kind].push(r)
            rss[kind].push(daemonRssMiB(a))
            process.stderr.write(`${wname} c=${c} ${kind} #${rep + 1}: ${r.rps.toFixed(0)} req/s p99 ${r.p99ms} ms (cpu ${busy.toFixed(1)} s) errors ${r.errors + r.non2xx}\n`)
          } finally {
            await a.cleanup()
          }
        }
      }
      const med = (k: string, f: (r: WrkResult) => number) => (results[k].length ? median(results[k].map(f)) : NaN)
      const ours = med('ours', (r) => r.rps)
      const orig = med('original', (r) => r.rps)
      const errors = [...results.ours, ...results.original].reduce((a, r) => a + r.errors + r.non2xx, 0)
      rows.push(
        `| ${w.name} | ${c} | ${ours.toFixed(0)} | ${orig.toFixed(0)} | ${(ours / orig).toFixed(2)} | ` +
          `${med('ours', (r) => r.p50ms).toFixed(2)} / ${med('ours', (r) => r.p99ms).toFixed(2)} | ` +
          `${med('original', (r) => r.p50ms).toFixed(2)} / ${med('original', (r) => r.p99ms).toFixed(2)} | ${errors} |`,
      )
    }
  }
  const out = [
    `mod_wsgi bench, ${new Date().toISOString()}, processes=${o.processes} threads=${o.threads}, ` +
      `${o.duration}s runs after ${o.warmup}s warm-up, median of ${o.repeat}`,
    '',
    ...rows,
    '',
    `daemon RSS (MiB, median at end of runs): ours ${median(rss.ours).toFixed(1)}, original ${median(rss.original).toFixed(1)}`,
  ].join('\n')
  console.log(out)
  writeFileSync(join(BENCH_DIR, 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}.md`), out + '\n')
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e)
  process.exit(1)
})
