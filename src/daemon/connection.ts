// One connection from an Apache child: parses its frames and carries one request at a time through the
// bridge, then waits idle for the next (docs/protocol.md, "Connections").
//
//   idle --REQUEST--> request (body open?) --BODY*/BODY_END--> request (body complete) --final--> idle
//   idle --AUTH--> hook --final (AUTH_RESULT)--> idle
//
// While a request or hook runs, the bridge may post a VAR_LOOKUP (mod_ssl.var_lookup()); the child's
// VAR_VALUE is accepted until it arrives, between any of the child's frames, and goes back to the bridge.
//
// Rules kept here:
// - Frames not allowed in the current state, oversized or malformed ones: one log line, this connection
//   destroyed (its request abandoned), never anything else.
// - Input backpressure: reading stops while the bridge holds more than INPUT_HIGH bytes of this request's
//   body unread (it calls inputResume when the app has consumed it), or while a queued request has that
//   much waiting. Reading never stops because of output: while our output is backed up we keep reading,
//   so the two directions can never wait on each other. Nor while a VAR_LOOKUP waits for its answer: the
//   application is blocked on it, and the answer may be behind body bytes.
// - Output: whole frames from the addon go to the socket as they are; above OUTPUT_HIGH buffered the
//   worker is paused until 'drain'.
// - The child closing mid-request abandons it: bridge.abort() (the app sees OSError).
import type { Socket } from 'node:net'
import { closeSync } from 'node:fs'
import type { Bridge } from '../native/types'
import { FrameReader } from '../protocol/frame-reader'
import { decodeVarValue, hookUri, readAuthFixed } from '../protocol/auth-frames'
import { GOAWAY_FRAME, encodeError, findRequestVar, lastFrameType, readRequestFixed } from '../protocol/frames'
import { isProtocolError } from '../protocol/protocol-error'
import { FrameType, requestSideBounds } from '../protocol/wire'
import type { Dispatcher, StartResult } from './dispatcher'
import { E } from './errors'
import { sendFrames, type SendWithFd } from './file-sender'
import { debug, log } from './log'
import { RequestJob } from './request-job'

/** Pause reading above this much unread request body (the bridge resumes us below 64 KiB). */
export const INPUT_HIGH = 256 * 1024
/** Pause the worker above this much output buffered in the socket. */
export const OUTPUT_HIGH = 512 * 1024
/** Buffers of at least this size (output written, input copied into the bridge) are handed back to the
 *  bridge (release) at once instead of waiting for a garbage collection. */
const RELEASE_MIN = 16 * 1024
/** Stopping: how long a connection accepted just before may take to send its first request. */
const QUIET_MS = 1000

const REQUEST_BOUNDS = requestSideBounds()
const ALLOW_REQUEST = [FrameType.REQUEST, FrameType.AUTH]
const ALLOW_BODY = [FrameType.BODY, FrameType.BODY_END]
const ALLOW_NONE: number[] = []
// The same while a VAR_LOOKUP waits for the child's VAR_VALUE.
const ALLOW_REQUEST_LOOKUP = [...ALLOW_REQUEST, FrameType.VAR_VALUE]
const ALLOW_BODY_LOOKUP = [...ALLOW_BODY, FrameType.VAR_VALUE]
const ALLOW_LOOKUP = [FrameType.VAR_VALUE]

export interface ConnectionHost {
  readonly bridge: Bridge
  readonly dispatcher: Dispatcher<RequestJob>
  readonly group: string
  /** socket-timeout in ms: longest wait on the child while a request needs it (0: none). */
  readonly socketTimeoutMs: number
  /** True once the daemon is stopping: requests get GOAWAY instead of running. */
  readonly stopping: boolean
  /** Stopping, but running requests still finish (no forced stop): a request that cannot be sent again
   *  is run rather than refused. */
  readonly draining?: boolean
  /** Sends a FILE frame with its descriptor (the addon's sendWithFd); null: send file contents instead. */
  readonly sendWithFd: SendWithFd | null
  /** A RETRYABLE request arriving now should be sent back with GOAWAY (no free thread, and other
   *  processes of the group may have one). */
  readonly shouldRedirect?: boolean
  /** The dispatcher's load changed (a request was queued or admitted): the accept gate follows it. */
  loadChanged?(): void
  nextId(): number
  /** I/O happened (inactivity-timeout). */
  touch(): void
  /** The connection is gone (called once). */
  released(conn: Connection): void
}

export class Connection {
  private readonly reader: FrameReader
  /** The request in progress (queued, running, or final but its body not fully received). */
  private job: RequestJob | null = null
  /** BODY/BODY_END frames still to come for the current (or a just-finished) request. */
  private bodyOpen = false
  /** END or ERROR has been written for the current job: the child may send its next REQUEST. */
  private responseEnded = false
  /** Any response frame written for the current job (no ERROR may follow then). */
  private responseStarted = false
  /** A REQUEST (or AUTH: stashedType) that arrived after END but before `final`; processed at `final`. */
  private stashed: Buffer | null = null
  private stashedType: number = FrameType.REQUEST
  private inputPaused = false
  private outputPaused = false
  /** A VAR_LOOKUP went out and its VAR_VALUE has not come back. It may outlive its job (an application
   *  thread asking as the request ends): the answer is still expected, then dropped. */
  private lookupPending = false
  /** Socket chunks of RELEASE_MIN bytes or more pushed since the reader was last between frames. */
  private readChunks: Buffer[] = []
  /** Frames waiting behind a FILE frame being sent (see file-sender.ts). */
  private fileQueue: Array<{ data: Buffer; fd: number; final: boolean }> | null = null
  private waitingOnPeer = false
  /** The last request was refused with GOAWAY: the connection ends when idle. */
  private goAwayWhenIdle = false
  private closing = false
  private gone = false
  /** Called once, at the first frame or the end of the connection (the server's accept gate). */
  private firstFrame: (() => void) | null = null
  /** A frame has arrived on this connection. */
  private spoke = false
  /** Stopping: waiting a moment for the first request of a connection accepted just before. */
  private quietTimer: NodeJS.Timeout | null = null

  constructor(
    readonly socket: Socket,
    private readonly host: ConnectionHost,
  ) {
    this.reader = new FrameReader(REQUEST_BOUNDS, (t, f, p) => this.onFrame(t, f, p), ALLOW_REQUEST)
    // No exception may escape an event handler: a bug here costs this connection, not the daemon.
    socket.on('data', (chunk: Buffer) => {
      try {
        this.onData(chunk)
      } catch (e) {
        this.internalError(e)
      }
    })
    socket.on('drain', () => this.guard(() => this.onDrain()))
    socket.on('timeout', () => this.guard(() => this.onTimeout()))
    socket.on('end', () => this.guard(() => this.onGone()))
    socket.on('close', () => this.guard(() => this.onGone()))
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') debug('connection error %s', err.code)
      else log.report(E.connectionError, err.message)
    })
  }

  private guard(fn: () => void): void {
    try {
      fn()
    } catch (e) {
      this.internalError(e)
    }
  }

  /** A bug, not the peer's fault: logged with its stack; this connection (and its request) dropped. */
  private internalError(e: unknown): void {
    log.report(E.uncaught, this.host.group, (e as Error)?.stack ?? String(e))
    this.closing = true
    this.socket.destroy()
    if (!this.gone) {
      try {
        this.onGone()
      } catch {
        /* already reported */
      }
    }
  }

  /** `fn` runs once, when the first frame arrives or the connection ends, whichever comes first. */
  onFirstFrame(fn: () => void): void {
    this.firstFrame = fn
  }

  private firstFrameSeen(): void {
    const fn = this.firstFrame
    this.firstFrame = null
    fn?.()
  }

  /** True when no request is in progress: a GOAWAY may be sent. */
  get idle(): boolean {
    return this.job === null && !this.bodyOpen
  }

  /** Stopping: an idle connection gets GOAWAY and closes now, a busy one after its request. */
  goAwayIfIdle(): void {
    if (!this.idle || this.closing || this.fileQueue !== null) return
    if (!this.spoke) {
      // Accepted but its first request not read yet: the child writes it as soon as it connects, and it
      // may be one that cannot be sent again (a streamed body). Let it arrive (startRequest decides);
      // a connection that stays silent gets its GOAWAY a little later.
      if (this.quietTimer === null) {
        this.quietTimer = setTimeout(() => {
          this.quietTimer = null
          this.spoke = true
          this.guard(() => this.goAwayIfIdle())
        }, QUIET_MS)
        this.quietTimer.unref()
      }
      return
    }
    this.goAway()
  }

  /**
   * Forced stop: the request in progress is answered with `status` if nothing of its response went out
   * yet (else the child sees a truncated response), then the connection is destroyed.
   */
  forceClose(status: number, message: string): void {
    if (this.gone) return
    const job = this.job
    if (!this.closing) {
      if (job && !this.responseStarted && !this.responseEnded) {
        this.responseStarted = true
        // GOAWAY behind the answer, in the same write: the child would otherwise pool this connection
        // and could send its next request on it before our end of file arrives (a 500, not a retry).
        this.socket.write(Buffer.concat([encodeError(status, message), GOAWAY_FRAME]))
        if (job.submitted) log.report(E.requestInterrupted, this.uri(job))
      } else if (job === null || this.responseEnded) {
        // Between requests (or the response complete, its `final` not yet come): a request the child
        // sent meanwhile was not run, and GOAWAY lets it send it again instead of failing it.
        this.socket.write(GOAWAY_FRAME)
      }
    }
    this.closing = true
    this.socket.end()
    // Give the kernel the bytes, then let go whatever the child does.
    setImmediate(() => this.socket.destroy()).unref()
  }

  destroy(): void {
    this.closing = true
    this.socket.destroy()
  }

  // ----------------------------------------------------------------------------------------------------
  // Input

  private onData(chunk: Buffer): void {
    this.host.touch()
    if (this.closing) return // after GOAWAY (or a failure) nothing read counts
    try {
      this.reader.push(chunk)
    } catch (e) {
      if (!isProtocolError(e)) throw e
      log.report(E.malformed, e.message)
      this.fail()
      return
    }
    if (chunk.length >= RELEASE_MIN) this.readChunks.push(chunk)
    if (this.readChunks.length > 0 && this.reader.atBoundary) this.releaseRead()
  }

  /**
   * The reader is between frames: the large socket chunks it was given are freed now (bridge.release)
   * unless body bytes not yet handed to the bridge, or a frame held back, still refer to them (those
   * are left to the garbage collector). Request bodies copied into the bridge otherwise waited for a
   * collection: V8 counts such memory loosely, and 1 MiB uploads held ~70 MiB. A job's REQUEST
   * payload is a copy of its own (ownCopy), so a request in progress does not pin its socket chunks.
   */
  private releaseRead(): void {
    const chunks = this.readChunks
    this.readChunks = []
    const job = this.job
    if (this.stashed !== null || (job !== null && job.pendingBody !== null)) return
    const bridge = this.host.bridge
    for (const c of chunks) bridge.release(c)
  }

  private onFrame(type: number, _flags: number, payload: Buffer): void {
    if (!this.spoke) {
      this.spoke = true
      if (this.firstFrame !== null) this.firstFrameSeen()
    }
    switch (type) {
      case FrameType.REQUEST:
        if (this.job !== null) {
          // Allowed only after END/ERROR went out but before `final`: hold it until then.
          this.stashed = payload
          this.stashedType = FrameType.REQUEST
          this.reader.pause()
          this.updateReading()
          return
        }
        this.startRequest(payload)
        return
      case FrameType.BODY:
        this.onBody(payload)
        return
      case FrameType.BODY_END:
        this.onBodyEnd()
        return
      case FrameType.AUTH:
        if (this.job !== null) {
          this.stashed = payload
          this.stashedType = FrameType.AUTH
          this.reader.pause()
          this.updateReading()
          return
        }
        this.startAuth(payload)
        return
      case FrameType.VAR_VALUE:
        this.onVarValue(payload)
        return
    }
  }

  /** A hook: queued like a request (threads, queue-timeout), without a body. */
  private startAuth(payload: Buffer): void {
    const fixed = readAuthFixed(payload) // throws ProtocolError on a bad fixed part
    if (this.host.stopping) {
      this.goAway()
      return
    }
    const job = new RequestJob(this.host.nextId(), this, ownCopy(payload), false, fixed.requestStartUs, 'auth')
    this.job = job
    this.bodyOpen = false
    this.responseEnded = false
    this.responseStarted = false
    this.setAllowed()
    const r = this.host.dispatcher.enqueue(job)
    if (r === 'refused') this.goAway()
    this.host.loadChanged?.()
    this.updateReading()
  }

  /** The child's answer to our VAR_LOOKUP. */
  private onVarValue(payload: Buffer): void {
    const value = decodeVarValue(payload) // throws ProtocolError when malformed
    this.lookupPending = false
    const job = this.job
    if (job !== null && job.submitted) this.host.bridge.varValue(job.id, value)
    this.setAllowed()
    this.updateReading()
  }

  private startNext(payload: Buffer): void {
    if (this.stashedType === FrameType.AUTH) this.startAuth(payload)
    else this.startRequest(payload)
  }

  private startRequest(payload: Buffer): void {
    const fixed = readRequestFixed(payload) // throws ProtocolError on a bad fixed part
    // Stopping: not processed, the child sends it again on a new connection (to a live process) —
    // unless it cannot (its body is streamed) and we are only draining: then it runs here.
    const runAnyway = this.host.stopping && fixed.streamed && this.host.draining === true
    if (this.host.stopping && !runAnyway) {
      this.goAway()
      return
    }
    if (fixed.retryable && this.host.shouldRedirect === true) {
      // Every thread is busy and the child can send it again: on a fresh connection it goes to
      // whichever process of the group accepts, and a process accepts only when it has a free thread.
      debug('request sent back: no free thread')
      this.goAway()
      return
    }
    const job = new RequestJob(this.host.nextId(), this, ownCopy(payload), fixed.bodyFollows, fixed.requestStartUs)
    job.streamed = fixed.streamed
    this.job = job
    this.bodyOpen = fixed.bodyFollows
    this.responseEnded = false
    this.responseStarted = false
    this.setAllowed()
    const r = this.host.dispatcher.enqueue(job, runAnyway)
    if (r === 'refused') this.goAway()
    this.host.loadChanged?.()
    this.updateReading()
  }

  private onBody(chunk: Buffer): void {
    const job = this.job
    if (job === null) return // body of a request already answered: discard
    if (job.submitted) {
      const buffered = this.host.bridge.input(job.id, chunk)
      // A payload the reader assembled from several socket chunks is a Buffer of its own: copied by
      // the bridge, it is freed now (a view into a socket chunk is left alone by release()).
      if (chunk.length >= RELEASE_MIN) this.host.bridge.release(chunk)
      if (buffered > INPUT_HIGH && !this.inputPaused) {
        this.inputPaused = true
        this.updateReading()
      }
      return
    }
    if (job.pendingBody === null) job.pendingBody = []
    job.pendingBody.push(chunk)
    job.pendingBytes += chunk.length
    if (job.pendingBytes > INPUT_HIGH) this.updateReading()
  }

  private onBodyEnd(): void {
    this.bodyOpen = false
    const job = this.job
    if (job !== null) {
      if (job.submitted) {
        this.host.bridge.endInput(job.id)
      } else job.pendingEnd = true
    }
    this.setAllowed()
    this.updateReading()
    if (job === null) this.becameIdle()
  }

  /** The bridge consumed enough of the body: read again. */
  inputResumed(): void {
    if (!this.inputPaused) return
    this.inputPaused = false
    this.guard(() => this.updateReading())
  }

  // ----------------------------------------------------------------------------------------------------
  // Dispatch hooks (called by the server's dispatcher)

  /** A thread is free for this job (or, `loopOnly`, an ASGI event loop may take it): hand it to the
   *  bridge with any body that already arrived. Returns where it went (dispatcher.ts). */
  submit(job: RequestJob, loopOnly = false): StartResult {
    const bridge = this.host.bridge
    // The bridge copies the payload; ours stays until the request ends, for the URI in log lines
    // (socket-timeout, a restart interrupting it).
    const payload = job.payload as Buffer
    let where: StartResult = 'thread'
    try {
      if (job.kind === 'auth') {
        if (loopOnly) return 'declined'
        bridge.submitAuth(job.id, payload)
      } else if (bridge.submit(job.id, payload, job.hasBody, loopOnly) === true) where = 'loop'
      else if (loopOnly) return 'declined'
    } catch (e) {
      // Not accepted by the bridge. The addon checks the variables we do not parse: a TypeError saying
      // they are malformed is the child's fault (one line, the connection dropped, as for any malformed
      // frame); anything else is ours, answered with 500. finish() frees the dispatcher slot.
      const malformed = e instanceof TypeError && /malformed/.test(e.message)
      if (malformed) log.report(E.malformed, e.message)
      else {
        log.report(E.uncaught, this.host.group, `submit failed: ${(e as Error)?.message ?? String(e)}`)
        this.answerError(job, 500, 'Internal Server Error: the daemon could not run the request')
      }
      this.host.dispatcher.finish(job.id)
      if (malformed) this.fail()
      return 'thread'
    }
    job.submitted = true
    if (this.gone) {
      bridge.abort(job.id)
      return where
    }
    let buffered = 0
    if (job.pendingBody !== null) {
      for (const c of job.pendingBody) buffered = bridge.input(job.id, c)
      job.pendingBody = null
      job.pendingBytes = 0
    }
    if (job.pendingEnd) bridge.endInput(job.id)
    this.inputPaused = buffered > INPUT_HIGH
    this.updateReading()
    return where
  }

  /** queue-timeout expired before a thread was free: 503, never run. */
  expire(job: RequestJob, waitedMs: number): void {
    log.report(E.queueTimeout, this.host.group, waitedMs, this.uri(job))
    job.payload = null
    this.answerError(job, 503, 'Service Unavailable: request queue timeout expired in daemon process')
  }

  /** Stopping before a thread took the job: it was not processed. */
  refuse(job: RequestJob): void {
    if (this.job !== job) return
    job.payload = null
    this.goAway()
  }

  private answerError(job: RequestJob, status: number, message: string): void {
    if (this.job !== job || this.gone) return
    this.responseStarted = true
    this.socket.write(encodeError(status, message))
    this.completeJob()
  }

  // ----------------------------------------------------------------------------------------------------
  // Output (called by the server's output router)

  /** Returns true to pause the worker until resume(). */
  output(job: RequestJob, data: Buffer, final: boolean, fd: number): boolean {
    if (this.gone || this.closing || this.job !== job) {
      // The connection died (or was force-closed): the app's output has nowhere to go.
      if (fd >= 0) closeQuietly(fd)
      return false
    }
    this.host.touch()
    if (final && fd < 0 && this.fileQueue === null && lastFrameType(data) === FrameType.GOAWAY) {
      // Not run (its script changed and this process restarts): the child sends the request again
      // elsewhere. GOAWAY goes out once its body, if any, has been read.
      this.goAwayWhenIdle = true
      this.completeJob()
      return false
    }
    // A VAR_LOOKUP comes alone in its event and is not part of the response.
    if (!final && data.length > 1 && data[1] === FrameType.VAR_LOOKUP && lastFrameType(data) === FrameType.VAR_LOOKUP) {
      this.lookupPending = true
      this.setAllowed()
      this.updateReading()
    } else this.responseStarted = true
    if (fd >= 0 || this.fileQueue !== null) return this.queueOutput(job, data, final, fd)
    if (data.length >= RELEASE_MIN) {
      // Freed once written, not at some later garbage collection (bridge.release).
      const bridge = this.host.bridge
      this.socket.write(data, () => bridge.release(data))
    } else if (data.length > 0) this.socket.write(data)
    if (final) {
      this.completeJob()
      return false
    }
    this.noteWritten(job, data)
    if (this.socket.writableLength > OUTPUT_HIGH) {
      this.outputPaused = true
      this.updateReading()
      return true
    }
    return false
  }

  /** `data` went out: once it ends the response, the child may send its next REQUEST (held until
   *  `final`). Wherever it went out from: directly, or from behind a FILE frame. */
  private noteWritten(job: RequestJob, data: Buffer): void {
    if (this.responseEnded || this.job !== job) return
    const last = lastFrameType(data)
    if (last === FrameType.END || last === FrameType.ERROR || last === FrameType.AUTH_RESULT) this.responseEnded = true
    this.setAllowed()
  }

  private onDrain(): void {
    if (!this.outputPaused) return
    this.outputPaused = false
    const job = this.job
    if (job && job.submitted) this.host.bridge.resume(job.id)
    this.updateReading()
  }

  /**
   * A FILE frame, or output that arrived behind one: file-sender.ts passes the descriptor (or the file's
   * bytes); the worker waits meanwhile and everything after goes out in order.
   */
  private queueOutput(job: RequestJob, data: Buffer, final: boolean, fd: number): boolean {
    const q = this.fileQueue
    if (q !== null) {
      q.push({ data, fd, final })
      return !final
    }
    this.fileQueue = [{ data, fd, final }]
    const pump = (): void => {
      const fq = this.fileQueue
      const next = fq?.shift()
      if (!fq || !next) {
        this.fileQueue = null
        if (this.job === job && job.submitted && !this.gone) this.host.bridge.resume(job.id)
        if (this.closing === false && this.host.stopping) this.goAwayIfIdle()
        return
      }
      // Before, not after: sendFrames writes the frames at once but calls back later, and the child may
      // send its next REQUEST as soon as it has read an END.
      this.noteWritten(job, next.data)
      sendFrames(this.socket, next.data, next.fd, this.host.sendWithFd, (err) => {
        if (err) log.report(E.fileSend, err.message)
        if (next.final) {
          this.fileQueue = null
          if (this.job === job) this.completeJob()
          return
        }
        if (err) {
          this.fileQueue = null
          this.fail()
          return
        }
        pump()
      })
    }
    pump()
    return !final
  }

  /** The job's last event: the connection takes the next request (or its body's end). */
  private completeJob(): void {
    this.job = null
    this.responseEnded = false
    this.responseStarted = false
    this.outputPaused = false
    this.inputPaused = false
    if (this.bodyOpen) {
      // The app did not read its whole body: discard the rest, then the connection is idle.
      this.setAllowed()
      this.updateReading()
      return
    }
    this.becameIdle()
  }

  private becameIdle(): void {
    this.setAllowed()
    if (this.host.stopping || this.closing || this.goAwayWhenIdle) {
      this.goAway()
      return
    }
    this.updateReading()
    const next = this.stashed
    if (next !== null) {
      this.stashed = null
      try {
        this.startNext(next)
        // Unless it was refused (GOAWAY): then its body, held behind it, is not ours to read.
        if (!this.closing) this.reader.resume()
      } catch (e) {
        if (!isProtocolError(e)) throw e
        log.report(E.malformed, e.message)
        this.fail()
      }
    }
  }

  // ----------------------------------------------------------------------------------------------------
  // State helpers

  private setAllowed(): void {
    const lookup = this.lookupPending
    if (this.bodyOpen) this.reader.setAllowed(lookup ? ALLOW_BODY_LOOKUP : ALLOW_BODY)
    else if (this.job === null || this.responseEnded) this.reader.setAllowed(lookup ? ALLOW_REQUEST_LOOKUP : ALLOW_REQUEST)
    else this.reader.setAllowed(lookup ? ALLOW_LOOKUP : ALLOW_NONE)
  }

  /** Pauses or resumes reading the socket, and arms socket-timeout while we wait on the child. */
  private updateReading(): void {
    if (this.gone) return
    const job = this.job
    const held =
      this.stashed !== null ||
      (this.inputPaused && !this.outputPaused && !this.lookupPending) ||
      (job !== null && !job.submitted && job.pendingBytes > INPUT_HIGH)
    if (held) {
      if (!this.socket.isPaused()) this.socket.pause()
    } else if (this.socket.isPaused()) this.socket.resume()
    // Waiting on the child: for body bytes it still has to send, for it to take our output, or for the
    // answer to a VAR_LOOKUP.
    const waiting = (this.bodyOpen && !held) || this.outputPaused || this.lookupPending
    if (waiting !== this.waitingOnPeer && this.host.socketTimeoutMs > 0) {
      this.waitingOnPeer = waiting
      this.socket.setTimeout(waiting ? this.host.socketTimeoutMs : 0)
    }
  }

  private onTimeout(): void {
    if (!this.waitingOnPeer || this.gone) return
    const job = this.job
    const doing = this.outputPaused
      ? 'writing the response to'
      : this.lookupPending && !this.bodyOpen
        ? 'waiting for a variable lookup from'
        : 'reading the request body from'
    log.report(E.socketTimeout, Math.round(this.host.socketTimeoutMs / 1000), doing, job ? this.uri(job) : '-')
    this.fail()
  }

  private goAway(): void {
    if (this.closing || this.gone) return
    this.closing = true
    // Frames behind the refused request (its body) are not ours to read any more.
    this.reader.pause()
    const socket = this.socket
    socket.end(GOAWAY_FRAME)
    // Once the bytes are with the kernel the child can read them after we close: do not wait for it.
    socket.once('finish', () => socket.destroy())
  }

  /** Drops the connection, abandoning its request. */
  private fail(): void {
    this.closing = true
    this.socket.destroy()
    this.onGone()
  }

  private onGone(): void {
    if (this.gone) return
    // Closing on our side (GOAWAY, a protocol error already logged): what was left unread is moot.
    const ourClose = this.closing
    this.gone = true
    this.closing = true
    if (this.quietTimer !== null) clearTimeout(this.quietTimer)
    this.quietTimer = null
    if (this.firstFrame !== null) this.firstFrameSeen()
    this.stashed = null
    const job = this.job
    if (job !== null) {
      if (job.queued) this.host.dispatcher.cancel(job)
      else if (job.submitted) {
        debug('request %d abandoned by the child', job.id)
        log.report(E.clientGone, job.id)
        this.host.bridge.abort(job.id)
        // A worker waiting for room to write must wake up to see the abort.
        if (this.outputPaused || this.fileQueue !== null) this.host.bridge.resume(job.id)
      }
      // Its `final` still comes through the bridge and frees the dispatcher slot.
    } else if (!ourClose && !this.reader.atBoundary) {
      log.report(E.truncatedFrame, `${this.reader.buffered} bytes of an incomplete frame`)
    }
    if (this.fileQueue !== null) {
      for (const f of this.fileQueue) if (f.fd >= 0) closeQuietly(f.fd)
      this.fileQueue = null
    }
    this.host.released(this)
    if (!this.socket.destroyed) this.socket.destroy()
  }

  private uri(job: RequestJob): string {
    const p = job.payload
    if (p === null) return `request ${job.id}`
    if (job.kind === 'auth') return hookUri(p) ?? `hook ${job.id}`
    return findRequestVar(p, 'REQUEST_URI') ?? findRequestVar(p, 'SCRIPT_FILENAME') ?? `request ${job.id}`
  }
}

/** A REQUEST/AUTH payload kept for the life of its job (log lines name its URI): copied out of the
 *  socket chunk it arrived in, so that the chunk can be freed as soon as its body bytes are in the
 *  bridge (releaseRead). A few hundred bytes to a few KiB per request. */
function ownCopy(payload: Buffer): Buffer {
  return Buffer.from(payload)
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    /* already closed */
  }
}
