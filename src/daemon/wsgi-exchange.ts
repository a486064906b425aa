// A request for an application: REQUEST, then its body (BODY* BODY_END) when it has one, answered by the
// application's response (HEAD, BODY/FILE, END) or an ERROR. The body may still be arriving after the
// response ended: the rest is read and discarded before the connection takes the next request.
//
// Input backpressure: reading stops while the bridge holds more than INPUT_HIGH bytes of the body unread
// (it calls inputResume when the app has consumed it), or while a queued request has that much waiting.
import { findRequestVar, readRequestFixed } from '../protocol/frames'
import { FrameType } from '../protocol/wire'
import type { StartResult } from './dispatcher'
import type { ExchangeOwner } from './exchange'
import { JobExchange } from './job-exchange'
import { debug } from './log'
import { RequestJob } from './request-job'

/** Pause reading above this much unread request body (the bridge resumes us below 64 KiB). */
export const INPUT_HIGH = 256 * 1024
/** Body chunks of at least this size, copied by the bridge, are freed at once (bridge.release). */
const RELEASE_MIN = 16 * 1024

const ACCEPT_BODY: readonly number[] = [FrameType.BODY, FrameType.BODY_END]
const ACCEPT_NONE: readonly number[] = []

export class RequestExchange extends JobExchange {
  readonly job: RequestJob
  private bodyOpen: boolean
  private inputPaused = false

  /**
   * Starts the exchange of a REQUEST frame, or refuses it (GOAWAY) and returns null: the daemon is
   * stopping, or every thread is busy and the child can send it to another process. Throws a
   * ProtocolError on a bad fixed part.
   */
  static start(conn: ExchangeOwner, payload: Buffer): RequestExchange | null {
    const fixed = readRequestFixed(payload)
    const host = conn.host
    // Stopping: not processed, the child sends it again on a new connection (to a live process) —
    // unless it cannot (its body is streamed) and we are only draining: then it runs here.
    const runAnyway = host.stopping && fixed.streamed && host.draining === true
    if (host.stopping && !runAnyway) {
      conn.goAway()
      return null
    }
    if (fixed.retryable && host.shouldRedirect === true) {
      // Every thread is busy and the child can send it again: on a fresh connection it goes to
      // whichever process of the group accepts, and a process accepts only when it has a free thread.
      debug('request sent back: no free thread')
      conn.goAway()
      return null
    }
    return new RequestExchange(conn, payload, fixed.bodyFollows, fixed.requestStartUs, fixed.streamed, runAnyway)
  }

  private constructor(
    conn: ExchangeOwner,
    payload: Buffer,
    bodyFollows: boolean,
    requestStartUs: number,
    streamed: boolean,
    private readonly runAnyway: boolean,
  ) {
    super(conn)
    this.job = new RequestJob(conn.host.nextId(), this, ownCopy(payload), bodyFollows, requestStartUs)
    this.job.streamed = streamed
    this.bodyOpen = bodyFollows
  }

  protected override get runEvenIfStopping(): boolean {
    return this.runAnyway
  }

  get accepts(): readonly number[] {
    return this.bodyOpen ? ACCEPT_BODY : ACCEPT_NONE
  }

  get inputOpen(): boolean {
    return this.bodyOpen
  }

  get holdsReading(): boolean {
    const job = this.job
    if (this.done) return false
    return this.inputPaused || (!job.submitted && job.pendingBytes > INPUT_HIGH)
  }

  get pinsInput(): boolean {
    return !this.done && this.job.pendingBody !== null
  }

  onFrame(type: number, payload: Buffer): void {
    if (type === FrameType.BODY) this.onBody(payload)
    else if (type === FrameType.BODY_END) this.onBodyEnd()
  }

  private onBody(chunk: Buffer): void {
    if (this.done) return // the body of a request already answered: discarded
    const job = this.job
    const bridge = this.conn.host.bridge
    if (job.submitted) {
      const buffered = bridge.input(job.id, chunk)
      // A payload the reader assembled from several socket chunks is a Buffer of its own: copied by
      // the bridge, it is freed now (a view into a socket chunk is left alone by release()).
      if (chunk.length >= RELEASE_MIN) bridge.release(chunk)
      if (buffered > INPUT_HIGH && !this.inputPaused) {
        this.inputPaused = true
        this.conn.changed()
      }
      return
    }
    if (job.pendingBody === null) job.pendingBody = []
    job.pendingBody.push(chunk)
    job.pendingBytes += chunk.length
    if (job.pendingBytes > INPUT_HIGH) this.conn.changed()
  }

  private onBodyEnd(): void {
    this.bodyOpen = false
    const job = this.job
    if (!this.done) {
      if (job.submitted) this.conn.host.bridge.endInput(job.id)
      else job.pendingEnd = true
    }
    this.conn.changed()
    if (this.done) this.conn.finished(this)
  }

  protected startInBridge(job: RequestJob, loopOnly: boolean): StartResult {
    // The bridge copies the payload; ours stays until the request ends, for the URI in log lines
    // (socket-timeout, a restart interrupting it). It answers true when an ASGI event loop took it.
    if (this.conn.host.bridge.submit(job.id, job.payload as Buffer, job.hasBody, loopOnly) === true) return 'loop'
    return loopOnly ? 'declined' : 'thread'
  }

  protected override afterSubmit(job: RequestJob): void {
    const bridge = this.conn.host.bridge
    let buffered = 0
    if (job.pendingBody !== null) {
      for (const c of job.pendingBody) buffered = bridge.input(job.id, c)
      job.pendingBody = null
      job.pendingBytes = 0
    }
    if (job.pendingEnd) bridge.endInput(job.id)
    this.inputPaused = buffered > INPUT_HIGH
    this.conn.changed()
  }

  override inputResumed(): void {
    if (!this.inputPaused) return
    this.inputPaused = false
    this.conn.changed()
  }

  override complete(): void {
    this.inputPaused = false
    super.complete()
  }

  uri(): string {
    const p = this.job.payload
    if (p === null) return `request ${this.job.id}`
    return findRequestVar(p, 'REQUEST_URI') ?? findRequestVar(p, 'SCRIPT_FILENAME') ?? `request ${this.job.id}`
  }

  override tag(): string {
    return requestTag(this.job.payload)
  }
}

/** "[client ADDR:PORT] [request ID] ": what names a request in the daemon's log lines (log.ts), from its
 *  REQUEST payload; '' without one. */
export function requestTag(p: Buffer | null): string {
  if (p === null) return ''
  const addr = findRequestVar(p, 'REMOTE_ADDR')
  const port = findRequestVar(p, 'REMOTE_PORT')
  const id = findRequestVar(p, 'mod_wsgi.request_id')
  return (addr ? `[client ${addr}${port ? `:${port}` : ''}] ` : '') + (id ? `[request ${id}] ` : '')
}

/** A REQUEST/AUTH payload kept for the life of its job (log lines name its URI): copied out of the
 *  socket chunk it arrived in, so that the chunk can be freed as soon as its body bytes are in the
 *  bridge (Connection.releaseRead). A few hundred bytes to a few KiB per request. */
export function ownCopy(payload: Buffer): Buffer {
  return Buffer.from(payload)
}
