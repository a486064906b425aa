// A private Apache httpd for one test: its own ServerRoot, config, logs, pid file and socket directory
// under a temp dir, on a free loopback port, with the built mod_wsgi.so. Stopped through its own pid file.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import * as http from 'node:http'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

/** The project root: the nearest directory above this file with the project's package.json (this file
 *  also runs compiled, from build/bench/, for bench/). */
export const ROOT = findRoot(__dirname)

function findRoot(from: string): string {
  for (let d = from; d !== dirname(d); d = dirname(d)) {
    try {
      if (JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')).name === 'mod_wsgi') return d
    } catch {
      /* keep looking */
    }
  }
  return resolve(from, '..', '..')
}
export const MODULE = join(ROOT, 'build', 'mod_wsgi.so')
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'wsgi')
/** The <Directory> block that lets Apache serve the WSGI fixtures, for a test's config. */
export const ALLOW_FIXTURES = `<Directory ${FIXTURES}>\n  Require all granted\n</Directory>`
export const APACHE_BIN = process.env.APACHE_BIN ?? '/usr/sbin/apache2'
export const APACHE_MODULES = process.env.APACHE_MODULES ?? '/usr/lib/apache2/modules'
/** A module of Debian's packages that scripts/setup.sh unpacks under build/debian (the original mod_wsgi,
 *  mod_python), else the system's copy when installed, else null. */
export function debianModule(file: string): string | null {
  for (const dir of [join(ROOT, 'build', 'debian', 'usr', 'lib', 'apache2', 'modules'), APACHE_MODULES]) {
    if (existsSync(join(dir, file))) return join(dir, file)
  }
  return null
}

/** Apps and tests use Debian's Python, where Django and Flask are installed. */
export const PYTHON = '/usr/bin/python3'

/** Modules every test server loads; a test adds others with `modules`. */
const BASE_MODULES = ['mpm_event', 'authz_core', 'authn_core', 'alias', 'mime', 'env', 'setenvif', 'dir']

export interface ApacheOptions {
  /** Config lines after the base config: WSGI* directives, vhosts... */
  config: string
  /** Extra Apache modules by short name (rewrite, deflate, headers, ssl...). */
  modules?: string[]
  /** Lines placed before `config` but after LoadModule lines, e.g. mpm tuning. */
  preamble?: string
  logLevel?: string
  /** Load the module from here instead of build/mod_wsgi.so. */
  modulePath?: string
  /** Leave out the LoadModule line for mod_wsgi (for side-by-side and negative tests). */
  noWsgi?: boolean
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer()
    s.unref()
    s.on('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => res(port))
    })
  })
}

export function makeTempDir(prefix = 'mod_wsgi-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  // Apache's children and the daemons run as www-data: they must reach sockets, logs and apps here.
  chmodSync(dir, 0o755)
  return dir
}

export interface Response {
  status: number
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
  text: string
}

export interface RequestOptions {
  method?: string
  headers?: Record<string, string | string[]>
  body?: Buffer | string
  timeoutMs?: number
  host?: string
}

export function request(port: number, path: string, opts: RequestOptions = {}): Promise<Response> {
  // A body is sent with its Content-Length unless the caller asks for chunked encoding itself: Node
  // would otherwise chunk it, which mod_wsgi answers with 411 unless WSGIChunkedRequest On.
  let headers = opts.headers
  if (opts.body !== undefined) {
    const names = Object.keys(headers ?? {}).map((h) => h.toLowerCase())
    if (!names.includes('content-length') && !names.includes('transfer-encoding'))
      headers = { ...headers, 'content-length': String(Buffer.byteLength(opts.body)) }
  }
  return new Promise((res, rej) => {
    const req = http.request(
      {
        host: opts.host ?? '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers,
        agent: false,
        timeout: opts.timeoutMs ?? 30000,
      },
      (r) => {
        const chunks: Buffer[] = []
        r.on('data', (c: Buffer) => chunks.push(c))
        r.on('error', rej)
        r.on('end', () => {
          const body = Buffer.concat(chunks)
          res({ status: r.statusCode ?? 0, headers: r.headers, rawHeaders: r.rawHeaders, body, text: body.toString('latin1') })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`request ${path} timed out`)))
    req.on('error', rej)
    if (opts.body !== undefined) req.write(opts.body)
    req.end()
  })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `fn` every `everyMs` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10000, everyMs = 50, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(everyMs)
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Processes whose /proc/PID/stat field `field` (counted after the command: 1 ppid, 3 session) is `value`. */
function pidsWhere(field: number, value: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[field]) === value) out.push(Number(name))
    } catch {
      /* gone */
    }
  }
  return out
}

/** Processes whose parent is `pid`, from /proc. */
export function childPids(pid: number): number[] {
  return pidsWhere(1, pid)
}

/**
 * Processes of the session `sid`, from /proc: an Apache started with `-k start` leads a session of its
 * own, so these are its children and daemons, even once its death has handed them to init.
 */
export function sessionPids(sid: number): number[] {
  return pidsWhere(3, sid)
}

/** SIGKILL to what is left of the session of an Apache parent that is gone (its orphaned children). */
export function killSession(sid: number): void {
  for (const p of sessionPids(sid)) {
    try {
      process.kill(p, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replace(/\0/g, ' ')
  } catch {
    return ''
  }
}

export class Apache {
  readonly dir: string
  readonly conf: string
  readonly errorLog: string
  readonly pidFile: string
  readonly socketDir: string
  port = 0
  private started = false

  constructor(private readonly opts: ApacheOptions) {
    this.dir = makeTempDir('mod_wsgi-apache-')
    this.conf = join(this.dir, 'httpd.conf')
    this.errorLog = join(this.dir, 'logs', 'error.log')
    this.pidFile = join(this.dir, 'logs', 'httpd.pid')
    this.socketDir = join(this.dir, 'run')
    mkdirSync(join(this.dir, 'logs'), { mode: 0o755 })
    mkdirSync(this.socketDir, { mode: 0o755 })
    mkdirSync(join(this.dir, 'htdocs'), { mode: 0o755 })
  }

  /** Writes httpd.conf for the given port; `{{PORT}}`, `{{DIR}}`, `{{FIXTURES}}` in config are replaced. */
  writeConfig(config = this.opts.config): void {
    const mods = [...BASE_MODULES, ...(this.opts.modules ?? [])]
    const sub = (s: string) =>
      s.replaceAll('{{PORT}}', String(this.port)).replaceAll('{{DIR}}', this.dir).replaceAll('{{FIXTURES}}', FIXTURES)
    const lines = [
      `ServerRoot "${this.dir}"`,
      `ServerName 127.0.0.1`,
      `Listen 127.0.0.1:${this.port}`,
      ...mods.map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`),
      this.opts.noWsgi ? '' : `LoadModule wsgi_module ${this.opts.modulePath ?? MODULE}`,
      `User www-data`,
      `Group www-data`,
      `PidFile ${this.pidFile}`,
      `ErrorLog ${this.errorLog}`,
      `LogLevel ${this.opts.logLevel ?? 'info'}`,
      `DefaultRuntimeDir ${this.socketDir}`,
      `Mutex file:${this.socketDir}`,
      `DocumentRoot ${join(this.dir, 'htdocs')}`,
      `TypesConfig /etc/mime.types`,
      `StartServers 1`,
      `MaxSpareThreads 150`,
      `Timeout 30`,
      this.opts.noWsgi ? '' : `WSGISocketPrefix ${join(this.socketDir, 'wsgi')}`,
      // Tests run again under another CPython (test/helpers/pythons.ts, onPython) get its virtualenv.
      this.opts.noWsgi || !process.env.MOD_WSGI_TEST_PYTHON_HOME ? '' : `WSGIPythonHome ${process.env.MOD_WSGI_TEST_PYTHON_HOME}`,
      sub(this.opts.preamble ?? ''),
      sub(config),
      '',
    ]
    writeFileSync(this.conf, lines.join('\n'))
  }

  /** `apache2 -t` on the current config. */
  configTest(): { status: number; output: string } {
    if (!this.port) this.port = 1
    this.writeConfig()
    const r = spawnSync(APACHE_BIN, ['-d', this.dir, '-f', this.conf, '-t'], { encoding: 'latin1' })
    return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` }
  }

  async start(): Promise<this> {
    this.port = await freePort()
    this.writeConfig()
    const r = spawnSync(APACHE_BIN, ['-d', this.dir, '-f', this.conf, '-k', 'start'], { encoding: 'latin1' })
    if (r.status !== 0) throw new Error(`apache2 failed to start (${r.status}): ${r.stdout}${r.stderr}\n${this.log()}`)
    this.started = true
    await waitFor(() => existsSync(this.pidFile), 10000, 20, 'Apache pid file')
    await waitFor(() => this.accepting(), 10000, 20, 'Apache to accept connections')
    return this
  }

  private accepting(): Promise<boolean> {
    return new Promise((res) => {
      const s = net.connect(this.port, '127.0.0.1')
      s.on('connect', () => {
        s.destroy()
        res(true)
      })
      s.on('error', () => res(false))
    })
  }

  get pid(): number {
    return Number(readFileSync(this.pidFile, 'latin1').trim())
  }

  /** Daemon processes started by the Apache parent (Node processes). */
  daemonPids(): number[] {
    return childPids(this.pid).filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/exe`).includes('node')
      } catch {
        return false
      }
    })
  }

  request(path: string, opts: RequestOptions = {}): Promise<Response> {
    return request(this.port, path, opts)
  }

  log(): string {
    try {
      return readFileSync(this.errorLog, 'latin1')
    } catch {
      return ''
    }
  }

  waitForLog(pattern: RegExp, timeoutMs = 10000): Promise<string> {
    return waitFor(() => this.log().match(pattern)?.[0] ?? '', timeoutMs, 50, `log line ${pattern}`)
  }

  /** Rewrites the config and sends `-k graceful`. */
  async graceful(config?: string): Promise<void> {
    if (config !== undefined) this.opts.config = config
    this.writeConfig()
    const r = spawnSync(APACHE_BIN, ['-d', this.dir, '-f', this.conf, '-k', 'graceful'], { encoding: 'latin1' })
    if (r.status !== 0) throw new Error(`graceful failed: ${r.stdout}${r.stderr}`)
  }

  /** Stops Apache by its own pid file and waits until the parent is gone. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    let pid = 0
    try {
      pid = this.pid
    } catch {
      return
    }
    if (!pidAlive(pid)) return
    process.kill(pid, 'SIGTERM')
    await waitFor(() => !pidAlive(pid), 20000, 50, 'Apache to stop').catch(() => {
      process.kill(pid, 'SIGKILL')
      killSession(pid)
    })
  }

  /** Stops Apache and removes its directory unless the test failed (kept for post-mortem). */
  async cleanup(keep = false): Promise<void> {
    await this.stop()
    if (!keep && !process.env.MOD_WSGI_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true })
  }
}

/** `apache2 -t` refuses `config`, and its output matches `message` (the reason). */
export async function assertRefused(
  t: { not(found: unknown, wanted: unknown, message: string): unknown; match(found: unknown, wanted: unknown, message: string): unknown },
  config: string,
  message: RegExp,
  label = config.split('\n').join(' '),
): Promise<void> {
  const a = new Apache({ config })
  const r = a.configTest()
  await a.cleanup()
  t.not(r.status, 0, `${label}: refused`)
  t.match(r.output, message, `${label}: says why`)
}

/** Starts an Apache for a tap test and stops it at teardown. */
export async function startApache(t: { teardown: (fn: () => unknown) => void; passing?: () => boolean }, opts: ApacheOptions): Promise<Apache> {
  const a = new Apache(opts)
  t.teardown(() => a.cleanup(t.passing ? !t.passing() : false))
  await a.start()
  return a
}

/** A WSGI fixture's path: test/fixtures/wsgi/<name>/<file>. */
export function fixture(name: string, file = 'app.wsgi'): string {
  return join(FIXTURES, name, file)
}

