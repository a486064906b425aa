// Measures the smallest virtual-memory-limit (RLIMIT_AS) and memory-limit (RLIMIT_DATA) with which a
// daemon process starts and serves hello world with every thread busy at once, for threads=1 and
// threads=15. The floors in native/apache/wsgi_config.h and src/config/memory-floor.ts, and the README's
// "Memory limits", come from this. The daemon is run directly (test/daemon/harness.ts), because the
// Apache module raises configured values below those floors. Not part of the test suite: it takes minutes.
//
//   npx tsc -p tsconfig.bench.json && node build/bench/bench/memory-floor.js [--threads 1,15] [--options vm,data] [--low 16]
import { Daemon, fixture, text } from '../test/daemon/harness'
import { benchArgs, exitWith, names, numbers } from './args'

const MiB = 1024 * 1024

interface Probe {
  ok: boolean
  detail: string
}

/** One daemon with the limit: does it serve `threads` requests at once, on as many threads, twice? */
async function probe(option: 'virtual_memory_limit' | 'memory_limit', mib: number, threads: number): Promise<Probe> {
  const d = new Daemon({ options: { threads, [option]: mib * MiB, shutdown_timeout: 1 }, logLevel: 'warn' })
  try {
    await d.ready(15000)
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(
        Array.from({ length: threads }, async () => {
          const c = await d.connect()
          try {
            return await c.request({ script: fixture('pid-sleep'), query: 'ms=500' }, 15000)
          } finally {
            c.close()
          }
        }),
      )
      const bad = answers.filter((a) => a.kind !== 'response' || a.status !== 200)
      if (bad.length > 0) return { ok: false, detail: `${bad.length}/${threads} failed: ${text(bad[0])}` }
      const ran = new Set(answers.map(text)).size
      if (ran < threads) return { ok: false, detail: `only ${ran} of ${threads} threads ran at once` }
    }
    if (/Unable to start a worker thread|MemoryError/.test(d.stderr)) return { ok: false, detail: 'a thread or an allocation failed' }
    if (d.exit) return { ok: false, detail: `the daemon exited (${d.exit.code}/${d.exit.signal})` }
    return { ok: true, detail: 'served' }
  } catch (e) {
    return { ok: false, detail: (e as Error).message.split('\n')[0] }
  } finally {
    await d.cleanup()
  }
}

async function floor(option: 'virtual_memory_limit' | 'memory_limit', threads: number, low: number): Promise<number> {
  let lo = low // assumed bad
  let hi = 2048 // checked good first
  const top = await probe(option, hi, threads)
  if (!top.ok) throw new Error(`${option}=${hi} MiB threads=${threads} does not work: ${top.detail}`)
  while (hi - lo > 8) {
    const mid = Math.round((lo + hi) / 2)
    const r = await probe(option, mid, threads)
    console.log(`  ${option}=${mid} MiB threads=${threads}: ${r.ok ? 'ok' : 'FAIL'} (${r.detail})`)
    if (r.ok) hi = mid
    else lo = mid
  }
  return hi
}

async function main(): Promise<void> {
  const usage = 'usage: node build/bench/bench/memory-floor.js [options]\n\nThe smallest RLIMIT_AS / RLIMIT_DATA with which a daemon serves hello world on every thread at once.'
  const a = benchArgs(process.argv.slice(2), usage, {
    threads: { type: 'string', default: '1,15', describe: 'Daemon thread counts to measure, comma-separated', coerce: (v: string) => numbers(v, 'threads') },
    options: {
      type: 'string',
      default: 'vm,data',
      describe: 'Limits to measure, comma-separated: vm (virtual-memory-limit), data (memory-limit)',
      coerce: (v: string) => names(v, ['vm', 'data'] as const, 'limit'),
    },
    low: { type: 'number', default: 16, describe: 'MiB assumed too small (the bisection starts between this and 2048)' },
  }).parseSync()
  const threads = a.threads
  const options = a.options.map((o) => (o === 'vm' ? ('virtual_memory_limit' as const) : ('memory_limit' as const)))
  for (const option of options) {
    for (const n of threads) {
      const f = await floor(option, n, a.low)
      console.log(`${option}: smallest working value for hello world, threads=${n}: ${f} MiB (within 8 MiB)`)
    }
  }
}

main().catch(exitWith)
