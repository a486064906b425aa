// Soak test (issue 7; not part of the test suite): a private Apache with this module under mixed load for
// a long time, daemons recycled by maximum-requests, sampling every daemon process, the Apache parent and
// its children every few seconds. Says whether file descriptors, threads and RSS stay flat and whether any
// request failed unexpectedly. See bench/README.md.
//
//   npm run soak                       # 10 minutes
//   npm run soak -- --minutes 2 --maximum-requests 5000
import { randomBytes } from 'node:crypto'
import { readFileSync, readdirSync, readlinkSync, writeFileSync, mkdirSync } from 'node:fs'
import * as http from 'node:http'
import { join, resolve } from 'node:path'
import { Apache, childPids, makeTempDir } from '../test/helpers/apache'
import { runWrk, type WrkResult } from '../test/helpers/wrk'
import { distinctPattern } from '../test/helpers/distinct'
import { UsageError, benchArgs, exitWith } from './args'
import { APACHE_TUNING } from './common'

const ROOT = resolve(__dirname, '..', '..', '..')
const FIXTURES = join(ROOT, 'test', 'fixtures', 'wsgi')
const APPS = join(ROOT, 'bench', 'apps')

interface Options {
  minutes: number
  maximumRequests: number
  processes: number
  threads: number
  connections: number
  wrkConnections: number
  sampleSeconds: number
}

function parseArgs(argv: string[]): Options {
  const usage = 'usage: npm run soak -- [options]\n\nMixed load for a long time, daemons recycled by maximum-requests; checks that fds, threads and RSS stay flat.'
  const a = benchArgs(argv, usage, {
    minutes: { type: 'number', default: 10, describe: 'How long the load runs' },
    'maximum-requests': { type: 'number', default: 20000, describe: 'maximum-requests of the daemon processes (they recycle)' },
    processes: { type: 'number', default: 2, describe: 'Daemon processes' },
    threads: { type: 'number', default: 8, describe: 'Threads of each daemon process' },
    connections: { type: 'number', default: 12, describe: "The soak's own clients (mixed requests)" },
    'wrk-connections': { type: 'number', default: 8, describe: 'Connections of the wrk load beside them' },
    'sample-seconds': { type: 'number', default: 10, describe: 'Seconds between samples of the processes' },
  }).parseSync()
  return {
    minutes: a.minutes,
    maximumRequests: a['maximum-requests'],
    processes: a.processes,
    threads: a.threads,
    connections: a.connections,
    wrkConnections: a['wrk-connections'],
    sampleSeconds: a['sample-seconds'],
  }
}

function config(o: Options, dataDir: string): string {
  return `${APACHE_TUNING}WSGIDaemonProcess soak processes=${o.processes} threads=${o.threads} maximum-requests=${o.maximumRequests} graceful-timeout=5
WSGIProcessGroup soak
WSGIEnableSendfile On
SetEnv BENCH_DATA ${dataDir}
WSGIScriptAlias /hello ${APPS}/hello.wsgi
WSGIScriptAlias /bytes ${APPS}/bytes.wsgi
WSGIScriptAlias /stream ${APPS}/stream.wsgi
WSGIScriptAlias /file ${APPS}/file.wsgi
WSGIScriptAlias /echo ${APPS}/echo.wsgi
WSGIScriptAlias /distinct ${FIXTURES}/distinct/app.wsgi
WSGIScriptAlias /raise ${FIXTURES}/raise-error/app.wsgi
WSGIScriptAlias /hold ${FIXTURES}/hold/app.wsgi
<Directory ${APPS}>
  Require all granted
</Directory>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`
}

// --- the mixed load, each request checked -------------------------------------------------------

interface Kind {
  name: string
  weight: number
  make(): { path: string; body?: Buffer; check(status: number, body: Buffer): boolean }
}

const FILE_SIZE = 1 << 20
const KINDS: Kind[] = [
  { name: 'hello', weight: 30, make: () => ({ path: '/hello', check: (s, b) => s === 200 && b.toString() === 'Hello World!' }) },
  { name: '64k', weight: 15, make: () => ({ path: '/bytes?size=65536', check: (s, b) => s === 200 && b.length === 65536 }) },
  { name: 'stream-1m', weight: 5, make: () => ({ path: '/stream?size=1048576', check: (s, b) => s === 200 && b.length === 1048576 }) },
  { name: 'file-1m', weight: 5, make: () => ({ path: '/file', check: (s, b) => s === 200 && b.length === FILE_SIZE }) },
  {
    name: 'post-echo',
    weight: 10,
    make: () => {
      const body = randomBytes(Math.random() < 0.3 ? 200_000 : 5_000)
      return { path: '/echo', body, check: (s, b) => s === 200 && b.equals(body) }
    },
  },
  {
    name: 'distinct',
    weight: 15,
    make: () => {
      const token = randomBytes(6).toString('hex')
      const size = Math.floor(Math.random() * 100_000)
      return { path: `/distinct?token=${token}&size=${size}&mode=gen&hsize=200`, check: (s, b) => s === 200 && b.equals(distinctPattern(token, size)) }
    },
  },
  { name: 'raise (500 expected)', weight: 5, make: () => ({ path: '/raise', check: (s) => s === 500 }) },
  { name: 'slow 50 ms', weight: 15, make: () => ({ path: '/hold?ms=50', check: (s) => s === 200 }) },
]

interface Tally {
  ok: number
  unexpected: number
  keepaliveClosed: number
  examples: string[]
}

function pickKind(): Kind {
  const total = KINDS.reduce((n, k) => n + k.weight, 0)
  let r = Math.random() * total
  for (const k of KINDS) if ((r -= k.weight) < 0) return k
  return KINDS[0]
}

function send(agent: http.Agent, port: number, path: string, body?: Buffer): Promise<{ status: number; body: Buffer; reused: boolean; error?: string }> {
  return new Promise((resolve) => {
    let reused = false
    const req = http.request(
      { host: '127.0.0.1', port, path, agent, method: body ? 'POST' : 'GET', headers: body ? { 'content-length': String(body.length) } : {} },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), reused, error: res.complete ? undefined : 'incomplete' }))
        res.on('error', (e) => resolve({ status: res.statusCode ?? 0, body: Buffer.alloc(0), reused, error: e.message }))
      },
    )
    req.on('socket', () => (reused = req.reusedSocket))
    req.setTimeout(60000, () => req.destroy(new Error('timeout')))
    req.on('error', (e) => resolve({ status: 0, body: Buffer.alloc(0), reused, error: e.message }))
    req.end(body)
  })
}

async function mixedLoad(port: number, connections: number, until: number, tallies: Map<string, Tally>): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < until) {
        const kind = pickKind()
        const r = kind.make()
        const got = await send(agent, port, r.path, r.body)
        const t = tallies.get(kind.name) ?? { ok: 0, unexpected: 0, keepaliveClosed: 0, examples: [] }
        tallies.set(kind.name, t)
        if (!got.error && r.check(got.status, got.body)) t.ok++
        else if (got.error && got.status === 0 && got.reused) t.keepaliveClosed++
        else {
          t.unexpected++
          if (t.examples.length < 5) t.examples.push(`${new Date().toISOString()} ${r.path}: ${got.status} ${got.error ?? ''} (${got.body.length} bytes)`)
        }
      }
    }),
  )
  agent.destroy()
}

// --- sampling ---------------------------------------------------------------------------------------

interface ProcSample {
  pid: number
  rssKb: number
  fds: number
  threads: number
}

interface Sample {
  t: number
  daemons: ProcSample[]
  parent: ProcSample
  children: ProcSample[]
  restarts: number
}

function proc(pid: number): ProcSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1')
    const field = (n: string) => Number(new RegExp(`^${n}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
    return { pid, rssKb: field('VmRSS'), fds: readdirSync(`/proc/${pid}/fd`).length, threads: field('Threads') }
  } catch {
    return null
  }
}

function isNode(pid: number): boolean {
  try {
    return readlinkSync(`/proc/${pid}/exe`).includes('node')
  } catch {
    return false
  }
}

function sample(apache: Apache, t0: number): Sample {
  const kids = childPids(apache.pid)
  const daemons = kids.filter(isNode).map(proc).filter((p): p is ProcSample => p !== null)
  const children = kids.filter((p) => !isNode(p)).map(proc).filter((p): p is ProcSample => p !== null)
  const restarts = (apache.log().match(/WSGI01104: [^\n]*exited with code 4/g) ?? []).length
  return { t: Math.round((Date.now() - t0) / 1000), daemons, parent: proc(apache.pid) as ProcSample, children, restarts }
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b)
  return s.length ? s[Math.floor(s.length / 2)] : 0
}
const mib = (kb: number) => (kb / 1024).toFixed(1)

// --- main -------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const dataDir = makeTempDir('mod_wsgi-soak-data-')
  writeFileSync(join(dataDir, 'file-10m.bin'), randomBytes(FILE_SIZE))
  const apache = new Apache({ config: config(o, dataDir), logLevel: 'info' })
  await apache.start()
  const durationMs = o.minutes * 60_000
  console.log(`soak: ${o.minutes} min, ${o.processes} x ${o.threads} threads, maximum-requests=${o.maximumRequests}, ` +
    `${o.connections} mixed clients + wrk -c${o.wrkConnections} on /hello; Apache in ${apache.dir}`)
  const t0 = Date.now()
  const until = t0 + durationMs
  const tallies = new Map<string, Tally>()
  const samples: Sample[] = []
  const wrkRuns: WrkResult[] = []
  const sampler = setInterval(() => {
    const s = sample(apache, t0)
    samples.push(s)
    const d = s.daemons
    console.log(`t=${String(s.t).padStart(4)}s daemons ${d.map((p) => `${p.pid}:${mib(p.rssKb)}M/${p.fds}fd/${p.threads}thr`).join(' ')} ` +
      `| parent ${s.parent.fds}fd | ${s.children.length} children ${mib(s.children.reduce((n, c) => n + c.rssKb, 0))}M ` +
      `${s.children.reduce((n, c) => n + c.fds, 0)}fd | restarts ${s.restarts}`)
  }, o.sampleSeconds * 1000)
  const wrkLoop = (async () => {
    while (Date.now() + 5000 < until) {
      const seconds = Math.min(30, Math.floor((until - Date.now()) / 1000))
      wrkRuns.push(await runWrk({ url: `http://127.0.0.1:${apache.port}/hello`, connections: o.wrkConnections, seconds, timeoutSeconds: 20 }))
    }
  })()
  await Promise.all([mixedLoad(apache.port, o.connections, until, tallies), wrkLoop])
  clearInterval(sampler)
  const final = sample(apache, t0)
  // Unexpected answers: keep Apache's directory (its error log says why) and name it below.
  const kept = [...tallies.values()].some((t) => t.unexpected > 0)
  await apache.cleanup(kept)
  if (kept) console.log(`unexpected answers: Apache's directory and error log kept in ${apache.dir}`)

  // Report.
  const total = [...tallies.values()].reduce((n, t) => n + t.ok + t.unexpected + t.keepaliveClosed, 0)
  const unexpected = [...tallies.values()].reduce((n, t) => n + t.unexpected, 0)
  const wrkReq = wrkRuns.reduce((n, w) => n + w.requests, 0)
  const wrkBad = wrkRuns.reduce((n, w) => n + w.non2xx + w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout, 0)
  const window = Math.max(1, Math.round(60 / o.sampleSeconds))
  const first = samples.slice(0, window)
  const last = samples.slice(-window)
  const daemonStat = (ss: Sample[], f: (p: ProcSample) => number) => median(ss.flatMap((s) => s.daemons.map(f)))
  const lines = [
    `soak ${o.minutes} min: ${total} checked requests (${[...tallies].map(([k, t]) => `${k} ${t.ok}`).join(', ')}), ` +
      `${unexpected} unexpected, ${[...tallies.values()].reduce((n, t) => n + t.keepaliveClosed, 0)} keep-alive closes; ` +
      `wrk /hello ${wrkReq} requests, ${wrkBad} errors or non-2xx`,
    `daemon restarts by maximum-requests: ${final.restarts}`,
    `per daemon, first minute -> last minute (medians): RSS ${mib(daemonStat(first, (p) => p.rssKb))} -> ${mib(daemonStat(last, (p) => p.rssKb))} MiB, ` +
      `fds ${daemonStat(first, (p) => p.fds)} -> ${daemonStat(last, (p) => p.fds)}, threads ${daemonStat(first, (p) => p.threads)} -> ${daemonStat(last, (p) => p.threads)}`,
    `Apache parent fds ${median(first.map((s) => s.parent.fds))} -> ${median(last.map((s) => s.parent.fds))}; ` +
      `children fds ${median(first.map((s) => s.children.reduce((n, c) => n + c.fds, 0)))} -> ${median(last.map((s) => s.children.reduce((n, c) => n + c.fds, 0)))}, ` +
      `RSS ${mib(median(first.map((s) => s.children.reduce((n, c) => n + c.rssKb, 0))))} -> ${mib(median(last.map((s) => s.children.reduce((n, c) => n + c.rssKb, 0))))} MiB`,
  ]
  for (const [k, t] of tallies) for (const e of t.examples) lines.push(`  unexpected ${k}: ${e}`)
  console.log(lines.join('\n'))
  const outDir = join(ROOT, 'bench', 'results')
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ options: o, summary: lines, tallies: Object.fromEntries(tallies), wrk: wrkRuns.map((w) => ({ ...w, output: undefined })), samples }, null, 1))
  console.log(`samples written to ${file}`)
  const grew =
    daemonStat(last, (p) => p.fds) > daemonStat(first, (p) => p.fds) + 10 ||
    median(last.map((s) => s.parent.fds)) > median(first.map((s) => s.parent.fds)) + 5 ||
    daemonStat(last, (p) => p.rssKb) > daemonStat(first, (p) => p.rssKb) * 1.5 + 20 * 1024
  process.exitCode = unexpected > 0 || wrkBad > 0 || grew ? 1 : 0
}

main().catch((e) => {
  if (e instanceof UsageError) exitWith(e)
  console.error(e)
  process.exit(2)
})
