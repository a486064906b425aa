// How a daemon process ends. Every way of stopping goes through stop(reason):
//   signal (SIGTERM, SIGINT, SIGHUP)   normal shutdown: wait up to shutdown-timeout, exit 0
//   graceful-signal (SIGUSR1)          graceful-timeout first if set (release notes New Features 3), exit 0
//   maximum-requests, cpu-time-limit   graceful-timeout first if set (New Features 2), then normal; exit 4
//   memory-error                       an application ran out of memory (memory-limit): as maximum-requests
//   inactivity-timeout                 nothing is running: exit 4 at once
//   script-reload                      a WSGI script changed (WSGIScriptReloading): normal shutdown, exit 4
//   request-timeout, deadlock-timeout  forced: interrupt what runs (504/503 where no response began), exit 4
// A stop first closes the listener, answers queued requests and idle connections with GOAWAY (the child
// retries elsewhere), lets running requests finish within the period, then ends Python and exits.
// A later, harder request shortens a softer one (SIGTERM during a graceful wait); never the reverse.
import type { Bridge } from '../native/types'
import { E } from './errors'
import { armHardExit } from './hard-exit'
import { log } from './log'
import type { DaemonServer } from './server'

export const Exit = {
  /** Asked to stop (a signal). */
  OK: 0,
  /** MOD_WSGI_DAEMON_CONFIG missing or malformed. */
  CONFIG: 2,
  /** Could not start: identity, Python, the socket. */
  STARTUP: 3,
  /** Stopped itself to be restarted: maximum-requests, timeouts, limits. */
  RESTART: 4,
  /** Internal error (uncaught exception): state may be corrupt. */
  INTERNAL: 5,
} as const

export type StopReason =
  | 'signal'
  | 'graceful-signal'
  | 'maximum-requests'
  | 'cpu-time-limit'
  | 'inactivity-timeout'
  | 'request-timeout'
  | 'deadlock-timeout'
  | 'script-reload'
  | 'memory-error'

export interface LifecycleOptions {
  group: string
  gracefulTimeoutMs: number
  shutdownTimeoutMs: number
  maximumRequests: number
}

type Phase = 'running' | 'graceful' | 'normal' | 'finishing'

const POLL_MS = 25
/** What Python gets to finalise once nothing runs any more. */
const FINALIZE_MS = 2000

export class Lifecycle {
  private phase: Phase = 'running'
  private code: number = Exit.OK
  private deadline = 0
  private timer: NodeJS.Timeout | null = null
  private admittedCount = 0
  private bridge: Bridge | null = null
  private server: DaemonServer | null = null
  /** Stop hooks run when stopping begins (e.g. stop the watchdog). */
  private readonly onBegin: Array<() => void> = []

  private readonly exit: (code: number) => void
  private readonly now: () => number
  private readonly armHardExit: (ms: number) => void

  constructor(
    private readonly opts: LifecycleOptions,
    deps: { exit?: (code: number) => void; now?: () => number; armHardExit?: (ms: number) => void } = {},
  ) {
    this.exit = deps.exit ?? ((code) => process.exit(code))
    this.now = deps.now ?? Date.now
    this.armHardExit = deps.armHardExit ?? armHardExit
  }

  /** Exiting now: nothing more will be waited for. */
  get finishing(): boolean {
    return this.phase === 'finishing'
  }

  get stopping(): boolean {
    return this.phase !== 'running'
  }

  attach(server: DaemonServer, bridge: Bridge): void {
    this.server = server
    this.bridge = bridge
  }

  onStopBegin(fn: () => void): void {
    this.onBegin.push(fn)
  }

  /** A request went to the bridge: maximum-requests counts here. */
  admitted(): void {
    this.admittedCount++
    const max = this.opts.maximumRequests
    if (max > 0 && this.admittedCount >= max && this.phase === 'running') {
      log.report(E.maximumRequests, this.opts.group, this.opts.gracefulTimeoutMs > 0)
      this.stop('maximum-requests')
    }
  }

  stop(reason: StopReason): void {
    if (this.phase === 'finishing') return
    const first = this.phase === 'running'
    if (first) {
      this.code = reason === 'signal' || reason === 'graceful-signal' ? Exit.OK : Exit.RESTART
      for (const fn of this.onBegin) {
        try {
          fn()
        } catch {
          /* a hook must not prevent stopping */
        }
      }
      this.server?.beginStop()
    }
    if (reason === 'request-timeout' || reason === 'deadlock-timeout') {
      this.server?.forceCloseAll(reason === 'request-timeout' ? 504 : 503, `daemon process restarting: ${reason} expired`)
      this.finish(this.opts.shutdownTimeoutMs)
      return
    }
    const graceful =
      (reason === 'graceful-signal' || reason === 'maximum-requests' || reason === 'cpu-time-limit' || reason === 'memory-error') &&
      this.opts.gracefulTimeoutMs > 0
    if (first) {
      this.phase = graceful ? 'graceful' : 'normal'
      this.deadline = this.now() + (graceful ? this.opts.gracefulTimeoutMs : this.opts.shutdownTimeoutMs)
    } else if (this.phase === 'graceful' && !graceful) {
      this.phase = 'normal'
      this.deadline = this.now() + this.opts.shutdownTimeoutMs
    }
    if (this.timer === null) {
      this.timer = setInterval(() => this.poll(), POLL_MS)
    }
    this.poll()
  }

  /** Initialisation was interrupted (or failed) before serving: end Python if it started, then exit. */
  abandonStartup(code: number, bridge: Bridge | null): void {
    if (this.phase === 'finishing') return
    this.bridge = bridge
    this.code = code
    // A preload may still be importing: Python gets the shutdown-timeout, not more.
    this.finish(Math.max(this.opts.shutdownTimeoutMs, 500))
  }

  /** Internal error: state may be corrupt, restart quickly. */
  crash(): void {
    if (this.phase === 'finishing') return
    this.code = Exit.INTERNAL
    try {
      this.server?.forceCloseAll(500, 'daemon process internal error')
    } catch {
      /* going anyway */
    }
    this.finish(FINALIZE_MS)
  }

  private poll(): void {
    if (this.phase !== 'graceful' && this.phase !== 'normal') return
    const server = this.server
    if (server === null || server.drained) {
      this.finish(FINALIZE_MS)
      return
    }
    if (this.now() < this.deadline) return
    const active = server.dispatcher.activeCount
    if (this.phase === 'graceful') {
      log.report(E.gracefulExpired, this.opts.group, active)
      this.phase = 'normal'
      this.deadline = this.now() + this.opts.shutdownTimeoutMs
      return
    }
    log.report(E.aborting, this.opts.group, active)
    server.forceCloseAll(503, 'daemon process shutting down')
    // What still runs was told to stop; Python gets a short moment, the shutdown-timeout is spent.
    this.finish(500)
  }

  private finish(pythonMs: number): void {
    if (this.phase === 'finishing') return
    this.phase = 'finishing'
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.armHardExit(pythonMs + 3000)
    const bridge = this.bridge
    // Let the forced answers and GOAWAYs reach the kernel before Python's shutdown blocks this thread.
    setImmediate(() => {
      if (bridge !== null) {
        let clean = true
        try {
          clean = bridge.shutdown(pythonMs)
        } catch {
          clean = false
        }
        if (!clean) log.report(E.pythonShutdown, this.opts.group)
      }
      log.report(E.exiting, this.opts.group, this.code)
      this.exit(this.code)
    })
  }
}
