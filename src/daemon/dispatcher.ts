// Admission of requests into the bridge: at most `threads` requests that hold a thread are submitted and
// not yet final; the rest wait first-in first-out. A job may give its thread slot back while it goes on
// (release(): an ASGI request or an open WebSocket runs on an event loop, not on a worker thread), so the
// budget is of threads, not of requests in flight. queue-timeout (release notes, New Features 11) is applied when a request
// would be submitted: one whose request_start (when Apache read the request line) is older than the
// timeout is answered with 503 and never run, so a backlog drains fast instead of feeding stale work to
// the application. Pure logic: the hooks do the I/O, the clock is injectable for tests.

export interface Job {
  readonly id: number
  /** REQUEST's request_start: microseconds since the epoch. */
  readonly requestStartUs: number
  /** Date.now() when submitted to the bridge (set here). */
  startedAt: number
  /** Internal: set while waiting in the queue; cleared when admitted or cancelled. */
  queued: boolean
  /** Counts against the thread budget while active (set true on admission, false by release()). */
  holdsThread: boolean
}

export interface DispatcherHooks<J extends Job> {
  /** Submit the job to the bridge now. Must not throw (the caller turns failures into an answer). */
  start(job: J): void
  /** The job waited longer than queue-timeout: answer 503 and forget it. */
  expire(job: J, waitedMs: number): void
}

export type EnqueueResult = 'started' | 'queued' | 'expired' | 'refused'

export class Dispatcher<J extends Job> {
  /** Jobs submitted and not yet final, by id. */
  readonly active = new Map<number, J>()
  /** Active jobs that hold a thread slot. */
  private busy = 0
  private queue: Array<J | undefined> = []
  private head = 0
  private waiting = 0
  private open = true

  constructor(
    private readonly threads: number,
    private readonly queueTimeoutMs: number,
    private readonly hooks: DispatcherHooks<J>,
    private readonly now: () => number = Date.now,
  ) {
    if (!(threads >= 1)) throw new RangeError('threads must be at least 1')
  }

  /** Jobs submitted and not yet final, with a thread or not. */
  get activeCount(): number {
    return this.active.size
  }

  /** Active jobs holding a thread slot (at most `threads`). */
  get threadsBusy(): number {
    return this.busy
  }

  get queuedCount(): number {
    return this.waiting
  }

  /** True when a job offered now would not start at once (no free thread, or others wait first). */
  get wouldQueue(): boolean {
    return this.busy >= this.threads || this.waiting > 0
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
    if (this.busy < this.threads && this.waiting === 0) return this.admit(job)
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
    if (job.holdsThread) {
      job.holdsThread = false
      this.busy--
      this.pump()
    }
  }

  /** The job goes on without a thread (it was handed to an event loop): its slot admits the next. */
  release(id: number): void {
    const job = this.active.get(id)
    if (job === undefined || !job.holdsThread) return
    job.holdsThread = false
    this.busy--
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

  /** Sum over jobs holding a thread of how long they have run, in ms (request-timeout's arithmetic,
   *  a measure of the threads' capacity). */
  activeAgeSum(now = this.now()): number {
    let sum = 0
    for (const j of this.active.values()) if (j.holdsThread) sum += now - j.startedAt
    return sum
  }

  private pump(): void {
    while (this.busy < this.threads && this.waiting > 0 && this.head < this.queue.length) {
      const job = this.queue[this.head]
      this.queue[this.head++] = undefined
      if (!job) continue
      job.queued = false
      this.waiting--
      this.admit(job)
    }
    this.compact()
  }

  private admit(job: J): 'started' | 'expired' {
    const now = this.now()
    if (this.queueTimeoutMs > 0) {
      const waited = now - job.requestStartUs / 1000
      if (waited > this.queueTimeoutMs) {
        this.hooks.expire(job, Math.round(waited))
        return 'expired'
      }
    }
    job.startedAt = now
    job.holdsThread = true
    this.busy++
    this.active.set(job.id, job)
    this.hooks.start(job)
    return 'started'
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
