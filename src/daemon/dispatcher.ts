// Admission of requests into the bridge: at most `threads` requests are submitted, not yet final and
// holding a worker thread; the rest wait first-in first-out. queue-timeout (release notes, New Features
// 11) is applied when a request would be submitted: one whose request_start (when Apache read the
// request line) is older than the timeout is answered with 503 and never run, so a backlog drains fast
// instead of feeding stale work to the application. Pure logic: the hooks do the I/O, the clock is
// injectable for tests.
//
// ASGI requests run on their application group's event loop and hold no thread (docs/asgi.md): a
// request whose application the bridge knows to be ASGI goes there at once (start() answers 'loop'), and
// one whose worker found an ASGI application moves there (detached()). They are counted apart, up to
// `loopCap` at once; while every thread is busy, a new request is first offered to the loops
// (start(job, true)) so that ASGI requests never wait behind WSGI ones.

export interface Job {
  readonly id: number
  /** REQUEST's request_start: microseconds since the epoch. */
  readonly requestStartUs: number
  /** Date.now() when submitted to the bridge (set here). */
  startedAt: number
  /** Internal: set while waiting in the queue; cleared when admitted or cancelled. */
  queued: boolean
  /** Set here: running on an ASGI event loop, not holding a thread. */
  onLoop?: boolean
  /** Set here: an open WebSocket, no longer counted against `loopCap` (uncap()). */
  uncapped?: boolean
}

/** Where start() put a job: a worker thread, an event loop (ASGI), or (loopOnly) nowhere. */
export type StartResult = 'thread' | 'loop' | 'declined'

/** ASGI requests running at once in one process, at most (the rest wait in the queue). Apache's own
 *  MaxRequestWorkers bounds what reaches a daemon well below this. */
export const LOOP_CAP = 1000

export interface DispatcherHooks<J extends Job> {
  /** Submit the job to the bridge now. Must not throw (the caller turns failures into an answer).
   *  With `loopOnly`, only if it can run on an event loop ('declined' otherwise, nothing done). Returns
   *  where it went; nothing counts as 'thread'. */
  start(job: J, loopOnly: boolean): StartResult | void
  /** The job waited longer than queue-timeout: answer 503 and forget it. */
  expire(job: J, waitedMs: number): void
}

export type EnqueueResult = 'started' | 'queued' | 'expired' | 'refused'

export class Dispatcher<J extends Job> {
  /** Jobs submitted and not yet final, by id: on threads and on event loops. */
  readonly active = new Map<number, J>()
  private queue: Array<J | undefined> = []
  private head = 0
  private waiting = 0
  private open = true
  /** Active jobs holding a thread, and running on an event loop. */
  private onThreads = 0
  private onLoops = 0
  /** An event loop has taken a request: from now on, new requests are offered to the loops first while
   *  every thread is busy. */
  private loopsSeen = false

  constructor(
    private readonly threads: number,
    private readonly queueTimeoutMs: number,
    private readonly hooks: DispatcherHooks<J>,
    private readonly now: () => number = Date.now,
    private readonly loopCap: number = LOOP_CAP,
  ) {
    if (!(threads >= 1)) throw new RangeError('threads must be at least 1')
  }

  /** Jobs submitted and not yet final (threads and event loops). */
  get activeCount(): number {
    return this.active.size
  }

  /** Active jobs holding a worker thread. */
  get threadCount(): number {
    return this.onThreads
  }

  /** Active jobs running on an ASGI event loop. */
  get loopCount(): number {
    return this.onLoops
  }

  get queuedCount(): number {
    return this.waiting
  }

  /** True when a job offered now would not start at once (no free thread, or others wait first). */
  get wouldQueue(): boolean {
    return this.onThreads >= this.threads || this.waiting > 0
  }

  /** False once close() was called: new jobs are refused. */
  get accepting(): boolean {
    return this.open
  }

  /** Offers a job: started at once if a thread is free (and it is not stale), else queued. Once closed,
   *  only a job that cannot go elsewhere (`evenIfClosed`: the process drains, the request cannot be
   *  sent again) is still taken. */
  enqueue(job: J, evenIfClosed = false): EnqueueResult {
    if (!this.open && !evenIfClosed) return 'refused'
    if (this.onThreads < this.threads && this.waiting === 0 && this.onLoops < this.loopCap) return this.admit(job)
    // Every thread busy (or others wait for one): an ASGI request need not wait.
    if (this.loopsSeen && this.onLoops < this.loopCap) {
      const r = this.admitToLoop(job)
      if (r !== 'declined') return r
    }
    job.queued = true
    this.queue.push(job)
    this.waiting++
    return 'queued'
  }

  /** The job's final event arrived: frees its thread and admits waiting jobs. Unknown ids are ignored. */
  finish(id: number): void {
    const job = this.active.get(id)
    if (job === undefined) return
    this.active.delete(id)
    if (job.onLoop) {
      if (!job.uncapped) this.onLoops--
    } else this.onThreads--
    this.pump()
  }

  /** The job's worker handed it to an event loop (an ASGI application): its thread is free. */
  detached(id: number): void {
    const job = this.active.get(id)
    if (job === undefined || job.onLoop) return
    this.movedToLoop(job)
    this.pump()
  }

  /** The job on an event loop became an open WebSocket: it stays active (graceful stops wait for it)
   *  but no longer counts against `loopCap`, which bounds requests that are to answer, not connections
   *  that may stay open for hours. */
  uncap(id: number): void {
    const job = this.active.get(id)
    if (job === undefined || !job.onLoop || job.uncapped) return
    job.uncapped = true
    this.onLoops--
    this.pump()
  }

  /** Removes a job that is still waiting (its connection went away). True if it was queued. */
  cancel(job: J): boolean {
    if (!job.queued) return false
    job.queued = false
    const i = this.queue.indexOf(job, this.head)
    if (i >= 0) this.queue[i] = undefined
    this.waiting--
    this.compact()
    return true
  }

  /** Stops admitting: returns every waiting job (the caller answers them) and refuses new ones. Jobs
   *  for which `keep` is true stay queued and still run (requests that cannot be sent elsewhere). */
  close(keep: (job: J) => boolean = () => false): J[] {
    this.open = false
    const out: J[] = []
    const kept: J[] = []
    for (let i = this.head; i < this.queue.length; i++) {
      const j = this.queue[i]
      if (!j) continue
      if (keep(j)) kept.push(j)
      else {
        j.queued = false
        out.push(j)
      }
    }
    this.queue = kept
    this.head = 0
    this.waiting = kept.length
    return out
  }

  /** Sum over jobs holding a thread of how long they have run, in ms (request-timeout's arithmetic for
   *  WSGI; ASGI requests have their own, asgi/request-timeout.ts). */
  activeAgeSum(now = this.now()): number {
    let sum = 0
    for (const j of this.active.values()) if (!j.onLoop) sum += now - j.startedAt
    return sum
  }

  private movedToLoop(job: J): void {
    job.onLoop = true
    this.onThreads--
    this.onLoops++
    this.loopsSeen = true
  }

  private pump(): void {
    while (this.onThreads < this.threads && this.onLoops < this.loopCap && this.waiting > 0 && this.head < this.queue.length) {
      const job = this.queue[this.head]
      this.queue[this.head++] = undefined
      if (!job) continue
      job.queued = false
      this.waiting--
      this.admit(job)
    }
    this.compact()
  }

  /** queue-timeout: true (and answered) when the job waited too long since Apache read it. */
  private stale(job: J, now: number): boolean {
    if (this.queueTimeoutMs <= 0) return false
    const waited = now - job.requestStartUs / 1000
    if (waited <= this.queueTimeoutMs) return false
    this.hooks.expire(job, Math.round(waited))
    return true
  }

  private admit(job: J): 'started' | 'expired' {
    const now = this.now()
    if (this.stale(job, now)) return 'expired'
    job.startedAt = now
    this.active.set(job.id, job)
    this.onThreads++
    // It may go straight to an event loop; a failed start finished it already.
    if (this.hooks.start(job, false) === 'loop' && this.active.get(job.id) === job && !job.onLoop) this.movedToLoop(job)
    return 'started'
  }

  private admitToLoop(job: J): 'started' | 'expired' | 'declined' {
    const now = this.now()
    if (this.stale(job, now)) return 'expired'
    job.startedAt = now
    this.active.set(job.id, job)
    this.onLoops++
    job.onLoop = true
    const r = this.hooks.start(job, true)
    if (r === 'loop') return 'started'
    // Not for a loop (or it failed, and was finished): as if never offered.
    if (this.active.get(job.id) === job) {
      this.active.delete(job.id)
      this.onLoops--
    }
    job.onLoop = false
    return r === 'declined' ? 'declined' : 'started'
  }

  private compact(): void {
    if (this.waiting === 0) {
      this.queue = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
  }
}
