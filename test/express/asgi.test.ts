// mod_wsgi-express with an ASGI application: `start-server app.py --callable-object app` serves FastAPI
// (and Starlette) as it serves a WSGI script, mounted at the root, its lifespan started once when the
// daemon starts (the preloaded handler script and the requests share one application).
import t from 'tap'
import { request } from '../helpers/apache'
import { asgiFixture } from '../asgi/helpers'
import { startExpress } from './express-helpers'

t.test('start-server serves FastAPI', async (t) => {
  const s = await startExpress(t, [asgiFixture('fastapi'), '--callable-object', 'app'], { readyPath: '/openapi.json' })
  const r = await request(s.port, '/items/5?q=x')
  t.equal(r.status, 200)
  t.same(JSON.parse(r.text), { item_id: 5, q: 'x', url: `http://127.0.0.1:${s.port}/items/5`, started: 'startup ran' })
  t.equal((await request(s.port, '/items/five')).status, 422)
  t.equal((await request(s.port, '/stream')).text, 'line 0\nline 1\nline 2\nline 3\n')
  t.equal(s.errorLog().match(/WSGI03213: ASGI lifespan startup of/g)?.length, 1, 'one lifespan, started at daemon start')
})

t.test('start-server serves Starlette with its lifespan state, and says application-type when asked', async (t) => {
  const s = await startExpress(t, [asgiFixture('starlette'), '--callable-object', 'app', '--application-type', 'asgi'])
  const item = JSON.parse((await request(s.port, '/items/3')).text)
  t.equal(item.greeting, 'hello from lifespan')
  t.equal(item.url, `http://127.0.0.1:${s.port}/items/7`)
})
