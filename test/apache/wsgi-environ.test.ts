// Issue 3, item 1: the WSGI environ through a real Apache, as mod_wsgi 4.1.0 builds it — every CGI
// variable Apache gives a CGI script, the wsgi.* and mod_wsgi.* entries, SetEnv and rewrite variables,
// percent-decoded PATH_INFO. The app runs inside wsgiref.validate.validator (PEP 3333 checked by code we
// did not write): a 200 means it found nothing.
import t from 'tap'
import { fixture, FIXTURES, startApache } from '../helpers/apache'

const APP = fixture('validated-environ')

t.test('the environ of a request', async (t) => {
  const apache = await startApache(t, {
    modules: ['rewrite'],
    preamble: 'ServerAdmin admin@example.com\nServerSignature On',
    config: `
WSGIDaemonProcess env processes=1 threads=4
WSGIDaemonProcess single threads=1 maximum-requests=1
WSGIDaemonProcess plain threads=3
WSGIProcessGroup env
WSGIScriptAlias /env ${APP}
WSGIScriptAlias /once ${APP} process-group=single
WSGIScriptAlias /plain ${APP} process-group=plain
SetEnv MY_SETENV_VAR from-setenv
RewriteEngine On
RewriteRule ^/rw(.*)$ /env$1 [PT,E=MY_REWRITE_VAR:from-rewrite]
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const env = async (path: string, opts = {}) => {
    const r = await apache.request(path, opts)
    t.equal(r.status, 200, `${path}: the validator found nothing (${r.status})`)
    return JSON.parse(r.text)
  }

  await t.test("Apache's CGI variables", async (t) => {
    const e = await env('/env/x?a=1', { headers: { 'x-dup': ['one', 'two'], cookie: 'c=1', 'user-agent': 'tap' } })
    t.equal(e.GATEWAY_INTERFACE, 'CGI/1.1')
    t.equal(e.SERVER_PROTOCOL, 'HTTP/1.1')
    t.equal(e.REQUEST_METHOD, 'GET')
    t.equal(e.REQUEST_SCHEME, 'http')
    t.equal(e.REQUEST_URI, '/env/x?a=1')
    t.equal(e.QUERY_STRING, 'a=1')
    t.equal(e.SCRIPT_NAME, '/env')
    t.equal(e.PATH_INFO, '/x')
    t.equal(e.SCRIPT_FILENAME, APP)
    t.equal(e.DOCUMENT_ROOT, `${apache.dir}/htdocs`)
    t.equal(e.CONTEXT_DOCUMENT_ROOT, `${apache.dir}/htdocs`)
    t.equal(e.CONTEXT_PREFIX, '')
    t.equal(e.PATH_TRANSLATED, `${apache.dir}/htdocs/x`)
    t.match(e.SERVER_SOFTWARE, /^Apache\/2\.4\.\d+ .*mod_wsgi\/4\.1\.0/)
    t.equal(e.SERVER_NAME, '127.0.0.1')
    t.equal(e.SERVER_ADDR, '127.0.0.1')
    t.equal(e.SERVER_PORT, String(apache.port))
    t.equal(e.SERVER_ADMIN, 'admin@example.com')
    t.match(e.SERVER_SIGNATURE, /^<address>Apache\/2\.4\.\d+ .* Server at 127\.0\.0\.1 Port \d+<\/address>/)
    t.equal(e.REMOTE_ADDR, '127.0.0.1')
    t.match(e.REMOTE_PORT, /^\d+$/)
    t.equal(e.HTTP_HOST, `127.0.0.1:${apache.port}`)
    t.equal(e.HTTP_USER_AGENT, 'tap')
    t.equal(e.HTTP_COOKIE, 'c=1')
    t.equal(e.HTTP_X_DUP, 'one, two', 'a repeated request header arrives joined as Apache joins it')
    t.notOk('PATH' in e, "Apache's PATH is removed, as mod_wsgi does")
    t.notOk('HTTPS' in e)
    t.notOk('HTTP_AUTHORIZATION' in e)
  })

  await t.test('wsgi.* entries and their types', async (t) => {
    const e = await env('/env')
    const types = e.__types__
    t.equal(e['wsgi.version'], '(1, 0)')
    t.equal(types['wsgi.version'], 'tuple')
    t.equal(e['wsgi.url_scheme'], 'http')
    t.equal(types['wsgi.url_scheme'], 'str')
    t.equal(e['wsgi.multithread'], 'True')
    t.equal(e['wsgi.multiprocess'], 'True', 'processes=1 given explicitly: multiprocess, as in mod_wsgi')
    t.equal(e['wsgi.run_once'], 'False')
    t.equal(types['wsgi.multithread'], 'bool')
    t.equal(types['wsgi.run_once'], 'bool')
    t.equal(e['wsgi.file_wrapper'], "<class 'mod_wsgi.FileWrapper'>")
    t.match(e['wsgi.input'], /^<wsgiref\.validate\.InputWrapper/, 'the validator accepted and wrapped wsgi.input')
    t.match(e['wsgi.errors'], /^<wsgiref\.validate\.ErrorWrapper/, 'and wsgi.errors')
    for (const [k, v] of Object.entries(types)) if (!k.includes('.')) t.equal(v, 'str', `${k} is a str`)

    const plain = await env('/plain')
    t.equal(plain['wsgi.multiprocess'], 'False', 'without processes=: not multiprocess')
    t.equal(plain['wsgi.multithread'], 'True')
    const once = await env('/once')
    t.equal(once['wsgi.multithread'], 'False', 'threads=1')
    t.equal(once['wsgi.run_once'], 'True', 'threads=1 and maximum-requests=1: run_once, as in mod_wsgi')
  })

  await t.test('mod_wsgi.* and apache.* entries', async (t) => {
    const e = await env('/env')
    t.equal(e['mod_wsgi.version'], '(4, 1, 0)')
    t.equal(e['mod_wsgi.process_group'], 'env')
    t.equal(e['mod_wsgi.application_group'], `127.0.0.1:${apache.port}|/env`)
    t.equal(e['mod_wsgi.callable_object'], 'application')
    t.equal(e['mod_wsgi.script_reloading'], '1')
    t.equal(e['mod_wsgi.enable_sendfile'], '0')
    t.equal(e['mod_wsgi.handler_script'], '')
    t.equal(e['mod_wsgi.request_handler'], 'wsgi-script')
    t.equal(e['mod_wsgi.listener_port'], String(apache.port))
    t.equal(e['mod_wsgi.input_chunked'], '0')
    t.match(e['mod_wsgi.request_start'], /^\d{16}$/)
    t.match(e['mod_wsgi.queue_start'], /^\d{16}$/)
    t.ok(Number(e['mod_wsgi.queue_start']) >= Number(e['mod_wsgi.request_start']), 'queued after the request arrived')
    t.match(e['apache.version'], /^\(2, 4, \d+\)$/)
    t.equal(e.__types__['apache.version'], 'tuple')
    t.notOk('mod_wsgi.url_scheme' in e, 'the control variable becomes wsgi.url_scheme, not an entry')
  })

  await t.test('SetEnv and mod_rewrite [E=] variables pass through', async (t) => {
    const e = await env('/rw/y')
    t.equal(e.MY_SETENV_VAR, 'from-setenv')
    t.equal(e.MY_REWRITE_VAR, 'from-rewrite')
    t.equal(e.SCRIPT_NAME, '/env')
    t.equal(e.PATH_INFO, '/y')
    t.equal(e.REQUEST_URI, '/rw/y')
  })

  await t.test('PATH_INFO is percent-decoded once; REQUEST_URI and QUERY_STRING stay as sent', async (t) => {
    const e = await env('/env/a%20b/caf%C3%A9/%2541?q=%20x')
    t.equal(e.PATH_INFO, '/a b/caf\u00c3\u00a9/%41', 'UTF-8 bytes arrive as latin-1 characters (PEP 3333)')
    t.equal(e.REQUEST_URI, '/env/a%20b/caf%C3%A9/%2541?q=%20x')
    t.equal(e.QUERY_STRING, 'q=%20x')
    const slashes = await env('/env//a//b/')
    t.equal(slashes.PATH_INFO, '/a/b/', 'repeated slashes collapsed')
    const encodedSlash = await apache.request('/env/a%2Fb')
    t.equal(encodedSlash.status, 404, "an encoded slash is refused by Apache's default (AllowEncodedSlashes Off)")
  })

  await t.test('request header values are latin-1 str', async (t) => {
    const e = await env('/env', { headers: { 'x-latin': 'caf\u00e9' } })
    t.equal(e.HTTP_X_LATIN, 'caf\u00e9')
  })

  await t.test('the request body through the validated wsgi.input', async (t) => {
    const e = await env('/env?body=1', { method: 'POST', body: 'a=1&b=2', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.equal(e.__body__, 'a=1&b=2')
    t.equal(e.CONTENT_LENGTH, '7')
    t.equal(e.CONTENT_TYPE, 'application/x-www-form-urlencoded')
  })

  t.notMatch(apache.log(), /AssertionError|WSGIWarning|Iterator garbage collected without being closed/, 'the validator logged nothing')
})
