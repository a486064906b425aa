// Issue 7, hostile input: clients cannot steer internals. Request headers named like the module's own
// control variables (mod_wsgi.*, apache.version, a forged process group) have no effect: the request runs
// in the group the configuration chose with the values the module computed. Header names with
// underscores never become HTTP_ variables that could pass for dash-named ones (X-Forwarded_For posing
// as X-Forwarded-For), in applications nor in hooks; Proxy (httpoxy) and HTTPS headers change nothing.
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'
import { rawRequest } from '../helpers/raw-http'

const HOOKS = fixture('auth-hooks', 'auth.wsgi')
const CONFIG = `
WSGIDaemonProcess good threads=2
WSGIDaemonProcess secret threads=2
WSGIProcessGroup good
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /env ${fixture('environ-json')}
<Location /env/auth>
  AuthType Basic
  AuthName "forged"
  AuthBasicProvider wsgi
  WSGIAuthUserScript ${HOOKS}
  Require valid-user
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

/** Headers a hostile client sends, raw (Node's client would refuse some names). */
const FORGED = [
  'mod_wsgi.process_group: secret',
  'mod_wsgi.application_group: evil',
  'mod_wsgi.callable_object: other_callable',
  'mod_wsgi.handler_script: /etc/passwd',
  'mod_wsgi.script_reloading: 0',
  'mod_wsgi.url_scheme: https',
  'apache.version: 9.9.9',
  'Mod-Wsgi-Process-Group: secret',
  'Script_Filename: /etc/passwd',
  'X-Forwarded-For: 10.0.0.1',
  'X-Forwarded_For: 6.6.6.6',
  'X_Real_IP: 6.6.6.6',
  'Content_Type: text/evil',
  'Remote_User: admin',
  'Proxy: http://evil.example:3128/',
  'HTTPS: on',
]

function get(port: number, path: string, extra: string[] = []): Promise<{ status: number; env: Record<string, string> }> {
  const head = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...FORGED, ...extra, '', ''].join('\r\n')
  return rawRequest(port, head).then((r) => ({ status: r.status, env: r.status === 200 ? JSON.parse(r.body) : {} }))
}

t.test('forged control headers and underscore names', async (t) => {
  const apache = await startApache(t, { config: CONFIG, modules: ['auth_basic', 'authz_user'] })

  await t.test('the application sees what the module computed', async (t) => {
    const { status, env } = await get(apache.port, '/env/x')
    t.equal(status, 200)
    t.equal(env['mod_wsgi.process_group'], 'good', 'runs in the configured process group')
    t.equal(env['mod_wsgi.application_group'], '', 'in the configured application group (%{GLOBAL})')
    t.equal(env['mod_wsgi.callable_object'], 'application')
    t.equal(env['SCRIPT_FILENAME'], fixture('environ-json'))
    t.equal(env['wsgi.url_scheme'], 'http', 'no header makes the request https')
    t.equal(env['apache.version'].startsWith('(2, 4,'), true, `apache.version is Apache's (${env['apache.version']})`)
    t.equal(env['HTTP_X_FORWARDED_FOR'], '10.0.0.1', 'the dash-named header, not the underscore one')
    t.notOk('HTTP_X_REAL_IP' in env, 'X_Real_IP (underscores) is not exported')
    t.notOk('HTTP_CONTENT_TYPE' in env || env['CONTENT_TYPE'] === 'text/evil', 'Content_Type is not exported')
    t.notOk('HTTP_REMOTE_USER' in env || 'REMOTE_USER' in env, 'Remote_User is not exported')
    t.notOk('HTTP_SCRIPT_FILENAME' in env, 'Script_Filename is not exported')
    t.notOk('HTTP_PROXY' in env, 'the Proxy header is not exported (httpoxy)')
    t.notOk('HTTPS' in env, 'no HTTPS variable')
    t.equal(env['HTTP_MOD_WSGI_PROCESS_GROUP'], 'secret', 'a dash-named lookalike is just a header')
    const stray = Object.keys(env).filter((k) => /^mod_wsgi\./.test(k) && /evil|secret|other_callable|passwd/.test(env[k]))
    t.same(stray, [], 'no mod_wsgi.* value came from the client')
    t.notOk(Object.keys(env).some((k) => k.toLowerCase().startsWith('mod_wsgi.') && k !== k.trim()), 'no odd mod_wsgi keys')
  })

  await t.test('the underscore header alone does not pose as X-Forwarded-For', async (t) => {
    const head = ['GET /env/y HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close', 'X-Forwarded_For: 6.6.6.6', '', ''].join('\r\n')
    const r = await rawRequest(apache.port, head)
    const env = JSON.parse(r.body)
    t.notOk('HTTP_X_FORWARDED_FOR' in env, 'HTTP_X_FORWARDED_FOR is absent')
    t.notOk(Object.values(env).includes('6.6.6.6'), 'the value is nowhere in the environ')
  })

  await t.test('the same holds in the environ of a hook', async (t) => {
    const mark = apache.log().length
    const auth = `Authorization: Basic ${Buffer.from('dump:x').toString('base64')}`
    const { status, env } = await get(apache.port, '/env/auth', [auth])
    t.equal(status, 200, 'the hook granted access')
    t.equal(env['REMOTE_USER'], 'dump', 'REMOTE_USER is the authenticated user, not the Remote_User header')
    const line = await waitFor(() => /hook environ (\{[^\n]*\})/.exec(apache.log().slice(mark))?.[1] ?? '', 10000, 50, 'the hook environ')
    const hookEnv = JSON.parse(line) as Record<string, string>
    t.equal(hookEnv['mod_wsgi.process_group'], 'good', "the hook ran in the request's process group")
    t.equal(hookEnv['mod_wsgi.application_group'], '')
    t.equal(hookEnv['HTTP_X_FORWARDED_FOR'], '10.0.0.1')
    t.notOk('HTTP_X_REAL_IP' in hookEnv || 'HTTP_PROXY' in hookEnv || 'HTTP_AUTHORIZATION' in hookEnv, 'no underscore, Proxy or Authorization header')
  })
})
