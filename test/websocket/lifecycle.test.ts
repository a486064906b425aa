// The life of open WebSockets: a graceful restart lets them go on until graceful-timeout, then closes
// them with 1001 while new ones reach the successor; a crash of the daemon closes them with 1011 and
// the Apache child says why; request-timeout does not apply to them; pings find dead peers and
// websocket-idle-timeout / websocket-max-lifetime end them; the board counts them; bad option values
// fail apache2 -t.
import { openSync, readSync, closeSync } from 'node:fs'
import t from 'tap'
import { assertRefused, sleep, startApache, waitFor } from '../helpers/apache'
import { alive } from '../helpers/daemons'
import { asgiFixture, connect, wsConfig } from './helpers'
import { RawClient, frame } from './raw'

/** The `websockets` count on the board slot of daemon `pid` (docs/board.md: header 256, slots of 4096,
 *  pid at 4, websockets at 84), read through the daemon's fd 4. */
function boardWebSockets(pid: number): number {
  const fd = openSync(`/proc/${pid}/fd/4`, 'r')
  try {
    const head = Buffer.alloc(16)
    readSync(fd, head, 0, 16, 0)
    const slots = head.readUInt32LE(8)
    const slot = Buffer.alloc(88)
    for (let i = 0; i < slots; i++) {
      readSync(fd, slot, 0, 88, 256 + i * 4096)
      if (slot.readUInt32LE(4) === pid) return slot.readUInt32LE(84)
    }
    return -1
  } finally {
    closeSync(fd)
  }
}

t.test('open WebSockets across restarts, crashes and limits', async (t) => {
  const apache = await startApache(t, {
    config:
      wsConfig('life', 'graceful-timeout=3 request-timeout=2') +
      `
WSGIDaemonProcess limits threads=2 websocket-ping-interval=1 websocket-ping-timeout=2
WSGIDaemonProcess idle threads=2 websocket-idle-timeout=2
WSGIDaemonProcess lifetime threads=2 websocket-max-lifetime=2
WSGIScriptAlias /limits/ws ${asgiFixture('websocket')} process-group=limits application-group=%{GLOBAL}
WSGIScriptAlias /lifetime/ws ${asgiFixture('websocket')} process-group=lifetime application-group=%{GLOBAL}
WSGIScriptAlias /idle/ws ${asgiFixture('websocket')} process-group=idle application-group=%{GLOBAL}
`,
  })
  const url = `ws://127.0.0.1:${apache.port}`

  await t.test('request-timeout does not apply to an open WebSocket; the board counts it', async (t) => {
    const c = await connect(`${url}/ws/echo`)
    const d = await connect(`${url}/ws/echo`)
    const pids = apache.daemonPids()
    const counts = await waitFor(() => {
      const n = pids.map(boardWebSockets).reduce((a, b) => a + Math.max(b, 0), 0)
      return n >= 2 ? n : 0
    }, 5000, 100, 'the board to count 2 WebSockets')
    t.equal(counts, 2, 'two open WebSockets on the board')
    await sleep(4500)
    c.send('still here')
    t.equal(await c.next(), 'still here', 'alive after twice request-timeout')
    await c.close()
    await d.close()
    await waitFor(() => pids.map(boardWebSockets).every((n) => n <= 0), 5000, 100, 'the count to drop back to 0')
    t.notMatch(apache.log(), /WSGI02120/, 'no request-timeout for it')
  })

  await t.test('a graceful restart: open WebSockets go on until graceful-timeout, then 1001', async (t) => {
    const c = await connect(`${url}/ws/echo`)
    const old = (await waitFor(() => {
      const held = apache.daemonPids().filter((p) => boardWebSockets(p) === 1)
      return held.length === 1 ? held : null
    }, 5000, 100, 'the daemon holding it'))!
    process.kill(old[0], 'SIGUSR1')
    await apache.waitForLog(/WSGI02051: Process 'life' is to be replaced/)
    await sleep(1500)
    c.send('during the drain')
    t.equal(await c.next(), 'during the drain', 'still served while the old process drains')
    const fresh = await connect(`${url}/ws/echo`)
    fresh.send('new')
    t.equal(await fresh.next(), 'new', 'a new WebSocket meanwhile reaches the successor')
    const closed = await c.closed
    t.equal(closed.code, 1001, 'closed with 1001 once graceful-timeout is over')
    await apache.waitForLog(/WSGI02203: Daemon process 'life' stops: closing 1 open WebSocket\(s\) with 1001/)
    await waitFor(() => !alive(old[0]), 15000, 100, 'the old process to exit')
    fresh.send('after')
    t.equal(await fresh.next(), 'after', "the successor's WebSocket is untouched")
    await fresh.close()
  })

  await t.test('a crash of the daemon: the client gets 1011, the Apache child logs why', async (t) => {
    const c = await connect(`${url}/ws/echo`)
    c.send('x')
    await c.next()
    const holder = (await waitFor(() => {
      const held = apache.daemonPids().filter((p) => boardWebSockets(p) === 1)
      return held.length === 1 ? held : null
    }, 5000, 100, 'the daemon holding it'))!
    process.kill(holder[0], 'SIGKILL')
    t.equal((await c.closed).code, 1011)
    await apache.waitForLog(/WSGI01801: Daemon process 'life' closed an open WebSocket without a close frame .* with 1011/)
    // The group is restarted and serves WebSockets again.
    const again = (await waitFor(() => connect(`${url}/ws/echo`).catch(() => null), 15000, 200, 'a new daemon'))!
    again.send('back')
    t.equal(await again.next(), 'back')
    await again.close()
  })

  await t.test('pings: answered clients live on, silent ones are dropped (websocket-ping-timeout)', async (t) => {
    const live = await connect(`${url}/limits/ws/echo`) // ws answers pings itself
    const dead = await RawClient.open(apache.port, '/limits/ws/echo') // this one never answers
    const ping = await dead.read(5000)
    t.equal(ping.opcode, 9, 'a ping comes after websocket-ping-interval')
    const r = await dead.closeCode(8000)
    t.equal(r.code, 1011, 'no pong within websocket-ping-timeout: closed (1011, keepalive ping timeout)')
    t.ok(r.tcpClosed)
    await apache.waitForLog(/WSGI02201: WebSocket client did not answer a ping/)
    live.send('alive')
    t.equal(await live.next(), 'alive', 'the answering client is still open')
    dead.destroy()
    await live.close()
  })

  await t.test('websocket-idle-timeout', async (t) => {
    const live = await connect(`${url}/idle/ws/echo`)
    live.send('one message')
    await live.next()
    const closed = await live.closed
    t.same(closed, { code: 1001, reason: 'idle timeout' }, 'closed after websocket-idle-timeout without messages')
    await apache.waitForLog(/WSGI02202: WebSocket closed with 1001: websocket-idle-timeout/)
  })

  await t.test('websocket-max-lifetime', async (t) => {
    const c = await connect(`${url}/lifetime/ws/echo`)
    const timer = setInterval(() => c.ws.readyState === 1 && c.send('busy'), 200)
    const closed = await c.closed
    clearInterval(timer)
    t.same(closed, { code: 1001, reason: 'maximum lifetime' }, 'closed after websocket-max-lifetime although busy')
  })

  await t.test('a raw client keeps the connection with pongs', async (t) => {
    const c = await RawClient.open(apache.port, '/limits/ws/echo')
    for (let i = 0; i < 3; i++) {
      const p = await c.read(5000)
      t.equal(p.opcode, 9, `ping ${i}`)
      c.send(frame(10, p.payload))
    }
    c.send(frame(1, 'ok'))
    const m = await c.read()
    t.ok(m.opcode === 1 && m.payload.toString() === 'ok', 'still open after 3 pings answered')
    c.destroy()
  })

  await t.test('bad WebSocket option values fail apache2 -t', async (t) => {
    await assertRefused(t, 'WSGIDaemonProcess x websocket-max-message=big', /websocket-max-message.*size in bytes/)
    await assertRefused(t, 'WSGIDaemonProcess x websocket-max-message=3G', /websocket-max-message.*below 2G/)
    await assertRefused(t, 'WSGIDaemonProcess x websocket-ping-timeout=0', /websocket-ping-timeout.*integer from 1/)
    await assertRefused(t, 'WSGIDaemonProcess x websocket-idle-timeout=-1', /websocket-idle-timeout/)
    await assertRefused(t, 'WSGIDaemonProcess x websocket-max-lifetime=x', /websocket-max-lifetime/)
  })
})
