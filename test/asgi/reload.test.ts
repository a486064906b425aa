// WSGIScriptReloading with an ASGI script: in the implicit default group a changed script is reloaded
// in place (its new callable gets a lifespan of its own); in a named process group the process restarts
// and the request is served by its replacement, as for WSGI.
import { utimesSync, writeFileSync } from 'node:fs'
import t from 'tap'
import { startApache } from '../helpers/apache'
import { privateCopy } from './helpers'

function app(text: string): string {
  return `import os
async def application(scope, receive, send):
    if scope['type'] == 'lifespan':
        message = await receive()
        await send({'type': 'lifespan.startup.complete'})
        message = await receive()
        await send({'type': 'lifespan.shutdown.complete'})
        return
    await send({'type': 'http.response.start', 'status': 200, 'headers': []})
    await send({'type': 'http.response.body', 'body': b'${text} %d' % os.getpid()})
`
}

function rewrite(script: string, text: string, bump: number): void {
  writeFileSync(script, app(text))
  const when = Date.now() / 1000 + bump
  utimesSync(script, when, when)
}

t.test('the implicit default group reloads a changed ASGI script in place', async (t) => {
  const { dir, script } = privateCopy('hello')
  rewrite(script, 'one', 0)
  const apache = await startApache(t, { config: `WSGIScriptAlias /r ${script}\n<Directory ${dir}>\n  Require all granted\n</Directory>\n` })
  const first = (await apache.request('/r')).text
  t.match(first, /^one \d+$/)
  rewrite(script, 'two', 5)
  const second = (await apache.request('/r')).text
  t.match(second, /^two \d+$/, 'the new code')
  t.equal(second.split(' ')[1], first.split(' ')[1], 'in the same process')
  t.equal(apache.log().match(/WSGI03213: ASGI lifespan startup/g)?.length, 2, 'a lifespan for each version')
})

t.test('a named process group restarts for a changed ASGI script', async (t) => {
  const { dir, script } = privateCopy('hello')
  rewrite(script, 'one', 0)
  const apache = await startApache(t, {
    config: `WSGIDaemonProcess named threads=2\nWSGIScriptAlias /r ${script} process-group=named\n<Directory ${dir}>\n  Require all granted\n</Directory>\n`,
  })
  const first = (await apache.request('/r')).text
  rewrite(script, 'two', 5)
  const second = (await apache.request('/r', { timeoutMs: 20000 })).text
  t.match(second, /^two \d+$/, 'the new code')
  t.not(second.split(' ')[1], first.split(' ')[1], 'in a new process')
  await apache.waitForLog(/WSGI03015: WSGI script '[^']+' has changed: daemon process 'named' restarts/)
})
