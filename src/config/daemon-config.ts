// MOD_WSGI_DAEMON_CONFIG (docs/daemon-config.md): the JSON the Apache parent hands each daemon process.
// The Apache module has validated and normalised every value already; here we only check shapes and types
// so that a mismatch between the two halves fails at startup with the name of the field, never later as
// an undefined somewhere. Unknown fields are ignored (a newer module may add some). No I/O here.

export const CONFIG_FORMAT = 1

export type ApacheLogLevel =
  | 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug'
  | 'trace1' | 'trace2' | 'trace3' | 'trace4' | 'trace5' | 'trace6' | 'trace7' | 'trace8'

export const APACHE_LOG_LEVELS: readonly ApacheLogLevel[] = [
  'emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug',
  'trace1', 'trace2', 'trace3', 'trace4', 'trace5', 'trace6', 'trace7', 'trace8',
]

export interface ServerConfig {
  hostname: string
  serverRoot: string
  apacheUser: string
  apacheUid: number
  apacheGid: number
  /** Apache's Timeout, seconds. */
  timeout: number
  logLevel: ApacheLogLevel
  errorLog: string | null
  /** The Apache parent's pid (optional in the JSON): the daemon exits when its parent is gone. */
  parentPid: number | null
}

export interface ImportScript {
  script: string
  applicationGroup: string
}

export interface PythonConfig {
  home: string | null
  path: string[]
  hashSeed: number | 'random' | null
  dontWriteBytecode: boolean
  optimize: number
  warnings: string[]
  restrictSignal: boolean
  restrictStdin: boolean
  restrictStdout: boolean
  verboseDebugging: boolean
  importScripts: ImportScript[]
  /** WSGIPerInterpreterGIL (mod_wsgi 6): each sub-interpreter gets its own GIL (CPython 3.12+).
   *  Optional in the JSON (false). */
  perInterpreterGil: boolean
}

/** WSGIDaemonProcess options. Times in seconds, sizes in bytes, 0 = not set / no limit. */
export interface DaemonOptions {
  processes: number
  multiprocess: boolean
  threads: number
  user: string
  uid: number
  group: string
  gid: number
  supplementaryGroups: number[] | null
  umask: number | null
  home: string | null
  displayName: string | null
  lang: string | null
  locale: string | null
  cpuPriority: number
  pythonPath: string[]
  pythonHome: string | null
  /** python-executable: a Python's bin/python3.N when there is no virtualenv (optional in the JSON). */
  pythonExecutable: string | null
  pythonEggs: string | null
  stackSize: number
  maximumRequests: number
  shutdownTimeout: number
  deadlockTimeout: number
  inactivityTimeout: number
  requestTimeout: number
  /** interrupt-timeout (mod_wsgi 6): with request-timeout, the overdue request first gets
   *  mod_wsgi.RequestTimeout and this long to unwind before the process restarts. Optional (0). */
  interruptTimeout: number
  /** switch-interval (or WSGISwitchInterval for the default group): sys.setswitchinterval() in
   *  seconds; null leaves Python's default. Optional in the JSON (null). */
  switchInterval: number | null
  gracefulTimeout: number
  cpuTimeLimit: number
  memoryLimit: number
  virtualMemoryLimit: number
  listenBacklog: number
  sendBufferSize: number
  receiveBufferSize: number
  connectTimeout: number
  socketTimeout: number
  queueTimeout: number
  headerBufferSize: number
  /** asgi-loop: the event loop of ASGI applications (docs/asgi.md). Optional in the JSON: 'asyncio'. */
  asgiLoop: 'asyncio' | 'uvloop'
  /** Seconds after which a process is replaced (start-first); 0: never. */
  restartInterval: number
  /** Seconds a process may take to become ready before it is replaced; 0: no limit. */
  startupTimeout: number
  /** Resident set, bytes, above which a process is replaced (start-first); 0: never. */
  memoryRecycle: number
  /** websocket-max-message: largest WebSocket message from a client, bytes; 0: no limit. Optional in
   *  the JSON (16 MiB). */
  websocketMaxMessage: number
  /** websocket-ping-interval, websocket-ping-timeout, websocket-idle-timeout, websocket-max-lifetime:
   *  seconds (0: off). Optional in the JSON (20, 20, 0, 0). */
  websocketPingInterval: number
  websocketPingTimeout: number
  websocketIdleTimeout: number
  websocketMaxLifetime: number
}

/** Where the process is on its pool's board (fd 4, docs/board.md); the doorbell is fd 5. */
export interface BoardConfig {
  slot: number
  slots: number
  doorbell: boolean
}

/** The process it replaces, when it is a successor (docs/restarts.md). */
export interface SuccessionConfig {
  predecessorPid: number
  /** Why the predecessor is replaced (a reason word of wsgi_board.h). */
  reason: string
  /** The scripts the predecessor had loaded: imported before this process says it is ready. */
  scripts: ImportScript[]
}

export interface DaemonConfig {
  format: number
  group: string
  processIndex: number
  generation: number
  server: ServerConfig
  python: PythonConfig
  options: DaemonOptions
  /** null when the process runs without a board (started by tests, not by Apache). */
  board: BoardConfig | null
  succession: SuccessionConfig | null
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

type Obj = Record<string, unknown>

/** Typed field access with the JSON path in every message. */
class Fields {
  constructor(
    private readonly data: Obj,
    private readonly path: string,
  ) {}

  private get(key: string): unknown {
    if (!Object.prototype.hasOwnProperty.call(this.data, key)) throw new ConfigError(`${this.at(key)} is missing`)
    return this.data[key]
  }

  private at(key: string): string {
    return this.path ? `${this.path}.${key}` : key
  }

  private fail(key: string, want: string, v: unknown): never {
    throw new ConfigError(`${this.at(key)} must be ${want}, got ${JSON.stringify(v) ?? String(v)}`)
  }

  str(key: string): string {
    const v = this.get(key)
    if (typeof v !== 'string') this.fail(key, 'a string', v)
    return v
  }

  strOrNull(key: string): string | null {
    const v = this.get(key)
    if (v !== null && typeof v !== 'string') this.fail(key, 'a string or null', v)
    return v
  }

  bool(key: string): boolean {
    const v = this.get(key)
    if (typeof v !== 'boolean') this.fail(key, 'true or false', v)
    return v
  }

  int(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.get(key)
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(key, `an integer in ${min}..${max}`, v)
    return v
  }

  intOrNull(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | null {
    return this.get(key) === null ? null : this.int(key, min, max)
  }

  /** A number (not only integers) in [min, max], or null. */
  numberOrNull(key: string, min: number, max: number): number | null {
    const v = this.get(key)
    if (v === null) return null
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(key, `null or a number in ${min}..${max}`, v)
    return v
  }

  strings(key: string): string[] {
    const v = this.get(key)
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail(key, 'an array of strings', v)
    return [...v]
  }

  ints(key: string, min: number, max: number): number[] {
    const v = this.get(key)
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= min && x <= max))
      this.fail(key, `an array of integers in ${min}..${max}`, v)
    return [...v]
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.get(key)
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(key, `one of ${values.join(', ')}`, v)
    return v as T
  }

  obj(key: string): Fields {
    const v = this.get(key)
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'an object', v)
    return new Fields(v as Obj, this.at(key))
  }

  list(key: string): Fields[] {
    const v = this.get(key)
    if (!Array.isArray(v)) this.fail(key, 'an array', v)
    return v.map((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) this.fail(`${key}[${i}]`, 'an object', item)
      return new Fields(item as Obj, `${this.at(key)}[${i}]`)
    })
  }

  raw(key: string): unknown {
    return this.get(key)
  }

  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.data, key)
  }
}

const U32_MAX = 4294967295
/** sys.setswitchinterval() bounds accepted here (seconds): 1 µs to 60 s; the Apache module checks the same. */
export const SWITCH_INTERVAL_MIN = 0.000001
export const SWITCH_INTERVAL_MAX = 60
const TIME_MAX = 100 * 365 * 24 * 3600 // seconds: keeps ms arithmetic exact and setTimeout-safe where used

function parseHashSeed(f: Fields): number | 'random' | null {
  const v = f.raw('hash_seed')
  if (v === null || v === 'random') return v
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX) return v
  throw new ConfigError(`python.hash_seed must be null, "random" or an integer in 0..${U32_MAX}, got ${JSON.stringify(v)}`)
}

/** Parses and type-checks the JSON text. Throws ConfigError naming the first bad field. */
export function parseDaemonConfig(text: string | undefined): DaemonConfig {
  if (text === undefined || text === '') throw new ConfigError('MOD_WSGI_DAEMON_CONFIG is not set')
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new ConfigError(`MOD_WSGI_DAEMON_CONFIG is not valid JSON: ${(e as Error).message}`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ConfigError('MOD_WSGI_DAEMON_CONFIG must be a JSON object')
  const root = new Fields(json as Obj, '')
  const format = root.int('format', 0)
  if (format !== CONFIG_FORMAT)
    throw new ConfigError(`format ${format} is not supported (expected ${CONFIG_FORMAT}): mod_wsgi.so and the daemon are from different builds`)

  const s = root.obj('server')
  const server: ServerConfig = {
    hostname: s.str('hostname'),
    serverRoot: s.str('server_root'),
    apacheUser: s.str('apache_user'),
    apacheUid: s.int('apache_uid', 0, U32_MAX),
    apacheGid: s.int('apache_gid', 0, U32_MAX),
    timeout: s.int('timeout', 0, TIME_MAX),
    logLevel: s.oneOf('log_level', APACHE_LOG_LEVELS),
    errorLog: s.strOrNull('error_log'),
    parentPid: s.has('parent_pid') ? s.int('parent_pid', 1, U32_MAX) : null,
  }

  const p = root.obj('python')
  const python: PythonConfig = {
    home: p.strOrNull('home'),
    path: p.strings('path'),
    hashSeed: parseHashSeed(p),
    dontWriteBytecode: p.bool('dont_write_bytecode'),
    optimize: p.int('optimize', 0, 2),
    warnings: p.strings('warnings'),
    restrictSignal: p.bool('restrict_signal'),
    restrictStdin: p.bool('restrict_stdin'),
    restrictStdout: p.bool('restrict_stdout'),
    verboseDebugging: p.bool('verbose_debugging'),
    importScripts: p.list('import_scripts').map((i) => ({ script: i.str('script'), applicationGroup: i.str('application_group') })),
    perInterpreterGil: p.has('per_interpreter_gil') ? p.bool('per_interpreter_gil') : false,
  }

  const o = root.obj('options')
  const options: DaemonOptions = {
    processes: o.int('processes', 1),
    multiprocess: o.bool('multiprocess'),
    threads: o.int('threads', 1, 100000),
    user: o.str('user'),
    uid: o.int('uid', 0, U32_MAX),
    group: o.str('group'),
    gid: o.int('gid', 0, U32_MAX),
    supplementaryGroups: o.raw('supplementary_groups') === null ? null : o.ints('supplementary_groups', 0, U32_MAX),
    umask: o.intOrNull('umask', 0, 0o777),
    home: o.strOrNull('home'),
    displayName: o.strOrNull('display_name'),
    lang: o.strOrNull('lang'),
    locale: o.strOrNull('locale'),
    cpuPriority: o.int('cpu_priority', -20, 20),
    pythonPath: o.strings('python_path'),
    pythonHome: o.strOrNull('python_home'),
    pythonExecutable: o.has('python_executable') ? o.strOrNull('python_executable') : null,
    pythonEggs: o.strOrNull('python_eggs'),
    stackSize: o.int('stack_size', 0),
    maximumRequests: o.int('maximum_requests', 0),
    shutdownTimeout: o.int('shutdown_timeout', 0, TIME_MAX),
    deadlockTimeout: o.int('deadlock_timeout', 0, TIME_MAX),
    inactivityTimeout: o.int('inactivity_timeout', 0, TIME_MAX),
    requestTimeout: o.int('request_timeout', 0, TIME_MAX),
    interruptTimeout: o.has('interrupt_timeout') ? o.int('interrupt_timeout', 0, TIME_MAX) : 0,
    switchInterval: o.has('switch_interval') ? o.numberOrNull('switch_interval', SWITCH_INTERVAL_MIN, SWITCH_INTERVAL_MAX) : null,
    gracefulTimeout: o.int('graceful_timeout', 0, TIME_MAX),
    cpuTimeLimit: o.int('cpu_time_limit', 0, TIME_MAX),
    memoryLimit: o.int('memory_limit', 0),
    virtualMemoryLimit: o.int('virtual_memory_limit', 0),
    listenBacklog: o.int('listen_backlog', 0),
    sendBufferSize: o.int('send_buffer_size', 0),
    receiveBufferSize: o.int('receive_buffer_size', 0),
    connectTimeout: o.int('connect_timeout', 0, TIME_MAX),
    socketTimeout: o.int('socket_timeout', 0, TIME_MAX),
    queueTimeout: o.int('queue_timeout', 0, TIME_MAX),
    headerBufferSize: o.int('header_buffer_size', 0),
    asgiLoop: o.has('asgi_loop') ? o.oneOf('asgi_loop', ['asyncio', 'uvloop'] as const) : 'asyncio',
    restartInterval: o.has('restart_interval') ? o.int('restart_interval', 0, TIME_MAX) : 0,
    startupTimeout: o.has('startup_timeout') ? o.int('startup_timeout', 0, TIME_MAX) : 0,
    memoryRecycle: o.has('memory_recycle') ? o.int('memory_recycle', 0) : 0,
    websocketMaxMessage: o.has('websocket_max_message') ? o.int('websocket_max_message', 0) : 16 * 1024 * 1024,
    websocketPingInterval: o.has('websocket_ping_interval') ? o.int('websocket_ping_interval', 0, TIME_MAX) : 20,
    websocketPingTimeout: o.has('websocket_ping_timeout') ? o.int('websocket_ping_timeout', 1, TIME_MAX) : 20,
    websocketIdleTimeout: o.has('websocket_idle_timeout') ? o.int('websocket_idle_timeout', 0, TIME_MAX) : 0,
    websocketMaxLifetime: o.has('websocket_max_lifetime') ? o.int('websocket_max_lifetime', 0, TIME_MAX) : 0,
  }

  let board: BoardConfig | null = null
  if (root.has('board')) {
    const b = root.obj('board')
    const slots = b.int('slots', 1, 65536)
    board = { slot: b.int('slot', 0, slots - 1), slots, doorbell: b.bool('doorbell') }
  }
  let succession: SuccessionConfig | null = null
  if (root.has('succession') && root.raw('succession') !== null) {
    const c = root.obj('succession')
    succession = {
      predecessorPid: c.int('predecessor_pid', 1, U32_MAX),
      reason: c.str('reason'),
      scripts: c.list('scripts').map((i) => ({ script: i.str('script'), applicationGroup: i.str('application_group') })),
    }
  }

  return {
    format,
    group: root.str('group'),
    processIndex: root.int('process_index', 1),
    generation: root.int('generation', 0),
    server,
    python,
    options,
    board,
    succession,
  }
}
