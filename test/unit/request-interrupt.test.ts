// interrupt-timeout's decisions (src/daemon/request-interrupt.ts through the watchdog, timeouts.ts):
// when request-timeout's measure is over, the requests past request-timeout are interrupted once each
// (the oldest at least); one that has not ended interrupt-timeout after its first attempt makes the
// watchdog restart the process; one the addon could not reach yet is tried again.
import t from 'tap'
import { RequestInterrupter, payloadUri, type ActiveRequest } from '../../src/daemon/request-interrupt'
import { Watchdog, type ExpiredTimeout } from '../../src/daemon/timeouts'

function rig(threads: number, reachable = true) {
  let now = 100_000
  let requests: Array<{ id: number; startedAt: number }> = []
  const interrupted: number[] = []
  const raised: number[] = []
  const fired: Array<[ExpiredTimeout, string]> = []
  let reach = reachable
  const interrupter = new RequestInterrupter(
    { requestTimeoutMs: 1000, interruptTimeoutMs: 5000 },
    {
      active: (at): ActiveRequest[] => requests.map((r) => ({ id: r.id, ageMs: at - r.startedAt, uri: `/r${r.id}` })),
      interrupt: (id) => {
        interrupted.push(id)
        return reach
      },
      raised: (r) => raised.push(r.id),
    },
  )
  const w = new Watchdog(
    { threads, requestTimeoutMs: 1000, inactivityTimeoutMs: 0, deadlockTimeoutMs: 0, interrupter },
    {
      activeCount: () => requests.length,
      activeAgeSum: (at) => requests.reduce((s, r) => s + (at - r.startedAt), 0),
      lastGilAcquired: () => 0,
      expired: (k, d) => fired.push([k, d]),
    },
    () => now,
  )
  return {
    w,
    interrupted,
    raised,
    fired,
    start: (id: number, agoMs = 0) => requests.push({ id, startedAt: now - agoMs }),
    end: (id: number) => (requests = requests.filter((r) => r.id !== id)),
    advance: (ms: number) => (now += ms),
    reach: (v: boolean) => (reach = v),
  }
}

t.test('an overdue request is interrupted once; the process carries on when it ends', async (t) => {
  const r = rig(1)
  r.start(1)
  r.advance(900)
  t.equal(r.w.check(), null)
  t.same(r.interrupted, [], 'not before request-timeout')
  r.advance(200)
  t.equal(r.w.check(), null, 'request-timeout reached: no restart')
  t.same(r.raised, [1], 'RequestTimeout raised in it')
  r.advance(250)
  r.w.check()
  t.same(r.interrupted, [1], 'once')
  r.end(1)
  r.advance(10_000)
  t.equal(r.w.check(), null, 'it unwound: nothing more happens')
  t.same(r.fired, [])
})

t.test('a request still running interrupt-timeout after its interruption restarts the process', async (t) => {
  const r = rig(1)
  r.start(7)
  r.advance(1100)
  r.w.check()
  r.advance(4000)
  t.equal(r.w.check(), null, 'within interrupt-timeout')
  r.advance(1100)
  t.equal(r.w.check(), 'request-timeout')
  t.match(r.fired[0][1], /^\/r7 is still running 5100 ms after it was interrupted with mod_wsgi\.RequestTimeout \(interrupt-timeout 5000 ms\)$/)
})

t.test("several threads: request-timeout's measure decides; every request past request-timeout is interrupted", async (t) => {
  const r = rig(4)
  r.start(1, 3000)
  r.start(2, 200)
  t.equal(r.w.check(), null)
  t.same(r.interrupted, [], 'one long request among four threads: within capacity, left alone')
  r.start(3, 1500)
  r.start(4, 100)
  r.advance(10)
  // (3010 + 210 + 1510 + 110) / 4 = 1210 ms > 1000
  r.w.check()
  t.same(r.interrupted.sort(), [1, 3], 'the two past request-timeout; the short ones run on')
})

t.test('a request the addon cannot reach yet is tried again, and its grace counts from the first try', async (t) => {
  const r = rig(1, false)
  r.start(5)
  r.advance(1100)
  r.w.check()
  r.advance(250)
  r.w.check()
  t.same(r.interrupted, [5, 5], 'tried again')
  t.same(r.raised, [])
  r.reach(true)
  r.advance(250)
  r.w.check()
  t.same(r.raised, [5], 'raised once reachable')
  r.advance(4600)
  t.equal(r.w.check(), 'request-timeout', '5 s after the first try')
})

t.test('payloadUri: the REQUEST_URI of a payload for log lines', async (t) => {
  t.equal(payloadUri(3, 'request', null), 'request 3')
  const str = (s: string) => {
    const b = Buffer.from(s, 'latin1')
    const n = Buffer.alloc(4)
    n.writeUInt32BE(b.length)
    return Buffer.concat([n, b])
  }
  const fixed = Buffer.alloc(16)
  fixed.writeUInt32BE(2, 12)
  const payload = Buffer.concat([fixed, str('REQUEST_METHOD'), str('GET'), str('REQUEST_URI'), str('/x?y=1')])
  t.equal(payloadUri(4, 'request', payload), '/x?y=1')
})
