// The listener: accepts Apache children's connections on the process group's socket (fd 3, created and
// bound by the Apache parent, shared by every process of the group), tracks them, owns the dispatcher,
// and routes the bridge's events (output, inputResume) to the connection of each request.
import { closeSync } from 'node:fs'
import type * as net from 'node:net'
import type { Bridge, BridgeHandlers } from '../native/types'
import { OUTPUT_STATUS_SHIFT, OutputInfo } from '../protocol/wire'
import { AcceptGate } from './accept-gate'
import { Connection, type ConnectionHost } from './connection'
import { Dispatcher } from './dispatcher'
import type { SendWithFd } from './file-sender'
import { E } from './errors'
import { debug, log } from './log'
import type { RequestJob } from './request-job'
import { nowUs, type RequestStats } from './request-stats'
import { DEFAULT_WEBSOCKET_OPTIONS, WebSocketRegistry, type WebSocketOptions } from './websocket/registry'

export interface ServerOptions {
  group: string
  threads: number
  queueTimeoutMs: number
  socketTimeoutMs: number
  listenBacklog: number
  /** The addon's descriptor passing for FILE frames; null to send file contents as BODY frames. */
  sendWithFd?: SendWithFd | null
  /** Applies send-buffer-size / receive-buffer-size to an accepted connection's descriptor; null when
   *  neither option is set. Accepted UNIX sockets do not inherit the listener's buffer sizes. */
  tuneSocket?: ((fd: number) => void) | null
  /** The group's process count: with more than one, this process accepts only while it has room
   *  (accept-gate.ts), and answers GOAWAY to a RETRYABLE request it cannot start at once. */
  processes?: number
  /** The addon's dup(), for the accept gate; without it the process always accepts. */
  dupFd?: ((fd: number) => number) | null
  /** Where each answered request is counted (the board's request statistics). */
  stats?: RequestStats | null
  /** The WebSocket options (websocket-*); defaults when absent. */
  webSocket?: WebSocketOptions
}

export interface ServerHooks {
  /** I/O on a connection (inactivity-timeout). */
  touch(): void
  /** A request was handed to the bridge (maximum-requests). */
  admitted(): void
  /** A request found its WSGI script changed (WSGIScriptReloading in a daemon process group): this
   *  process is to be replaced, as mod_wsgi restarts it. The request was not run (GOAWAY), or, when its
   *  body could not be sent again, ran with the code already loaded. */
  restartRequested?(): void
  /** Whether a request refused because its script changed waits (its GOAWAY held back) until this
   *  process stops taking requests: its successor, which loads the new script, then takes it. */
  holdRetries?(): boolean
  /** Requests have ended in MemoryError (`count` so far in this process): under memory-limit or
   *  virtual-memory-limit the process restarts to free what it leaked. */
  memoryExhausted?(count: number): void
}

const MAX_ID = 0x7fffffff
/** A new connection holds a place for its first request this long at most (the child sends it at once). */
const FRESH_MS = 1000

export class DaemonServer implements ConnectionHost {
  readonly dispatcher: Dispatcher<RequestJob>
  readonly connections = new Set<Connection>()
  /** Connections whose refused request waits for this process to stop taking requests (park()). */
  private readonly parked = new Set<Connection>()
  readonly group: string
  readonly socketTimeoutMs: number
  readonly sendWithFd: SendWithFd | null
  /** The open WebSockets (websocket/). */
  readonly webSockets: WebSocketRegistry
  stopping = false
  /** Requests (not hooks) whose last event came: served, well or not. */
  completed = 0
  private readonly stats: RequestStats | null
  /** Stopped by force (request-timeout, deadlock-timeout, shutdown-timeout expired): nothing more runs. */
  private forced = false
  private gate: AcceptGate | null = null
  /** Accepting only while there is room: several processes share the socket. */
  private readonly balancing: boolean
  /** Connections accepted whose first frame has not come yet: each holds a place. */
  private fresh = 0
  private readonly threads: number
  private lastId = 0
  private bridgeRef: Bridge | null = null
  /** The bridge's MemoryError count last seen (checkMemory). */
  private memoryErrors = 0

  constructor(
    private readonly opts: ServerOptions,
    private readonly hooks: ServerHooks,
  ) {
    this.group = opts.group
    this.socketTimeoutMs = opts.socketTimeoutMs
    this.sendWithFd = opts.sendWithFd ?? null
    this.threads = opts.threads
    this.webSockets = new WebSocketRegistry(opts.group, opts.webSocket ?? DEFAULT_WEBSOCKET_OPTIONS)
    this.balancing = (opts.processes ?? 1) > 1 && typeof opts.dupFd === 'function'
    this.stats = opts.stats ?? null
    this.dispatcher = new Dispatcher<RequestJob>(opts.threads, opts.queueTimeoutMs, {
      start: (job, loopOnly) => {
        const admittedUs = nowUs()
        const where = job.owner.submit(job, loopOnly)
        if (where !== 'declined') job.admittedUs = admittedUs
        // Hooks are not requests of the application: maximum-requests does not count them.
        if (job.kind === 'request' && where !== 'declined') this.hooks.admitted()
        return where
      },
      expire: (job, waited) => {
        this.requestAnswered(job, 503)
        job.owner.expire(job, waited)
      },
    })
  }

  get bridge(): Bridge {
    if (this.bridgeRef === null) throw new Error('the bridge is not open yet')
    return this.bridgeRef
  }

  /** Handlers to give openBridge(); the bridge is attached afterwards (they only run once requests do). */
  handlers(): BridgeHandlers {
    return {
      output: (id, data, final, fd, info) => {
        const job = this.dispatcher.active.get(id)
        if (job === undefined) {
          if (fd >= 0) closeQuietly(fd)
          log.report(E.unknownOutput, id)
          return false
        }
        let pause = false
        // An ASGI request's request-timeout counts from its last output (asgi/request-timeout.ts).
        if (job.onLoop) job.progressAt = Date.now()
        if (job.status === 0 && info >>> OUTPUT_STATUS_SHIFT !== 0) job.status = info >>> OUTPUT_STATUS_SHIFT
        if (final) {
          // First, so that the retry of this request is held, or cannot reach this process's listener.
          if ((info & (OutputInfo.GOAWAY | OutputInfo.RELOAD)) !== 0) this.hooks.restartRequested?.()
          // A request that failed may have run out of memory: then the process restarts.
          else if ((info & OutputInfo.FAILED) !== 0 || (info & OutputInfo.ENDS) === 0) this.checkMemory()
          // Counted before its last bytes go out: whoever has the response sees it counted. A request
          // not run (its script changed) is sent again by the child, to the process that serves it.
          if ((info & OutputInfo.GOAWAY) === 0) this.requestAnswered(job, job.status)
        }
        try {
          pause = job.owner.output(job, data, final, fd, info)
        } catch (e) {
          log.report(E.uncaught, this.group, (e as Error)?.stack ?? String(e))
          job.owner.drop()
        }
        if (final) {
          if (job.kind === 'request') this.completed++
          this.dispatcher.finish(id)
          if (this.balancing) this.loadChanged()
        }
        return pause
      },
      inputResume: (id) => {
        const job = this.dispatcher.active.get(id)
        job?.owner.inputResumed(job)
      },
      // Its worker found an ASGI application: the request runs on the event loop, its thread is free.
      detached: (id) => {
        this.dispatcher.detached(id)
        if (this.balancing) this.loadChanged()
      },
    }
  }

  attach(bridge: Bridge): void {
    this.bridgeRef = bridge
  }

  private checkMemory(): void {
    const n = this.bridgeRef?.memoryErrors?.() ?? 0
    if (n === this.memoryErrors) return
    this.memoryErrors = n
    this.hooks.memoryExhausted?.(n)
  }

  /** A request's answer goes out (or is about to): counted once, in the board's request statistics. */
  requestAnswered(job: RequestJob, status: number): void {
    if (job.kind !== 'request' || job.counted) return
    job.counted = true
    const now = nowUs()
    this.stats?.record(status, job.requestStartUs, job.admittedUs > 0 ? job.admittedUs : now, now)
  }

  nextId(): number {
    this.lastId = this.lastId >= MAX_ID ? 1 : this.lastId + 1
    return this.lastId
  }

  touch(): void {
    this.hooks.touch()
  }

  released(conn: Connection): void {
    this.connections.delete(conn)
    this.parked.delete(conn)
    if (this.balancing) this.loadChanged()
  }

  /** A connection whose request was refused (its script changed) keeps its GOAWAY until this process
   *  stops taking requests (beginStop) or its successor failed (releaseParked): true when it waits. */
  park(conn: Connection): boolean {
    if (this.stopping || this.hooks.holdRetries?.() !== true) return false
    this.parked.add(conn)
    return true
  }

  /** The requests held back are sent back now (GOAWAY): they come again, to whoever accepts. */
  releaseParked(): void {
    const parked = [...this.parked]
    this.parked.clear()
    for (const c of parked) c.goAwayIfIdle()
  }

  /** Stopping, but still letting running requests finish: a request that cannot be sent again (its
   *  body streamed) and reaches us now is run, not refused. */
  get draining(): boolean {
    return this.stopping && !this.forced
  }

  /** Whether a request that can be sent elsewhere should be: several processes, no thread free now. */
  get shouldRedirect(): boolean {
    return this.balancing && this.dispatcher.wouldQueue
  }

  /** A request was admitted, queued or finished, or a new connection was accepted or sent its first
   *  frame: accept only while this process has room (several processes). Cheap unless it flips. */
  loadChanged(): void {
    const gate = this.gate
    if (!this.balancing || gate === null || this.stopping) return
    const d = this.dispatcher
    if (d.threadCount + d.queuedCount + this.fresh < this.threads) gate.open()
    else gate.close()
  }

  /** Starts accepting on the inherited listening socket (`{ fd: 3 }`), or a path (tests). */
  listen(where: { fd: number } | { path: string }): Promise<void> {
    this.gate = new AcceptGate(
      { where, backlog: this.opts.listenBacklog, dup: this.balancing ? (this.opts.dupFd ?? null) : null },
      (socket) => this.accept(socket),
    )
    return this.gate.start()
  }

  private accept(socket: net.Socket): void {
    this.hooks.touch()
    if (this.stopping) {
      socket.destroy()
      return
    }
    debug('connection accepted')
    const tune = this.opts.tuneSocket
    if (tune) {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
      try {
        if (typeof fd === 'number' && fd >= 0) tune(fd)
      } catch (e) {
        log.report(E.socketBuffers, (e as Error).message)
      }
    }
    const conn = new Connection(socket, this)
    this.connections.add(conn)
    if (!this.balancing) return
    // It holds a place until its first frame (or its end), so that one accept loop takes no more
    // connections than there are free threads.
    this.fresh++
    let held = true
    const release = (): void => {
      if (!held) return
      held = false
      clearTimeout(timer)
      this.fresh--
      this.loadChanged()
    }
    const timer = setTimeout(release, FRESH_MS)
    timer.unref()
    conn.onFirstFrame(release)
    this.loadChanged()
  }

  /** Graceful stop, first step: no new connections or requests; idle connections get GOAWAY. */
  beginStop(): void {
    if (this.stopping) return
    this.stopping = true
    this.gate?.shutdown()
    // Queued requests go back to the child (GOAWAY), except, while draining, those it cannot send again.
    for (const job of this.dispatcher.close((job) => this.draining && job.streamed)) job.owner.refuse(job)
    for (const c of this.connections) c.goAwayIfIdle()
  }

  /** The process stops taking part (graceful-timeout is over, or there is none): open WebSockets are
   *  closed with 1001, "going away"; their applications get the rest of shutdown-timeout to end. */
  closeWebSockets(): void {
    this.webSockets.closeAll(1001)
  }

  /** No request running and no connection left open. */
  get drained(): boolean {
    return this.dispatcher.activeCount === 0 && this.connections.size === 0
  }

  /** Forced stop: answers what can still be answered with `status`, drops every connection, and tells
   *  the bridge to abandon what runs. */
  forceCloseAll(status: number, message: string): void {
    this.forced = true
    this.beginStop()
    for (const c of [...this.connections]) c.forceClose(status, message)
    if (this.bridgeRef !== null) for (const id of this.dispatcher.active.keys()) this.bridgeRef.abort(id)
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    /* already closed */
  }
}
