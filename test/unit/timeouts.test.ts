// request-timeout arithmetic (release notes New Features 8) and the watchdog's decisions.
import t from 'tap'
import { Watchdog, requestLoadMs, requestTimeoutExceeded, type ExpiredTimeout } from '../../src/daemon/timeouts'

t.test('request-timeout arithmetic', async (t) => {
  // One thread: the age of the active request.
  t.equal(requestLoadMs(1, 4000), 4000)
  t.notOk(requestTimeoutExceeded(1, 5000, 5000), 'not exceeded at exactly the timeout')
  t.ok(requestTimeoutExceeded(1, 5001, 5000))
  // Several threads: the sum of ages divided by threads.
  t.equal(requestLoadMs(4, 8000), 2000)
  t.notOk(requestTimeoutExceeded(4, 12000, 5000), 'one request of 12 s among 4 threads: 3 s per thread')
  t.ok(requestTimeoutExceeded(4, 20004, 5000), 'four requests of ~5 s each')
  t.notOk(requestTimeoutExceeded(4, 1e9, 0), '0 means not set')
})

function rig(opts: { threads?: number; request?: number; inactivity?: number; deadlock?: number }) {
  let now = 10_000
  let active = 0
  let ageSum = 0
  let gil = 0
  const fired: Array<[ExpiredTimeout, string]> = []
  const w = new Watchdog(
    {
      threads: opts.threads ?? 1,
      requestTimeoutMs: opts.request ?? 0,
      inactivityTimeoutMs: opts.inactivity ?? 0,
      deadlockTimeoutMs: opts.deadlock ?? 0,
    },
    {
      activeCount: () => active,
      activeAgeSum: () => ageSum,
      lastGilAcquired: () => gil,
      expired: (k, d) => fired.push([k, d]),
    },
    () => now,
  )
  return {
    w,
    fired,
    set: (v: { now?: number; active?: number; ageSum?: number; gil?: number }) => {
      now = v.now ?? now
      active = v.active ?? active
      ageSum = v.ageSum ?? ageSum
      gil = v.gil ?? gil
    },
    advance: (ms: number) => (now += ms),
  }
}

t.test('nothing set: no timer needed', async (t) => {
  t.notOk(rig({}).w.needed)
})

t.test('inactivity: idle and no I/O for the period; I/O or an active request resets it', async (t) => {
  const r = rig({ inactivity: 1000 })
  t.ok(r.w.needed)
  r.advance(900)
  t.equal(r.w.check(), null)
  r.w.touch()
  r.advance(200)
  t.equal(r.w.check(), null, 'I/O during the period resets it')
  r.advance(900)
  t.equal(r.w.check(), null)
  r.set({ active: 1 })
  r.advance(5000)
  t.equal(r.w.check(), null, 'a long request is never interrupted by inactivity-timeout')
  r.set({ active: 0 })
  r.advance(1001)
  t.equal(r.w.check(), 'inactivity-timeout')
  t.equal(r.fired.length, 1)
})

t.test('request-timeout: single thread by age, several by load', async (t) => {
  const one = rig({ request: 2000, threads: 1 })
  one.set({ active: 1, ageSum: 1999 })
  t.equal(one.w.check(), null)
  one.set({ ageSum: 2001 })
  t.equal(one.w.check(), 'request-timeout')
  t.match(one.fired[0][1], /run for 2001 ms/)

  const many = rig({ request: 2000, threads: 4 })
  many.set({ active: 1, ageSum: 7000 })
  t.equal(many.w.check(), null, 'one long request among four threads')
  many.set({ active: 4, ageSum: 8004 })
  t.equal(many.w.check(), 'request-timeout')
  t.match(many.fired[0][1], /4 active requests .* 2001 ms per thread over 4 threads/)
})

t.test('deadlock: GIL not acquired for the period; unknown (0) is ignored', async (t) => {
  const r = rig({ deadlock: 3000 })
  r.set({ gil: 0 })
  r.advance(100_000)
  t.equal(r.w.check(), null, 'never stamped yet')
  r.set({ gil: 100_000 })
  r.set({ now: 102_999 })
  t.equal(r.w.check(), null)
  r.set({ now: 103_001 })
  t.equal(r.w.check(), 'deadlock-timeout')
})

t.test('the timer runs checks and stops after firing', async (t) => {
  const r = rig({ inactivity: 1 })
  r.advance(10)
  const real = new Watchdog(
    { threads: 1, requestTimeoutMs: 0, inactivityTimeoutMs: 20, deadlockTimeoutMs: 0, tickMs: 5 },
    { activeCount: () => 0, activeAgeSum: () => 0, lastGilAcquired: () => 0, expired: (k) => r.fired.push([k, 'timer']) },
  )
  real.start()
  await new Promise((res) => setTimeout(res, 150))
  t.same(r.fired, [['inactivity-timeout', 'timer']], 'fired exactly once')
  real.stop()
})
