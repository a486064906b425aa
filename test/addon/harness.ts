// Parent side of the addon tests: starts driver.ts in a fresh `node` process (CPython can be
// initialised once per process), talks to it over IPC and collects its error log (fd 2).
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import type { PythonOptions } from '../../src/native/index'
import type { RunResult, RunSpec } from './driver'
import { buildRequest } from './wire'
import type { Vars } from './wire'

export const ROOT = resolve(__dirname, '..', '..')
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'wsgi')

/** A temporary directory removed when the test ends. */
export function tempDir(t: { teardown(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export function fixture(name: string): string {
  return join(FIXTURES, name, 'app.wsgi')
}

export interface RequestOptions {
  query?: string
  method?: string
  group?: string
  callable?: string
  reloading?: boolean
  scheme?: string
  extra?: Record<string, string>
  uri?: string
  pathInfo?: string
}

/** The CGI and mod_wsgi.* variables Apache would send for a request to `script`. */
export function requestVars(script: string, o: RequestOptions = {}): Vars {
  const vars: Vars = [
    ['SERVER_SOFTWARE', 'Apache/2.4'],
    ['SERVER_NAME', 'localhost'],
    ['SERVER_ADDR', '127.0.0.1'],
    ['SERVER_PORT', '80'],
    ['REMOTE_ADDR', '127.0.0.1'],
    ['REMOTE_PORT', '40000'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['REQUEST_METHOD', o.method ?? 'GET'],
    ['REQUEST_URI', o.uri ?? '/app' + (o.pathInfo ?? '/') + (o.query ? '?' + o.query : '')],
    ['SCRIPT_NAME', '/app'],
    ['PATH_INFO', o.pathInfo ?? '/'],
    ['QUERY_STRING', o.query ?? ''],
    ['HTTP_HOST', 'localhost'],
    ['SCRIPT_FILENAME', script],
    ['mod_wsgi.process_group', 'testgroup'],
    ['mod_wsgi.application_group', o.group ?? ''],
    ['mod_wsgi.callable_object', o.callable ?? 'application'],
    ['mod_wsgi.script_reloading', o.reloading === false ? '0' : '1'],
    ['mod_wsgi.enable_sendfile', '0'],
    ['mod_wsgi.handler_script', ''],
    ['mod_wsgi.url_scheme', o.scheme ?? 'http'],
  ]
  for (const [k, v] of Object.entries(o.extra ?? {})) vars.push([k, v])
  return vars
}

export function spec(script: string, o: RequestOptions = {}, extra: Partial<RunSpec> = {}): RunSpec {
  return { payload: buildRequest(requestVars(script, o), extra.body !== undefined).toString('base64'), ...extra }
}

export function body(r: RunResult): Buffer {
  return Buffer.from(r.body, 'base64')
}

export function header(r: RunResult, name: string): string | undefined {
  return r.head?.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1]
}

interface Pending {
  resolve: (v: unknown) => void
  reject: (e: Error) => void
}

export class AddonProcess {
  readonly child: ChildProcess
  private stderr = ''
  private seq = 0
  private pending = new Map<number, Pending>()
  readonly exited: Promise<{ code: number | null; signal: string | null; at: number }>

  private constructor(child: ChildProcess) {
    this.child = child
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (d: string) => {
      this.stderr += d
    })
    child.stdout!.resume()
    child.on('message', (m: { seq?: number; value?: unknown; error?: string }) => {
      if (m.seq === undefined) return
      const p = this.pending.get(m.seq)
      if (!p) return
      this.pending.delete(m.seq)
      if (m.error !== undefined) p.reject(new Error(m.error))
      else p.resolve(m.value)
    })
    this.exited = new Promise((res) => {
      child.on('exit', (code, signal) => {
        for (const p of this.pending.values()) p.reject(new Error(`driver exited (${code ?? signal})\n${this.stderr}`))
        this.pending.clear()
        res({ code, signal, at: performance.now() })
      })
    })
  }

  /** Starts a driver process and opens a bridge in it with `options`. */
  static async start(
    options: Partial<PythonOptions> = {},
    env: NodeJS.ProcessEnv = {},
    limits: { rlimitAsExtra?: number; arenaMax?: number } = {},
  ): Promise<AddonProcess> {
    // Keep only the TypeScript loader of tap's node options (not its coverage and mock hooks).
    const execArgv = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a === '--enable-source-maps')
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, MOD_WSGI_ADDON_DRIVER: '1' }
    delete childEnv.NODE_OPTIONS
    const child = fork(join(__dirname, 'driver.ts'), [], {
      execArgv,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    const host = new AddonProcess(child)
    await new Promise<void>((res, rej) => {
      const onMessage = (m: { op?: string }) => {
        if (m.op === 'ready') {
          child.off('message', onMessage)
          res()
        }
      }
      child.on('message', onMessage)
      child.once('exit', (code) => rej(new Error(`driver exited early (${code})\n${host.stderr}`)))
    })
    await host.call('open', { options: { processGroup: 'testgroup', threads: 4, ...options }, ...limits })
    return host
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const seq = ++this.seq
    return new Promise<T>((res, rej) => {
      this.pending.set(seq, { resolve: res as (v: unknown) => void, reject: rej })
      this.child.send({ seq, op, ...args })
    })
  }

  run(s: RunSpec): Promise<RunResult> {
    return this.call<RunResult>('run', { spec: s })
  }

  runAll(specs: RunSpec[]): Promise<{ results: RunResult[]; elapsedMs: number }> {
    return this.call('runAll', { specs })
  }

  /** The error log so far, once everything the driver logged before this call has arrived (the
   *  log comes through a pipe of its own, which may lag behind the IPC replies). */
  async logs(since = 0): Promise<string> {
    const marker = `--- log mark ${++this.seq} ---`
    await this.call('mark', { text: marker })
    await this.waitForLog(new RegExp(marker))
    return this.stderr.slice(since)
  }

  /** A position in the log, for logs(since). */
  get logLength(): number {
    return this.stderr.length
  }

  async waitForLog(re: RegExp, timeoutMs = 5000): Promise<string> {
    const end = Date.now() + timeoutMs
    while (Date.now() < end) {
      const m = re.exec(this.stderr)
      if (m) return m[0]
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error(`log never matched ${re}:\n${this.stderr}`)
  }

  /** Stops the driver process (only the one this object started). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL')
      await this.exited
    }
  }
}
