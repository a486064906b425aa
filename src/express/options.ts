// The options of `mod_wsgi-express start-server` (and `setup-server`, and Django's `runmodwsgi`, which
// passes its arguments through), with mod_wsgi 4.1.0's defaults. One table drives both the argument
// parser and the config renderer, so an option cannot exist in one and be missing from the other.

export interface ExpressOptions {
  script: string | null
  host: string | null
  port: number
  processes: number | null
  threads: number
  maxClients: number | null
  limitRequestBody: number
  maximumRequests: number
  restartInterval: number
  startupTimeout: number
  memoryRecycle: string
  shutdownTimeout: number
  gracefulTimeout: number
  deadlockTimeout: number
  inactivityTimeout: number
  requestTimeout: number
  connectTimeout: number
  socketTimeout: number
  queueTimeout: number
  serverBacklog: number
  daemonBacklog: number
  headerBufferSize: number
  reloadOnChanges: boolean
  user: string | null
  group: string | null
  callableObject: string
  applicationType: string
  documentRoot: string | null
  urlAlias: Array<[string, string]>
  errorDocument: Array<[string, string]>
  keepAliveTimeout: number
  serverStatus: boolean
  metrics: boolean
  healthCheck: boolean
  statusAllowFrom: string[]
  includeFile: string[]
  workingDirectory: string | null
  pidFile: string | null
  serverRoot: string | null
  logDirectory: string | null
  logLevel: string
  accessLog: boolean
  logToTerminal: boolean
  startupLog: boolean
  httpdExecutable: string | null
  modulesDirectory: string | null
  mimeTypes: string | null
  pythonPath: string[]
  pythonHome: string | null
  pythonExecutable: string | null
  interruptTimeout: number
  /** WebSocket (README, "WebSocket"): the largest message as given (bytes, or with a K, M or G suffix),
   *  and the ping interval and timeout, idle timeout and maximum lifetime in seconds. */
  websocketMaxMessage: string
  websocketPingInterval: number
  websocketPingTimeout: number
  websocketIdleTimeout: number
  websocketMaxLifetime: number
  /** Seconds, as given (a decimal number); null for Python's default. */
  switchInterval: string | null
  perInterpreterGil: boolean
}

type Kind = 'string' | 'number' | 'boolean' | 'pair' | 'list'

export interface OptionSpec {
  /** Command-line name without the leading dashes. */
  flag: string
  key: keyof ExpressOptions
  kind: Kind
  default: unknown
  describe: string
  /** Names for the two values of a 'pair' option, for --help. */
  pairNames?: [string, string]
}

export const LOG_LEVELS = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug']

export const OPTION_SPECS: OptionSpec[] = [
  { flag: 'host', key: 'host', kind: 'string', default: null, describe: 'The host name or IP address to listen on; all interfaces when not given.' },
  { flag: 'port', key: 'port', kind: 'number', default: 8000, describe: 'The port to listen on.' },
  { flag: 'processes', key: 'processes', kind: 'number', default: null, describe: 'Number of daemon processes (default: a single process); giving it, even as 1, makes wsgi.multiprocess true.' },
  { flag: 'threads', key: 'threads', kind: 'number', default: 5, describe: 'Number of threads in each daemon process handling requests.' },
  { flag: 'max-clients', key: 'maxClients', kind: 'number', default: null, describe: 'Maximum number of simultaneous client connections Apache accepts (default: 1.5 times processes * threads).' },
  { flag: 'limit-request-body', key: 'limitRequestBody', kind: 'number', default: 10485760, describe: 'Largest request body accepted, in bytes.' },
  { flag: 'maximum-requests', key: 'maximumRequests', kind: 'number', default: 0, describe: 'Requests a daemon process handles before it is restarted; 0 for no limit.' },
  { flag: 'restart-interval', key: 'restartInterval', kind: 'number', default: 0, describe: 'Seconds after which a daemon process is replaced (its successor is started and ready first); 0 for never.' },
  { flag: 'startup-timeout', key: 'startupTimeout', kind: 'number', default: 15, describe: 'Seconds a daemon process may take to load the application before it is replaced; 0 for no limit.' },
  { flag: 'memory-recycle', key: 'memoryRecycle', kind: 'string', default: '0', describe: 'Resident memory (bytes, or with a K, M or G suffix) above which a daemon process is replaced, start-first; 0 for never.' },
  { flag: 'shutdown-timeout', key: 'shutdownTimeout', kind: 'number', default: 5, describe: 'Seconds to wait for active requests when a daemon process shuts down.' },
  { flag: 'graceful-timeout', key: 'gracefulTimeout', kind: 'number', default: 15, describe: 'Seconds to wait for active requests on a graceful restart before forcing it.' },
  { flag: 'deadlock-timeout', key: 'deadlockTimeout', kind: 'number', default: 60, describe: 'Seconds the Python GIL may stay unobtainable before the daemon process restarts.' },
  { flag: 'inactivity-timeout', key: 'inactivityTimeout', kind: 'number', default: 0, describe: 'Seconds without requests after which a daemon process restarts; 0 for never.' },
  { flag: 'request-timeout', key: 'requestTimeout', kind: 'number', default: 60, describe: 'Seconds a request may run (averaged over threads) before the daemon process restarts.' },
  { flag: 'connect-timeout', key: 'connectTimeout', kind: 'number', default: 15, describe: 'Seconds Apache tries to connect to a daemon process.' },
  { flag: 'socket-timeout', key: 'socketTimeout', kind: 'number', default: 60, describe: 'Seconds any one read or write between Apache and a daemon process may take.' },
  { flag: 'queue-timeout', key: 'queueTimeout', kind: 'number', default: 30, describe: 'Seconds a request may wait for a daemon process before it gets 503.' },
  { flag: 'server-backlog', key: 'serverBacklog', kind: 'number', default: 500, describe: "Listen backlog of Apache's own listening socket." },
  { flag: 'daemon-backlog', key: 'daemonBacklog', kind: 'number', default: 100, describe: "Listen backlog of the daemon processes' socket." },
  { flag: 'header-buffer-size', key: 'headerBufferSize', kind: 'number', default: 32768, describe: 'Largest response header block accepted from the application, in bytes (at least 8192).' },
  { flag: 'reload-on-changes', key: 'reloadOnChanges', kind: 'boolean', default: false, describe: 'Restart the daemon processes when the source file of any imported Python module (or the WSGI script) changes; files are watched, not polled.' },
  { flag: 'user', key: 'user', kind: 'string', default: null, describe: "User Apache's children and the daemon processes run as (default: yours; when run as root, www-data, else nobody)." },
  { flag: 'group', key: 'group', kind: 'string', default: null, describe: "Group Apache's children and the daemon processes run as (default: the user's primary group)." },
  { flag: 'callable-object', key: 'callableObject', kind: 'string', default: 'application', describe: 'Name of the WSGI (or ASGI) callable in the script.' },
  { flag: 'application-type', key: 'applicationType', kind: 'string', default: 'auto', describe: 'auto: an ASGI callable (a coroutine function, or an object whose __call__ is one) is served as ASGI, anything else as WSGI; asgi or wsgi: say so.' },
  { flag: 'document-root', key: 'documentRoot', kind: 'string', default: null, describe: 'Directory of static files, served by Apache ahead of the application (default: an empty htdocs in the server root).' },
  { flag: 'url-alias', key: 'urlAlias', kind: 'pair', default: [], pairNames: ['URL', 'PATH'], describe: 'Serve the file or directory PATH at URL (repeatable).' },
  { flag: 'error-document', key: 'errorDocument', kind: 'pair', default: [], pairNames: ['STATUS', 'DOCUMENT'], describe: 'Use DOCUMENT (a URL path) for error responses with STATUS (repeatable).' },
  { flag: 'keep-alive-timeout', key: 'keepAliveTimeout', kind: 'number', default: 0, describe: 'Seconds to keep idle client connections open; 0 turns keep-alive off.' },
  { flag: 'server-status', key: 'serverStatus', kind: 'boolean', default: false, describe: "Serve Apache's server status, with a section for the daemon processes, at /server-status, and the daemons' status as JSON at /wsgi-status (from localhost only, unless --status-allow-from)." },
  { flag: 'metrics', key: 'metrics', kind: 'boolean', default: false, describe: 'Serve Prometheus metrics of the daemon processes at /wsgi-metrics (from localhost only, unless --status-allow-from).' },
  { flag: 'health-check', key: 'healthCheck', kind: 'boolean', default: false, describe: 'Serve the health endpoint at /wsgi-health for load balancers and probes: 200 while every daemon process group has a ready process, 503 otherwise (from anywhere).' },
  { flag: 'status-allow-from', key: 'statusAllowFrom', kind: 'list', default: [], describe: 'Also allow this address or network (e.g. 10.0.0.0/8) to reach /server-status, /wsgi-status and /wsgi-metrics (repeatable).' },
  { flag: 'include-file', key: 'includeFile', kind: 'list', default: [], describe: 'An extra Apache configuration file to include (repeatable).' },
  { flag: 'working-directory', key: 'workingDirectory', kind: 'string', default: null, describe: 'Working directory of the daemon processes, first on sys.path (default: the current directory).' },
  { flag: 'pid-file', key: 'pidFile', kind: 'string', default: null, describe: "Where Apache writes its pid (default: httpd.pid in the server root)." },
  { flag: 'server-root', key: 'serverRoot', kind: 'string', default: null, describe: 'Directory for the generated configuration, logs and sockets (default: /tmp/mod_wsgi-HOST:PORT:UID).' },
  { flag: 'log-directory', key: 'logDirectory', kind: 'string', default: null, describe: 'Directory for the log files (default: the server root).' },
  { flag: 'log-level', key: 'logLevel', kind: 'string', default: 'info', describe: `Apache LogLevel: ${LOG_LEVELS.join(', ')}.` },
  { flag: 'access-log', key: 'accessLog', kind: 'boolean', default: false, describe: 'Write an access log (access_log in the log directory, or the terminal with --log-to-terminal).' },
  { flag: 'log-to-terminal', key: 'logToTerminal', kind: 'boolean', default: false, describe: 'Send the error log (and access log) to the terminal instead of files.' },
  { flag: 'startup-log', key: 'startupLog', kind: 'boolean', default: false, describe: "Write Apache's startup messages to startup_log in the log directory (to the terminal with --log-to-terminal)." },
  { flag: 'httpd-executable', key: 'httpdExecutable', kind: 'string', default: null, describe: 'The Apache httpd binary (default: from $HTTPD, or from apxs).' },
  { flag: 'modules-directory', key: 'modulesDirectory', kind: 'string', default: null, describe: "Directory of Apache's modules (default: from apxs)." },
  { flag: 'mime-types', key: 'mimeTypes', kind: 'string', default: null, describe: 'The mime.types file (default: /etc/mime.types).' },
  { flag: 'python-path', key: 'pythonPath', kind: 'list', default: [], describe: 'A directory to add to sys.path (repeatable).' },
  { flag: 'python-home', key: 'pythonHome', kind: 'string', default: null, describe: "The virtualenv (or Python prefix) whose CPython (3.8 to 3.13) the daemon processes embed (default: $VIRTUAL_ENV when set, else Debian's Python)." },
  { flag: 'python-executable', key: 'pythonExecutable', kind: 'string', default: null, describe: "A Python's bin/python3.N the daemon processes embed when it has no virtualenv (instead of --python-home)." },
  { flag: 'websocket-max-message', key: 'websocketMaxMessage', kind: 'string', default: '16M', describe: 'Largest WebSocket message accepted from a client (bytes, or with a K, M or G suffix; 0 for no limit): a larger one closes the connection with 1009.' },
  { flag: 'websocket-ping-interval', key: 'websocketPingInterval', kind: 'number', default: 20, describe: 'Seconds without anything from a WebSocket client after which it is pinged; 0 for never.' },
  { flag: 'websocket-ping-timeout', key: 'websocketPingTimeout', kind: 'number', default: 20, describe: 'Seconds a ping may go unanswered before the WebSocket counts as dead and is dropped.' },
  { flag: 'websocket-idle-timeout', key: 'websocketIdleTimeout', kind: 'number', default: 0, describe: 'Seconds without a message either way after which a WebSocket is closed (1001); 0 for never.' },
  { flag: 'websocket-max-lifetime', key: 'websocketMaxLifetime', kind: 'number', default: 0, describe: 'Seconds a WebSocket may stay open before it is closed (1001); 0 for no limit.' },
  { flag: 'interrupt-timeout', key: 'interruptTimeout', kind: 'number', default: 0, describe: 'With --request-timeout: raise mod_wsgi.RequestTimeout in an overdue request first, and restart the process only if it has not unwound (a 504 for its client) within this many seconds; 0 restarts at once (mod_wsgi 6).' },
  { flag: 'switch-interval', key: 'switchInterval', kind: 'string', default: null, describe: "Python's GIL switch interval in seconds (sys.setswitchinterval), e.g. 0.002 (default: Python's 0.005)." },
  { flag: 'per-interpreter-gil', key: 'perInterpreterGil', kind: 'boolean', default: false, describe: 'Give each sub-interpreter (application group) its own GIL, CPython 3.12 or later (WSGIPerInterpreterGIL On).' },
]

/** The options with every default applied. */
export function defaultOptions(): ExpressOptions {
  const o: Record<string, unknown> = { script: null }
  for (const s of OPTION_SPECS) o[s.key] = Array.isArray(s.default) ? [...s.default] : s.default
  return o as unknown as ExpressOptions
}

/** Checks what the parser cannot: ranges and combinations. Returns a message or null. */
export function validateOptions(o: ExpressOptions): string | null {
  const positive: Array<keyof ExpressOptions> = ['port', 'threads']
  for (const k of positive) if (!Number.isInteger(o[k]) || (o[k] as number) < 1) return `--${flagOf(k)} must be a positive integer`
  if (o.processes !== null && (!Number.isInteger(o.processes) || o.processes < 1)) return '--processes must be a positive integer'
  if (o.maxClients !== null && (!Number.isInteger(o.maxClients) || o.maxClients < 1)) return '--max-clients must be a positive integer'
  if (o.port > 65535) return '--port must be at most 65535'
  for (const s of OPTION_SPECS) {
    if (s.kind !== 'number' || s.key === 'processes' || s.key === 'maxClients') continue
    const v = o[s.key] as number
    if (!Number.isInteger(v) || v < 0) return `--${s.flag} must be a whole number, 0 or more`
  }
  if (o.headerBufferSize < 8192) return '--header-buffer-size must be at least 8192'
  if (!LOG_LEVELS.includes(o.logLevel)) return `--log-level must be one of ${LOG_LEVELS.join(', ')}`
  if (!['auto', 'asgi', 'wsgi'].includes(o.applicationType)) return '--application-type must be auto, asgi or wsgi'
  for (const [status] of o.errorDocument) if (!/^[1-5]\d\d$/.test(status)) return `--error-document status '${status}' is not an HTTP status`
  for (const [url] of o.urlAlias) if (!url.startsWith('/')) return `--url-alias URL '${url}' must start with /`
  if (o.switchInterval !== null) {
    const v = Number(o.switchInterval)
    if (!/^\d*\.?\d+(e-?\d+)?$/i.test(o.switchInterval) || !(v >= 0.000001 && v <= 60))
      return `--switch-interval must be a number of seconds from 0.000001 to 60, not '${o.switchInterval}'`
  }
  if (o.pythonHome !== null && o.pythonExecutable !== null) return '--python-home and --python-executable cannot both be given'
  if (!/^\d+[KkMmGg]?$/.test(o.websocketMaxMessage)) return `--websocket-max-message must be a size in bytes, or with a K, M or G suffix, not '${o.websocketMaxMessage}'`
  if (o.websocketPingTimeout < 1) return '--websocket-ping-timeout must be at least 1'
  return null
}

function flagOf(key: keyof ExpressOptions): string {
  return OPTION_SPECS.find((s) => s.key === key)?.flag ?? String(key)
}
