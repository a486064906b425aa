// Accepting connections on the process group's socket (fd 3, shared by every process of the group).
//
// Node accepts every pending connection as soon as the socket is readable, whatever the process has room
// for. With one process per group that is what we want: a request that cannot start at once waits in
// this process's queue (queue-timeout). With several processes it is not: a process whose threads are
// all busy would take connections that another process could serve at once. So there the gate closes
// while the process has no room: new connections wait in the socket's backlog for whichever process
// frees a thread first, as in mod_wsgi, whose daemon threads accept only when idle.
//
// Closing means closing our listener, a duplicate of fd 3: fd 3 itself and the other processes'
// listeners are untouched, and a new duplicate is listened on when room comes back. Closing it from the
// connection callback also ends Node's accept loop at once, so the process takes no more connections
// than it has room for.
import * as net from 'node:net'
import { E } from './errors'
import { debug, log } from './log'

export interface AcceptGateOptions {
  /** The inherited listening socket, or a path (tests). */
  where: { fd: number } | { path: string }
  /** Passed to listen() so that it does not reset the backlog the parent chose (listen-backlog). */
  backlog: number
  /** A close-on-exec duplicate of a descriptor; null: the gate cannot close and reopen (always open). */
  dup: ((fd: number) => number) | null
}

export class AcceptGate {
  private server: net.Server | null = null
  private shut = false
  /** Whether close()/open() work: a descriptor we can duplicate. */
  readonly controllable: boolean

  constructor(
    private readonly opts: AcceptGateOptions,
    private readonly onConnection: (socket: net.Socket) => void,
  ) {
    this.controllable = 'fd' in opts.where && opts.dup !== null
  }

  get accepting(): boolean {
    return this.server !== null
  }

  /** The first listen: rejects when the socket cannot be listened on (the caller logs and exits). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      let where: { fd: number } | { path: string }
      try {
        where = this.target()
      } catch (e) {
        reject(e)
        return
      }
      const server = this.create()
      const onError = (err: Error): void => reject(err) // the process exits: a duplicate may leak
      server.once('error', onError)
      server.listen(where, this.backlog(), () => {
        server.off('error', onError)
        server.on('error', (err) => log.report(E.listen, err.message))
        if (this.shut) server.close()
        else this.server = server
        resolve()
      })
    })
  }

  /** Accepts again (no-op when accepting, shut, or not controllable). */
  open(): void {
    if (this.server !== null || this.shut || !this.controllable) return
    let where: { fd: number }
    try {
      where = this.target() as { fd: number }
    } catch (e) {
      // Out of descriptors: stay closed; the next change of load tries again.
      log.report(E.listen, (e as Error).message)
      return
    }
    const server = this.create()
    server.on('error', (err) => log.report(E.listen, err.message))
    // A duplicate of a listening socket: listen() only registers it with the event loop (and sets the
    // backlog again), synchronously; accepting starts with the next turn of the loop.
    server.listen(where, this.backlog())
    this.server = server
    debug('accepting again')
  }

  /** Stops accepting for now (no-op when not controllable). */
  close(): void {
    if (this.server === null || !this.controllable) return
    this.server.close()
    this.server = null
    debug('not accepting: no free thread')
  }

  /** Stops accepting for good (the process is stopping). Safe to call twice. */
  shutdown(): void {
    this.shut = true
    this.server?.close()
    this.server = null
  }

  private target(): { fd: number } | { path: string } {
    const w = this.opts.where
    if ('fd' in w && this.controllable && this.opts.dup) return { fd: this.opts.dup(w.fd) }
    return w
  }

  // Node listen()s again on an inherited descriptor, with 511 unless told: that would undo the parent's
  // listen-backlog. For `{ fd }` Node takes the backlog only as the second argument (options.backlog is
  // ignored), and never 0 (it reads 0 as "unset"): 0 becomes 1.
  private backlog(): number {
    return Math.max(1, this.opts.backlog)
  }

  private create(): net.Server {
    return net.createServer({ allowHalfOpen: false }, (socket) => this.onConnection(socket))
  }
}
