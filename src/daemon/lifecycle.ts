// How a daemon process ends. A process that is to be replaced (a restart it chose, SIGUSR1, a changed
// script) first retires: with a board it asks for a successor and serves until that one is ready
// (handover.ts, docs/restarts.md), then drains: no new requests, those running finish within
// graceful-timeout (else shutdown-timeout), exit 4. Without a board, or for the other reasons, every way
// of stopping goes through stop(reason):
//   signal (SIGTERM, SIGINT, SIGHUP)   normal shutdown: wait up to shutdown-timeout, exit 0
//   graceful-signal (SIGUSR1)          graceful-timeout first if set (release notes New Features 3), exit 0
//   apache-stopping (board flag)       Apache's graceful stop: serve on, idle or not, until a stop signal
//                                      (Apache's children are gone) or graceful-timeout if set; exit 0
//   maximum-requests, cpu-time-limit   graceful-timeout first if set (New Features 2), then normal; exit 4
//   memory-limit                       a request ended in MemoryError under a memory limit: as cpu-time-limit
//   parent-died                        the Apache parent is gone: normal shutdown, exit 0
//   inactivity-timeout                 nothing is running: exit 4 at once
//   script-reload                      a WSGI script changed (WSGIScriptReloading): normal shutdown, exit 4
//   request-timeout, deadlock-timeout  forced: interrupt what runs (504/503 where no response began), exit 4
// The graceful period, as mod_wsgi: the process goes on accepting and running requests, and restarts as
// soon as none is active or queued; when graceful-timeout expires first, the normal shutdown follows.
// The normal shutdown closes the listener, answers queued requests and idle connections with GOAWAY (the
// child retries elsewhere), lets running requests finish within shutdown-timeout, then ends Python and
// exits. A later, harder request shortens a softer one (SIGTERM during a graceful wait); never the reverse.
import type { Bridge } from '../native/types'
import type { Reason } from '../protocol/board-layout'
import { E } from './errors'
import { armHardExit } from './hard-exit'
import type { Handover } from './handover'
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
  | 'memory-limit'
  | 'parent-died'
  | 'inactivity-timeout'
  | 'request-timeout'
  | 'deadlock-timeout'
  | 'script-reload'
  | 'restart-interval'
  | 'memory-recycle'
  | 'startup-timeout'
  | 'graceful-restart'
  | 'apache-stopping'

/** The board's word for a stop reason (the same in logs, status and metrics). */
export function reasonWord(r: StopReason): Reason {
  if (r === 'graceful-signal') return 'signal'
  if (r === 'signal' || r === 'parent-died' || r === 'apache-stopping') return 'stop'
  return r
}

/** Reasons that mean the process cannot serve properly any more: it waits for its successor only so
 *  long, then stops anyway. */
const FORCED = new Set<StopReason>(['request-timeout', 'deadlock-timeout'])
/** How long a process that cannot serve properly waits for its successor. */
const FORCED_WAIT_MS = 30000
/** Without a successor: reasons for which the process goes on accepting for graceful-timeout, as mod_wsgi
 *  (release notes 4.1.0, New Features 2 and 3), and restarts as soon as it is idle. */
const GRACEFUL = new Set<StopReason>([
  'graceful-signal',
  'maximum-requests',
  'cpu-time-limit',
  'memory-limit',
  'restart-interval',
  'memory-recycle',
])

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
  /** Apache's graceful stop: the graceful period does not end when idle, only at its deadline or a stop. */
  private holding = false
  private bridge: Bridge | null = null
  private server: DaemonServer | null = null
  /** Stop hooks run when stopping begins (e.g. stop the watchdog). */
  private readonly onBegin: Array<() => void> = []
  private handover: Handover | null = null
  /** Why a successor was asked for, while it is awaited. */
  private retiringFor: StopReason | null = null
  private forcedTimer: NodeJS.Timeout | null = null
  /** Why the process ends, in the board's words (the first reason given); hooks learn it at the end. */
  private endReason: Reason = 'none'
  private readonly onEnd: Array<(reason: Reason) => void> = []

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

  /** With a board: restarts go through a successor (retire()). */
  attachHandover(h: Handover): void {
    this.handover = h
  }

  /** The reason a successor is awaited for, or null. */
  get retiring(): StopReason | null {
    return this.retiringFor
  }

  /**
   * This process is to be replaced. With a board: ask for a successor and serve until it is ready (then
   * drained()); a process that cannot serve properly (request-timeout, deadlock-timeout) waits at most
   * FORCED_WAIT_MS. Without a board: stop(reason) at once.
   */
  retire(reason: StopReason): void {
    if (this.phase !== 'running') return
    const h = this.handover
    if (h === null) return this.stop(reason)
    if (this.retiringFor === null) {
      this.retiringFor = reason
      log.report(E.successorRequested, this.opts.group, reasonWord(reason))
      h.request(reasonWord(reason))
    }
    if (FORCED.has(reason) && this.forcedTimer === null) {
      this.forcedTimer = setTimeout(() => {
        log.report(E.successorLate, this.opts.group, reasonWord(reason), FORCED_WAIT_MS / 1000)
        this.stop(reason)
      }, FORCED_WAIT_MS)
      this.forcedTimer.unref()
    }
  }

  /** The successor could not be started: serve on; `giveUp` withdraws the request (until retire() again). */
  successorFailed(giveUp: boolean): void {
    if (!giveUp || this.phase !== 'running') return
    this.handover?.withdraw()
    this.retiringFor = null
  }

  /** The successor is ready, or the parent ordered a drain (a newer generation is ready): no new
   *  requests; those running get graceful-timeout (else shutdown-timeout); then exit. */
  drained(reason: Reason): void {
    const why: StopReason = reason === 'graceful-restart' ? 'graceful-restart' : (this.retiringFor ?? 'graceful-restart')
    this.stop(why, true)
  }

  onStopBegin(fn: () => void): void {
    this.onBegin.push(fn)
  }

  /** `fn` runs just before the process exits, with why it ends (board.ts writes it on the slot, where
   *  the Apache parent reads it for the restart history). */
  onFinish(fn: (reason: Reason) => void): void {
    this.onEnd.push(fn)
  }

  /** Requests handed to the bridge so far. */
  get requestsAdmitted(): number {
    return this.admittedCount
  }

  /** A request went to the bridge: maximum-requests counts here. */
  admitted(): void {
    this.admittedCount++
    const max = this.opts.maximumRequests
    if (max > 0 && this.admittedCount >= max && this.phase === 'running') {
      log.report(E.maximumRequests, this.opts.group, this.opts.gracefulTimeoutMs > 0)
      this.retire('maximum-requests')
    }
  }

  /** Stops now for `reason`; `handedOver`: a successor serves already (or a newer generation), so the
   *  process stops taking requests at once and gives what runs graceful-timeout, else shutdown-timeout. */
  stop(reason: StopReason, handedOver = false): void {
    if (this.phase === 'finishing') return
    const first = this.phase === 'running'
    if (this.forcedTimer !== null) clearTimeout(this.forcedTimer)
    this.forcedTimer = null
    this.handover?.stop()
    if (first) {
      this.endReason = reasonWord(reason)
      this.code =
        reason === 'signal' || reason === 'graceful-signal' || reason === 'parent-died' || reason === 'graceful-restart' || reason === 'apache-stopping'
          ? Exit.OK
          : Exit.RESTART
      for (const fn of this.onBegin) {
        try {
          fn()
        } catch {
          /* a hook must not prevent stopping */
        }
      }
    }
    if (reason === 'request-timeout' || reason === 'deadlock-timeout') {
      this.server?.forceCloseAll(reason === 'request-timeout' ? 504 : 503, `daemon process restarting: ${reason} expired`)
      this.finish(this.opts.shutdownTimeoutMs)
      return
    }
    if (handedOver) {
      // The successor serves: no new requests from now on. What runs gets graceful-timeout to finish,
      // then shutdown-timeout, as after mod_wsgi's graceful period (without one, shutdown-timeout).
      this.server?.beginStop()
      if (first && this.opts.gracefulTimeoutMs > 0) {
        this.phase = 'graceful'
        this.deadline = this.now() + this.opts.gracefulTimeoutMs
      } else if (this.phase !== 'normal') this.beginNormal()
      if (this.timer === null) this.timer = setInterval(() => this.poll(), POLL_MS)
      this.poll()
      return
    }
    const graceful = GRACEFUL.has(reason) && this.opts.gracefulTimeoutMs > 0
    if (first && reason === 'apache-stopping') {
      // Apache's children may still forward requests: serve them until told to stop, at most
      // graceful-timeout when set (without one, Apache's own GracefulShutdownTimeout bounds the wait).
      this.phase = 'graceful'
      this.holding = true
      this.deadline = this.opts.gracefulTimeoutMs > 0 ? this.now() + this.opts.gracefulTimeoutMs : Number.POSITIVE_INFINITY
    } else if (first && graceful) {
      this.phase = 'graceful'
      this.deadline = this.now() + this.opts.gracefulTimeoutMs
    } else if (first || (this.phase === 'graceful' && !graceful && reason !== 'apache-stopping')) {
      this.beginNormal()
    }
    if (this.timer === null) {
      this.timer = setInterval(() => this.poll(), POLL_MS)
    }
    this.poll()
  }

  /** Initialisation was interrupted (or failed) before serving: end Python if it started, then exit. */
  abandonStartup(code: number, bridge: Bridge | null, reason: Reason = 'startup-failure'): void {
    if (this.phase === 'finishing') return
    this.bridge = bridge
    this.code = code
    this.endReason = reason
    // A preload may still be importing: Python gets the shutdown-timeout, not more.
    this.finish(Math.max(this.opts.shutdownTimeoutMs, 500))
  }

  /** Internal error: state may be corrupt, restart quickly. */
  crash(): void {
    if (this.phase === 'finishing') return
    this.code = Exit.INTERNAL
    this.endReason = 'internal-error'
    try {
      this.server?.forceCloseAll(500, 'daemon process internal error')
    } catch {
      /* going anyway */
    }
    this.finish(FINALIZE_MS)
  }

  /** The normal shutdown: no new requests, shutdown-timeout (or `ms`) for those running. */
  private beginNormal(ms = this.opts.shutdownTimeoutMs): void {
    this.phase = 'normal'
    this.deadline = this.now() + ms
    this.server?.beginStop()
    // Open WebSockets lived through the graceful period: now they are closed with 1001.
    this.server?.closeWebSockets()
  }

  private poll(): void {
    if (this.phase !== 'graceful' && this.phase !== 'normal') return
    const server = this.server
    if (this.phase === 'graceful') {
      const busy = server === null ? 0 : server.dispatcher.activeCount + server.dispatcher.queuedCount
      if (busy === 0 && !this.holding) this.beginNormal()
      else if (this.now() >= this.deadline) {
        log.report(E.gracefulExpired, this.opts.group, server?.dispatcher.activeCount ?? 0)
        this.beginNormal()
      }
      return
    }
    if (server === null || server.drained) {
      // Python (an ASGI application's lifespan shutdown first) gets what is left of shutdown-timeout.
      this.finish(Math.max(FINALIZE_MS, this.deadline - this.now()))
      return
    }
    if (this.now() < this.deadline) return
    const active = server.dispatcher.activeCount
    log.report(E.aborting, this.opts.group, active)
    server.forceCloseAll(503, `daemon process shutting down: shutdown-timeout (${this.opts.shutdownTimeoutMs / 1000} s) expired`)
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
      for (const fn of this.onEnd) {
        try {
          fn(this.endReason)
        } catch {
          /* exiting anyway */
        }
      }
      this.exit(this.code)
    })
  }
}
