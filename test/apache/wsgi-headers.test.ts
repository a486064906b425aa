// Issue 3, item 5: response headers through a real Apache. Several Set-Cookie and WWW-Authenticate
// headers arrive separately with their values untouched, commas included (release notes, Bugs Fixed 4).
// header-buffer-size (release notes, New Features 16): 32768 bytes by default, the limit on a response
// header line as mod_wsgi reads it; beyond it 500 and mod_wsgi's log line; the option raises or lowers it;
// under 8192 `apache2 -t` refuses it.
import t from 'tap'
import { Apache, fixture, FIXTURES, startApache } from '../helpers/apache'
import { rawGet } from '../helpers/raw-http'

const APP = fixture('headers-out')

function headerValues(raw: string[], name: string): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) out.push(raw[i + 1])
  return out
}

t.test('response headers', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess dflt threads=2
WSGIDaemonProcess large threads=2 header-buffer-size=131072
WSGIDaemonProcess small threads=2 header-buffer-size=8192
WSGIScriptAlias /default ${APP} process-group=dflt
WSGIScriptAlias /large ${APP} process-group=large
WSGIScriptAlias /small ${APP} process-group=small
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })

  await t.test('Set-Cookie and WWW-Authenticate stay separate and untouched', async (t) => {
    for (const status of ['200%20OK', '401%20Unauthorized', '302%20Found']) {
      const r = await apache.request(`/default?status=${status}`)
      t.equal(r.status, Number(status.slice(0, 3)))
      t.same(headerValues(r.rawHeaders, 'set-cookie'), ['a=1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT', 'b=2, c=3; HttpOnly'],
        `${status}: two Set-Cookie headers`)
      t.same(headerValues(r.rawHeaders, 'www-authenticate'), ['Basic realm="one, two"', 'Digest realm="x", qop="auth,auth-int", nonce="abc"'],
        `${status}: two WWW-Authenticate headers, commas kept`)
      t.same(headerValues(r.rawHeaders, 'x-repeated'), ['first', 'second'])
    }
  })

  await t.test('header-buffer-size: 32768 by default', async (t) => {
    // Node's HTTP parser stops at 16 kB of headers: these are read raw.
    const ok = await rawGet(apache.port, '/default?big=32000')
    t.equal(ok.status, 200, 'a 32000-byte header fits')
    t.equal(ok.headers['x-big']?.length, 32000)
    const many = await rawGet(apache.port, '/default?many=60')
    t.equal(many.status, 200, '60 kB of headers in all: the limit is per header line, as in mod_wsgi')
    t.equal(many.headers['x-many-59']?.length, 1000)
    const mark = apache.log().length
    const r = await rawGet(apache.port, '/default?big=33000')
    t.equal(r.status, 500, 'a 33000-byte header does not')
    t.notOk('x-big' in r.headers)
    t.notOk('set-cookie' in r.headers, "none of the application's headers go out with the error")
    t.match(apache.log().slice(mark), /WSGI01229: Truncated or oversized response headers received from daemon process 'dflt': [^ ]*headers-out\/app\.wsgi/)
    t.equal((await apache.request('/default')).status, 200, 'the daemon serves on')
  })

  await t.test('header-buffer-size raises or lowers the limit', async (t) => {
    t.equal((await rawGet(apache.port, '/large?big=100000')).status, 200, 'header-buffer-size=131072: a 100000-byte header fits')
    t.equal((await rawGet(apache.port, '/small?big=8000')).status, 200, 'header-buffer-size=8192: an 8000-byte header fits')
    const mark = apache.log().length
    t.equal((await rawGet(apache.port, '/small?big=9000')).status, 500, 'but not a 9000-byte one')
    t.match(apache.log().slice(mark), /Truncated or oversized response headers received from daemon process 'small'/)
  })
})

t.test('header-buffer-size under 8192 is refused by apache2 -t', async (t) => {
  const a = new Apache({ config: `WSGIDaemonProcess tiny header-buffer-size=4096\n` })
  t.teardown(() => a.cleanup())
  const r = a.configTest()
  t.not(r.status, 0)
  t.match(r.output, /WSGIDaemonProcess/)
  t.match(r.output, /header-buffer-size/)
  t.match(r.output, /4096/)
})
