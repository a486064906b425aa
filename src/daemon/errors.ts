// The catalogue of the daemon's log messages. Each has a code (WSGI02nnn, docs/logging.md) that never
// changes meaning, so users, tests and the Apache side can match on it; its level; and its text. Where
// mod_wsgi 4.1.0 had a well-known message the words are kept. New messages take the next free number;
// a retired number is never reused.
import type { LogLevelName } from './log-levels'

export interface Message<A extends unknown[]> {
  readonly code: string
  readonly level: LogLevelName
  readonly text: (...args: A) => string
}

function m<A extends unknown[]>(n: number, level: LogLevelName, text: (...args: A) => string): Message<A> {
  return { code: `WSGI0${n}`, level, text }
}

export const E = {
  // Startup ---------------------------------------------------------------------------------------------
  configInvalid: m(2001, 'crit', (reason: string) => `Invalid daemon configuration: ${reason}.`),
  addonLoad: m(2002, 'crit', (reason: string) => `Unable to load the Python bridge addon: ${reason}`),
  starting: m(2003, 'info', (group: string, uid: number, gid: number, threads: number) =>
    `Starting process '${group}' with uid=${uid}, gid=${gid} and threads=${threads}.`),
  rootRefused: m(2004, 'alert', (group: string) =>
    `Refusing to run daemon process '${group}' as root (uid 0): give WSGIDaemonProcess a user= option or a non-root Apache User.`),
  setGroups: m(2005, 'alert', (user: string, gid: number, err: string) => `Unable to set groups for uname=${user} and gid=${gid}: ${err}`),
  setGid: m(2006, 'alert', (gid: number, err: string) => `Unable to change to gid=${gid}: ${err}`),
  setUid: m(2007, 'alert', (uid: number, err: string) => `Unable to change to uid=${uid}: ${err}`),
  identityCheck: m(2008, 'alert', (detail: string) => `Identity check failed after dropping privileges: ${detail}; not serving.`),
  notRoot: m(2009, 'warn', (group: string, user: string, uid: number, current: number) =>
    `Not started as root: cannot switch daemon process '${group}' to user '${user}' (uid ${uid}); running as uid ${current}.`),
  chdir: m(2010, 'alert', (dir: string, err: string) => `Unable to change working directory to '${dir}': ${err}`),
  noHome: m(2011, 'alert', (uid: number) => `Unable to determine home directory for uid=${uid}.`),
  rlimit: m(2012, 'alert', (what: string, value: number, err: string) => `Unable to set ${what} to ${value}: ${err}`),
  priority: m(2013, 'error', (nice: number, err: string) => `Unable to set CPU priority to ${nice}: ${err}`),
  pythonStart: m(2014, 'crit', (group: string, err: string) => `Unable to start Python in daemon process '${group}': ${err}`),
  importScript: m(2015, 'error', (script: string, group: string, err: string) =>
    `Failed to import script '${script}' into application group '${group}': ${err}`),
  listen: m(2016, 'crit', (err: string) => `Unable to accept connections on the daemon socket (fd 3): ${err}`),
  memoryLow: m(2017, 'warn', (option: string, limit: number, floor: number) =>
    `${option}=${limit} is below the ${floor} bytes Node.js and Python need with these threads; the daemon may fail to start or serve.`),
  signalDuringInit: m(2018, 'notice', (group: string, signal: string) =>
    `Signal ${signal} received while initialising process '${group}': stopping before serving.`),
  locale: m(2019, 'error', (locale: string) =>
    `Unsupported locale setting '${locale}' specified for daemon process group; LC_ALL is set but the C library refused it (see locale -a).`),
  ready: m(2050, 'info', (group: string, ms: number) => `Process '${group}' ready to serve, ${ms} ms after it started.`),
  successorRequested: m(2051, 'info', (group: string, reason: string) =>
    `Process '${group}' is to be replaced (${reason}): it serves until its successor is ready.`),
  successorLate: m(2052, 'error', (group: string, reason: string, seconds: number) =>
    `Process '${group}' (${reason}) stops without its successor, which was not ready within ${seconds} seconds.`),
  successorFailed: m(2053, 'error', (group: string, reason: string, action: string) =>
    `The successor of process '${group}' (${reason}) failed before it was ready: ${action}.`),
  successorScript: m(2054, 'error', (group: string, script: string, err: string) =>
    `Replacement process '${group}' cannot load script '${script}' that its predecessor serves: ${err}; it exits and the predecessor goes on serving.`),
  startupTimeout: m(2055, 'error', (group: string, seconds: number) =>
    `Process '${group}' was not ready to serve within startup-timeout (${seconds} seconds): it exits to be replaced.`),
  memoryRecycle: m(2056, 'info', (group: string, rss: number, limit: number) =>
    `Process '${group}' uses ${rss} bytes of memory, more than memory-recycle (${limit}): it is replaced.`),
  restartInterval: m(2057, 'info', (group: string, seconds: number) =>
    `Process '${group}' has run for restart-interval (${seconds} seconds): it is replaced.`),
  boardUnavailable: m(2058, 'warn', (err: string) =>
    `The board (fd 4) cannot be used: ${err}; restarts stop the process before its replacement starts.`),

  // Stopping --------------------------------------------------------------------------------------------
  shutdownRequested: m(2020, 'info', (group: string, signal: string) => `Shutdown requested '${group}' (${signal}).`),
  gracefulRequested: m(2021, 'info', (group: string, signal: string, seconds: number) =>
    `Graceful shutdown requested '${group}' (${signal}): waiting up to ${seconds} seconds for active requests.`),
  maximumRequests: m(2022, 'info', (group: string, graceful: boolean) =>
    graceful
      ? `Maximum requests reached, attempt graceful shutdown '${group}'.`
      : `Maximum requests reached, triggering immediate shutdown '${group}'.`),
  inactivityTimeout: m(2023, 'info', (group: string) => `Daemon process inactivity timer expired, stopping process '${group}'.`),
  requestTimeout: m(2024, 'error', (group: string, detail: string) =>
    `Daemon process request time limit exceeded, stopping process '${group}': ${detail}.`),
  deadlockTimeout: m(2025, 'error', (group: string, seconds: number) =>
    `Daemon process deadlock timer expired, stopping process '${group}' (Python's GIL not acquired for ${seconds} seconds).`),
  cpuTimeLimit: m(2026, 'info', (group: string) => `Exceeded CPU time limit '${group}'.`),
  gracefulExpired: m(2027, 'info', (group: string, active: number) =>
    `Graceful timeout expired with ${active} active requests, proceeding with shutdown '${group}'.`),
  aborting: m(2028, 'error', (group: string, active: number) =>
    `Aborting process '${group}': shutdown timeout expired with ${active} requests still active.`),
  exiting: m(2029, 'info', (group: string, code: number) => `Exiting process '${group}' (status ${code}).`),
  pythonShutdown: m(2030, 'error', (group: string) => `Python did not finish shutting down in time in process '${group}'; exiting anyway.`),
  uncaught: m(2031, 'crit', (group: string, detail: string) => `Internal error in daemon process '${group}', restarting: ${detail}`),
  parentGone: m(2032, 'error', (group: string, parent: number, now: number) =>
    `Apache parent process (pid ${parent}) of daemon process '${group}' has gone away (parent is now pid ${now}): shutting down.`),
  memoryLimit: m(2033, 'error', (group: string, count: number) =>
    `Memory limit reached in daemon process '${group}' (${count} request(s) ended in MemoryError): restarting process.`),
  apacheStopping: m(2150, 'info', (group: string, seconds: number) =>
    `Apache is stopping gracefully: process '${group}' serves the requests its children still forward ` +
      (seconds > 0 ? `for at most ${seconds} seconds (graceful-timeout), then stops.` : 'until they are gone, then stops.')),
  nodeWarning: m(2151, 'warn', (group: string, name: string, message: string) => `Node.js ${name} in daemon process '${group}': ${message}`),

  // Requests and connections ----------------------------------------------------------------------------
  malformed: m(2040, 'error', (detail: string) => `Malformed data received from Apache child, connection closed: ${detail}.`),
  queueTimeout: m(2041, 'error', (group: string, waited: number, uri: string) =>
    `Queue timeout expired for WSGI daemon process '${group}' (request waited ${waited} ms): ${uri}.`),
  clientGone: m(2042, 'info', (id: number) => `Apache child closed the connection during request ${id}; request abandoned.`),
  socketTimeout: m(2043, 'error', (seconds: number, doing: string, uri: string) =>
    `Timeout after ${seconds} seconds ${doing} the Apache child; request abandoned: ${uri}.`),
  connectionError: m(2044, 'info', (err: string) => `Error on connection from Apache child: ${err}.`),
  truncatedFrame: m(2045, 'error', (detail: string) => `Connection from Apache child closed in the middle of a frame: ${detail}.`),
  fileSend: m(2046, 'error', (err: string) => `Unable to send file contents of response: ${err}.`),
  unknownOutput: m(2047, 'warn', (id: number) => `Output for unknown request ${id} discarded.`),
  requestInterrupted: m(2048, 'error', (group: string, status: number, why: string, uri: string) =>
    `Request interrupted by daemon restart: ${uri} (daemon process '${group}' answered ${status}: ${why}).`),
  socketBuffers: m(2049, 'warn', (err: string) => `Unable to set send-buffer-size / receive-buffer-size on a connection: ${err}.`),

  // Python versions and interrupt-timeout (2100-2119) -------------------------------------------------
  pythonSelect: m(2100, 'crit', (group: string, reason: string) => `Unable to embed Python in daemon process '${group}': ${reason}.`),
  pythonUnreadable: m(2101, 'crit', (group: string, what: string, user: string, uid: number, detail: string) =>
    `${what} of daemon process '${group}' is not readable by its user '${user}' (uid ${uid}): ${detail}; make that Python and its directories readable by that user (chmod -R a+rX), or install it where they are.`),
  pythonSelected: m(2102, 'info', (group: string, version: string, program: string, library: string) =>
    `Daemon process '${group}' embeds Python ${version} (${program}, ${library}).`),
  requestInterrupting: m(2103, 'error', (group: string, uri: string, ageMs: number, interruptTimeout: number) =>
    `Request exceeded request-timeout in daemon process '${group}' after ${ageMs} ms: raising mod_wsgi.RequestTimeout in its thread, ${interruptTimeout} seconds to unwind (interrupt-timeout): ${uri}.`),
  // ASGI (docs/asgi.md) -----------------------------------------------------------------------------------
  asgiRequestTimeout: m(2120, 'error', (group: string, seconds: number, uri: string) =>
    `Request timeout expired for an ASGI request of daemon process '${group}' (${seconds} seconds without output): its task is cancelled: ${uri}.`),
  asgiStartupFailed: m(2121, 'crit', (group: string, script: string, err: string) =>
    `ASGI lifespan startup of script '${script}' failed in daemon process '${group}': not serving (${err}).`),
  // WebSocket (README, "WebSocket"; docs/asgi.md) -----------------------------------------------------
  wsProtocolError: m(2200, 'info', (code: number, detail: string, uri: string) =>
    `WebSocket closed with ${code}: the client sent what cannot be accepted (${detail}): ${uri}.`),
  wsDeadPeer: m(2201, 'info', (seconds: number, uri: string) =>
    `WebSocket client did not answer a ping within websocket-ping-timeout (${seconds} seconds): connection dropped: ${uri}.`),
  wsLimit: m(2202, 'info', (option: string, seconds: number, uri: string) =>
    `WebSocket closed with 1001: ${option} (${seconds} seconds) reached: ${uri}.`),
  wsClosingAll: m(2203, 'info', (group: string, count: number, code: number) =>
    `Daemon process '${group}' stops: closing ${count} open WebSocket(s) with ${code}.`),
  wsCloseTimeout: m(2204, 'info', (seconds: number, uri: string) =>
    `WebSocket close handshake not completed by the client within ${seconds} seconds: connection dropped: ${uri}.`),
} as const

/** The text of a thrown value, for a message's argument. */
export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e))
