// Admission with ASGI event loops (dispatcher.ts): a request that goes to a loop holds no thread slot
// (at submit, or when its worker hands it over: detached), loop requests are counted apart up to their
// own cap, new requests are offered to the loops first while every thread is busy, and request-timeout's
// arithmetic (activeAgeSum) counts only requests on threads.
import t from 'tap'
import { Dispatcher, type Job, type StartResult } from '../../src/daemon/dispatcher'

class J implements Job {
  startedAt = 0
  queued = false
  onLoop?: boolean
  constructor(
    readonly id: number,
    readonly requestStartUs: number,
    /** What the bridge would do with it: run it on a loop (a known ASGI application) or a thread. */
    readonly asgi: boolean,
  ) {}
}

function setup(threads: number, cap = 1000, queueTimeoutMs = 0) {
  let now = 1_000_000
  const calls: Array<[number, boolean, StartResult]> = []
  const expired: number[] = []
  const d = new Dispatcher<J>(
    threads,
    queueTimeoutMs,
    {
      start: (j, loopOnly) => {
        const r: StartResult = j.asgi ? 'loop' : loopOnly ? 'declined' : 'thread'
        calls.push([j.id, loopOnly, r])
        return r
      },
      expire: (j) => expired.push(j.id),
    },
    () => now,
    cap,
  )
  const job = (id: number, asgi: boolean, ageMs = 0) => new J(id, (now - ageMs) * 1000, asgi)
  return { d, calls, expired, job, advance: (ms: number) => (now += ms) }
}

t.test('a request that goes to a loop frees its thread slot at once', async (t) => {
  const { d, job } = setup(1)
  t.equal(d.enqueue(job(1, true)), 'started')
  t.equal(d.threadCount, 0)
  t.equal(d.loopCount, 1)
  t.equal(d.activeCount, 1, 'still active until its final event')
  t.equal(d.enqueue(job(2, false)), 'started', 'the thread is free for a WSGI request')
  t.equal(d.threadCount, 1)
  d.finish(1)
  t.equal(d.loopCount, 0)
  d.finish(2)
  t.equal(d.activeCount, 0)
})

t.test('detached: a worker handed its request to a loop, so the next waiting job starts', async (t) => {
  const { d, job, calls } = setup(1)
  const first = job(1, false) // its application is not known yet: it takes the thread
  d.enqueue(first)
  t.equal(d.enqueue(job(2, false)), 'queued')
  d.detached(1)
  t.equal(first.onLoop, true)
  t.equal(d.threadCount, 1, 'job 2 took the thread')
  t.equal(d.loopCount, 1)
  t.same(calls.map((c) => c[0]), [1, 2])
  d.detached(1) // twice: ignored
  t.equal(d.loopCount, 1)
  d.finish(1)
  d.finish(2)
  t.equal(d.threadCount + d.loopCount + d.activeCount, 0)
})

t.test('while every thread is busy, a new request is offered to the loops first (once a loop ran one)', async (t) => {
  const { d, job, calls } = setup(1)
  d.enqueue(job(1, false))
  t.equal(d.enqueue(job(2, true)), 'queued', 'no loop seen yet: it waits like any request')
  t.same(calls.map((c) => c[0]), [1], 'without asking the bridge')
  d.detached(1) // job 1 was ASGI after all: the thread is free, job 2 is admitted and goes to the loop
  t.same(calls.at(-1), [2, false, 'loop'])
  t.equal(d.enqueue(job(3, false)), 'started', 'job 3 takes the thread')
  t.equal(d.enqueue(job(4, true)), 'started', 'thread busy, but a loop takes job 4')
  t.same(calls.at(-1), [4, true, 'loop'])
  t.equal(d.enqueue(job(5, false)), 'queued', 'a WSGI request is declined by the loops and waits')
  t.same(calls.at(-1), [5, true, 'declined'])
  t.equal(d.queuedCount, 1)
  d.finish(3)
  t.same(calls.at(-1), [5, false, 'thread'], 'then gets the thread')
  t.equal(d.loopCount, 3)
})

t.test('loop requests are capped', async (t) => {
  const { d, job } = setup(2, 2)
  t.equal(d.enqueue(job(1, true)), 'started')
  t.equal(d.enqueue(job(2, true)), 'started')
  t.equal(d.loopCount, 2)
  t.equal(d.enqueue(job(3, true)), 'queued', 'at the cap: it waits')
  d.finish(1)
  t.equal(d.loopCount, 2, 'admitted when a loop request ended')
  t.equal(d.queuedCount, 0)
})

t.test('queue-timeout applies on the way to a loop too', async (t) => {
  const { d, job, expired } = setup(1, 1000, 500)
  d.enqueue(job(1, false))
  d.detached(1)
  d.enqueue(job(2, false)) // holds the thread
  t.equal(d.enqueue(job(3, true, 800)), 'expired')
  t.same(expired, [3])
})

t.test('activeAgeSum counts requests on threads only; wouldQueue looks at threads', async (t) => {
  const { d, job, advance } = setup(2)
  d.enqueue(job(1, true))
  d.enqueue(job(2, false))
  advance(1000)
  t.equal(d.activeAgeSum(), 1000, 'the loop request is not in request-timeout\'s sum')
  t.equal(d.wouldQueue, false)
  d.enqueue(job(3, false))
  t.equal(d.wouldQueue, true)
})

t.test('a start hook that returns nothing counts as a thread (older callers)', async (t) => {
  const d = new Dispatcher<J>(1, 0, { start: () => undefined, expire: () => undefined })
  d.enqueue(new J(1, 0, true))
  t.equal(d.threadCount, 1)
  t.equal(d.loopCount, 0)
})

t.test('uncap: an open WebSocket stays active but no longer counts against the loop cap', async (t) => {
  const { d, job } = setup(1, 2)
  d.enqueue(job(1, true))
  d.enqueue(job(2, true))
  t.equal(d.enqueue(job(3, true)), 'queued', 'at the cap: it waits')
  d.uncap(1)
  t.equal(d.queuedCount, 0, 'the waiting request was admitted')
  t.equal(d.loopCount, 2)
  t.equal(d.activeCount, 3, 'the WebSocket is still active')
  d.uncap(1) // twice: ignored
  t.equal(d.loopCount, 2)
  d.finish(1)
  t.equal(d.loopCount, 2, 'its end does not count against the cap again')
  t.equal(d.activeCount, 2)
})
