// What a request and a hook have in common: one job for the dispatcher and the bridge, answered once.
// The subclasses (wsgi-exchange.ts, hook-exchange.ts) say how the job is started and what input it takes.
import { addonErrorCode } from '../native/errors'
import { encodeError } from '../protocol/frames'
import { E } from './errors'
import type { Exchange, ExchangeOwner } from './exchange'
import { log } from './log'
import type { StartResult } from './dispatcher'
import type { JobOwner, RequestJob } from './request-job'

export abstract class JobExchange implements Exchange, JobOwner {
  abstract readonly job: RequestJob
  abstract readonly accepts: readonly number[]
  abstract readonly inputOpen: boolean
  abstract readonly holdsReading: boolean
  abstract readonly pinsInput: boolean
  done = false
  responseStarted = false
  responseEnded = false

  constructor(protected readonly conn: ExchangeOwner) {}

  abstract onFrame(type: number, payload: Buffer): void
  abstract uri(): string
  tag(): string {
    return ''
  }
  /** Hands the job to the bridge (submit or submitAuth), or only to an ASGI event loop (`loopOnly`);
   *  returns where it went, 'declined' when `loopOnly` and it is not for a loop. Throws what the bridge
   *  throws. */
  protected abstract startInBridge(job: RequestJob, loopOnly: boolean): StartResult
  /** After the bridge took the job: input that arrived before. */
  protected afterSubmit(_job: RequestJob): void {}

  /** Whether this exchange is still the one its connection carries, with its job not yet complete. */
  protected get current(): boolean {
    return !this.done
  }

  admit(): void {
    const host = this.conn.host
    const r = host.dispatcher.enqueue(this.job, this.runEvenIfStopping)
    if (r === 'refused') this.conn.goAway()
  }

  /** A request that cannot be sent again still runs while the daemon drains (wsgi-exchange.ts). */
  protected get runEvenIfStopping(): boolean {
    return false
  }

  // JobOwner ---------------------------------------------------------------------------------------------

  submit(job: RequestJob, loopOnly: boolean): StartResult {
    const host = this.conn.host
    let where: StartResult
    try {
      where = this.startInBridge(job, loopOnly)
      if (where === 'declined') return where
    } catch (e) {
      // Not accepted by the bridge. The addon checks the variables we do not parse: ERR_WSGI_MALFORMED
      // is the child's fault (one line, the connection dropped, as for any malformed frame); anything
      // else is ours, answered with 500. finish() frees the dispatcher slot.
      const malformed = addonErrorCode(e) === 'ERR_WSGI_MALFORMED'
      if (malformed) log.report(E.malformed, (e as Error).message)
      else {
        log.reportTagged(this.tag(), E.uncaught, host.group, `submit failed: ${(e as Error)?.message ?? String(e)}`)
        this.answerError(500, 'Internal Server Error: the daemon could not run the request', true)
      }
      host.dispatcher.finish(job.id)
      if (malformed) this.conn.fail()
      return 'thread'
    }
    job.submitted = true
    if (this.conn.closed) {
      host.bridge.abort(job.id)
      return where
    }
    this.afterSubmit(job)
    return where
  }

  expire(job: RequestJob, waitedMs: number): void {
    log.reportTagged(this.tag(), E.queueTimeout, this.conn.host.group, waitedMs, this.uri())
    job.payload = null
    job.status = 503
    this.answerError(503, 'Service Unavailable: request queue timeout expired in daemon process', true)
  }

  refuse(job: RequestJob): void {
    if (!this.current) return
    job.payload = null
    this.conn.goAway()
  }

  output(_job: RequestJob, data: Buffer, final: boolean, fd: number, info: number): boolean {
    return this.conn.output(this, data, final, fd, info)
  }

  inputResumed(_job: RequestJob): void {}

  drop(): void {
    this.conn.fail()
  }

  /** An answer of the daemon's own (queue-timeout, a failed submit): one ERROR, the job complete.
   *  `logged`: the cause was logged, naming the request (the child then logs its line at info). */
  protected answerError(status: number, message: string, logged = false): void {
    if (!this.current) return
    if (!this.conn.closed) {
      this.responseStarted = true
      this.conn.write(encodeError(status, message, logged))
    }
    this.complete()
  }

  /** The job's last event: the connection takes the next request (or this request's body's end). */
  complete(): void {
    if (this.done) return
    this.done = true
    this.conn.jobDone(this)
    if (!this.inputOpen) this.conn.finished(this)
  }

  abandoned(): void {
    const job = this.job
    const host = this.conn.host
    if (this.done) return
    if (job.queued) host.dispatcher.cancel(job)
    else if (job.submitted) {
      log.reportTagged(this.tag(), E.clientGone, job.id)
      host.bridge.abort(job.id)
    }
    // Its `final` still comes through the bridge and frees the dispatcher slot.
  }
}
