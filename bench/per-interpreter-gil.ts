// WSGIPerInterpreterGIL measured: two CPU-bound requests at once, each in its own application group of
// one daemon process (threads=2), with one GIL for every interpreter (Off) and with a GIL per
// sub-interpreter (On), on the newest pyenv CPython 3.12+ (or --python PATH). Alternates the two
// servers, --repeat times (default 5), and prints the median wall time for both requests to finish,
// the time one request takes alone, and the ratio On / Off (0.5 would be two cores fully used).
// A busy machine blurs the figure: the CPU the rest of the machine used meanwhile is printed too.
// Not part of the test suite (test/apache/per-interpreter-gil.test.ts asserts it loosely).
//
//   npx tsc -p tsconfig.bench.json && node build/bench/bench/per-interpreter-gil.js [--repeat 5] [--n 20000000] [--python PATH]
import { Apache, fixture, FIXTURES, request } from '../test/helpers/apache'
import { pyenvPython, readyPython, testVenv, type TestPython } from '../test/helpers/pythons'
import { benchArgs, exitWith } from './args'
import { cpuBusy, median } from './common'

function parseArgs(argv: string[]): { repeat: number; n: number; python: string } {
  const usage = 'usage: node build/bench/bench/per-interpreter-gil.js [options]\n\nTwo CPU-bound requests at once in two application groups, WSGIPerInterpreterGIL Off against On.'
  return benchArgs(argv, usage, {
    repeat: { type: 'number', default: 5, describe: 'Alternating runs of each server (medians are reported)' },
    n: { type: 'number', default: 20000000, describe: 'Loop iterations each request burns' },
    python: { type: 'string', default: '', defaultDescription: 'the newest pyenv CPython 3.12+', describe: 'The python3.x executable whose virtualenv the daemon uses' },
  }).parseSync()
}

function pickPython(given: string): TestPython {
  if (given) return { version: given.replace(/.*python(3\.\d+)$/, '$1'), release: '', prefix: '', executable: given }
  for (const v of ['3.13', '3.12']) {
    const p = readyPython(v)
    if (typeof p !== 'string') return p
  }
  throw new Error(`no CPython 3.12+ under pyenv (${pyenvPython('3.12') ?? 'none'}); give --python`)
}

async function server(py: TestPython, on: boolean): Promise<Apache> {
  const a = new Apache({
    config: `
WSGIPerInterpreterGIL ${on ? 'On' : 'Off'}
WSGIDaemonProcess burn python-home=${testVenv(py)} threads=2
WSGIScriptAlias /a ${fixture('gil-burn')} process-group=burn application-group=a
WSGIScriptAlias /b ${fixture('gil-burn')} process-group=burn application-group=b
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
    logLevel: 'warn',
  })
  await a.start()
  return a
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint()
  await f()
  return Number(process.hrtime.bigint() - t0) / 1e9
}

async function main(): Promise<void> {
  const { repeat, n, python } = parseArgs(process.argv.slice(2))
  const py = pickPython(python)
  const servers = { off: await server(py, false), on: await server(py, true) }
  const both = { off: [] as number[], on: [] as number[] }
  const alone = { off: [] as number[], on: [] as number[] }
  try {
    const burn = (a: Apache, g: string) => request(a.port, `/${g}/burn?n=${n}`, { timeoutMs: 600000 })
    for (const a of Object.values(servers)) await Promise.all([burn(a, 'a'), burn(a, 'b')]) // warm up
    const busy0 = cpuBusy()
    const t0 = Date.now()
    for (let i = 0; i < repeat; i++) {
      for (const k of ['off', 'on'] as const) {
        const a = servers[k]
        alone[k].push(await timed(() => burn(a, 'a')))
        both[k].push(await timed(() => Promise.all([burn(a, 'a'), burn(a, 'b')])))
      }
    }
    const busyShare = (cpuBusy() - busy0) / ((Date.now() - t0) / 10) / 2 // of 2 cores, ticks are 1/100 s
    const f = (x: number) => x.toFixed(2)
    console.log(`CPython ${py.version} (${py.executable}), ${n} iterations per request, ${repeat} alternating runs`)
    console.log('| WSGIPerInterpreterGIL | one request alone (s) | two at once, two groups (s) | two / one |')
    console.log('|---|---|---|---|')
    for (const k of ['off', 'on'] as const)
      console.log(`| ${k === 'on' ? 'On' : 'Off'} | ${f(median(alone[k]))} | ${f(median(both[k]))} | ${f(median(both[k]) / median(alone[k]))} |`)
    console.log(`On / Off, two at once: ${f(median(both.on) / median(both.off))} (medians; runs off ${both.off.map(f).join(' ')}, on ${both.on.map(f).join(' ')})`)
    console.log(`machine busy during the runs: ${(busyShare * 100).toFixed(0)} % of 2 cores (this benchmark included)`)
  } finally {
    await servers.off.cleanup()
    await servers.on.cleanup()
  }
}

main().catch(exitWith)
