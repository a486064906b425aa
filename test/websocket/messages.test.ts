// WebSocket through Apache to an ASGI application (test/fixtures/asgi/websocket), with Node's `ws` as
// the client: the scope, messages both ways, the handshake's answer (subprotocol, the application's
// headers), denials (403, the websocket.http.response extension), failures before and after the accept,
// close codes and reasons both ways, many connections at once, and a WSGI application asked to upgrade.
import * as http from 'node:http'
import t from 'tap'
import WebSocket from 'ws'
import { ALLOW_FIXTURES, fixture, startApache } from '../helpers/apache'
import { connect, wsConfig } from './helpers'

interface Refused extends Error {
  status?: number
  headers?: http.IncomingHttpHeaders
  body?: string
}

t.test('WebSocket messages through Apache', async (t) => {
  const apache = await startApache(t, {
    config: wsConfig('ws', '', `WSGIScriptAlias /wsgi ${fixture('hello')}\n${ALLOW_FIXTURES}`),
  })
  const url = `ws://127.0.0.1:${apache.port}/ws`
  const events = async (): Promise<Array<Record<string, unknown>>> => JSON.parse((await apache.request('/ws/events')).body.toString())
  const clear = () => apache.request('/ws/events/clear')

  await t.test('text and binary echo; the app gets only the key that is set', async (t) => {
    await clear()
    const c = await connect(`${url}/echo`)
    c.send('héllo ✓')
    t.equal(await c.next(), 'héllo ✓')
    const bin = Buffer.from([0, 1, 2, 255, 254])
    c.send(bin)
    t.same(await c.next(), bin)
    c.send('')
    t.equal(await c.next(), '', 'an empty text message')
    c.send(Buffer.alloc(0))
    t.same(await c.next(), Buffer.alloc(0), 'an empty binary message')
    const big = Buffer.alloc(300000, 7)
    c.send(big)
    t.same(await c.next(), big, 'a 300 KB message')
    t.same(await c.close(1000, 'done'), { code: 1000, reason: 'done' })
    const ev = await events()
    t.same(ev.filter((e) => e.keys).map((e) => e.keys), [['text'], ['bytes'], ['text'], ['bytes'], ['bytes']])
    t.same(ev.find((e) => e.code !== undefined), { path: '/echo', code: 1000, reason: 'done' }, 'disconnect carries the client\'s code and reason')
  })

  await t.test('the websocket scope', async (t) => {
    const c = await connect(`${url}/scope/a%20b?x=1&y=%20`, ['chat', 'superchat'])
    const s = JSON.parse((await c.next()) as string)
    t.equal(s.type, 'websocket')
    t.same(s.asgi, { version: '3.0', spec_version: '2.4' })
    t.equal(s.http_version, '1.1')
    t.equal(s.scheme, 'ws')
    t.equal(s.root_path, '/ws')
    t.equal(s.path, '/scope/a b')
    t.equal(s.raw_path, '/ws/scope/a%20b')
    t.equal(s.query_string, 'x=1&y=%20')
    t.same(s.subprotocols, ['chat', 'superchat'])
    t.equal(s.client[0], '127.0.0.1')
    t.ok(s.client[1] > 0, 'client port')
    t.same(s.server, ['127.0.0.1', apache.port])
    t.same(s.extensions, { 'websocket.http.response': {} })
    t.same(s.state, {}, 'lifespan state (empty dict)')
    t.notOk('method' in s, 'no method in a websocket scope')
    const names = s.headers.map((h: string[]) => h[0])
    t.ok(names.includes('sec-websocket-key') && names.includes('upgrade') && names.includes('sec-websocket-protocol'), 'the handshake headers are there')
    await c.close()
  })

  await t.test("the accept: chosen subprotocol and the application's headers", async (t) => {
    let headers: http.IncomingHttpHeaders = {}
    const c = await connect(`${url}/subprotocol`, ['one', 'two'])
    c.ws.once('upgrade', (res: http.IncomingMessage) => (headers = res.headers))
    t.equal(c.ws.protocol, 'two', 'the subprotocol the app chose')
    t.equal(await c.next(), 'one,two')
    await c.close()
    // 'upgrade' fired before open: read the headers through a second connection that captures them.
    const got = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
      const ws = new WebSocket(`${url}/subprotocol`, ['x'])
      ws.on('upgrade', (res) => resolve(res.headers))
      ws.on('open', () => ws.close())
      ws.on('error', reject)
    })
    headers = got
    t.equal(headers['x-extra'], 'yes')
    t.same(headers['set-cookie'], ['a=1'])
    t.equal(headers['sec-websocket-protocol'], 'x')
    t.match(String(headers.connection), /upgrade/i)
    t.equal(headers.upgrade, 'websocket')
  })

  await t.test('a close before the accept is a 403; websocket.http.response is an ordinary response', async (t) => {
    await clear()
    const e1 = (await connect(`${url}/deny`).catch((e) => e)) as Refused
    t.equal(e1.status, 403)
    const e2 = (await connect(`${url}/deny-custom`).catch((e) => e)) as Refused
    t.equal(e2.status, 418)
    t.equal(e2.headers?.['x-why'], 'teapot')
    t.equal(e2.body, 'no websocket for you')
    const ev = await events()
    t.same(ev.find((e) => e.path === '/deny'), { path: '/deny', after_close: 'websocket.disconnect' })
  })

  await t.test('failures: before the accept a 500, after it close 1011; a return closes with 1000', async (t) => {
    const e1 = (await connect(`${url}/raise-before`).catch((e) => e)) as Refused
    t.equal(e1.status, 500)
    await apache.waitForLog(/WSGI03400: Exception occurred processing ASGI application .*WebSocket/)
    await apache.waitForLog(/RuntimeError: failing before the accept/)
    const e2 = (await connect(`${url}/noaccept`).catch((e) => e)) as Refused
    t.equal(e2.status, 500)
    await apache.waitForLog(/WSGI03402: ASGI application .* returned without accepting or closing the WebSocket/)

    const c = await connect(`${url}/raise-after`)
    t.equal(await c.next(), 'about to fail')
    t.equal((await c.closed).code, 1011)
    await apache.waitForLog(/WSGI03401: .*closed with 1011/)
    await apache.waitForLog(/RuntimeError: failing after the accept/)

    const r = await connect(`${url}/return`)
    t.equal(await r.next(), 'bye')
    t.equal((await r.closed).code, 1000)
    t.notMatch(apache.log(), /WSGI01801/, 'the Apache child saw every close handshake')
  })

  await t.test('close codes and reasons both ways', async (t) => {
    await clear()
    const c = await connect(`${url}/close`)
    c.send('4002 going elsewhere')
    t.same(await c.closed, { code: 4002, reason: 'going elsewhere' }, "the app's code and reason reach the client")
    const e = await connect(`${url}/echo`)
    t.same(await e.close(4001, 'client bye'), { code: 4001, reason: 'client bye' }, 'the client\'s close is answered with its code')
    const d = await connect(`${url}/echo`)
    d.ws.close() // no status code: the app hears 1005
    await d.closed
    await new Promise((r) => setTimeout(r, 200))
    const ev = await events()
    t.same(ev.find((x) => x.path === '/close'), { path: '/close', after: 'websocket.disconnect', code: 4002 })
    t.same(ev.find((x) => x.send_after_close), { path: '/close', send_after_close: 'RuntimeError' })
    const codes = ev.filter((x) => x.path === '/echo' && x.code !== undefined).map((x) => [x.code, x.reason])
    t.same(codes, [[4001, 'client bye'], [1005, '']])
  })

  await t.test('send() after the client left raises ClientDisconnected (an OSError)', async (t) => {
    await clear()
    const c = await connect(`${url}/send-after-disconnect`)
    await c.close(1000)
    await new Promise((r) => setTimeout(r, 300))
    t.same((await events()).find((x) => x.raised), { path: '/send-after-disconnect', raised: 'ClientDisconnected' })
  })

  await t.test('50 connections at once, each its own messages in order', async (t) => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => connect(`${url}/echo`)))
    const results = await Promise.all(
      clients.map(async (c, i) => {
        const got: string[] = []
        for (let k = 0; k < 20; k++) c.send(`${i}:${k}`)
        for (let k = 0; k < 20; k++) got.push((await c.next()) as string)
        await c.close()
        return got.every((m, k) => m === `${i}:${k}`)
      }),
    )
    t.ok(results.every(Boolean), 'every connection got back its own 20 messages, in order')
  })

  await t.test('a WSGI application asked to upgrade answers as today', async (t) => {
    const e = (await connect(`ws://127.0.0.1:${apache.port}/wsgi`).catch((x) => x)) as Refused
    t.equal(e.status, 200, 'its ordinary response: no WebSocket')
    t.equal((await apache.request('/wsgi')).status, 200, 'and the next request is served')
  })
})
