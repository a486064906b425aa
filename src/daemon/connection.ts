// One connection from an Apache child: the transport under the exchanges it carries one at a time
// (exchange.ts: a request, a hook), then idle until the next (docs/protocol.md, "Connections").
//
//   idle --REQUEST/AUTH--> exchange (its own frames: a body) --its job final, input ended--> idle
//
// Kept here, for every kind of exchange:
// - Framing: frames not allowed now (the exchange's, VAR_VALUE while a lookup waits, the frames that
//   open the next exchange once the response ended), oversized or malformed ones: one log line, this
//   connection destroyed (its exchange abandoned), never anything else.
// - A frame that opens the next exchange, sent after the response ended but before the job's `final`, is
//   held (reading paused) until then.
// - Read backpressure: reading stops while the exchange holds it (its input is not consumed), never
//   because of output: while our output is backed up we keep reading, so the two directions can never
//   wait on each other. Nor while a VAR_LOOKUP waits for its answer: the application is blocked on it,
//   and the answer may be behind body bytes.
// - Output: whole frames from the addon go to the socket as they are; a FILE frame's descriptor is passed
//   in order (file-sender.ts); above OUTPUT_HIGH buffered the producer is paused until 'drain'.
// - VAR_LOOKUP/VAR_VALUE: a lookup may outlive its job (an application thread asking as the request
//   ends): the answer is still expected, then dropped.
// - socket-timeout while we wait on the child, GOAWAY, forced closes, the child going away.
// - The upgrade: when an ASGI application accepts a WebSocket (an output event whose HEAD carries
//   UPGRADE), the connection stops being framed and is handed over, socket and job, to a tunnel
//   (websocket/tunnel.ts) that it only forwards the socket's events to until the socket closes.
import { closeSync } from 'node:fs'
import type { Socket } from 'node:net'
import { decodeVarValue } from '../protocol/auth-frames'
import { GOAWAY_FRAME, encodeError } from '../protocol/frames'
import { FrameReader } from '../protocol/frame-reader'
import { isProtocolError } from '../protocol/protocol-error'
import { FrameType, OutputInfo, requestSideBounds } from '../protocol/wire'
import { E } from './errors'
import type { ConnectionHost, Exchange, ExchangeOwner } from './exchange'
import { sendFrames } from './file-sender'
import { HookExchange } from './hook-exchange'
import { debug, log } from './log'
import { WebSocketTunnel } from './websocket/tunnel'
import { RequestExchange } from './wsgi-exchange'

export type { ConnectionHost } from './exchange'
export { INPUT_HIGH } from './wsgi-exchange'

/** Pause the producer above this much output buffered in the socket. */
export const OUTPUT_HIGH = 512 * 1024
/** Buffers of at least this size (output written, socket chunks read) are handed back to the bridge
 *  (release) at once instead of waiting for a garbage collection. */
const RELEASE_MIN = 16 * 1024
/** Stopping: how long a connection accepted just before may take to send its first request. */
const QUIET_MS = 1000

const REQUEST_BOUNDS = requestSideBounds()

/** The frames that open an exchange, and how. */
const OPENERS = new Map<number, (conn: ExchangeOwner, payload: Buffer) => Exchange | null>([
  [FrameType.REQUEST, (c, p) => RequestExchange.start(c, p)],
  [FrameType.AUTH, (c, p) => HookExchange.start(c, p)],
])
const OPENER_TYPES: readonly number[] = [...OPENERS.keys()]

/** The frames allowed now: the exchange's, the openers of the next, VAR_VALUE while a lookup waits.
 *  Built once per combination (an exchange's `accepts` is one of a few constant arrays). */
const allowedCache = new WeakMap<readonly number[], Array<readonly number[] | undefined>>()
function allowedFrames(accepts: readonly number[], openers: boolean, lookup: boolean): readonly number[] {
  let v = allowedCache.get(accepts)
  if (v === undefined) allowedCache.set(accepts, (v = []))
  const k = (openers ? 1 : 0) | (lookup ? 2 : 0)
  return (v[k] ??= [...accepts, ...(openers ? OPENER_TYPES : []), ...(lookup ? [FrameType.VAR_VALUE] : [])])
}
const NO_FRAMES: readonly number[] = []

interface FileItem {
  data: Buffer
  fd: number
  final: boolean
  info: number
}

export class Connection implements ExchangeOwner {
  private readonly reader: FrameReader
  /** The exchange in progress, until its job completed and its input ended. */
  private exchange: Exchange | null = null
  /** A frame that opens the next exchange, arrived before the current job's `final`; opened then. */
  private next: { type: number; payload: Buffer } | null = null
  private outputPaused = false
  /** A VAR_LOOKUP went out and its VAR_VALUE has not come back. */
  private lookupPending = false
  /** Socket chunks of RELEASE_MIN bytes or more pushed since the reader was last between frames. */
  private readChunks: Buffer[] = []
  /** Frames waiting behind a FILE frame being sent (see file-sender.ts). */
  private fileQueue: FileItem[] | null = null
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
  /** The WebSocket this connection was handed over to: its bytes are no longer frames. */
  private tunnel: WebSocketTunnel | null = null

  constructor(
    readonly socket: Socket,
    readonly host: ConnectionHost,
  ) {
    this.reader = new FrameReader(REQUEST_BOUNDS, (t, f, p) => this.onFrame(t, f, p), OPENER_TYPES as number[])
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

  get closed(): boolean {
    return this.gone || this.closing
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

  /** True when no exchange is in progress: a GOAWAY may be sent. */
  get idle(): boolean {
    return this.exchange === null
  }

  /** Stopping: an idle connection gets GOAWAY and closes now, a busy one after its request. */
  goAwayIfIdle(): void {
    if (!this.idle || this.closing || this.fileQueue !== null) return
    if (!this.spoke) {
      // Accepted but its first request not read yet: the child writes it as soon as it connects, and it
      // may be one that cannot be sent again (a streamed body). Let it arrive (the exchange decides);
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
    if (this.tunnel !== null) {
      this.closing = true
      this.tunnel.forceClose()
      return
    }
    const ex = this.exchange
    const running = ex !== null && !ex.done
    if (!this.closing) {
      if (running && !ex.responseStarted && !ex.responseEnded) {
        ex.responseStarted = true
        if (ex.job.status === 0) ex.job.status = status
        this.host.requestAnswered?.(ex.job, status)
        // The one line at error for this request, naming it and why (the child's is at info then).
        const logged = ex.job.submitted
        if (logged) log.reportTagged(ex.tag(), E.requestInterrupted, this.host.group, status, message, ex.uri())
        // GOAWAY behind the answer, in the same write: the child would otherwise pool this connection
        // and could send its next request on it before our end of file arrives (a 500, not a retry).
        this.socket.write(Buffer.concat([encodeError(status, message, logged), GOAWAY_FRAME]))
      } else if (!running || ex.responseEnded) {
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
    if (this.tunnel !== null) return this.tunnel.onData(chunk)
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
   * unless input not yet handed to the bridge, or a frame held back, still refer to them (those are left
   * to the garbage collector). Request bodies copied into the bridge otherwise waited for a collection:
   * V8 counts such memory loosely, and 1 MiB uploads held ~70 MiB. A job's REQUEST payload is a copy of
   * its own (ownCopy), so a request in progress does not pin its socket chunks.
   */
  private releaseRead(): void {
    const chunks = this.readChunks
    this.readChunks = []
    if (this.next !== null || this.exchange?.pinsInput === true) return
    const bridge = this.host.bridge
    for (const c of chunks) bridge.release(c)
  }

  private onFrame(type: number, _flags: number, payload: Buffer): void {
    if (!this.spoke) {
      this.spoke = true
      if (this.firstFrame !== null) this.firstFrameSeen()
    }
    if (type === FrameType.VAR_VALUE) return this.onVarValue(payload)
    const ex = this.exchange
    if (!OPENERS.has(type)) {
      ex?.onFrame(type, payload)
      return
    }
    if (ex !== null) {
      // Allowed only after the response ended but before the job's `final`: hold it until then.
      this.next = { type, payload }
      this.reader.pause()
      this.updateReading()
      return
    }
    this.open(type, payload)
  }

  /** Opens the exchange a frame starts (or it refuses itself with GOAWAY). */
  private open(type: number, payload: Buffer): void {
    const ex = (OPENERS.get(type) as (c: ExchangeOwner, p: Buffer) => Exchange | null)(this, payload) // throws ProtocolError
    if (ex === null) return
    this.exchange = ex
    this.setAllowed()
    ex.admit()
    this.host.loadChanged?.()
    this.updateReading()
  }

  /** The child's answer to our VAR_LOOKUP. */
  private onVarValue(payload: Buffer): void {
    const value = decodeVarValue(payload) // throws ProtocolError when malformed
    this.lookupPending = false
    const ex = this.exchange
    if (ex !== null && !ex.done && ex.job.submitted) this.host.bridge.varValue(ex.job.id, value)
    this.setAllowed()
    this.updateReading()
  }

  // ----------------------------------------------------------------------------------------------------
  // ExchangeOwner

  write(frames: Buffer): void {
    this.socket.write(frames)
  }

  changed(): void {
    this.guard(() => {
      this.setAllowed()
      this.updateReading()
    })
  }

  jobDone(_ex: Exchange): void {
    this.outputPaused = false
    this.setAllowed()
    this.updateReading()
  }

  finished(ex: Exchange): void {
    if (this.exchange !== ex) return
    this.exchange = null
    this.becameIdle()
  }

  /** Returns true to pause the producer until resume(). */
  output(ex: Exchange, data: Buffer, final: boolean, fd: number, info: number): boolean {
    if (this.gone || this.closing || this.exchange !== ex || ex.done) {
      // The connection died (or was force-closed): the app's output has nowhere to go.
      if (fd >= 0) closeQuietly(fd)
      return false
    }
    this.host.touch()
    if (final && fd < 0 && this.fileQueue === null && (info & OutputInfo.GOAWAY) !== 0) {
      // Not run (its script changed and this process restarts): the child sends the request again
      // elsewhere. GOAWAY goes out once its body, if any, has been read.
      this.goAwayWhenIdle = true
      ex.complete()
      return false
    }
    // A VAR_LOOKUP comes alone in its event and is not part of the response.
    if ((info & OutputInfo.LOOKUP) !== 0) {
      this.lookupPending = true
      this.setAllowed()
      this.updateReading()
    } else ex.responseStarted = true
    if (fd >= 0 || this.fileQueue !== null) return this.queueOutput(ex, { data, fd, final, info })
    if (data.length >= RELEASE_MIN) {
      // Freed once written, not at some later garbage collection (bridge.release).
      const bridge = this.host.bridge
      this.socket.write(data, () => bridge.release(data))
    } else if (data.length > 0) this.socket.write(data)
    if ((info & OutputInfo.UPGRADE) !== 0 && !final) {
      this.upgrade(ex)
      return false
    }
    if (final) {
      ex.complete()
      return false
    }
    this.noteWritten(ex, info)
    if (this.socket.writableLength > OUTPUT_HIGH) {
      this.outputPaused = true
      this.updateReading()
      return true
    }
    return false
  }

  /** Frames carrying `info` went out: once they end the response, the child may send its next request
   *  (held until `final`). Wherever they went out from: directly, or from behind a FILE frame. */
  private noteWritten(ex: Exchange, info: number): void {
    if (ex.responseEnded || this.exchange !== ex || ex.done) return
    if ((info & OutputInfo.ENDS) !== 0) ex.responseEnded = true
    this.setAllowed()
  }

  /** The WebSocket is accepted (its 101 just went out): from now on the tunnel has the socket. */
  private upgrade(ex: Exchange): void {
    this.reader.pause()
    this.next = null
    this.outputPaused = false
    if (this.waitingOnPeer) this.socket.setTimeout(0)
    this.waitingOnPeer = false
    this.tunnel = new WebSocketTunnel(this.socket, this.host, ex.job)
    this.exchange = this.tunnel
    if (this.socket.isPaused()) this.socket.resume()
  }

  private onDrain(): void {
    if (this.tunnel !== null) return this.tunnel.onDrain()
    if (!this.outputPaused) return
    this.outputPaused = false
    const ex = this.exchange
    if (ex !== null && !ex.done && ex.job.submitted) this.host.bridge.resume(ex.job.id)
    this.updateReading()
  }

  /**
   * A FILE frame, or output that arrived behind one: file-sender.ts passes the descriptor (or the file's
   * bytes); the producer waits meanwhile and everything after goes out in order.
   */
  private queueOutput(ex: Exchange, item: FileItem): boolean {
    const q = this.fileQueue
    if (q !== null) {
      q.push(item)
      return !item.final
    }
    this.fileQueue = [item]
    const job = ex.job
    const pump = (): void => {
      const fq = this.fileQueue
      const next = fq?.shift()
      if (!fq || !next) {
        this.fileQueue = null
        if (this.exchange === ex && !ex.done && job.submitted && !this.gone) this.host.bridge.resume(job.id)
        if (this.closing === false && this.host.stopping) this.goAwayIfIdle()
        return
      }
      // Before, not after: sendFrames writes the frames at once but calls back later, and the child may
      // send its next REQUEST as soon as it has read an END.
      this.noteWritten(ex, next.info)
      sendFrames(this.socket, next.data, next.fd, this.host.sendWithFd, (err) => {
        if (err) log.report(E.fileSend, err.message)
        if (next.final) {
          this.fileQueue = null
          if (this.exchange === ex) ex.complete()
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
    return !item.final
  }

  private becameIdle(): void {
    this.setAllowed()
    if (this.goAwayWhenIdle && !this.closing && !this.host.stopping && this.host.park?.(this) === true) {
      // Held: GOAWAY once this process stops taking requests, so that the request goes to its successor.
      this.updateReading()
      return
    }
    if (this.host.stopping || this.closing || this.goAwayWhenIdle) {
      this.goAway()
      return
    }
    this.updateReading()
    const next = this.next
    if (next !== null) {
      this.next = null
      try {
        this.open(next.type, next.payload)
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
    if (this.tunnel !== null) return
    const ex = this.exchange
    const openers = ex === null || (!ex.inputOpen && ex.responseEnded)
    this.reader.setAllowed(allowedFrames(ex?.accepts ?? NO_FRAMES, openers, this.lookupPending) as number[])
  }

  /** Pauses or resumes reading the socket, and arms socket-timeout while we wait on the child. */
  private updateReading(): void {
    if (this.gone || this.tunnel !== null) return
    const ex = this.exchange
    const held = this.next !== null || (ex !== null && ex.holdsReading && !this.outputPaused && !this.lookupPending)
    if (held) {
      if (!this.socket.isPaused()) this.socket.pause()
    } else if (this.socket.isPaused()) this.socket.resume()
    // Waiting on the child: for input it still has to send, for it to take our output, or for the
    // answer to a VAR_LOOKUP.
    const inputOpen = ex !== null && ex.inputOpen
    const waiting = (inputOpen && !held) || this.outputPaused || this.lookupPending
    if (waiting !== this.waitingOnPeer && this.host.socketTimeoutMs > 0) {
      this.waitingOnPeer = waiting
      this.socket.setTimeout(waiting ? this.host.socketTimeoutMs : 0)
    }
  }

  private onTimeout(): void {
    if (!this.waitingOnPeer || this.gone || this.tunnel !== null) return
    const ex = this.exchange
    const doing = this.outputPaused
      ? 'writing the response to'
      : this.lookupPending && !(ex?.inputOpen ?? false)
        ? 'waiting for a variable lookup from'
        : 'reading the request body from'
    const current = ex !== null && !ex.done
    log.reportTagged(current ? ex.tag() : '', E.socketTimeout, Math.round(this.host.socketTimeoutMs / 1000), doing, current ? ex.uri() : '-')
    this.fail()
  }

  goAway(): void {
    if (this.closing || this.gone) return
    this.closing = true
    // Frames behind the refused request (its body) are not ours to read any more.
    this.reader.pause()
    const socket = this.socket
    socket.end(GOAWAY_FRAME)
    // Once the bytes are with the kernel the child can read them after we close: do not wait for it.
    socket.once('finish', () => socket.destroy())
  }

  /** Drops the connection, abandoning its exchange. */
  fail(): void {
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
    this.next = null
    const ex = this.exchange
    if (this.tunnel !== null) {
      this.tunnel.abandoned()
    } else if (ex !== null && !ex.done) {
      debug('request %d abandoned by the child', ex.job.id)
      ex.abandoned()
      // A producer waiting for room to write must wake up to see the abort.
      if (ex.job.submitted && (this.outputPaused || this.fileQueue !== null)) this.host.bridge.resume(ex.job.id)
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
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    /* already closed */
  }
}
