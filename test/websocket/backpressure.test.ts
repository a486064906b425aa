// Backpressure both ways through Apache: an application that sends 64 MiB to a client that does not
// read, and a client that sends 64 MiB to an application that does not receive, leave the daemon's and
// the Apache child's memory bounded (each side stops reading the other), and everything arrives, in
// order, once the slow side catches up.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { childPids, sleep, startApache } from '../helpers/apache'
import { connect, wsConfig } from './helpers'

const MESSAGES = 1024
const SIZE = 64 * 1024
const TOTAL = MESSAGES * SIZE

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
  return m ? Number(m[1]) * 1024 : 0
}

t.test('WebSocket backpressure both ways', async (t) => {
  const apache = await startApache(t, { config: wsConfig('bp') })
  const url = `ws://127.0.0.1:${apache.port}/ws`
  // Warm up (the application loaded, its loop running), then measure from there.
  const w = await connect(`${url}/echo`)
  w.send('warm')
  await w.next()
  await w.close()
  const daemon = apache.daemonPids()[0]
  const children = () => childPids(apache.pid).filter((p) => p !== daemon)
  const peak = { daemon: 0, child: 0 }
  const base = { daemon: rss(daemon), child: Math.max(...children().map(rss)) }
  const sampler = setInterval(() => {
    peak.daemon = Math.max(peak.daemon, rss(daemon))
    for (const c of children()) peak.child = Math.max(peak.child, rss(c))
  }, 50)
  t.teardown(() => clearInterval(sampler))

  await t.test('a client that does not read: the application waits in send()', async (t) => {
    peak.daemon = peak.child = 0
    const c = await connect(`${url}/flood`)
    c.ws.pause()
    c.send(`${MESSAGES} ${SIZE}`)
    await sleep(3000)
    const stalled = { daemon: peak.daemon - base.daemon, child: peak.child - base.child }
    c.ws.resume()
    let bytes = 0
    for (let i = 0; i < MESSAGES; i++) bytes += ((await c.next(20000)) as Buffer).length
    t.equal(bytes, TOTAL, `all ${TOTAL} bytes arrive once the client reads`)
    t.equal(await c.next(), 'done')
    await c.close()
    t.ok(stalled.daemon < 48 * 1024 * 1024, `the daemon grew ${(stalled.daemon / 1048576).toFixed(1)} MiB while 64 MiB waited to be sent`)
    t.ok(stalled.child < 16 * 1024 * 1024, `the Apache child grew ${(stalled.child / 1048576).toFixed(1)} MiB`)
  })

  await t.test('an application that does not receive: the client is not read', async (t) => {
    peak.daemon = peak.child = 0
    const c = await connect(`${url}/slow?4`)
    const chunk = Buffer.alloc(SIZE, 1)
    for (let i = 0; i < MESSAGES; i++) {
      chunk.writeUInt32BE(i, 0)
      c.send(Buffer.from(chunk))
    }
    c.send('end')
    await sleep(3000)
    const stalled = { daemon: peak.daemon - base.daemon, child: peak.child - base.child }
    const unsent = c.ws.bufferedAmount
    const report = JSON.parse((await c.next(30000)) as string)
    t.same(report, { count: MESSAGES, bytes: TOTAL, ordered: true }, 'every message arrives, in order')
    await c.close()
    t.ok(unsent > 16 * 1024 * 1024, `the client still held ${(unsent / 1048576).toFixed(1)} MiB it could not send`)
    t.ok(stalled.daemon < 48 * 1024 * 1024, `the daemon grew ${(stalled.daemon / 1048576).toFixed(1)} MiB while 64 MiB were offered`)
    t.ok(stalled.child < 16 * 1024 * 1024, `the Apache child grew ${(stalled.child / 1048576).toFixed(1)} MiB`)
  })

})
