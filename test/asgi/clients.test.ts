// Clients against ASGI applications through Apache: curl (chunked upload, HTTP/1.0, HEAD), wrk (load:
// no errors, no non-2xx), and httpx (a streamed response read as it arrives, many requests at once).
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { PYTHON, startApache } from '../helpers/apache'
import { ALLOW_ASGI, asgiFixture } from './helpers'

t.test('ASGI clients', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess clients threads=4
WSGIProcessGroup clients
WSGIApplicationGroup %{GLOBAL}
WSGIChunkedRequest On
WSGIScriptAlias /b ${asgiFixture('bodies')}
WSGIScriptAlias /hello ${asgiFixture('hello')}
WSGIScriptAlias /fa ${asgiFixture('fastapi')} callable-object=app
${ALLOW_ASGI}
`,
  })
  const base = `http://127.0.0.1:${apache.port}`

  await t.test('curl', async (t) => {
    const chunked = execFileSync('sh', ['-c', `head -c 200000 /dev/zero | curl -sS -T - -H 'Transfer-Encoding: chunked' ${base}/b/echo`], { encoding: 'utf8' })
    t.equal(JSON.parse(chunked).length, 200000, 'a chunked upload from a pipe')
    t.equal(execFileSync('curl', ['-sS', '--http1.0', `${base}/hello/`], { encoding: 'utf8' }), 'Hello ASGI!')
    const head = execFileSync('curl', ['-sS', '-I', `${base}/b/head`], { encoding: 'latin1' })
    t.match(head, /^HTTP\/1.1 200 OK/)
    t.match(head, /content-length: 1000/i)
    const code = execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `${base}/fa/items/x`], { encoding: 'utf8' })
    t.equal(code, '422')
  })

  await t.test('wrk: a short load on hello world and FastAPI, without errors', async (t) => {
    for (const path of ['/hello/', '/fa/items/3?q=a']) {
      const out = execFileSync('wrk', ['-t2', '-c16', '-d2s', `${base}${path}`], { encoding: 'utf8' })
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
      t.ok(requests > 100, `${path}: ${requests} requests`)
      t.notMatch(out, /Socket errors|Non-2xx/, `${path}: no socket errors, no non-2xx`)
    }
  })

  await t.test('httpx: a stream read as it arrives, and 50 requests at once', async (t) => {
    const out = JSON.parse(execFileSync(PYTHON, [join(__dirname, 'clients', 'httpx_client.py'), base], { encoding: 'utf8', timeout: 60000 }))
    t.equal(out.sse_status, 200)
    t.same(out.sse.map((l: [string, number]) => l[0]), ['data: event 0', 'data: event 1', 'data: event 2'])
    t.ok(out.sse[2][1] - out.sse[0][1] >= 0.8, `lines arrived ${out.sse[0][1]} s and ${out.sse[2][1]} s after the request`)
    t.equal(out.echo.length, 300000)
    t.same(out.many, Array(50).fill(200))
    t.same(out.body, ['Hello ASGI!'])
  })
})
