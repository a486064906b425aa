// mod_wsgi-express with a WebSocket application: `start-server app.py` serves it at the root, and the
// --websocket-* flags reach the daemon (a message over --websocket-max-message closes with 1009, an
// idle one is closed after --websocket-idle-timeout).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startExpress } from '../express/express-helpers'
import { asgiFixture, connect } from './helpers'

t.test('start-server serves WebSockets with its --websocket-* options', async (t) => {
  const s = await startExpress(t, [asgiFixture('websocket'), '--websocket-max-message', '1K', '--websocket-idle-timeout', '2'], {
    readyPath: '/events',
  })
  const conf = readFileSync(join(s.root, 'httpd.conf'), 'utf8')
  t.match(conf, /websocket-max-message=1K/)
  t.match(conf, /websocket-idle-timeout=2/)
  const c = await connect(`ws://127.0.0.1:${s.port}/echo`)
  c.send('through express')
  t.equal(await c.next(), 'through express')
  c.send('x'.repeat(1025))
  t.equal((await c.closed).code, 1009, 'over --websocket-max-message: 1009')
  const idle = await connect(`ws://127.0.0.1:${s.port}/echo`)
  t.same(await idle.closed, { code: 1001, reason: 'idle timeout' }, 'closed after --websocket-idle-timeout')
})
