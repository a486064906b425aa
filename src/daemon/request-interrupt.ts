// interrupt-timeout (mod_wsgi 6): when request-timeout's measure is exceeded, the requests that ran past
// request-timeout are interrupted one by one instead of restarting the process: the addon raises
// mod_wsgi.RequestTimeout in each one's own thread (Bridge.interrupt). A request that unwinds ends with
// 504 and the process carries on; one still running interrupt-timeout after its first attempt makes the
// watchdog restart the process as request-timeout always did. Detection is request-timeout's own
// (timeouts.ts): with threads > 1 its measure is the mean load per thread, and whenever that is over,
// so is the age of the oldest request, which is therefore always among those interrupted.
import { hookUri } from '../protocol/auth-frames'
import { findRequestVar } from '../protocol/frames'

export interface ActiveRequest {
  id: number
  ageMs: number
  /** For log lines. */
  uri: string
}

export interface InterruptProbes {
  /** The requests and hooks running now. */
  active(now: number): ActiveRequest[]
  /** Raises RequestTimeout in the request's thread; false when it is not running Python now. */
  interrupt(id: number): boolean
  /** A RequestTimeout was raised in `req` (for the log). */
  raised(req: ActiveRequest): void
}

interface Attempt {
  firstAt: number
  raised: boolean
}

export class RequestInterrupter {
  private readonly attempts = new Map<number, Attempt>()

  constructor(
    private readonly opts: { requestTimeoutMs: number; interruptTimeoutMs: number },
    private readonly probes: InterruptProbes,
  ) {}

  /** request-timeout's measure is over: every request past request-timeout (at least the oldest one) is
   *  interrupted, once; one that could not be reached yet is tried again on the next call. */
  overdue(now: number): void {
    const active = this.probes.active(now)
    if (active.length === 0) return
    let targets = active.filter((r) => r.ageMs > this.opts.requestTimeoutMs)
    if (targets.length === 0) targets = [active.reduce((a, b) => (b.ageMs > a.ageMs ? b : a))]
    for (const r of targets) {
      let a = this.attempts.get(r.id)
      if (a === undefined) {
        a = { firstAt: now, raised: false }
        this.attempts.set(r.id, a)
      }
      if (a.raised) continue
      if (this.probes.interrupt(r.id)) {
        a.raised = true
        this.probes.raised(r)
      }
    }
  }

  get interruptTimeoutMs(): number {
    return this.opts.interruptTimeoutMs
  }

  /** A request interrupted (or tried) more than interrupt-timeout ago that is still running, if any.
   *  Forgets the requests that have ended. */
  expired(now: number): (ActiveRequest & { sinceMs: number }) | null {
    if (this.attempts.size === 0) return null
    const active = new Map(this.probes.active(now).map((r) => [r.id, r]))
    for (const [id, a] of this.attempts) {
      const r = active.get(id)
      if (r === undefined) {
        this.attempts.delete(id)
        continue
      }
      if (now - a.firstAt > this.opts.interruptTimeoutMs) return { ...r, sinceMs: now - a.firstAt }
    }
    return null
  }
}

/** The URI of a REQUEST or AUTH payload, for log lines. */
export function payloadUri(id: number, kind: 'request' | 'auth', payload: Buffer | null): string {
  if (payload === null) return `request ${id}`
  if (kind === 'auth') return hookUri(payload) ?? `hook ${id}`
  return findRequestVar(payload, 'REQUEST_URI') ?? findRequestVar(payload, 'SCRIPT_FILENAME') ?? `request ${id}`
}
