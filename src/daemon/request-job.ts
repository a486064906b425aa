// One request (REQUEST frame) or hook (AUTH frame) up to its `final` event: what the dispatcher queues
// and the bridge runs.
import type { Job } from './dispatcher'
import type { Connection } from './connection'

export class RequestJob implements Job {
  startedAt = 0
  queued = false
  /** Running on an ASGI event loop (dispatcher.ts), not holding a thread. */
  onLoop = false
  /** request-timeout cancelled it (asgi/request-timeout.ts): once only. */
  cancelled = false
  /** On a loop: Date.now() of its last output event, 0 before any (asgi/request-timeout.ts). */
  progressAt = 0
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
    readonly conn: Connection,
    /** The REQUEST payload (kept while the request lives: log lines name its URI); null once answered
     *  without running. */
    public payload: Buffer | null,
    readonly hasBody: boolean,
    readonly requestStartUs: number,
    /** 'auth': an AUTH frame (a hook), submitted with submitAuth(). */
    readonly kind: 'request' | 'auth' = 'request',
  ) {}
}
