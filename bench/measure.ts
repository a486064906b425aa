// Costs per request, steadier than req/s on a shared machine: CPU time (utime + stime from /proc) of
// Apache's children and of the daemon processes over a fixed number of requests (ab -k), and, with
// --strace, the system calls each side makes per request (strace -c -f). Runs this module and the
// original mod_wsgi on the same configuration as bench/run.ts. See bench/README.md.
//
//   npm run bench:measure -- --workloads hello,django --requests 20000 --connections 16 --strace
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { Apache } from '../test/helpers/apache'
import { benchArgs, exitWith, names } from './args'
import { WORKLOADS, contextSwitches, daemonRssMiB, median, prepareData, processTicks, serverProcesses, startServer, type Workload } from './common'

interface Options {
  workloads: string[]
  servers: string[]
  requests: number
  connections: number
  repeat: number
  strace: boolean
  straceRequests: number
  processes: number
  threads: number
}

function parseArgs(argv: string[]): Options {
  const usage = 'usage: npm run bench:measure -- [options]\n\nCPU time, context switches and (--strace) system calls per request, servers alternating (ab -k).'
  const a = benchArgs(argv, usage, {
    workloads: {
      type: 'string',
      default: 'hello',
      describe: `Workloads, comma-separated: ${Object.keys(WORKLOADS).join(', ')}, or all`,
      coerce: (v: string) => names(v, Object.keys(WORKLOADS), 'workload'),
    },
    servers: {
      type: 'string',
      default: 'ours,original',
      describe: "Comma-separated: ours, original, or a snapshot directory (sh bench/snapshot.sh DIR); either of ours may carry Node flags for its daemons after ':'",
      coerce: (v: string) => v.split(',').filter(Boolean),
    },
    requests: { type: 'number', default: 20000, describe: 'Requests of each measured run' },
    connections: { type: 'number', default: 16, describe: 'Concurrent connections (ab -c)' },
    repeat: { type: 'number', default: 3, describe: 'Alternating runs per server (medians are reported)' },
    strace: { type: 'boolean', default: false, describe: 'Also count the system calls of each side per request (strace -c -f), in the last run' },
    'strace-requests': { type: 'number', default: 2000, describe: 'Requests of the --strace run' },
    processes: { type: 'number', default: 1, describe: 'Daemon processes of each server' },
    threads: { type: 'number', default: 15, describe: 'Threads of each daemon process' },
  }).parseSync()
  return {
    workloads: a.workloads,
    servers: a.servers,
    requests: a.requests,
    connections: a.connections,
    repeat: a.repeat,
    strace: a.strace,
    straceRequests: a['strace-requests'],
    processes: a.processes,
    threads: a.threads,
  }
}

interface AbResult {
  complete: number
  failed: number
  non2xx: number
  rps: number
}

function ab(port: number, w: Workload, n: number, c: number, bodyFile: string | null): AbResult {
  const args = ['-q', '-k', '-c', String(c), '-n', String(n), '-s', '30']
  if (bodyFile !== null) args.push('-p', bodyFile, '-T', 'application/octet-stream')
  args.push(`http://127.0.0.1:${port}${w.path}`)
  const r = spawnSync('ab', args, { encoding: 'utf8', maxBuffer: 16 << 20 })
  if (r.status !== 0) throw new Error(`ab failed (${r.status}): ${r.stderr}`)
  const num = (re: RegExp) => Number(re.exec(r.stdout)?.[1] ?? 0)
  return {
    complete: num(/Complete requests:\s+(\d+)/),
    failed: num(/Failed requests:\s+(\d+)/),
    non2xx: num(/Non-2xx responses:\s+(\d+)/),
    rps: num(/Requests per second:\s+([\d.]+)/),
  }
}

/** Sum of utime + stime (ticks) over pids. */
function ticks(pids: number[]): number {
  return pids.reduce((a, p) => a + processTicks(p), 0)
}

interface CpuResult {
  childUs: number
  daemonUs: number
  /** Context switches per request. */
  childCs: number
  daemonCs: number
  rps: number
  errors: number
}

function measureCpu(a: Apache, w: Workload, o: Options, bodyFile: string | null): CpuResult {
  const { children, daemons } = serverProcesses(a)
  const switches = (pids: number[]) => pids.reduce((x, p) => x + contextSwitches(p), 0)
  const c0 = ticks(children)
  const d0 = ticks(daemons)
  const cs0 = switches(children)
  const ds0 = switches(daemons)
  const r = ab(a.port, w, o.requests, o.connections, bodyFile)
  const c1 = ticks(children)
  const d1 = ticks(daemons)
  const n = Math.max(1, r.complete)
  const per = (t: number) => (t * 10000) / n // ticks are 10 ms: µs per request
  return {
    childUs: per(c1 - c0),
    daemonUs: per(d1 - d0),
    childCs: (switches(children) - cs0) / n,
    daemonCs: (switches(daemons) - ds0) / n,
    rps: r.rps,
    errors: r.failed + r.non2xx,
  }
}

/** strace -c -f over `pids` while `n` requests run: calls per request by system call. */
async function straceCounts(a: Apache, pids: number[], w: Workload, o: Options, bodyFile: string | null): Promise<Map<string, number>> {
  const out = join(a.dir, `strace-${pids[0]}.txt`)
  const args = ['-c', '-f', '-o', out, ...pids.flatMap((p) => ['-p', String(p)])]
  const tracer = spawn('strace', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  tracer.stderr.on('data', (d: Buffer) => (err += d.toString()))
  // strace says "Process N attached" for each thread once it is attached.
  const deadline = Date.now() + 10000
  while (!/attached/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  await new Promise((r) => setTimeout(r, 300))
  const r = ab(a.port, w, o.straceRequests, o.connections, bodyFile)
  const exited = new Promise((res) => tracer.once('exit', res))
  tracer.kill('SIGINT')
  await exited
  const counts = new Map<string, number>()
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    // % time, seconds, usecs/call, calls, [errors], syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line)
    if (m && m[2] !== 'total') counts.set(m[2], Number(m[1]) / Math.max(1, r.complete))
  }
  return counts
}

function formatCounts(counts: Map<string, number>): string {
  const total = [...counts.values()].reduce((x, y) => x + y, 0)
  const top = [...counts.entries()].filter(([, v]) => v >= 0.05).sort((x, y) => y[1] - x[1])
  return `${total.toFixed(1)}: ` + top.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const dataDir = prepareData()
  try {
    for (const wname of o.workloads) {
      const w = WORKLOADS[wname]
      let bodyFile: string | null = null
      if (w.postBytes) {
        bodyFile = join(dataDir, `post-${w.postBytes}.bin`)
        writeFileSync(bodyFile, Buffer.alloc(w.postBytes, 0x70))
      }
      // Alternating the servers run by run (a fresh Apache each time), so that a disturbance of the
      // shared machine does not land on one side only.
      const runs = new Map<string, CpuResult[]>(o.servers.map((k) => [k, []]))
      const rss = new Map<string, number>()
      const traces: string[] = []
      for (let rep = 0; rep < o.repeat; rep++) {
        for (const kind of o.servers) {
          const a = await startServer(kind, o, dataDir)
          try {
            ab(a.port, w, Math.max(1000, o.requests / 10), o.connections, bodyFile) // warm-up
            const r = measureCpu(a, w, o, bodyFile)
            runs.get(kind)?.push(r)
            rss.set(kind, daemonRssMiB(a))
            process.stderr.write(`${wname} ${label(kind)} #${rep + 1}: ${(r.childUs + r.daemonUs).toFixed(1)} µs/request\n`)
            if (o.strace && rep === o.repeat - 1) {
              const { children, daemons } = serverProcesses(a)
              traces.push(`${wname} ${label(kind)} syscalls/request, Apache children ${formatCounts(await straceCounts(a, children, w, o, bodyFile))}`)
              traces.push(`${wname} ${label(kind)} syscalls/request, daemon ${formatCounts(await straceCounts(a, daemons, w, o, bodyFile))}`)
            }
          } finally {
            await a.cleanup()
          }
        }
      }
      for (const kind of o.servers) {
        const rs = runs.get(kind) ?? []
        const med = (f: (r: CpuResult) => number) => median(rs.map(f))
        console.log(
          `${wname} c=${o.connections} ${label(kind)}: CPU µs/request Apache children ${med((r) => r.childUs).toFixed(1)}, ` +
            `daemon ${med((r) => r.daemonUs).toFixed(1)}, total ${med((r) => r.childUs + r.daemonUs).toFixed(1)} ` +
            `(runs: ${rs.map((r) => (r.childUs + r.daemonUs).toFixed(1)).join(' ')}); ` +
            `context switches/request Apache children ${med((r) => r.childCs).toFixed(2)}, daemon ${med((r) => r.daemonCs).toFixed(2)}; ` +
            `ab ${med((r) => r.rps).toFixed(0)} req/s; errors ${rs.reduce((x, r) => x + r.errors, 0)}; ` +
            `daemon RSS ${(rss.get(kind) ?? 0).toFixed(1)} MiB`,
        )
      }
      for (const line of traces) console.log(line)
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

function label(kind: string): string {
  const colon = kind.indexOf(':')
  const base = colon < 0 ? kind : kind.slice(0, colon)
  const name = base === 'ours' || base === 'original' ? base : basename(base)
  return colon < 0 ? name : `${name}[${kind.slice(colon + 1)}]`
}

main().catch(exitWith)
