// An access, authentication or group hook (WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript):
// AUTH, answered by one AUTH_RESULT (or an ERROR). It takes a thread like a request (threads,
// queue-timeout) but has no body and is not counted by maximum-requests.
import { hookUri, readAuthFixed } from '../protocol/auth-frames'
import type { StartResult } from './dispatcher'
import type { ExchangeOwner } from './exchange'
import { JobExchange } from './job-exchange'
import { RequestJob } from './request-job'
import { ownCopy } from './wsgi-exchange'

const ACCEPT_NONE: readonly number[] = []

export class HookExchange extends JobExchange {
  readonly job: RequestJob
  readonly accepts = ACCEPT_NONE
  readonly inputOpen = false
  readonly holdsReading = false
  readonly pinsInput = false

  /** Starts the exchange of an AUTH frame, or refuses it (GOAWAY: the daemon is stopping) and returns
   *  null. Throws a ProtocolError on a bad fixed part. */
  static start(conn: ExchangeOwner, payload: Buffer): HookExchange | null {
    const fixed = readAuthFixed(payload)
    if (conn.host.stopping) {
      conn.goAway()
      return null
    }
    return new HookExchange(conn, payload, fixed.requestStartUs)
  }

  private constructor(conn: ExchangeOwner, payload: Buffer, requestStartUs: number) {
    super(conn)
    this.job = new RequestJob(conn.host.nextId(), this, ownCopy(payload), false, requestStartUs, 'auth')
  }

  onFrame(): void {}

  protected startInBridge(job: RequestJob, loopOnly: boolean): StartResult {
    if (loopOnly) return 'declined' // hooks run on worker threads
    this.conn.host.bridge.submitAuth(job.id, job.payload as Buffer)
    return 'thread'
  }

  uri(): string {
    const p = this.job.payload
    return (p !== null ? hookUri(p) : undefined) ?? `hook ${this.job.id}`
  }
}
