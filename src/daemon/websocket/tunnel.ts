// A WebSocket: the exchange a connection from an Apache child is handed over to once an ASGI
// application accepted the upgrade (its HEAD 101 went out, connection.ts). From then on the connection
// carries the client's raw bytes both ways (the Apache child relays them, native/apache/wsgi_tunnel.c),
// and this is where they are framed, once, with ws's Receiver and Sender; the application's messages
// cross to its event loop as records (records.ts), batched: one bridge call per socket read, one
// output event per loop turn's sends. Policy is decided here, not by the library:
//
// - messages larger than websocket-max-message: close 1009; invalid UTF-8 in text: 1007; any other
//   protocol error: 1002 (the code the client is told is the one the application's disconnect carries);
// - pings are answered with pongs without the application; a ping goes out after websocket-ping-interval
//   without anything from the client, and no answer within websocket-ping-timeout means a dead peer:
//   the connection is dropped (disconnect 1006);
// - the close handshake both ways: the client's close frame is answered with its code and the
//   application gets websocket.disconnect with that code and reason; the application's close goes
//   out as a close frame, and the connection ends when the client answers (or CLOSE_WAIT_MS later);
// - websocket-idle-timeout, websocket-max-lifetime and the process stopping close with 1001;
// - backpressure: above INPUT_HIGH of messages not yet received by the application the socket is not
//   read (the Apache child then stops reading the client); above OUTPUT_HIGH of frames not yet taken by
//   the child the application's send() waits.
import { closeSync } from 'node:fs'
import type { Socket } from 'node:net'
import type { StartResult } from '../dispatcher'
import { E } from '../errors'
import type { ConnectionHost, Exchange } from '../exchange'
import { log } from '../log'
import type { JobOwner, RequestJob } from '../request-job'
import { requestTag } from '../wsgi-exchange'
import { findRequestVar } from '../../protocol/frames'
import { Receiver, Sender } from './framing'
import { closePayload, encodeRecords, forEachRecord, type MessageRecord, RecordKind, recordHeader } from './records'
import type { OpenWebSocket } from './registry'

/** Messages not yet received by the application above which the socket is not read (the bridge tells
 *  us to go on below 64 KiB). */
const INPUT_HIGH = 256 * 1024
/** Frames not yet taken by the Apache child above which the application's send() waits. */
const OUTPUT_HIGH = 512 * 1024
/** How long a close handshake may take before the connection is dropped. */
const CLOSE_WAIT_MS = 5000
/** Written frames' memory is handed back to the bridge at once from this size (bridge.release). */
const RELEASE_MIN = 16 * 1024
const NO_FRAMES: readonly number[] = []
/** The close code for what the Receiver found wrong (RFC 6455 7.4.1), by ws's error code. */
const ERROR_CODES: Record<string, number> = {
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: 1009,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: 1008,
}

type State = 'open' | 'closing' | 'closed'

export class WebSocketTunnel implements Exchange, JobOwner, OpenWebSocket {
  readonly accepts = NO_FRAMES
  readonly inputOpen = false
  readonly holdsReading = false
  readonly pinsInput = false
  responseStarted = true
  responseEnded = true
  /** The application's task ended (its final event came). */
  done = false

  private state: State = 'open'
  private readonly receiver: Receiver
  private readonly sender: Sender
  /** The client's side is over and the application was told (a CLOSE record went to it). */
  private told = false
  private closeSent = false
  private closeSentAt = 0
  private closeReceived = false
  /** Client messages waiting for the end of this turn to go to the application in one batch. */
  private batch: MessageRecord[] = []
  private inputPaused = false
  private outputPaused = false
  private readonly openedAt = Date.now()
  private lastReceived = this.openedAt
  private lastMessage = this.openedAt
  private pingSentAt = 0

  constructor(
    private readonly socket: Socket,
    private readonly host: ConnectionHost,
    readonly job: RequestJob,
  ) {
    const reg = host.webSockets
    const opts = reg?.options
    this.receiver = new Receiver({ isServer: true, maxPayload: opts?.maxMessage ?? 0, allowSynchronousEvents: true })
    this.sender = new Sender(socket)
    this.receiver.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary))
    this.receiver.on('ping', (data: Buffer) => {
      if (this.state === 'open') this.sender.pong(data, false, NOOP)
    })
    this.receiver.on('pong', () => {
      this.pingSentAt = 0
    })
    this.receiver.on('conclude', (code: number, reason: Buffer) => this.onCloseFrame(code, reason))
    this.receiver.on('error', (err: Error) => this.onProtocolError(err))
    socket.setTimeout(0)
    job.upgraded = true
    job.owner = this
    host.dispatcher.uncap(job.id)
    reg?.add(this)
  }

  /** Names the WebSocket's request in log lines (its upgrade request's client and id). */
  tag(): string {
    return requestTag(this.job.payload)
  }

  // --------------------------------------------------------------------------------------------------
  // From the connection (connection.ts forwards the socket's events in tunnel mode)

  onData(chunk: Buffer): void {
    this.lastReceived = Date.now()
    this.pingSentAt = 0
    if (this.closeReceived || this.state === 'closed') return
    this.host.touch()
    this.receiver.write(chunk)
  }

  onDrain(): void {
    if (!this.outputPaused) return
    this.outputPaused = false
    if (!this.done) this.host.bridge.resume(this.job.id)
  }

  /** The connection is gone (the child closed it: the client left, or the handshake ended). */
  abandoned(): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.host.webSockets?.delete(this)
    this.flushBatch()
    this.tell(1006, '')
    // A send() waiting for room wakes up to learn that the client left.
    if (this.outputPaused && !this.done) this.host.bridge.resume(this.job.id)
    this.outputPaused = false
  }

  /** The process stops (registry.ts) or a limit was reached: close frame `code`, disconnect to the app. */
  goingAway(code: number, reason: string): void {
    if (this.state !== 'open') return
    this.flushBatch()
    this.tell(code, reason)
    this.sendClose(code, reason)
  }

  /** Forced stop: a close frame 1001 if it can still go out, and the connection dropped. */
  forceClose(): void {
    this.goingAway(1001, 'server shutting down')
    this.socket.end()
    setImmediate(() => this.socket.destroy()).unref()
  }

  tick(now: number): void {
    const opts = this.host.webSockets?.options
    if (opts === undefined || this.state === 'closed') return
    if (this.state === 'closing') {
      if (now - this.closeSentAt > CLOSE_WAIT_MS) {
        log.reportTagged(this.tag(), E.wsCloseTimeout, CLOSE_WAIT_MS / 1000, this.uri())
        this.socket.destroy()
      }
      return
    }
    // Not reading (the application is behind): nothing can be known about the peer now.
    if (opts.pingIntervalMs > 0 && !this.inputPaused) {
      if (this.pingSentAt !== 0 && now - this.pingSentAt > opts.pingTimeoutMs) {
        // The peer is gone: the application hears 1006 (no close frame came); the wire still gets a
        // close frame (1011, as websockets' keepalive does) so that the Apache child ends it quietly.
        log.reportTagged(this.tag(), E.wsDeadPeer, Math.round(opts.pingTimeoutMs / 1000), this.uri())
        this.flushBatch()
        this.tell(1006, '')
        this.closeReceived = true
        this.sendClose(1011, 'keepalive ping timeout')
        setTimeout(() => this.socket.destroy(), 1000).unref()
        return
      }
      if (this.pingSentAt === 0 && now - this.lastReceived >= opts.pingIntervalMs) {
        this.pingSentAt = now
        this.sender.ping(EMPTY, false, NOOP)
      }
    }
    if (opts.idleTimeoutMs > 0 && now - this.lastMessage >= opts.idleTimeoutMs) {
      log.reportTagged(this.tag(), E.wsLimit, 'websocket-idle-timeout', Math.round(opts.idleTimeoutMs / 1000), this.uri())
      this.goingAway(1001, 'idle timeout')
    } else if (opts.maxLifetimeMs > 0 && now - this.openedAt >= opts.maxLifetimeMs) {
      log.reportTagged(this.tag(), E.wsLimit, 'websocket-max-lifetime', Math.round(opts.maxLifetimeMs / 1000), this.uri())
      this.goingAway(1001, 'maximum lifetime')
    }
  }

  // --------------------------------------------------------------------------------------------------
  // The client's frames

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.told) return // after our close: what still comes is not delivered
    this.lastMessage = Date.now()
    if (this.batch.length === 0) queueMicrotask(() => this.flushBatch())
    this.batch.push({ kind: isBinary ? RecordKind.BINARY : RecordKind.TEXT, data })
  }

  /** The messages of this turn go to the application in one call (it copies them). */
  private flushBatch(): void {
    const batch = this.batch
    if (batch.length === 0) return
    this.batch = []
    if (this.done || this.told) return
    const bridge = this.host.bridge
    const id = this.job.id
    let buffered = 0
    if (batch.length === 1 && batch[0].data.length >= RELEASE_MIN) {
      // One large message: its bytes go as they are (the bridge copies them once).
      bridge.input(id, recordHeader(batch[0].kind, batch[0].data.length))
      buffered = bridge.input(id, batch[0].data)
    } else {
      const records = encodeRecords(batch)
      buffered = bridge.input(id, records)
      if (records.length >= RELEASE_MIN) bridge.release(records)
    }
    if (buffered > INPUT_HIGH && !this.inputPaused && this.state !== 'closed') {
      this.inputPaused = true
      this.socket.pause()
    }
  }

  private onCloseFrame(code: number, reason: Buffer): void {
    this.closeReceived = true
    this.flushBatch()
    this.tell(code, reason)
    if (!this.closeSent) this.sendClose(code === 1005 ? undefined : code, reason)
    else this.endSocket()
  }

  private onProtocolError(err: Error): void {
    if (this.state === 'closed') return
    const code = ERROR_CODES[(err as NodeJS.ErrnoException).code ?? ''] ?? 1002
    log.reportTagged(this.tag(), E.wsProtocolError, code, err.message, this.uri())
    this.closeReceived = true // the client's stream cannot be read any further
    this.flushBatch()
    this.tell(code, '')
    if (!this.closeSent) this.sendClose(code, '')
    this.endSocket()
  }

  // --------------------------------------------------------------------------------------------------
  // The application's side (JobOwner: the bridge's events for the job come here once upgraded)

  output(_job: RequestJob, data: Buffer, final: boolean, fd: number, _info: number): boolean {
    if (fd >= 0) closeQuietly(fd) // never for a WebSocket
    if (final) this.done = true
    if (this.state === 'closed' || data.length === 0) return false
    this.host.touch()
    const bridge = this.host.bridge
    // The event's messages framed (ws's Sender.frame) and written at once: small ones copied into one
    // buffer (one write, one wake-up of the Apache child), large ones as they are.
    const parts: Buffer[] = []
    let size = 0
    try {
      forEachRecord(data, (kind, payload) => {
        if (kind === RecordKind.CLOSE) {
          this.writeFrames(parts, size)
          parts.length = size = 0
          const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1000
          this.tell(code, payload.subarray(2))
          this.sendClose(code, payload.subarray(2))
        } else if (!this.closeSent) {
          for (const b of Sender.frame(payload, kind === RecordKind.BINARY ? BINARY_FRAME : TEXT_FRAME)) {
            parts.push(b)
            size += b.length
          }
        }
      })
    } catch (e) {
      log.report(E.uncaught, this.host.group, (e as Error)?.stack ?? String(e))
      this.socket.destroy()
      return false
    }
    if (size > 0) {
      this.writeFrames(parts, size)
      this.lastMessage = Date.now()
    }
    // Freed once written, not at some later garbage collection.
    if (data.length >= RELEASE_MIN) this.socket.write(EMPTY, () => bridge.release(data))
    if (!final && this.socket.writableLength > OUTPUT_HIGH) {
      this.outputPaused = true
      return true
    }
    return false
  }

  inputResumed(_job: RequestJob): void {
    if (!this.inputPaused) return
    this.inputPaused = false
    if (this.state !== 'closed') this.socket.resume()
  }

  submit(_job: RequestJob, _loopOnly: boolean): StartResult {
    return 'loop' // submitted long ago: a WebSocket is never queued again
  }

  expire(): void {}

  refuse(): void {}

  drop(): void {
    this.socket.destroy()
  }

  // Exchange: nothing of the frame protocol happens any more on this connection.
  admit(): void {}
  onFrame(): void {}
  complete(): void {
    this.done = true
  }

  uri(): string {
    const p = this.job.payload
    return (p !== null ? findRequestVar(p, 'REQUEST_URI') : undefined) ?? `request ${this.job.id}`
  }

  // --------------------------------------------------------------------------------------------------

  /** The application learns that the WebSocket is over for the client (once): a CLOSE record, then
   *  the end of its input. */
  private tell(code: number, reason: Buffer | string): void {
    if (this.told) return
    this.told = true
    if (this.done) return
    const bridge = this.host.bridge
    bridge.input(this.job.id, encodeRecords([{ kind: RecordKind.CLOSE, data: closePayload(code, reason) }]))
    bridge.endInput(this.job.id)
  }

  private sendClose(code: number | undefined, reason: Buffer | string): void {
    if (this.closeSent || this.state === 'closed') return
    this.closeSent = true
    this.closeSentAt = Date.now()
    this.state = 'closing'
    try {
      this.sender.close(code, code === undefined ? undefined : reason, false, NOOP)
    } catch {
      this.sender.close(1000, undefined, false, NOOP) // a code the RFC does not allow on the wire (1005, 1006)
    }
    if (this.closeReceived) this.endSocket()
  }

  private writeFrames(parts: Buffer[], size: number): void {
    if (parts.length === 0) return
    if (size <= COALESCE_MAX) {
      this.socket.write(parts.length === 1 ? parts[0] : Buffer.concat(parts, size))
      return
    }
    this.socket.cork()
    for (const b of parts) this.socket.write(b)
    this.socket.uncork()
  }

  /** The handshake is over: our end, once what was written has gone (the child then closes). */
  private endSocket(): void {
    this.socket.end()
  }
}

const EMPTY = Buffer.alloc(0)
/** Frames up to this size in all are copied into one buffer and written at once. */
const COALESCE_MAX = 64 * 1024
const TEXT_FRAME = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }
const BINARY_FRAME = { fin: true, opcode: 2, mask: false, readOnly: false, rsv1: false }
function NOOP(): void {}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    /* already closed */
  }
}
