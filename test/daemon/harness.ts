// Runs the real daemon (`node lib/daemon/main.js`) the way the Apache parent does, without Apache: a
// listening UNIX socket as fd 3, argv[0] "(wsgi:GROUP)" plus the padding argument, the configuration in
// MOD_WSGI_DAEMON_CONFIG, log lines on stderr. The socket is created by a few lines of Debian's Python
// that then exec node in place (same pid), so the test process never holds the listener itself.
// A WireClient speaks docs/protocol.md to it as an Apache child would.
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DaemonServer, type ServerHooks, type ServerOptions } from '../../src/daemon/server'
import type { Bridge, BridgeHandlers } from '../../src/native/types'
import { FrameReader } from '../../src/protocol/frame-reader'
import {
  BODY_END_FRAME,
  decodeEnd,
  decodeError,
  decodeHead,
  encodeBody,
  encodeRequest,
  outputInfo,
  type Head,
} from '../../src/protocol/frames'
import { FrameType, HEADER_SIZE, responseSideBounds } from '../../src/protocol/wire'
import { ROOT as PROJECT_ROOT } from '../helpers/apache'
import { sampleConfig, type SampleOverrides } from '../unit/sample-config'

/** The project root (also when this file runs compiled, from build/bench/ for bench/memory-floor.ts). */
export const ROOT = PROJECT_ROOT
export const MAIN = join(ROOT, 'lib', 'daemon', 'main.js')
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'wsgi')
export const ADDON = join(ROOT, 'build', 'Release', 'wsgi_bridge.node')

export const fixture = (name: string, file = 'app.wsgi') => join(FIXTURES, name, file)

/** Why daemon tests cannot run here, or null. */
export function skipReason(): string | null {
  if (!existsSync(ADDON)) return `the addon is not built (${ADDON})`
  if (!existsSync(join(ROOT, 'lib', 'native', 'index.js'))) return 'lib/native/index.js missing: run tsc'
  if (!existsSync(MAIN)) return 'lib/daemon/main.js missing: run tsc'
  // A stale lib/ would test old code: compare with the newest source.
  const src = join(ROOT, 'src', 'daemon', 'main.ts')
  if (statSync(src).mtimeMs > statSync(MAIN).mtimeMs + 1000) return 'lib/ is older than src/: run tsc'
  return null
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

const LAUNCHER = `
import os, socket, sys
path, node, main, argv0 = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o600)
s.listen(100)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
# tap's processinfo wraps child_process.spawn and puts its loaders back into NODE_OPTIONS: drop them
# here, an Apache parent would not pass them.
env = {k: v for k, v in os.environ.items()
       if k != 'NODE_OPTIONS' and not k.startswith(('TAP', '_TAPJS')) and k != 'NODE_V8_COVERAGE'}
os.execve(node, [argv0, main, '-' * 64], env)
`

/**
 * The environment an Apache parent would give: ours without what tap adds for its own child processes
 * (NODE_OPTIONS with loaders that would run inside the daemon, TAP_* variables).
 */
function daemonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('TAP') || k.startsWith('_TAPJS') || k === 'NODE_V8_COVERAGE') continue
    env[k] = v
  }
  return env
}

export interface DaemonOptions extends SampleOverrides {
  /** Raw text for MOD_WSGI_DAEMON_CONFIG instead of a sample config. */
  rawConfig?: string
  env?: Record<string, string>
  /** Defaults to 'info' so tests can match informational lines. */
  logLevel?: string
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  at: number
}

/** Daemons still running: killed if the test process exits without its teardown (e.g. a tap timeout). */
const live = new Set<Daemon>()
process.once('exit', () => {
  for (const d of live) {
    try {
      process.kill(d.pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
})

export class Daemon {
  readonly dir: string
  readonly socketPath: string
  readonly proc: ChildProcess
  stderr = ''
  stdout = ''
  readonly exited: Promise<Exit>
  exit: Exit | null = null

  constructor(opts: DaemonOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'wsgi-daemon-'))
    chmodSync(this.dir, 0o755)
    this.socketPath = join(this.dir, 'wsgi.sock')
    const cfg =
      opts.rawConfig ??
      JSON.stringify(
        sampleConfig({
          ...opts,
          server: { log_level: opts.logLevel ?? 'info', ...opts.server },
          options: { shutdown_timeout: 3, deadlock_timeout: 0, ...opts.options },
        }),
      )
    const group = opts.group ?? 'myapp'
    this.proc = spawn('/usr/bin/python3', ['-c', LAUNCHER, this.socketPath, process.execPath, MAIN, `(wsgi:${group})`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...daemonEnv(), ...opts.env, MOD_WSGI_DAEMON_CONFIG: cfg },
    })
    this.proc.stdout?.on('data', (c: Buffer) => (this.stdout += c.toString('utf8')))
    this.proc.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString('utf8')))
    live.add(this)
    this.exited = new Promise((res) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() }
        live.delete(this)
        res(this.exit)
      })
    })
  }

  get pid(): number {
    return this.proc.pid as number
  }

  /** Resolves once the daemon answers a probe request (or rejects when it exits first). */
  async ready(timeoutMs = 20000): Promise<this> {
    const end = Date.now() + timeoutMs
    for (;;) {
      if (this.exit) throw new Error(`daemon exited (${this.exit.code}/${this.exit.signal}) before serving:\n${this.stderr}`)
      // The launcher listens before exec: connecting works at once, the answer proves the daemon
      // (listener and Python) is up. The probe is one request (mind it when counting requests).
      if (existsSync(this.socketPath) && (await this.serving())) return this
      if (Date.now() > end) throw new Error(`daemon not ready after ${timeoutMs} ms:\n${this.stderr}`)
      await sleep(25)
    }
  }

  /** True when a request gets a response (the listener and Python are up). */
  private async serving(): Promise<boolean> {
    try {
      const c = await WireClient.connect(this.socketPath)
      const r = await c.request({ script: fixture('daemon-process-info') }, 15000)
      c.close()
      return r.kind === 'response'
    } catch {
      return false
    }
  }

  connect(): Promise<WireClient> {
    return WireClient.connect(this.socketPath)
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.exit) process.kill(this.pid, sig)
  }

  waitForLog(re: RegExp, timeoutMs = 10000): Promise<string> {
    return waitFor(() => this.stderr.match(re)?.[0] ?? '', timeoutMs, `log ${re}:\n${this.stderr}`)
  }

  /** Kills the daemon if still running (by its own pid) and removes the temp dir. */
  async cleanup(): Promise<void> {
    if (!this.exit) {
      try {
        process.kill(this.pid, 'SIGKILL')
      } catch {
        /* gone */
      }
      await this.exited
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Starts a daemon and registers its cleanup with the tap test. */
export async function startDaemon(t: { teardown: (fn: () => unknown) => void }, opts: DaemonOptions = {}): Promise<Daemon> {
  const d = new Daemon(opts)
  t.teardown(() => d.cleanup())
  return d.ready()
}

// ---------------------------------------------------------------------------------------------------

export type Answer =
  | { kind: 'response'; status: number; head: Head; body: Buffer; outcome: number }
  | { kind: 'error'; status: number; message: string }
  | { kind: 'goaway' }
  | { kind: 'closed'; partial: Buffer }

export interface RequestSpec {
  script: string
  method?: string
  path?: string
  query?: string
  /** Body as one Buffer (sent in BODY frames of `chunk` bytes) or explicit chunks. */
  body?: Buffer | Buffer[]
  chunk?: number
  /** Extra variables. */
  vars?: Array<[string, string]>
  requestStartUs?: number
  processGroup?: string
  applicationGroup?: string
}

export function requestFrames(spec: RequestSpec): Buffer[] {
  const path = spec.path ?? '/'
  const query = spec.query ?? ''
  const chunks = spec.body === undefined ? [] : Array.isArray(spec.body) ? spec.body : splitBody(spec.body, spec.chunk ?? 65536)
  const length = chunks.reduce((n, c) => n + c.length, 0)
  const vars: Array<[string, string]> = [
    ['SCRIPT_FILENAME', spec.script],
    ['REQUEST_METHOD', spec.method ?? (spec.body ? 'POST' : 'GET')],
    ['REQUEST_URI', query ? `${path}?${query}` : path],
    ['SCRIPT_NAME', ''],
    ['PATH_INFO', path],
    ['QUERY_STRING', query],
    ['SERVER_NAME', 'localhost'],
    ['SERVER_PORT', '80'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['REMOTE_ADDR', '127.0.0.1'],
    ['mod_wsgi.process_group', spec.processGroup ?? 'myapp'],
    ['mod_wsgi.application_group', spec.applicationGroup ?? ''],
    ['mod_wsgi.callable_object', 'application'],
    ['mod_wsgi.script_reloading', '1'],
    ['mod_wsgi.enable_sendfile', '0'],
    ['mod_wsgi.handler_script', ''],
    ['mod_wsgi.url_scheme', 'http'],
    ...(spec.body !== undefined ? ([['CONTENT_LENGTH', String(length)]] as Array<[string, string]>) : []),
    ...(spec.vars ?? []),
  ]
  const frames = [encodeRequest({ bodyFollows: spec.body !== undefined, requestStartUs: spec.requestStartUs, vars })]
  if (spec.body !== undefined) {
    for (const c of chunks) if (c.length > 0) frames.push(encodeBody(c))
    frames.push(BODY_END_FRAME)
  }
  return frames
}

function splitBody(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size))
  return out
}

interface Frame {
  type: number
  payload: Buffer
}

/** One connection to the daemon, playing the Apache child. */
export class WireClient {
  private frames: Frame[] = []
  private waiters: Array<() => void> = []
  ended = false
  error: Error | null = null
  readonly reader: FrameReader

  private constructor(readonly socket: net.Socket) {
    this.reader = new FrameReader(responseSideBounds(1 << 20), (type, _f, payload) => {
      this.frames.push({ type, payload: Buffer.from(payload) })
      this.wake()
    })
    socket.on('data', (c: Buffer) => {
      try {
        this.reader.push(c)
      } catch (e) {
        this.error = e as Error
        socket.destroy()
      }
    })
    socket.on('close', () => {
      this.ended = true
      this.wake()
    })
    socket.on('error', (e) => {
      this.error = e
    })
  }

  static connect(path: string): Promise<WireClient> {
    return new Promise((res, rej) => {
      const s = net.connect(path)
      s.once('connect', () => res(new WireClient(s)))
      s.once('error', rej)
    })
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Next frame, or null when the connection closed first. */
  async nextFrame(timeoutMs = 20000): Promise<Frame | null> {
    const end = Date.now() + timeoutMs
    while (this.frames.length === 0) {
      if (this.ended) return null
      const left = end - Date.now()
      if (left <= 0) throw new Error('timed out waiting for a frame')
      await new Promise<void>((res) => {
        const timer = setTimeout(res, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          res()
        })
      })
    }
    return this.frames.shift() as Frame
  }

  write(b: Buffer): boolean {
    return this.socket.write(b)
  }

  /** Sends a request (all its frames) and reads its answer. */
  async request(spec: RequestSpec, timeoutMs = 30000): Promise<Answer> {
    for (const f of requestFrames(spec)) this.socket.write(f)
    return this.answer(timeoutMs)
  }

  /** Reads one complete answer: a response, an ERROR, a GOAWAY, or the connection closing. */
  async answer(timeoutMs = 30000): Promise<Answer> {
    const body: Buffer[] = []
    let head: Head | null = null
    for (;;) {
      const f = await this.nextFrame(timeoutMs)
      if (f === null) return { kind: 'closed', partial: Buffer.concat(body) }
      switch (f.type) {
        case FrameType.HEAD:
          head = decodeHead(f.payload)
          break
        case FrameType.RBODY:
          body.push(f.payload)
          break
        case FrameType.END:
          if (!head) throw new Error('END without HEAD')
          return { kind: 'response', status: head.status, head, body: Buffer.concat(body), outcome: decodeEnd(f.payload) }
        case FrameType.ERROR: {
          const e = decodeError(f.payload)
          return { kind: 'error', status: e.status, message: e.message }
        }
        case FrameType.GOAWAY:
          return { kind: 'goaway' }
        default:
          throw new Error(`unexpected frame 0x${f.type.toString(16)} (${HEADER_SIZE + f.payload.length} bytes)`)
      }
    }
  }

  /** Resolves when the daemon closed the connection. */
  closed(timeoutMs = 10000): Promise<boolean> {
    return waitFor(() => this.ended, timeoutMs, 'connection to close')
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Body text of a response answer, or a description of what came instead. */
export function text(a: Answer): string {
  return a.kind === 'response' ? a.body.toString('latin1') : `<${a.kind}${'status' in a ? ` ${a.status}` : ''}>`
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** The bridge's handlers as a test double calls them: `info` is computed from the frames when omitted. */
export interface DoubleHandlers {
  output(id: number, data: Buffer, final: boolean, fd: number, info?: number): boolean | void
  inputResume: BridgeHandlers['inputResume']
}

/**
 * A DaemonServer in this process on a socket in a temporary directory, with `bridge` (a test double) in
 * place of the addon: for unit tests of connections. Clients made with connect() are closed, and the
 * server stopped, at teardown.
 */
export async function serveWithBridge(
  t: { teardown(fn: () => unknown): void },
  bridge: Bridge,
  options: Partial<ServerOptions> = {},
  hooks: Partial<ServerHooks> = {},
): Promise<{ server: DaemonServer; h: DoubleHandlers; connect: () => Promise<WireClient> }> {
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-conn-'))
  const path = join(dir, 's')
  const server = new DaemonServer(
    { group: 'g', threads: 1, queueTimeoutMs: 0, socketTimeoutMs: 0, listenBacklog: 0, ...defined(options) },
    { touch: () => undefined, admitted: () => undefined, ...hooks },
  )
  const real = server.handlers()
  // As the addon does: each output event says what its frames carry (here computed from the bytes).
  const h: DoubleHandlers = {
    output: (id, data, final, fd, info = outputInfo(data)) => real.output(id, data, final, fd, info),
    inputResume: real.inputResume,
  }
  server.attach(bridge)
  await server.listen({ path })
  const clients: WireClient[] = []
  t.teardown(() => {
    for (const c of clients) c.close()
    server.forceCloseAll(503, 'test over')
    rmSync(dir, { recursive: true, force: true })
  })
  const connect = async (): Promise<WireClient> => {
    const c = await WireClient.connect(path)
    clients.push(c)
    return c
  }
  return { server, h, connect }
}
