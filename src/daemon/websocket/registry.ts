// The open WebSockets of this process: how many there are (the board's `websockets`, reporter.ts), one
// timer for all of them (pings, idle and lifetime limits, close handshakes that do not complete), and
// closing them all with 1001 when the process stops (lifecycle.ts: once graceful-timeout is over).
import { E } from '../errors'
import { log } from '../log'

/** The WebSocket options of the process group (WSGIDaemonProcess websocket-*, README). */
export interface WebSocketOptions {
  /** Largest message accepted from a client, bytes; 0: no limit. Beyond it: close 1009. */
  maxMessage: number
  /** A ping goes out after this long without anything from the client, ms; 0: never. */
  pingIntervalMs: number
  /** No answer (pong or anything else) this long after a ping: the peer is dead, ms. */
  pingTimeoutMs: number
  /** No message either way for this long: closed with 1001, ms; 0: never. */
  idleTimeoutMs: number
  /** Open for this long: closed with 1001, ms; 0: never. */
  maxLifetimeMs: number
}

export const DEFAULT_WEBSOCKET_OPTIONS: WebSocketOptions = {
  maxMessage: 16 * 1024 * 1024,
  pingIntervalMs: 20000,
  pingTimeoutMs: 20000,
  idleTimeoutMs: 0,
  maxLifetimeMs: 0,
}

/** What the registry needs of an open WebSocket (tunnel.ts). */
export interface OpenWebSocket {
  /** Time-based checks; `now` is Date.now(). */
  tick(now: number): void
  /** Closes with `code` (the process stops): a close frame to the client, a disconnect to the app. */
  goingAway(code: number, reason: string): void
}

const TICK_MS = 1000

export class WebSocketRegistry {
  private readonly open = new Set<OpenWebSocket>()
  private timer: NodeJS.Timeout | null = null
  /** Stopping: a WebSocket accepted from now on is closed at once. */
  private closingCode = 0

  constructor(
    readonly group: string,
    readonly options: WebSocketOptions,
  ) {}

  get count(): number {
    return this.open.size
  }

  add(ws: OpenWebSocket): void {
    this.open.add(ws)
    if (this.closingCode !== 0) {
      ws.goingAway(this.closingCode, 'server shutting down')
      return
    }
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), TICK_MS)
      this.timer.unref()
    }
  }

  delete(ws: OpenWebSocket): void {
    this.open.delete(ws)
    if (this.open.size === 0 && this.timer !== null) {
      clearInterval(this.timer)
      this.timer = null
    }
  }

  /** The process stops taking part: every open WebSocket (and any accepted later) is closed with `code`. */
  closeAll(code: number): void {
    if (this.closingCode !== 0) return
    this.closingCode = code
    if (this.open.size > 0) log.report(E.wsClosingAll, this.group, this.open.size, code)
    for (const ws of [...this.open]) ws.goingAway(code, 'server shutting down')
  }

  private tick(): void {
    const now = Date.now()
    for (const ws of [...this.open]) ws.tick(now)
  }
}
