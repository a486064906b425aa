// Options and directives of mod_wsgi that cannot apply to daemons written in Node.js are accepted, so an
// existing configuration keeps working, and say so in the log: at LogLevel debug for what has no effect
// (newrelic-*, server-metrics, WSGIAcceptMutex, WSGIPassApacheRequest), as a warning for chroot, whose
// absence weakens isolation. The README lists them.
import t from 'tap'
import { Apache, fixture, FIXTURES, startApache } from '../helpers/apache'

const CONFIG = `
WSGIAcceptMutex default
WSGIPassApacheRequest On
WSGIDaemonProcess g threads=1 newrelic-config-file=/etc/newrelic.ini newrelic-environment=production \\
    server-metrics=On chroot=/srv/jail
WSGIScriptAlias /hello ${fixture('hello-world')} process-group=g
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

t.test('apache2 -t: accepted; debug lines for what has no effect, a warning for chroot', async (t) => {
  const debug = new Apache({ config: CONFIG, logLevel: 'debug' })
  const r = debug.configTest()
  await debug.cleanup()
  t.equal(r.status, 0, r.output)
  for (const option of ['newrelic-config-file', 'newrelic-environment', 'server-metrics'])
    t.match(r.output, new RegExp(`\\[wsgi:debug\\].*WSGI01001: WSGIDaemonProcess 'g': option '${option}' has no effect here and is ignored`))
  t.match(r.output, /WSGI01002: WSGIAcceptMutex has no effect in this mod_wsgi and is ignored/)
  t.match(r.output, /WSGI01002: WSGIPassApacheRequest has no effect in this mod_wsgi and is ignored/)
  t.match(r.output, /\[wsgi:warn\].*WSGI01000: WSGIDaemonProcess 'g': option 'chroot' is not supported by this mod_wsgi and is ignored/)

  const quiet = new Apache({ config: CONFIG, logLevel: 'warn' })
  const q = quiet.configTest()
  await quiet.cleanup()
  t.equal(q.status, 0)
  t.notMatch(q.output, /WSGI01001|WSGI01002/, 'at the default LogLevel the debug lines stay out')
  t.match(q.output, /WSGI01000/, 'the chroot warning does not')
  t.match(q.output, /Syntax OK/)
})

t.test('a configuration using them serves', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  const r = await apache.request('/hello')
  t.equal(r.status, 200)
  t.equal(r.text, 'Hello World!')
})

t.test('their values are still checked', async (t) => {
  const a = new Apache({ config: 'WSGIDaemonProcess g server-metrics=maybe' })
  const r = a.configTest()
  await a.cleanup()
  t.not(r.status, 0)
  t.match(r.output, /WSGIDaemonProcess: option 'server-metrics' must be On or Off, not 'maybe'/)
})
