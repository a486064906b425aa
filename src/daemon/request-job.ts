// One unit of work the dispatcher admits and the bridge runs: a request (REQUEST frame) or a hook (AUTH
// frame), up to its `final` event. It knows its owner (the exchange that carries it on a connection)
// only through JobOwner, so the dispatcher and the server need no connection to route to it.
import type { Job, StartResult } from './dispatcher'

/** What the dispatcher and the bridge's output router call on the exchange a job belongs to. */
export interface JobOwner {
  /** A thread is free for the job (or, `loopOnly`, an ASGI event loop may take it): hand it to the
   *  bridge. Returns where it went (dispatcher.ts). Must not throw. */
  submit(job: RequestJob, loopOnly: boolean): StartResult
  /** queue-timeout expired before a thread was free: answer 503, never run. */
  expire(job: RequestJob, waitedMs: number): void
  /** Stopping before a thread took the job: it was not processed (GOAWAY). */
  refuse(job: RequestJob): void
  /** Frames the bridge produced for the job (see OutputHandler); true pauses the worker. */
  output(job: RequestJob, data: Buffer, final: boolean, fd: number, info: number): boolean
  /** The bridge consumed enough of the job's input: reading may go on. */
  inputResumed(job: RequestJob): void
  /** Drops the connection that carries the job (a bug met while handling its output): it is abandoned. */
  drop(): void
}

export class RequestJob implements Job {
  startedAt = 0
  /** When a thread took it, µs since the epoch (request statistics); 0 until then. */
  admittedUs = 0
  /** The HTTP status of its answer, once known (the first HEAD or ERROR); 0 until then. */
  status = 0
  /** Counted in the request statistics (server.ts requestAnswered). */
  counted = false
  queued = false
  /** Running on an ASGI event loop (dispatcher.ts), not holding a thread. */
  onLoop = false
  /** request-timeout cancelled it (asgi/request-timeout.ts): once only. */
  cancelled = false
  /** On a loop: Date.now() of its last output event, 0 before any (asgi/request-timeout.ts). */
  progressAt = 0
  /** A WebSocket its application accepted (websocket/tunnel.ts): request-timeout no longer applies. */
  upgraded = false
  /** Submitted to the bridge (so input/abort/resume may be called for it). */
  submitted = false
  /** Body chunks that arrived before submission, handed to the bridge on submit. */
  pendingBody: Buffer[] | null = null
  pendingBytes = 0
  /** BODY_END arrived before submission. */
  pendingEnd = false
  /** The child streams its body (REQUEST flag STREAMED): it cannot send it again, so a draining process
   *  runs it rather than send it back. */
  streamed = false

  constructor(
    readonly id: number,
    /** The exchange that carries it; a WebSocket's tunnel once accepted (it takes the connection over). */
    public owner: JobOwner,
    /** The REQUEST/AUTH payload (kept while the job lives: log lines name its URI); null once answered
     *  without running. */
    public payload: Buffer | null,
    readonly hasBody: boolean,
    readonly requestStartUs: number,
    /** 'auth': an AUTH frame (a hook), submitted with submitAuth(); not counted by maximum-requests. */
    readonly kind: 'request' | 'auth' = 'request',
  ) {}
}
