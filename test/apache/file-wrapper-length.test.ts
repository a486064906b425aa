// wsgi.file_wrapper over a real file gets a Content-Length, as in mod_wsgi: the file's size less the
// position the application left it at, unless the application set one itself (kept: a shorter one
// truncates). File-like objects without a real file keep chunked framing. The same with sendfile On and
// Off, with or without a block size; HEAD gets the same headers and no body.
import { randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ALLOW_FIXTURES, fixture, makeTempDir, startApache } from '../helpers/apache'

const SIZE = 300000

t.test('Content-Length of wsgi.file_wrapper responses', async (t) => {
  const dir = makeTempDir('mod_wsgi-fwlen-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const data = randomBytes(SIZE)
  const path = join(dir, 'data.bin')
  writeFileSync(path, data, { mode: 0o644 })

  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess fw threads=4
WSGIProcessGroup fw
WSGIScriptAlias /off ${fixture('file-wrapper-length')}
WSGIScriptAlias /on ${fixture('file-wrapper-length')}
<Location /on>
  WSGIEnableSendfile On
</Location>
${ALLOW_FIXTURES}
`,
  })
  const url = (where: string, extra: string) => `/${where}?path=${encodeURIComponent(path)}${extra}`

  for (const where of ['off', 'on']) {
    await t.test(`WSGIEnableSendfile ${where === 'on' ? 'On' : 'Off'}`, async (t) => {
      for (const blksize of ['', '&blksize=8192']) {
        const what = blksize ? 'with a block size' : 'without a block size'
        let r = await apache.request(url(where, blksize))
        t.equal(r.status, 200)
        t.equal(r.headers['content-length'], String(SIZE), `a whole file: its size, ${what}`)
        t.notOk(r.headers['transfer-encoding'], 'not chunked')
        t.ok(r.body.equals(data))

        r = await apache.request(url(where, `&offset=1000${blksize}`))
        t.equal(r.headers['content-length'], String(SIZE - 1000), `seeked to 1000 of ${SIZE}: ${SIZE - 1000}, ${what}`)
        t.ok(r.body.equals(data.subarray(1000)))

        r = await apache.request(url(where, `&offset=10&length=500${blksize}`))
        t.equal(r.headers['content-length'], '500', `the application's own Content-Length is kept, ${what}`)
        t.ok(r.body.equals(data.subarray(10, 510)), 'and the response truncated to it')

        r = await apache.request(url(where, `&kind=bytesio&offset=1000${blksize}`))
        t.equal(r.status, 200)
        t.notOk(r.headers['content-length'], `a BytesIO (no real file): no Content-Length, ${what}`)
        t.equal(r.headers['transfer-encoding'], 'chunked', 'chunked framing')
        t.ok(r.body.equals(data.subarray(1000)))
      }

      const h = await apache.request(url(where, '&offset=1000'), { method: 'HEAD' })
      t.equal(h.status, 200)
      t.equal(h.headers['content-length'], String(SIZE - 1000), 'HEAD: the same Content-Length')
      t.equal(h.body.length, 0, 'and no body')
    })
  }
})
