// What bench/run.ts (side by side wrk runs) and bench/measure.ts (CPU and system calls per request) share:
// the workloads, the Apache configuration both modules get, starting a server, and finding its processes.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Apache, ROOT, cmdline, debianModule, makeTempDir, request } from '../test/helpers/apache'

/** Debian's original mod_wsgi: unpacked under build/debian by scripts/setup.sh, or installed. */
export const ORIGINAL_MODULE =
  process.env.MOD_WSGI_ORIGINAL ?? debianModule('mod_wsgi.so') ?? '/usr/lib/apache2/modules/mod_wsgi.so'
/** bench/ in the source tree (this file runs compiled from build/bench/bench/, or as TypeScript in tests). */
export const BENCH_DIR = join(ROOT, 'bench')

/** 'ours' (this tree's build), 'original' (Debian's mod_wsgi), or the directory of a snapshot of a build of
 *  this tree made by bench/snapshot.sh (lib/, build/mod_wsgi.so, build/Release/wsgi_bridge.node), for
 *  before/after comparisons of a change. Either of ours may be followed by ':' and Node flags for the
 *  daemons (MOD_WSGI_NODE_FLAGS), e.g. 'ours:--max-semi-space-size=1'. */
export type ServerKind = string

export interface Workload {
  name: string
  path: string
  /** A wrk Lua script (POST bodies). */
  lua?: string
  /** The POST body's size, for load generators without Lua (ab). */
  postBytes?: number
}

export const WORKLOADS: Record<string, Workload> = {
  hello: { name: 'hello world', path: '/hello' },
  django: { name: 'Django view', path: '/django/' },
  '64k': { name: '64 KiB response', path: '/bytes?size=65536' },
  generator: { name: '10 MiB generator', path: '/stream?size=10485760' },
  sendfile: { name: '10 MiB file_wrapper (sendfile)', path: '/file' },
  post: { name: '1 MiB POST echo', path: '/echo', lua: 'post-1m.lua', postBytes: 1 << 20 },
}

export interface ServerOptions {
  processes: number
  threads: number
}

/** Apache's workers and keep-alive for load runs: enough threads that Apache never limits the rate. */
export const APACHE_TUNING = `
<IfModule mpm_event_module>
  StartServers 2
  ServerLimit 4
  ThreadsPerChild 64
  MaxRequestWorkers 256
  MinSpareThreads 64
  MaxSpareThreads 256
  MaxConnectionsPerChild 0
</IfModule>
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
`

/** The Apache config shared by both servers: only the LoadModule line differs. */
export function siteConfig(o: ServerOptions, dataDir: string): string {
  const app = join(BENCH_DIR, 'apps')
  return `${APACHE_TUNING}LogLevel warn
WSGIDaemonProcess bench processes=${o.processes} threads=${o.threads} display-name=(wsgi:bench)
WSGIProcessGroup bench
WSGIApplicationGroup %{GLOBAL}
WSGIEnableSendfile On
EnableSendfile On
SetEnv BENCH_DATA ${dataDir}
WSGIScriptAlias /hello ${app}/hello.wsgi
WSGIScriptAlias /bytes ${app}/bytes.wsgi
WSGIScriptAlias /stream ${app}/stream.wsgi
WSGIScriptAlias /file ${app}/file.wsgi
WSGIScriptAlias /echo ${app}/echo.wsgi
WSGIScriptAlias /django ${app}/django_site/wsgi.py
<Directory ${app}>
  Require all granted
</Directory>
`
}

export async function startServer(server: ServerKind, o: ServerOptions, dataDir: string): Promise<Apache> {
  const colon = server.indexOf(':')
  const kind = colon < 0 ? server : server.slice(0, colon)
  const flags = colon < 0 ? undefined : server.slice(colon + 1)
  const snapshot = kind !== 'ours' && kind !== 'original'
  const a = new Apache({
    config: siteConfig(o, dataDir),
    modulePath: kind === 'original' ? ORIGINAL_MODULE : snapshot ? join(kind, 'build', 'mod_wsgi.so') : undefined,
    logLevel: 'warn',
  })
  // The Apache parent reads MOD_WSGI_DAEMON_MAIN when it starts: a snapshot runs its own daemon.
  const env: Record<string, string | undefined> = {
    MOD_WSGI_DAEMON_MAIN: snapshot ? join(kind, 'lib', 'daemon', 'main.js') : process.env.MOD_WSGI_DAEMON_MAIN,
    MOD_WSGI_NODE_FLAGS: flags ?? process.env.MOD_WSGI_NODE_FLAGS,
  }
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
  const apply = (vars: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
  apply(env)
  try {
    await a.start()
  } finally {
    apply(saved)
  }
  const r = await request(a.port, '/hello')
  if (r.status !== 200) {
    const log = a.log()
    await a.cleanup()
    throw new Error(`${kind}: /hello answered ${r.status}:\n${log}`)
  }
  return a
}

/** A data directory with the 10 MiB file of the sendfile workload, readable by www-data. */
export function prepareData(): string {
  const dir = makeTempDir('mod_wsgi-bench-data-')
  const file = join(dir, 'file-10m.bin')
  const chunk = Buffer.alloc(1 << 20, 0x61)
  writeFileSync(file, Buffer.concat(Array.from({ length: 10 }, () => chunk)), { mode: 0o644 })
  return dir
}

function childrenOf(pid: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
  return r.stdout.split('\n').filter(Boolean).map(Number)
}

/** The processes of a running server: Apache's children and the daemon processes ((wsgi:bench)). */
export function serverProcesses(apache: Apache): { children: number[]; daemons: number[] } {
  const children: number[] = []
  const daemons: number[] = []
  const stack = [apache.pid]
  while (stack.length) {
    const pid = stack.pop() as number
    for (const child of childrenOf(pid)) {
      stack.push(child)
      if (cmdline(child).includes('(wsgi:bench)')) daemons.push(child)
      else children.push(child)
    }
  }
  return { children, daemons }
}

/** Resident memory (MiB) of one process; NaN once it is gone. */
export function rssMiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
  } catch {
    return NaN
  }
}

/** Resident memory (MiB) of the daemon processes of a running server (those gone count nothing). */
export function daemonRssMiB(apache: Apache): number {
  return serverProcesses(apache).daemons.reduce((mib, pid) => mib + (rssMiB(pid) || 0), 0)
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Busy clock ticks of the whole machine (everything but idle and iowait), from /proc/stat. */
export function cpuBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number)
  return f.reduce((a, b) => a + b, 0) - f[3] - f[4]
}

/** Context switches (voluntary and not) of a process's live threads. */
export function contextSwitches(pid: number): number {
  let n = 0
  let tasks: string[] = []
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return 0
  }
  for (const t of tasks) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${t}/status`, 'latin1')
      n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0)
      n += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0)
    } catch {
      /* gone */
    }
  }
  return n
}

/** utime + stime of a process (all its threads, dead ones included), in clock ticks (1/100 s). */
export function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12])
  } catch {
    return 0
  }
}
