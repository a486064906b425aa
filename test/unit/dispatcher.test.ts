// Admission: at most `threads` jobs run, the rest wait FIFO; queue-timeout measured from request_start
// when a job would be submitted; cancel and close.
import t from 'tap'
import { Dispatcher, type Job } from '../../src/daemon/dispatcher'

class J implements Job {
  startedAt = 0
  queued = false
  constructor(
    readonly id: number,
    readonly requestStartUs: number,
  ) {}
}

function setup(threads: number, queueTimeoutMs = 0) {
  let now = 1_000_000
  const started: number[] = []
  const expired: Array<[number, number]> = []
  const d = new Dispatcher<J>(
    threads,
    queueTimeoutMs,
    { start: (j) => void started.push(j.id), expire: (j, w) => expired.push([j.id, w]) },
    () => now,
  )
  const job = (id: number, ageMs = 0) => new J(id, (now - ageMs) * 1000)
  return { d, started, expired, job, advance: (ms: number) => (now += ms), now: () => now }
}

t.test('admits up to threads, queues the rest FIFO', async (t) => {
  const { d, started, job } = setup(2)
  t.equal(d.enqueue(job(1)), 'started')
  t.equal(d.enqueue(job(2)), 'started')
  t.equal(d.enqueue(job(3)), 'queued')
  t.equal(d.enqueue(job(4)), 'queued')
  t.same(started, [1, 2])
  t.equal(d.activeCount, 2)
  t.equal(d.queuedCount, 2)
  d.finish(2)
  t.same(started, [1, 2, 3], 'oldest waiting job goes first')
  d.finish(1)
  t.same(started, [1, 2, 3, 4])
  t.equal(d.queuedCount, 0)
  d.finish(99) // unknown: ignored
  d.finish(3)
  d.finish(4)
  t.equal(d.activeCount, 0)
})

t.test('a new job never overtakes waiting ones', async (t) => {
  const { d, started, job } = setup(1)
  d.enqueue(job(1))
  d.enqueue(job(2))
  t.equal(d.enqueue(job(3)), 'queued')
  d.finish(1)
  t.same(started, [1, 2])
})

t.test('queue-timeout: stale jobs are expired at admission, fresh ones run', async (t) => {
  const { d, started, expired, job, advance } = setup(1, 1000)
  t.equal(d.enqueue(job(1, 1500)), 'expired', 'already older than the timeout when it arrives')
  t.same(expired.map((e) => e[0]), [1])
  t.ok(expired[0][1] >= 1500)
  t.equal(d.enqueue(job(2, 0)), 'started')
  d.enqueue(job(3, 0))
  d.enqueue(job(4, 0))
  advance(600)
  d.enqueue(job(5, 0))
  advance(500) // 3 and 4 have now waited 1100 ms, 5 only 500
  d.finish(2)
  t.same(expired.map((e) => e[0]), [1, 3, 4])
  t.same(started, [2, 5])
  t.equal(d.activeCount, 1)
  t.equal(d.queuedCount, 0)
})

t.test('queue-timeout 0 never expires', async (t) => {
  const { d, expired, job } = setup(1, 0)
  t.equal(d.enqueue(job(1, 10_000_000)), 'started')
  t.same(expired, [])
})

t.test('cancel removes a waiting job; running jobs cannot be cancelled', async (t) => {
  const { d, started, job } = setup(1)
  const a = job(1)
  const b = job(2)
  const c = job(3)
  d.enqueue(a)
  d.enqueue(b)
  d.enqueue(c)
  t.notOk(d.cancel(a), 'running')
  t.ok(d.cancel(b))
  t.notOk(d.cancel(b), 'twice')
  t.equal(d.queuedCount, 1)
  d.finish(1)
  t.same(started, [1, 3])
})

t.test('close returns waiting jobs and refuses new ones', async (t) => {
  const { d, started, job } = setup(1)
  d.enqueue(job(1))
  d.enqueue(job(2))
  d.enqueue(job(3))
  const waiting = d.close()
  t.same(waiting.map((j) => j.id), [2, 3])
  t.equal(d.enqueue(job(4)), 'refused')
  t.notOk(d.accepting)
  d.finish(1)
  t.same(started, [1], 'nothing admitted after close')
})

t.test('close keeps the jobs it is told to keep: they still run, in order', async (t) => {
  const { d, started, job } = setup(1)
  for (const id of [1, 2, 3, 4]) d.enqueue(job(id))
  const waiting = d.close((j) => j.id % 2 === 0)
  t.same(waiting.map((j) => j.id), [3], 'only the others are returned')
  t.ok(waiting.every((j) => !j.queued), 'returned jobs are no longer queued')
  t.equal(d.queuedCount, 2, 'the kept ones still wait')
  d.finish(1)
  d.finish(2)
  t.same(started, [1, 2, 4], 'kept jobs run after close, in order')
})

t.test('hooks may reenter (finish from start, close from start)', async (t) => {
  const started: number[] = []
  let d: Dispatcher<J>
  d = new Dispatcher<J>(1, 0, {
    start: (j) => {
      started.push(j.id)
      if (j.id === 2) d.close()
    },
    expire: () => undefined,
  })
  d.enqueue(new J(1, 0))
  d.enqueue(new J(2, 0))
  d.enqueue(new J(3, 0))
  d.finish(1)
  t.same(started, [1, 2])
  t.equal(d.queuedCount, 0)
  t.equal(d.enqueue(new J(4, 0)), 'refused')
})

t.test('activeAgeSum adds the ages of running jobs', async (t) => {
  const { d, job, advance } = setup(3)
  d.enqueue(job(1))
  advance(100)
  d.enqueue(job(2))
  advance(50)
  t.equal(d.activeAgeSum(), 150 + 50)
})

t.test('a long queue stays correct through many admissions', async (t) => {
  const { d, started, job } = setup(2)
  for (let i = 1; i <= 5000; i++) d.enqueue(job(i))
  for (let i = 1; i <= 5000; i++) d.finish(i)
  t.equal(started.length, 5000)
  t.same(started.slice(0, 5), [1, 2, 3, 4, 5])
  t.equal(started[4999], 5000)
  t.equal(d.activeCount, 0)
})

t.test('detached(): a job that goes on without a thread (on an event loop) frees its slot for the next', async (t) => {
  const { d, started, job, advance } = setup(1)
  d.enqueue(job(1))
  d.enqueue(job(2))
  t.same(started, [1], 'one thread: the second waits')
  t.equal(d.threadCount, 1)
  advance(100)
  d.detached(1)
  t.same(started, [1, 2], 'detached: the second is admitted')
  t.equal(d.activeCount, 2, 'both are active')
  t.equal(d.threadCount, 1, 'one holds the thread')
  t.equal(d.activeAgeSum(), 0, 'request-timeout measures only jobs holding a thread')
  d.detached(1)
  d.finish(1)
  t.equal(d.threadCount, 1, 'finishing a detached job frees no thread twice')
  d.finish(2)
  t.equal(d.threadCount, 0)
  t.equal(d.activeCount, 0)
})
