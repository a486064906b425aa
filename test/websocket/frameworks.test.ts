// WebSocket endpoints of real frameworks from Debian, through Apache: Starlette (a route, a
// WebSocketEndpoint with JSON, a denial, bytes and a close code), FastAPI (path and query parameters, a
// dependency, a missing parameter refused) and Channels 4 (sync and async consumers, a JSON consumer,
// a refused connection, bytes to a sync consumer: Channels 4.0 breaks on 'text': None beside 'bytes').
import t from 'tap'
import { startApache } from '../helpers/apache'
import { ALLOW_ASGI, asgiFixture, connect } from './helpers'

function group(name: string, mount: string, script: string, extra = ''): string {
  return `WSGIDaemonProcess ${name} threads=4
WSGIScriptAlias ${mount} ${script} process-group=${name} application-group=%{GLOBAL} ${extra}`
}

interface Refused extends Error {
  status?: number
}

t.test('WebSocket with frameworks', async (t) => {
  const apache = await startApache(t, {
    config: `
${group('wsst', '/st', asgiFixture('ws-frameworks', 'starlette_app.py'), 'callable-object=app')}
${group('wsfa', '/fa', asgiFixture('ws-frameworks', 'fastapi_app.py'), 'callable-object=app')}
${group('wsch', '/ch', asgiFixture('django', 'channels_app.py'))}
${ALLOW_ASGI}
`,
  })
  const ws = `ws://127.0.0.1:${apache.port}`

  await t.test('Starlette', async (t) => {
    const c = await connect(`${ws}/st/echo`)
    c.send('hi')
    t.equal(await c.next(), 'starlette: hi')
    await c.close(4100)
    const j = await connect(`${ws}/st/json/ada`)
    j.send(JSON.stringify({ a: 1 }))
    t.same(JSON.parse((await j.next()) as string), { echo: { a: 1 }, name: 'ada', url: `${ws}/st/json/ada`, root_path: '/st' })
    await j.close(4200)
    const denied = (await connect(`${ws}/st/deny`).catch((e) => e)) as Refused
    t.equal(denied.status, 403, 'websocket.close() before accept: 403')
    const r = await connect(`${ws}/st/reverse`)
    r.send(Buffer.from([1, 2, 3]))
    t.same(await r.next(), Buffer.from([3, 2, 1]))
    t.same(await r.closed, { code: 4000, reason: 'reversed' })
    await new Promise((res) => setTimeout(res, 200))
    t.same(JSON.parse((await apache.request('/st/closed')).text), [4100, 4200], 'WebSocketDisconnect carries the client codes')
  })

  await t.test('FastAPI', async (t) => {
    const c = await connect(`${ws}/fa/items/7/ws?q=search`)
    c.send('payload')
    t.same(JSON.parse((await c.next()) as string), { item_id: 7, q: 'search', data: 'payload', by: 'fastapi' })
    await c.close(1000)
    const ok = await connect(`${ws}/fa/needs-token?token=abc`)
    t.equal(await ok.next(), 'token abc')
    t.equal((await ok.closed).code, 1000)
    const refused = (await connect(`${ws}/fa/needs-token`).catch((e) => e)) as Refused
    t.equal(refused.status, 403, 'a missing required query parameter: refused before the accept')
    const bad = (await connect(`${ws}/fa/items/abc/ws`).catch((e) => e)) as Refused
    t.equal(bad.status, 403, 'a path parameter that does not validate')
    await new Promise((res) => setTimeout(res, 200))
    t.same(JSON.parse((await apache.request('/fa/seen')).text), { disconnects: [1000] })
  })

  await t.test('Channels 4: sync, async and JSON consumers', async (t) => {
    const s = await connect(`${ws}/ch/ws/sync/`)
    s.send('one')
    t.equal(await s.next(), 'sync: one')
    s.send(Buffer.from('two'))
    t.same(await s.next(), Buffer.from('sync: two'), 'bytes reach a sync consumer as bytes_data')
    await s.close()
    const a = await connect(`${ws}/ch/ws/async/lobby/`, ['chat'])
    t.equal(a.ws.protocol, 'chat', 'the subprotocol the consumer accepted')
    a.send('hello')
    t.equal(await a.next(), 'lobby: hello')
    a.send(Buffer.from([9, 8]))
    t.same(await a.next(), Buffer.from([9, 8]))
    a.send('close')
    t.equal((await a.closed).code, 4321, "the consumer's close code")
    const j = await connect(`${ws}/ch/ws/json/`)
    j.send(JSON.stringify({ x: [1] }))
    t.same(JSON.parse((await j.next()) as string), { got: { x: [1] }, path: '/ws/json/' })
    await j.close()
    const refused = (await connect(`${ws}/ch/ws/async/closed/`).catch((e) => e)) as Refused
    t.equal(refused.status, 403, 'a consumer that closes in connect(): 403')
    const none = (await connect(`${ws}/ch/ws/nowhere/`).catch((e) => e)) as Refused
    t.ok(none.status === 403 || none.status === 500, `no route: refused (${none.status})`)
  })

  const log = apache.log()
  t.notMatch(log, /WSGI03401|WSGI01801/, 'no exception after an accept, no lost tunnel')
  t.equal((log.match(/WSGI03400/g) ?? []).length, 1, "one exception before an accept: Channels' own for the missing route")
  t.match(log, /ValueError: No route found for path 'ws\/nowhere\/'/)
})
