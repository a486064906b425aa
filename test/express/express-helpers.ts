// Running mod_wsgi-express (or anything that execs it, like manage.py runmodwsgi) for a test: on a free
// loopback port with its own server root, stopped at teardown by its own pid.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { childPids, freePort, makeTempDir, request, ROOT, waitFor } from '../helpers/apache'

export const EXPRESS = join(ROOT, 'bin', 'mod_wsgi-express')

/** A temp dir (reachable by www-data) removed when the test ends, unless it failed or
 *  MOD_WSGI_KEEP_TEST_DIRS is set (kept for post-mortem). */
export function tempDir(t: Test, prefix: string): string {
  const dir = makeTempDir(prefix)
  t.teardown(() => {
    if (t.passing() && !process.env.MOD_WSGI_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

export interface Running {
  child: ChildProcess
  port: number
  root: string
  output: () => string
  stdout: () => string
  stderr: () => string
  /** The Apache parent's pid, from the server root's pid file. */
  apachePid: () => number
  /** The daemon processes (Node) under the Apache parent. */
  daemonPids: () => number[]
  errorLog: () => string
}

export interface StartOptions {
  /** The command to run instead of mod_wsgi-express start-server (its arguments come first). */
  command?: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** In its own process group, as a shell would run it: a "Ctrl-C" can then reach the whole group. */
  detached?: boolean
  /** The URL path polled until the server answers. */
  readyPath?: string
  port?: number
}

export function pidAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeRead(`/proc/${pid}/status`))
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'latin1')
  } catch {
    return ''
  }
}

/** Live processes whose command line contains `text` (an Apache started with -f <root>/httpd.conf). */
export function processesMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n) && safeRead(`/proc/${n}/cmdline`).includes(text) && pidAlive(Number(n)))
    .map(Number)
}

/** The uid a process runs as (real uid), from /proc. */
export function processUid(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(safeRead(`/proc/${pid}/status`))?.[1] ?? -1)
}

export async function startExpress(t: Test, args: string[], opts: StartOptions = {}): Promise<Running> {
  const port = opts.port ?? (await freePort())
  // Registered before the stop below: tap runs teardowns last-in first-out.
  const root = join(tempDir(t, 'mod_wsgi-express-'), 'server')
  const command = opts.command ?? [process.execPath, EXPRESS, 'start-server']
  const child = spawn(command[0], [...command.slice(1), ...args, '--port', String(port), '--server-root', root, '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: opts.detached ?? false,
  })
  let out = ''
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d) => ((out += d), (stdout += d)))
  child.stderr?.on('data', (d) => ((out += d), (stderr += d)))
  const apachePid = () => Number(safeRead(join(root, 'httpd.pid')).trim())
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    await waitFor(() => child.exitCode !== null || child.signalCode !== null, 15000, 50, 'mod_wsgi-express to stop').catch(() => child.kill('SIGKILL'))
  })
  const readyPath = opts.readyPath ?? '/'
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`mod_wsgi-express exited (${child.exitCode}): ${out}`)
      return request(port, readyPath, { timeoutMs: 5000 }).then(
        () => true,
        () => false,
      )
    },
    30000,
    100,
    'mod_wsgi-express to answer',
  )
  return {
    child,
    port,
    root,
    output: () => out,
    stdout: () => stdout,
    stderr: () => stderr,
    apachePid,
    daemonPids: () =>
      childPids(apachePid()).filter((p) => {
        try {
          return readlinkSync(`/proc/${p}/exe`).includes('node')
        } catch {
          return false
        }
      }),
    errorLog: () => safeRead(join(root, 'error_log')),
  }
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode })
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
}
