// The listener: accepts Apache children's connections on the process group's socket (fd 3, created and
// bound by the Apache parent, shared by every process of the group), tracks them, owns the dispatcher,
// and routes the bridge's events (output, inputResume) to the connection of each request.
import { closeSync } from 'node:fs'
import * as net from 'node:net'
import type { Bridge, BridgeHandlers } from '../native/types'
import { lastFrameType } from '../protocol/frames'
import { FrameType } from '../protocol/wire'
import { Connection, type ConnectionHost } from './connection'
import { Dispatcher } from './dispatcher'
import type { SendWithFd } from './file-sender'
import { E } from './errors'
import { debug, log } from './log'
import type { RequestJob } from './request-job'

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
}

export interface ServerHooks {
  /** I/O on a connection (inactivity-timeout). */
  touch(): void
  /** A request was handed to the bridge (maximum-requests). */
  admitted(): void
  /** The addon answered a request with GOAWAY: its WSGI script changed and this process must restart
   *  (WSGIScriptReloading in a daemon process group, as mod_wsgi does). */
  restartRequested?(): void
}

const MAX_ID = 0x7fffffff

export class DaemonServer implements ConnectionHost {
  readonly dispatcher: Dispatcher<RequestJob>
  readonly connections = new Set<Connection>()
  readonly group: string
  readonly socketTimeoutMs: number
  readonly sendWithFd: SendWithFd | null
  stopping = false
  private server: net.Server | null = null
  private lastId = 0
  private bridgeRef: Bridge | null = null

  constructor(
    private readonly opts: ServerOptions,
    private readonly hooks: ServerHooks,
  ) {
    this.group = opts.group
    this.socketTimeoutMs = opts.socketTimeoutMs
    this.sendWithFd = opts.sendWithFd ?? null
    this.dispatcher = new Dispatcher<RequestJob>(opts.threads, opts.queueTimeoutMs, {
      start: (job) => {
        job.conn.submit(job)
        // Hooks are not requests of the application: maximum-requests does not count them.
        if (job.kind === 'request') this.hooks.admitted()
      },
      expire: (job, waited) => job.conn.expire(job, waited),
    })
  }

  get bridge(): Bridge {
    if (this.bridgeRef === null) throw new Error('the bridge is not open yet')
    return this.bridgeRef
  }

  /** Handlers to give openBridge(); the bridge is attached afterwards (they only run once requests do). */
  handlers(): BridgeHandlers {
    return {
      output: (id, data, final, fd) => {
        const job = this.dispatcher.active.get(id)
        if (job === undefined) {
          if (fd >= 0) closeQuietly(fd)
          log.report(E.unknownOutput, id)
          return false
        }
        let pause = false
        // Stop first, so that no retry of this request can reach this process's listener.
        if (final && lastFrameType(data) === FrameType.GOAWAY) this.hooks.restartRequested?.()
        try {
          pause = job.conn.output(job, data, final, fd)
        } catch (e) {
          log.report(E.uncaught, this.group, (e as Error)?.stack ?? String(e))
          job.conn.destroy()
        }
        if (final) this.dispatcher.finish(id)
        return pause
      },
      inputResume: (id) => {
        this.dispatcher.active.get(id)?.conn.inputResumed()
      },
    }
  }

  attach(bridge: Bridge): void {
    this.bridgeRef = bridge
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
  }

  /** Starts accepting on the inherited listening socket (`{ fd: 3 }`), or a path (tests). */
  listen(where: { fd: number } | { path: string }): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: false }, (socket) => this.accept(socket))
      const onError = (err: Error): void => reject(err)
      server.once('error', onError)
      // Node listen()s again on an inherited descriptor, with 511 unless told: that would undo the
      // parent's listen-backlog. For `{ fd }` Node takes the backlog only as the second argument
      // (options.backlog is ignored), and never 0 (it reads 0 as "unset"): 0 becomes 1.
      server.listen(where, Math.max(1, this.opts.listenBacklog), () => {
        server.off('error', onError)
        server.on('error', (err) => log.report(E.listen, err.message))
        this.server = server
        resolve()
      })
    })
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
    this.connections.add(new Connection(socket, this))
  }

  /** Graceful stop, first step: no new connections or requests; idle connections get GOAWAY. */
  beginStop(): void {
    if (this.stopping) return
    this.stopping = true
    this.server?.close()
    for (const job of this.dispatcher.close()) job.conn.refuse(job)
    for (const c of this.connections) c.goAwayIfIdle()
  }

  /** No request running and no connection left open. */
  get drained(): boolean {
    return this.dispatcher.activeCount === 0 && this.connections.size === 0
  }

  /** Forced stop: answers what can still be answered with `status`, drops every connection, and tells
   *  the bridge to abandon what runs. */
  forceCloseAll(status: number, message: string): void {
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
