// Runs wrk (Debian's package) against a local port and parses its report: requests, errors by kind,
// non-2xx/3xx responses, latency percentiles. Used by the reliability tests and bench/soak.ts.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'

export const WRK = process.env.WRK ?? '/usr/bin/wrk'

export interface WrkResult {
  requests: number
  seconds: number
  rps: number
  /** Socket errors as wrk counts them: connect, read (the connection closed or reset with a request
   *  sent), write, timeout (no answer within --timeout). */
  errors: { connect: number; read: number; write: number; timeout: number }
  /** Responses whose status was not 2xx or 3xx. */
  non2xx: number
  /** Latency percentiles in ms, from --latency. */
  latency: { p50: number; p90: number; p99: number; max: number }
  output: string
}

export function wrkAvailable(): boolean {
  return existsSync(WRK)
}

function ms(v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60000 : n
}

export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0)
  const lat = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out)
    return m ? ms(m[1], m[2]) : 0
  }
  const maxm = /^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)/m.exec(out)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out)
  const requests = done ? Number(done[1]) : 0
  const seconds = done ? ms(done[2], done[3]) / 1000 : 0
  return {
    requests,
    seconds,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    errors: sock
      ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/),
    latency: { p50: lat('50'), p90: lat('90'), p99: lat('99'), max: maxm ? ms(maxm[1], maxm[2]) : 0 },
    output: out,
  }
}

export interface WrkOptions {
  url: string
  threads?: number
  connections: number
  seconds: number
  /** wrk's per-request timeout (its default, 2 s, is short for a machine shared with other tests). */
  timeoutSeconds?: number
  headers?: string[]
}

/** Runs wrk to completion; rejects if it cannot run or exits with an error. */
export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${o.threads ?? 2}`,
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    `--timeout`,
    `${o.timeoutSeconds ?? 10}s`,
    '--latency',
    ...(o.headers ?? []).flatMap((h) => ['-H', h]),
    o.url,
  ]
  return new Promise((resolve, reject) => {
    const p = spawn(WRK, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (c: Buffer) => (out += c.toString('latin1')))
    p.stderr.on('data', (c: Buffer) => (out += c.toString('latin1')))
    p.on('error', reject)
    p.on('exit', (code) => {
      if (code !== 0) reject(new Error(`wrk exited with ${code}: ${out}`))
      else resolve(parseWrk(out))
    })
  })
}
