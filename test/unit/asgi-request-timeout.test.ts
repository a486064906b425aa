// request-timeout for ASGI requests (src/daemon/asgi/request-timeout.ts): each loop request older than
// the timeout is cancelled once, through bridge.cancel; requests on threads are left to timeouts.ts.
import t from 'tap'
import { LoopRequestTimer } from '../../src/daemon/asgi/request-timeout'
import { Dispatcher } from '../../src/daemon/dispatcher'
import type { RequestJob } from '../../src/daemon/request-job'

function job(id: number, asgi: boolean): RequestJob {
  return { id, requestStartUs: 0, startedAt: 0, queued: false, onLoop: false, cancelled: false, progressAt: 0, payload: null, asgi } as unknown as RequestJob
}

t.test('cancels loop requests older than request-timeout, once each', async (t) => {
  let now = 10_000
  const d = new Dispatcher<RequestJob>(1, 0, { start: (j) => ((j as unknown as { asgi: boolean }).asgi ? 'loop' : 'thread'), expire: () => undefined }, () => now)
  const cancelled: number[] = []
  const timer = new LoopRequestTimer('g', 2000, d, { cancel: (id: number) => cancelled.push(id) }, () => now)
  d.enqueue(job(1, true))
  d.enqueue(job(2, false))
  now += 1000
  d.enqueue(job(3, true))
  t.equal(timer.check(), 0)
  now += 1500
  t.equal(timer.check(), 1, 'job 1 is 2.5 s old')
  t.same(cancelled, [1])
  t.equal(timer.check(), 0, 'not twice')
  now += 1000
  timer.check()
  t.same(cancelled, [1, 3], 'job 3 in its turn; job 2 (a thread) never')
})

t.test('output resets the clock: a stream that keeps sending lives on', async (t) => {
  let now = 0
  const d = new Dispatcher<RequestJob>(1, 0, { start: () => 'loop', expire: () => undefined }, () => now)
  const cancelled: number[] = []
  const timer = new LoopRequestTimer('g', 1000, d, { cancel: (id: number) => cancelled.push(id) }, () => now)
  const j = job(1, true)
  d.enqueue(j)
  for (let i = 0; i < 5; i++) {
    now += 800
    j.progressAt = now
    timer.check()
  }
  t.same(cancelled, [], '4 s old, but never 1 s without output')
  now += 1200
  timer.check()
  t.same(cancelled, [1], 'then silent for 1.2 s')
})

t.test('not started without request-timeout', async (t) => {
  const d = new Dispatcher<RequestJob>(1, 0, { start: () => 'loop', expire: () => undefined })
  const timer = new LoopRequestTimer('g', 0, d, {})
  timer.start()
  t.pass('no timer, nothing to stop')
  timer.stop()
})
