// What the Apache child does around a WebSocket: an idle one outlives Apache's Timeout and
// mod_reqtimeout; an upgrade it cannot carry (HTTP/1.0, a bad version) goes out as an ordinary request;
// a WSGI application's 101 is refused (only an accepted WebSocket switches protocols); a denied upgrade
// leaves the client connection usable; a client that resets its connection ends the tunnel quietly.
import * as net from 'node:net'
import t from 'tap'
import { ALLOW_FIXTURES, fixture, sleep, startApache, waitFor } from '../helpers/apache'
import { rawRequest } from '../asgi/helpers'
import { connect, wsConfig } from './helpers'
import { RawClient, frame } from './raw'

const UPGRADE = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'

t.test('the Apache child and WebSockets', async (t) => {
  const apache = await startApache(t, {
    modules: ['reqtimeout'],
    preamble: 'Timeout 2\nRequestReadTimeout header=1 body=1',
    config: wsConfig('tun', 'websocket-ping-interval=0', `WSGIScriptAlias /switching ${fixture('switching')}\n${ALLOW_FIXTURES}`),
  })

  await t.test("an idle WebSocket outlives Timeout and mod_reqtimeout's limits", async (t) => {
    const c = await connect(`ws://127.0.0.1:${apache.port}/ws/echo`)
    await sleep(4500)
    c.send('after 4.5 s of silence')
    t.equal(await c.next(), 'after 4.5 s of silence')
    await c.close()
  })

  await t.test('upgrades it cannot carry are ordinary requests', async (t) => {
    const v10 = await rawRequest(apache.port, `GET /ws/echo HTTP/1.0\r\nHost: x\r\n${UPGRADE}Sec-WebSocket-Version: 13\r\n\r\n`)
    t.match(v10.head, /^HTTP\/1\.1 200 /, 'HTTP/1.0: the application answers as for HTTP')
    const v8 = await rawRequest(apache.port, `GET /ws/echo HTTP/1.1\r\nHost: x\r\n${UPGRADE}Sec-WebSocket-Version: 8\r\nConnection: close\r\n\r\n`)
    t.match(v8.head, /^HTTP\/1\.1 200 /, 'an unsupported version: an ordinary request')
  })

  await t.test("a WSGI application's 101 is refused", async (t) => {
    const r = await rawRequest(apache.port, `GET /switching HTTP/1.1\r\nHost: x\r\n${UPGRADE}Sec-WebSocket-Version: 13\r\n\r\n`)
    t.match(r.head, /^HTTP\/1\.1 502 /)
    await apache.waitForLog(/WSGI01220: Malformed response from daemon process 'tun': a 101 response, or a WebSocket accept, to a request that is not a WebSocket upgrade/)
  })

  await t.test('a denied upgrade leaves the connection usable for the next request', async (t) => {
    const s = net.connect(apache.port, '127.0.0.1')
    await new Promise((r) => s.once('connect', r))
    let data = ''
    s.on('data', (c: Buffer) => (data += c.toString('latin1')))
    s.write(`GET /ws/deny HTTP/1.1\r\nHost: x\r\n${UPGRADE}Sec-WebSocket-Version: 13\r\n\r\n`)
    await waitFor(() => /HTTP\/1\.1 403/.test(data), 5000, 20, 'the 403')
    s.write('GET /ws/events HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor(() => /HTTP\/1\.1 200/.test(data), 5000, 20, 'the second answer on the same connection')
    t.pass('403, then 200 on the same connection')
    s.destroy()
  })

  await t.test('a client that resets its connection ends the tunnel; the application hears 1006', async (t) => {
    await apache.request('/ws/events/clear')
    const c = await RawClient.open(apache.port, '/ws/echo')
    c.send(frame(1, 'hello'))
    await c.read()
    c.socket.resetAndDestroy()
    await waitFor(async () => (await apache.request('/ws/events')).text.includes('"code": 1006'), 5000, 100, 'the disconnect')
    t.notMatch(apache.log(), /WSGI01801/, 'not taken for a lost daemon')
  })
})
