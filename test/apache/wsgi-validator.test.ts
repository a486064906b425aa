// Issue 3, proof: applications wrapped in wsgiref.validate.validator, served through a real Apache, so
// that the server side of PEP 3333 is checked by code we did not write. The validator raises
// AssertionError (a 500) on any violation it sees while the request runs, turns its warnings into errors
// here, and complains from a finaliser when an iterable is never closed — none of which may happen.
// (validated-environ, in wsgi-environ.test.ts and others, checks the environ the same way.)
import { randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, makeTempDir, startApache } from '../helpers/apache'
import { rawRequest } from '../helpers/raw-http'

t.test('validated applications', async (t) => {
  const dir = makeTempDir('mod_wsgi-validated-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const data = randomBytes(200000)
  const file = join(dir, 'data.bin')
  writeFileSync(file, data, { mode: 0o644 })
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess validated processes=1 threads=4
WSGIProcessGroup validated
WSGIScriptAlias /v ${fixture('validated-apps')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })

  await t.test('write() then a list', async (t) => {
    const r = await apache.request('/v/write')
    t.equal(r.status, 200)
    t.equal(r.text, 'written returned')
  })

  await t.test('a generator', async (t) => {
    const r = await apache.request('/v/generator?n=6')
    t.equal(r.status, 200)
    t.equal(r.body.length, 6 * 65536)
    t.ok([0, 1, 2, 3, 4, 5].every((i) => r.body[i * 65536] === i && r.body[i * 65536 + 65535] === i))
  })

  await t.test('wsgi.file_wrapper', async (t) => {
    const r = await apache.request(`/v/file?path=${encodeURIComponent(file)}`)
    t.equal(r.status, 200)
    t.ok(r.body.equals(data))
  })

  await t.test('start_response with exc_info before output', async (t) => {
    const r = await apache.request('/v/exc-info')
    t.equal(r.status, 500)
    t.equal(r.text, 'error page', "the application's own error page")
  })

  await t.test('wsgi.input through the validator', async (t) => {
    const body = `first line\n${'x'.repeat(5000)}`
    const r = await apache.request('/v/echo', { method: 'POST', body })
    t.equal(r.status, 200)
    t.equal(r.text, body)
    const empty = await apache.request('/v/echo', { method: 'POST', body: '' })
    t.equal(empty.text, '')
  })

  await t.test('204 with no body; HEAD', async (t) => {
    const r = await apache.request('/v/empty')
    t.equal(r.status, 204)
    t.equal(r.text, '')
    const head = await rawRequest(apache.port, 'HEAD /v/write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    t.equal(head.status, 200)
    t.equal(head.rawBody, '')
  })

  t.notMatch(apache.log(), /AssertionError|WSGIWarning|Iterator garbage collected without being closed|Exception occurred/,
    'the validator found nothing, and every iterable was closed')
})
