// HAProxy (Debian's haproxy package) in front of test servers: a config with HTTP health checks, the
// process in the foreground of a network namespace (test/helpers/netns.ts), and its runtime API over the
// admin socket: server states and session counts (`show stat`), drain and ready (`set server`).
import { spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import type { Netns } from './netns'

export const HAPROXY = process.env.HAPROXY ?? '/usr/sbin/haproxy'

export function haproxyAvailable(): boolean {
  return existsSync(HAPROXY)
}

export interface HaproxyOptions {
  dir: string
  /** Where clients connect, e.g. 127.0.0.1:8080 (inside the namespace). */
  bind: string
  servers: Array<{ name: string; address: string }>
  /** GET this path for the health check; healthy on 200. */
  healthPath: string
  /** Health check interval (ms); a server is down after `fall` failures, up after `rise` successes. */
  interMs?: number
  fall?: number
  rise?: number
}

export interface ServerStat {
  status: string
  /** Current sessions on the server. */
  scur: number
  /** Sessions since start. */
  stot: number
  /** Responses by class. */
  hrsp2xx: number
  hrsp5xx: number
  /** Redispatches and retries HAProxy made for this server. */
  wredis: number
  wretr: number
}

export class Haproxy {
  readonly config: string
  readonly socket: string
  private proc: ChildProcess | null = null
  output = ''

  constructor(private readonly o: HaproxyOptions) {
    this.config = join(o.dir, 'haproxy.cfg')
    this.socket = join(o.dir, 'haproxy.sock')
    const inter = o.interMs ?? 300
    writeFileSync(
      this.config,
      [
        'global',
        `  stats socket ${this.socket} mode 600 level admin`,
        '  maxconn 4096',
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 30s',
        '  timeout server 30s',
        '  timeout http-keep-alive 2s',
        // A request whose server failed before answering (refused, reset, closed empty) goes to another:
        // what a balancer in front of several hosts is for.
        '  retries 3',
        '  option redispatch 1',
        '  retry-on conn-failure empty-response response-timeout',
        'frontend fe',
        `  bind ${o.bind}`,
        '  default_backend app',
        'backend app',
        '  balance roundrobin',
        '  option httpchk',
        `  http-check send meth GET uri ${o.healthPath} ver HTTP/1.1 hdr Host health-check`,
        '  http-check expect status 200',
        `  default-server check inter ${inter} fastinter ${inter} downinter ${inter} fall ${o.fall ?? 2} rise ${o.rise ?? 2}`,
        ...o.servers.map((s) => `  server ${s.name} ${s.address}`),
        '',
      ].join('\n'),
    )
  }

  /** `haproxy -c`: the configuration is valid. */
  check(): { ok: boolean; out: string } {
    const r = spawnSync(HAPROXY, ['-c', '-f', this.config], { encoding: 'utf8' })
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` }
  }

  start(ns: Netns): void {
    this.proc = ns.spawn(HAPROXY, ['-db', '-f', this.config], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc.stdout?.on('data', (c: Buffer) => (this.output += c.toString()))
    this.proc.stderr?.on('data', (c: Buffer) => (this.output += c.toString()))
  }

  /** Stops HAProxy (by the pid of the process started here). */
  async stop(): Promise<void> {
    const p = this.proc
    this.proc = null
    if (p === null || p.exitCode !== null || p.signalCode !== null) return
    const gone = new Promise((r) => p.once('exit', r))
    p.kill('SIGTERM')
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000).unref())])
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  }

  /** One runtime API command; its answer. */
  command(cmd: string): Promise<string> {
    return new Promise((res, rej) => {
      const s = net.connect(this.socket)
      let out = ''
      s.setTimeout(5000, () => s.destroy(new Error(`haproxy: no answer to ${cmd}`)))
      s.on('connect', () => s.end(`${cmd}\n`))
      s.on('data', (c: Buffer) => (out += c.toString()))
      s.on('error', rej)
      s.on('close', () => res(out))
    })
  }

  /** `show stat` for the backend's servers, by name. */
  async stats(): Promise<Record<string, ServerStat>> {
    const csv = await this.command('show stat')
    const lines = csv.split('\n').filter((l) => l.trim() !== '')
    const head = (lines.shift() ?? '').replace(/^# /, '').split(',')
    const col = (row: string[], name: string) => row[head.indexOf(name)] ?? ''
    const out: Record<string, ServerStat> = {}
    for (const line of lines) {
      const row = line.split(',')
      if (col(row, 'pxname') !== 'app' || ['FRONTEND', 'BACKEND'].includes(col(row, 'svname'))) continue
      const n = (name: string) => Number(col(row, name)) || 0
      out[col(row, 'svname')] = {
        status: col(row, 'status'),
        scur: n('scur'),
        stot: n('stot'),
        hrsp2xx: n('hrsp_2xx'),
        hrsp5xx: n('hrsp_5xx'),
        wredis: n('wredis'),
        wretr: n('wretr'),
      }
    }
    return out
  }

  /** `set server app/NAME state ready|drain|maint`. */
  async setState(server: string, state: 'ready' | 'drain' | 'maint'): Promise<void> {
    const r = await this.command(`set server app/${server} state ${state}`)
    if (r.trim() !== '') throw new Error(`haproxy: set server ${server} state ${state}: ${r.trim()}`)
  }
}
