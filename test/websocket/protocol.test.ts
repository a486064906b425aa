// The core cases of the Autobahn WebSocket test suite (which cannot be installed here), driven by raw
// frames through Apache to the echo application: framing and payload lengths (1.x), pings and pongs
// (2.x), reserved bits (3.x), opcodes (4.x), fragmentation (5.x), UTF-8 (6.x), the close handshake and
// close codes (7.x), limits (9.x, websocket-max-message: 1009), masking. Each case: what the server
// sends back, and whether it closes the TCP connection when the protocol says it must.
import t from 'tap'
import { startApache } from '../helpers/apache'
import { RawClient, closeBody, frame } from './raw'
import { wsConfig } from './helpers'

const TEXT = 1
const BINARY = 2
const CONT = 0
const CLOSE = 8
const PING = 9
const PONG = 10

t.test('WebSocket protocol cases (Autobahn core)', async (t) => {
  const apache = await startApache(t, { config: wsConfig('proto', 'websocket-max-message=100000') })
  const open = () => RawClient.open(apache.port, '/ws/echo')

  /** Sends `frames`, expects the server to fail the connection with `code` and close TCP. */
  const failsWith = async (t: Checks, name: string, code: number, ...frames: Buffer[]) => {
    const c = await open()
    c.send(...frames)
    const r = await c.closeCode()
    t.equal(r.code, code, `${name}: close ${code}`)
    t.ok(r.tcpClosed, `${name}: the TCP connection is closed`)
    c.destroy()
  }

  await t.test('1.x framing: text and binary of every length class echo back unchanged', async (t) => {
    const c = await open()
    for (const n of [0, 1, 125, 126, 127, 128, 65535, 65536, 99999]) {
      const text = 'a'.repeat(n)
      c.send(frame(TEXT, text))
      const f = await c.read()
      t.ok(f.fin && f.opcode === TEXT && f.payload.toString() === text, `text of ${n} bytes`)
      const bin = Buffer.alloc(n, n & 0xff)
      c.send(frame(BINARY, bin))
      const g = await c.read()
      t.ok(g.fin && g.opcode === BINARY && g.payload.equals(bin), `binary of ${n} bytes`)
    }
    // Several frames in one write, and one frame split across writes (byte by byte).
    c.send(frame(TEXT, 'one'), frame(TEXT, 'two'), frame(BINARY, Buffer.from([3])))
    t.equal((await c.read()).payload.toString(), 'one')
    t.equal((await c.read()).payload.toString(), 'two')
    t.same((await c.read()).payload, Buffer.from([3]))
    const split = frame(TEXT, 'slowly')
    for (const b of split) {
      c.socket.write(Buffer.from([b]))
      await new Promise((r) => setTimeout(r, 5))
    }
    t.equal((await c.read()).payload.toString(), 'slowly', 'a frame arriving byte by byte')
    c.send(frame(CLOSE, closeBody(1000)))
    const r = await c.closeCode()
    t.equal(r.code, 1000)
    t.ok(r.tcpClosed)
  })

  await t.test('2.x pings and pongs: answered by the server itself', async (t) => {
    const c = await open()
    c.send(frame(PING, 'hello'))
    const p = await c.read()
    t.ok(p.opcode === PONG && p.payload.toString() === 'hello', 'a pong with the ping payload')
    c.send(frame(PING, Buffer.alloc(125, 1)))
    t.same((await c.read()).payload, Buffer.alloc(125, 1), 'a 125-byte ping')
    c.send(frame(PING))
    t.equal((await c.read()).payload.length, 0, 'an empty ping')
    c.send(frame(PONG, 'unsolicited'))
    for (let i = 0; i < 10; i++) c.send(frame(PING, `p${i}`))
    for (let i = 0; i < 10; i++) t.equal((await c.read()).payload.toString(), `p${i}`, `ping ${i} answered in order`)
    c.send(frame(TEXT, 'after pongs'))
    const m = await c.read()
    t.ok(m.opcode === TEXT && m.payload.toString() === 'after pongs', 'an unsolicited pong is ignored; messages go on')
    c.destroy()
    await failsWith(t, 'a 126-byte ping', 1002, frame(PING, Buffer.alloc(126)))
    await failsWith(t, 'a fragmented ping', 1002, frame(PING, 'x', { fin: false }))
  })

  await t.test('3.x reserved bits and 4.x reserved opcodes fail the connection with 1002', async (t) => {
    for (const rsv of [1, 2, 4, 7]) await failsWith(t, `RSV ${rsv} on a text frame`, 1002, frame(TEXT, 'x', { rsv }))
    await failsWith(t, 'RSV on a ping', 1002, frame(PING, 'x', { rsv: 2 }))
    for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) await failsWith(t, `opcode ${op}`, 1002, frame(op, 'x'))
  })

  await t.test('5.x fragmentation', async (t) => {
    const c = await open()
    c.send(frame(TEXT, 'frag', { fin: false }), frame(CONT, 'men', { fin: false }), frame(CONT, 'ted'))
    t.equal((await c.read()).payload.toString(), 'fragmented', 'fragments make one message')
    c.send(frame(BINARY, Buffer.from([1]), { fin: false }), frame(PING, 'mid'), frame(CONT, Buffer.from([2])))
    const pong = await c.read()
    t.ok(pong.opcode === PONG && pong.payload.toString() === 'mid', 'a ping between fragments is answered at once')
    t.same((await c.read()).payload, Buffer.from([1, 2]), 'and the message is whole')
    c.send(frame(TEXT, '', { fin: false }), frame(CONT, ''), frame(TEXT, 'x'))
    t.equal((await c.read()).payload.toString(), '', 'empty fragments')
    t.equal((await c.read()).payload.toString(), 'x')
    // 100 fragments of one byte.
    const frags = Array.from({ length: 100 }, (_, i) => frame(i === 0 ? TEXT : CONT, 'z', { fin: i === 99 }))
    c.send(...frags)
    t.equal((await c.read()).payload.toString(), 'z'.repeat(100), '100 one-byte fragments')
    c.destroy()
    await failsWith(t, 'a continuation without a start', 1002, frame(CONT, 'x'))
    await failsWith(t, 'a new message inside a fragmented one', 1002, frame(TEXT, 'a', { fin: false }), frame(TEXT, 'b'))
  })

  await t.test('6.x UTF-8: valid text passes, split or not; invalid text fails with 1007', async (t) => {
    const c = await open()
    const valid = Buffer.from('κόσμε ✓ 𝄞 \u{10FFFF}')
    c.send(frame(TEXT, valid))
    t.same((await c.read()).payload, valid)
    // A 4-byte sequence split across fragments.
    c.send(frame(TEXT, valid.subarray(0, 13), { fin: false }), frame(CONT, valid.subarray(13)))
    t.same((await c.read()).payload, valid, 'a code point split between fragments')
    c.destroy()
    for (const bad of [
      Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80]), // a surrogate
      Buffer.from([0xc0, 0xaf]), // an overlong encoding
      Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
      Buffer.from([0xff]),
      Buffer.from([0xe2, 0x82]), // cut short
    ])
      await failsWith(t, `invalid UTF-8 ${bad.toString('hex')}`, 1007, frame(TEXT, bad))
    await failsWith(t, 'invalid UTF-8 in a fragment', 1007, frame(TEXT, 'ok', { fin: false }), frame(CONT, Buffer.from([0xff])))
  })

  await t.test('7.x the close handshake and close codes', async (t) => {
    let c = await open()
    c.send(frame(CLOSE))
    let r = await c.closeCode()
    t.equal(r.code, 1005, 'an empty close is answered with an empty close')
    t.ok(r.tcpClosed, 'and the server closes the TCP connection')
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
      c = await open()
      c.send(frame(CLOSE, closeBody(code, 'why')))
      r = await c.closeCode()
      t.equal(r.code, code, `close ${code} is echoed`)
    }
    c = await open()
    c.send(frame(CLOSE, closeBody(1000, 'x'.repeat(123))))
    r = await c.closeCode()
    t.equal(r.code, 1000, 'a close with a 123-byte reason')
    c = await open()
    c.send(frame(CLOSE, closeBody(1000)), frame(TEXT, 'after close'), frame(PING, 'after close'))
    r = await c.closeCode()
    t.same(r.frames, [], 'nothing is answered after the close frame')
    await failsWith(t, 'a close with a 1-byte payload', 1002, frame(CLOSE, Buffer.from([3])))
    for (const code of [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535])
      await failsWith(t, `close code ${code}`, 1002, frame(CLOSE, closeBody(code)))
    await failsWith(t, 'a close reason in invalid UTF-8', 1007, frame(CLOSE, closeBody(1000, Buffer.from([0xff, 0xfe]))))
  })

  await t.test('9.x limits and masking: a message over websocket-max-message is 1009; unmasked frames 1002', async (t) => {
    await failsWith(t, 'one frame over the limit', 1009, frame(BINARY, Buffer.alloc(100001)))
    await failsWith(t, 'fragments adding up over the limit', 1009, frame(TEXT, 'a'.repeat(60000), { fin: false }), frame(CONT, 'b'.repeat(60000)))
    const c = await open()
    c.send(frame(BINARY, Buffer.alloc(100000, 9)))
    t.equal((await c.read()).payload.length, 100000, 'exactly the limit passes')
    c.destroy()
    await failsWith(t, 'an unmasked frame', 1002, frame(TEXT, 'x', { mask: false }))
    await apache.waitForLog(/WSGI02200: WebSocket closed with 1009/)
  })

  t.notMatch(apache.log(), /WSGI01801|WSGI02031/, 'no tunnel lost its daemon, no internal error')
})

interface Checks {
  equal(found: unknown, wanted: unknown, message: string): unknown
  ok(value: unknown, message: string): unknown
}
