// Several "hosts" on this machine: network namespaces (iproute2's `ip netns`) joined by veth pairs. A
// test makes a Lab, adds namespaces and links, runs programs in them with `ip netns exec`, and destroys
// the lab at teardown: every process left in its namespaces is killed by pid (`ip netns pids`), then the
// namespaces are deleted. Namespaces are named <prefix>-<pid of the test process>-<name>, so a later run
// removes what a run killed before its teardown left behind (sweepStale).
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { alive } from './daemons'

export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip'].find((p) => existsSync(p)) ?? 'ip'

function ip(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(IP, args, { encoding: 'utf8' })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() }
}

/** Null when network namespaces can be made here, else why not (for a test's skip reason). */
export function netnsUnavailable(): string | null {
  if (!existsSync(IP) && IP === 'ip') return 'iproute2 (ip) is not installed'
  const probe = `nsprobe-${process.pid}`
  const r = ip(['netns', 'add', probe])
  if (!r.ok) return `network namespaces cannot be created here (ip netns add: ${r.out})`
  ip(['netns', 'del', probe])
  return null
}

/** Pids of the processes in namespace `ns`. */
function pidsIn(ns: string): number[] {
  const r = ip(['netns', 'pids', ns])
  return r.ok ? r.out.split(/\s+/).filter(Boolean).map(Number) : []
}

/** Kills every process in `ns` (by pid) and deletes it. */
function removeNamespace(ns: string): void {
  for (let round = 0; round < 20; round++) {
    const pids = pidsIn(ns).filter((p) => p !== process.pid)
    if (pids.length === 0) break
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
    spawnSync('sleep', ['0.05'])
  }
  ip(['netns', 'del', ns])
}

/** Removes namespaces <prefix>-<pid>-* whose test process is gone (a run killed before its teardown). */
export function sweepStale(prefix: string): string[] {
  const dir = '/run/netns'
  const removed: string[] = []
  if (!existsSync(dir)) return removed
  for (const ns of readdirSync(dir)) {
    const m = new RegExp(`^${prefix}-(\\d+)-`).exec(ns)
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      removeNamespace(ns)
      removed.push(ns)
    }
  }
  return removed
}

export class Netns {
  constructor(readonly name: string) {}

  /** `ip netns exec NAME cmd args...` to completion. */
  run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): { status: number; out: string } {
    const r = spawnSync(IP, ['netns', 'exec', this.name, cmd, ...args], {
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 30000,
      env: opts.env ?? process.env,
    })
    return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` }
  }

  /** `ip netns exec NAME cmd args...` in the background (ip execs the command: the pid is the command's). */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn(IP, ['netns', 'exec', this.name, cmd, ...args], opts)
  }

  /** An HTTP GET from inside this namespace (curl): status and body. */
  get(url: string, timeoutS = 5): { status: number; body: string } {
    const r = this.run('curl', ['-sS', '--max-time', String(timeoutS), '-o', '-', '-w', '\n%{http_code}', url], { timeoutMs: (timeoutS + 2) * 1000 })
    const nl = r.out.lastIndexOf('\n')
    return { status: Number(r.out.slice(nl + 1)) || 0, body: r.out.slice(0, Math.max(nl, 0)) }
  }
}

export class Lab {
  readonly prefix: string
  private readonly made: string[] = []
  private links = 0

  constructor(prefix: string) {
    this.prefix = `${prefix}-${process.pid}`
    // A test that times out may not reach its teardown: tap sends the process SIGALRM, then SIGKILL half
    // a second later. Remove the namespaces then, or at exit; and those of dead earlier runs now.
    process.once('exit', () => this.destroy())
    process.once('SIGALRM', () => this.destroy())
    sweepStale(prefix)
  }

  add(name: string): Netns {
    const ns = `${this.prefix}-${name}`
    const r = ip(['netns', 'add', ns])
    if (!r.ok) throw new Error(`ip netns add ${ns}: ${r.out}`)
    this.made.push(ns)
    this.must(['-n', ns, 'link', 'set', 'lo', 'up'])
    return new Netns(ns)
  }

  /** A veth pair between a and b, with an address (CIDR) at each end. */
  link(a: Netns, aAddr: string, b: Netns, bAddr: string): void {
    const n = ++this.links
    const [ea, eb] = [`veth${n}a`, `veth${n}b`]
    this.must(['link', 'add', ea, 'netns', a.name, 'type', 'veth', 'peer', 'name', eb, 'netns', b.name])
    this.must(['-n', a.name, 'addr', 'add', aAddr, 'dev', ea])
    this.must(['-n', b.name, 'addr', 'add', bAddr, 'dev', eb])
    this.must(['-n', a.name, 'link', 'set', ea, 'up'])
    this.must(['-n', b.name, 'link', 'set', eb, 'up'])
  }

  /** Kills what still runs in the lab's namespaces (by pid) and deletes them. Safe to call twice. */
  destroy(): void {
    while (this.made.length > 0) removeNamespace(this.made.pop()!)
  }

  private must(args: string[]): void {
    const r = ip(args)
    if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.out}`)
  }
}
