// request-timeout for ASGI requests. They hold no thread, so mod_wsgi's measure (the summed age of the
// requests on threads, over `threads`: timeouts.ts) does not fit them, nor does restarting the process
// for one: an ASGI request that has gone request-timeout without sending anything (since it started,
// or since its last output: a stream that keeps sending, server-sent events say, lives on) has its
// task cancelled (bridge.cancel) and its client gets 504, or a truncated response when it had begun;
// the process serves on. A few checks a second on an unref'd timer, and only while ASGI requests run;
// per request only the output handler's timestamp (server.ts).
import type { Bridge } from '../../native/types'
import { findRequestVar } from '../../protocol/frames'
import type { Dispatcher } from '../dispatcher'
import { E } from '../errors'
import { log } from '../log'
import type { RequestJob } from '../request-job'

export class LoopRequestTimer {
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly group: string,
    private readonly timeoutMs: number,
    private readonly dispatcher: Dispatcher<RequestJob>,
    private readonly bridge: Pick<Bridge, 'cancel'>,
    private readonly now: () => number = Date.now,
    private readonly tickMs = 250,
  ) {}

  start(): void {
    if (this.timer !== null || this.timeoutMs <= 0) return
    this.timer = setInterval(() => this.check(), this.tickMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Cancels every ASGI request silent for longer than request-timeout; returns how many. Public for tests. */
  check(): number {
    if (this.dispatcher.loopCount === 0) return 0
    const now = this.now()
    let n = 0
    for (const job of this.dispatcher.active.values()) {
      const since = Math.max(job.startedAt, job.progressAt ?? 0)
      // An open WebSocket is not a request that should answer: its own limits apply (websocket/).
      if (!job.onLoop || job.cancelled || job.upgraded || now - since <= this.timeoutMs) continue
      job.cancelled = true
      n++
      const uri = (job.payload && findRequestVar(job.payload, 'REQUEST_URI')) || `request ${job.id}`
      log.report(E.asgiRequestTimeout, this.group, Math.round((now - since) / 1000), uri)
      this.bridge.cancel?.(job.id)
    }
    return n
  }
}
