// The daemon's watchdog for the time-based WSGIDaemonProcess options. Each tick (a few per second, on an
// unref'd timer so it never keeps the process alive) compares clocks; the per-request path only flips a
// flag, so watching costs nothing per request.
//   request-timeout (release notes, New Features 8): with one thread, the age of the active request; with
//     several, the sum of the ages of active requests divided by `threads` (a capacity measure: one long
//     request among many short ones does not restart the process).
//   inactivity-timeout (Features Changed 4): no active request and no I/O for that long; never interrupts
//     a request.
//   deadlock-timeout: the addon's watchdog thread has not obtained Python's GIL for that long.
//   interrupt-timeout (mod_wsgi 6), with request-timeout: instead of restarting, the overdue requests get
//     mod_wsgi.RequestTimeout in their own threads (request-interrupt.ts); the restart follows only for
//     one that is still running interrupt-timeout later.
import type { RequestInterrupter } from './request-interrupt'

/** request-timeout's measure in ms: the active request's age (threads 1) or the mean load per thread. */
export function requestLoadMs(threads: number, ageSumMs: number): number {
  return threads <= 1 ? ageSumMs : ageSumMs / threads
}

/** True when request-timeout should restart the process. 0 = option not set. */
export function requestTimeoutExceeded(threads: number, ageSumMs: number, timeoutMs: number): boolean {
  return timeoutMs > 0 && requestLoadMs(threads, ageSumMs) > timeoutMs
}

export type ExpiredTimeout = 'request-timeout' | 'inactivity-timeout' | 'deadlock-timeout'

export interface WatchdogOptions {
  threads: number
  /** In ms; 0 = not set. */
  requestTimeoutMs: number
  inactivityTimeoutMs: number
  deadlockTimeoutMs: number
  tickMs?: number
  /** interrupt-timeout set: what request-timeout does first. */
  interrupter?: RequestInterrupter | null
}

export interface WatchdogProbes {
  activeCount(): number
  /** Sum of the ages of active requests, ms. */
  activeAgeSum(now: number): number
  /** Date.now() of the last time Python's GIL was obtained by the addon's watchdog thread; 0 = unknown. */
  lastGilAcquired(): number
  /** Called once, for the first timeout found expired; the watchdog then stops. */
  expired(kind: ExpiredTimeout, detail: string): void
}

export class Watchdog {
  private timer: NodeJS.Timeout | null = null
  private busy = false
  private lastActivity: number

  constructor(
    private readonly opts: WatchdogOptions,
    private readonly probes: WatchdogProbes,
    private readonly now: () => number = Date.now,
  ) {
    this.lastActivity = now()
  }

  /** Whether any of the three options is set (no timer otherwise). */
  get needed(): boolean {
    return this.opts.requestTimeoutMs > 0 || this.opts.inactivityTimeoutMs > 0 || this.opts.deadlockTimeoutMs > 0
  }

  /** Marks I/O on a connection (cheap: a flag read by the next tick). */
  touch(): void {
    this.busy = true
  }

  start(): void {
    if (this.timer || !this.needed) return
    this.lastActivity = this.now()
    const tick = this.opts.tickMs ?? 250
    this.timer = setInterval(() => this.check(), tick)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** One check of every clock; public for tests. Returns what expired, if anything. */
  check(): ExpiredTimeout | null {
    const now = this.now()
    const active = this.probes.activeCount()
    if (this.busy || active > 0) {
      this.busy = false
      this.lastActivity = now
    }
    const { threads, requestTimeoutMs, inactivityTimeoutMs, deadlockTimeoutMs } = this.opts
    if (deadlockTimeoutMs > 0) {
      const last = this.probes.lastGilAcquired()
      if (last > 0 && now - last > deadlockTimeoutMs) return this.fire('deadlock-timeout', `GIL last acquired ${now - last} ms ago`)
    }
    const interrupter = this.opts.interrupter ?? null
    if (interrupter !== null) {
      const late = interrupter.expired(now)
      if (late !== null)
        return this.fire(
          'request-timeout',
          `${late.uri} is still running ${late.sinceMs} ms after it was interrupted with mod_wsgi.RequestTimeout (interrupt-timeout ${interrupter.interruptTimeoutMs} ms)`,
        )
    }
    if (requestTimeoutMs > 0 && active > 0) {
      const sum = this.probes.activeAgeSum(now)
      if (requestTimeoutExceeded(threads, sum, requestTimeoutMs)) {
        if (interrupter !== null) {
          interrupter.overdue(now)
          return null
        }
        const load = Math.round(requestLoadMs(threads, sum))
        const detail =
          threads <= 1
            ? `the active request has run for ${load} ms (request-timeout ${requestTimeoutMs} ms)`
            : `${active} active requests have run ${Math.round(sum)} ms in total, ${load} ms per thread over ${threads} threads (request-timeout ${requestTimeoutMs} ms)`
        return this.fire('request-timeout', detail)
      }
    }
    if (inactivityTimeoutMs > 0 && active === 0 && now - this.lastActivity > inactivityTimeoutMs)
      return this.fire('inactivity-timeout', `idle for ${now - this.lastActivity} ms`)
    return null
  }

  private fire(kind: ExpiredTimeout, detail: string): ExpiredTimeout {
    this.stop()
    this.probes.expired(kind, detail)
    return kind
  }
}
