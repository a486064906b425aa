// What a connection from an Apache child carries between two idle moments: one exchange at a time. The
// connection (connection.ts) keeps the transport: framing, read backpressure, output and its watermark,
// FILE descriptors, VAR_LOOKUP answers, socket-timeout, GOAWAY and the end of the connection. An exchange
// says what its frames mean. Each kind is a file of its own, started by the frame that opens it:
//   REQUEST  wsgi-exchange.ts   a request for an application, its body, its response
//   AUTH     hook-exchange.ts   an access/authentication/group hook and its AUTH_RESULT
// and, as uvicorn hands an upgraded transport to another protocol object, a request whose ASGI
// application accepted a WebSocket hands the connection over to websocket/tunnel.ts after its 101.
import type { Bridge } from '../native/types'
import type { Dispatcher } from './dispatcher'
import type { SendWithFd } from './file-sender'
import type { RequestJob } from './request-job'
import type { WebSocketRegistry } from './websocket/registry'

/** The daemon as a connection and its exchanges see it (server.ts implements it). */
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
  /** The open WebSockets and their options (absent in tests that play the host). */
  readonly webSockets?: WebSocketRegistry
  /** Sends a FILE frame with its descriptor (the addon's sendWithFd); null: send file contents instead. */
  readonly sendWithFd: SendWithFd | null
  /** A RETRYABLE request arriving now should be sent back with GOAWAY (no free thread, and other
   *  processes of the group may have one). */
  readonly shouldRedirect?: boolean
  /** A request is answered with `status` by the daemon itself (a forced stop): counted now. */
  requestAnswered?(job: RequestJob, status: number): void
  /** The dispatcher's load changed (a request was queued or admitted): the accept gate follows it. */
  loadChanged?(): void
  /** A connection whose request was refused because its script changed asks to keep its GOAWAY until
   *  this process stops taking requests; true when it is to wait (server.ts park()). */
  park?(conn: unknown): boolean
  nextId(): number
  /** I/O happened (inactivity-timeout). */
  touch(): void
  /** The connection is gone (called once). */
  released(conn: unknown): void
}

/** The connection as an exchange sees it. */
export interface ExchangeOwner {
  readonly host: ConnectionHost
  /** The connection is gone, or closing on our side: nothing more goes out. */
  readonly closed: boolean
  /** Writes frames the daemon makes itself (an ERROR answer) at once. */
  write(frames: Buffer): void
  /** Output of the exchange's job, in order (see OutputHandler); true pauses the producer. */
  output(ex: Exchange, data: Buffer, final: boolean, fd: number, info: number): boolean
  /** The exchange's state changed what the child may send or whether reading must pause. */
  changed(): void
  /** The exchange's job is complete (its answer is out, or it ended without one). */
  jobDone(ex: Exchange): void
  /** The exchange is over: nothing of it remains to be read. The connection is idle again. */
  finished(ex: Exchange): void
  /** Refuses the exchange: GOAWAY, and the connection closes. */
  goAway(): void
  /** Drops the connection (a malformed frame, already logged). */
  fail(): void
}

export interface Exchange {
  readonly job: RequestJob
  /** Frame types of the child's that belong to this exchange now (the connection adds VAR_VALUE and the
   *  frames that open the next exchange). Always one of a few constant arrays. */
  readonly accepts: readonly number[]
  /** More frames of this exchange are to come from the child (a request body). */
  readonly inputOpen: boolean
  /** Reading must pause for this exchange (input backpressure). */
  readonly holdsReading: boolean
  /** Input not yet in the bridge refers to socket chunks: they must not be freed yet. */
  readonly pinsInput: boolean
  /** The job has completed (its final event came, or it was answered without running). */
  readonly done: boolean
  /** A response frame has gone out: an ERROR can no longer replace the response. */
  responseStarted: boolean
  /** The end of the response has gone out: the child may send its next request. */
  responseEnded: boolean
  /** Adds the job to the dispatcher's queue (called once the connection holds the exchange). */
  admit(): void
  /** A frame of `accepts`. */
  onFrame(type: number, payload: Buffer): void
  /** The job's last event came (or it was answered without running): its response is complete. */
  complete(): void
  /** The connection is gone: abandon what runs. */
  abandoned(): void
  /** What the exchange serves, for log lines (a URI, a hook). */
  uri(): string
  /** "[client ADDR:PORT] [request ID] " for log lines about it ('' when unknown), as Apache's are tagged. */
  tag(): string
}
