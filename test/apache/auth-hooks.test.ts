// WSGIAccessScript, WSGIAuthUserScript and WSGIAuthGroupScript through a real Apache: Basic and Digest
// (curl --digest) through the "wsgi" authn provider, `Require wsgi-group`, allow_access by client
// address (the client binds 127.0.0.x), composition with mod_authn_file and RequireAny, exceptions and
// bad answers, where hooks run (process and application group), the hook environ, loading once and
// reloading on change, and configuration errors refused by apache2 -t.
import { execFile, spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import * as http from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { Apache, fixture, FIXTURES, makeTempDir, startApache, type Response } from '../helpers/apache'

const run = promisify(execFile)
const AUTH = fixture('auth-hooks', 'auth.wsgi')
const APP = fixture('ssl-vars')

const basic = (user: string, password: string) => ({ authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64') })

/** A GET from a chosen local address (127.0.0.x) so that the server sees that client address. */
function get(port: number, path: string, o: { headers?: Record<string, string>; localAddress?: string } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, headers: o.headers, localAddress: o.localAddress, agent: false, timeout: 30000 },
      (r) => {
        const chunks: Buffer[] = []
        r.on('data', (c: Buffer) => chunks.push(c))
        r.on('end', () => {
          const body = Buffer.concat(chunks)
          resolve({ status: r.statusCode ?? 0, headers: r.headers, rawHeaders: r.rawHeaders, body, text: body.toString('latin1') })
        })
        r.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${path} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

const count = (text: string, re: RegExp) => (text.match(new RegExp(re.source, 'g')) ?? []).length

t.test('hooks through Apache', async (t) => {
  const dir = makeTempDir('mod_wsgi-hooks-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'static'), { mode: 0o755 })
  writeFileSync(join(dir, 'static', 'file.txt'), 'static content\n')
  const reloadScript = join(dir, 'reload.wsgi')
  writeFileSync(reloadScript, "def check_password(environ, user, password):\n    return password == 'one'\n")
  const htpasswd = join(dir, 'htpasswd')
  const hash = spawnSync('openssl', ['passwd', '-apr1', 'fromfile'], { encoding: 'latin1' }).stdout.trim()
  writeFileSync(htpasswd, `filey:${hash}\n`)
  const auth = (extra = '') => `
  AuthType Basic
  AuthName "Top Secret"
  AuthBasicProvider wsgi
  WSGIAuthUserScript ${AUTH}${extra}`

  const apache = await startApache(t, {
    modules: ['ssl', 'auth_basic', 'auth_digest', 'authn_file', 'authz_user', 'authz_host'],
    config: `
WSGIDaemonProcess authd threads=4
WSGIDaemonProcess other threads=2
${['basic', 'appgroup', 'group', 'digest', 'compose', 'access', 'access-ip', 'reload', 'aliased'].map((p) => `WSGIScriptAlias /${p} ${APP} process-group=authd`).join('\n')}
Alias /static ${dir}/static
Alias /static-pg ${dir}/static
<Directory ${dir}/static>
  Require all granted
</Directory>
<Location /basic>${auth()}
  Require valid-user
  SetEnv SECRET_SETTING from-setenv
</Location>
<Location /appgroup>${auth(' application-group=hooks process-group=other')}
  Require valid-user
</Location>
<Location /static>${auth()}
  Require valid-user
</Location>
<Location /static-pg>${auth()}
  WSGIProcessGroup other
  Require valid-user
</Location>
<Location /group>${auth()}
  WSGIAuthGroupScript ${AUTH}
  Require wsgi-group secret-agents
</Location>
<Location /digest>
  AuthType Digest
  AuthName "Digest Realm"
  AuthDigestProvider wsgi
  WSGIAuthUserScript ${AUTH}
  Require valid-user
</Location>
<Location /compose>
  AuthType Basic
  AuthName "Compose"
  AuthBasicProvider file wsgi
  AuthUserFile ${htpasswd}
  WSGIAuthUserScript ${AUTH}
  WSGIAuthGroupScript ${AUTH}
  <RequireAny>
    Require wsgi-group secret-agents
    Require user filey
  </RequireAny>
</Location>
<Location /access>
  WSGIAccessScript ${AUTH}
  Require all granted
</Location>
<Location /access-ip>
  WSGIAccessScript ${AUTH}
  Require ip 127.0.0.1 127.0.0.2
</Location>
<AuthnProviderAlias wsgi hooksalias>
  WSGIAuthUserScript ${AUTH} application-group=aliased
</AuthnProviderAlias>
<Location /aliased>
  AuthType Basic
  AuthName "Aliased"
  AuthBasicProvider hooksalias
  Require valid-user
</Location>
<Location /reload>
  AuthType Basic
  AuthName "Reload"
  AuthBasicProvider wsgi
  WSGIAuthUserScript ${reloadScript}
  Require valid-user
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const port = apache.port
  const json = (r: Response) => JSON.parse(r.text)

  await t.test('Basic: check_password grants, denies, and None is an unknown user', async (t) => {
    const ok = await get(port, '/basic', { headers: basic('spy', 'secret') })
    t.equal(ok.status, 200)
    t.equal(json(ok).REMOTE_USER, 'spy')
    t.equal(json(ok).AUTH_TYPE, 'Basic')
    const wrong = await get(port, '/basic', { headers: basic('spy', 'wrong') })
    t.equal(wrong.status, 401, 'False: denied')
    t.match(wrong.headers['www-authenticate'], /^Basic realm="Top Secret"/)
    await apache.waitForLog(/user spy: authentication failure for "\/basic": Password Mismatch/)
    const unknown = await get(port, '/basic', { headers: basic('nobody', 'x') })
    t.equal(unknown.status, 401, 'None: not found')
    await apache.waitForLog(/user nobody not found: \/basic/)
    t.equal((await get(port, '/basic')).status, 401, 'no credentials')
    const utf8 = await get(port, '/basic', { headers: basic('carol', 'p\u00e4ss') })
    t.equal(utf8.status, 200, 'a UTF-8 password reaches the hook as text')
  })

  await t.test('a name returned by check_password becomes the user', async (t) => {
    const r = await get(port, '/basic', { headers: basic('alias', 'x') })
    t.equal(r.status, 200)
    t.equal(json(r).REMOTE_USER, 'canonical')
  })

  await t.test('an exception or a bad answer in check_password: 500 and the reason in the log', async (t) => {
    const boom = await get(port, '/basic', { headers: basic('boom', 'x') })
    t.equal(boom.status, 500)
    await apache.waitForLog(/RuntimeError: deliberate failure in check_password/)
    t.match(apache.log(), /WSGI03013: Exception occurred processing WSGI script '[^']*auth-hooks\/auth\.wsgi'/)
    t.match(apache.log(), /Traceback \(most recent call last\):/)
    const weird = await get(port, '/basic', { headers: basic('weird', 'x') })
    t.equal(weird.status, 500)
    await apache.waitForLog(/TypeError: Basic auth provider must return True, False None or user name as string/)
    t.equal((await get(port, '/basic', { headers: basic('spy', 'secret') })).status, 200, 'the daemon keeps serving')
  })

  await t.test('the hook environ: headers, server and client details; no Authorization, no SetEnv', async (t) => {
    const r = await get(port, '/basic/sub?x=1', { headers: { ...basic('dump', 'x'), 'x-custom': 'yes' } })
    t.equal(r.status, 200)
    const line = await apache.waitForLog(/hook environ \{.*\}/)
    const env = JSON.parse(line.slice('hook environ '.length))
    t.equal(env.HTTP_X_CUSTOM, 'yes')
    t.equal(env.HTTP_HOST, `127.0.0.1:${port}`)
    t.equal(env.REQUEST_METHOD, 'GET')
    t.equal(env.REQUEST_URI, '/basic/sub?x=1')
    t.equal(env.QUERY_STRING, 'x=1')
    t.equal(env.SCRIPT_NAME, '/basic')
    t.equal(env.PATH_INFO, '/sub')
    t.equal(env.REMOTE_ADDR, '127.0.0.1')
    t.equal(env.SERVER_PORT, String(port))
    t.equal(env['mod_wsgi.process_group'], 'authd')
    t.equal(env['mod_wsgi.application_group'], '')
    t.equal(env['mod_wsgi.script_reloading'], 1)
    t.equal(env['mod_wsgi.version'], 'tuple')
    t.equal(env['wsgi.errors'], 'Log')
    t.equal(env['mod_ssl.is_https'], 'builtin_function_or_method')
    t.equal(env['mod_ssl.var_lookup'], 'builtin_function_or_method')
    t.notOk('HTTP_AUTHORIZATION' in env, 'the password does not leak into the environ')
    t.notOk('SECRET_SETTING' in env, 'SetEnv variables are not passed (as mod_wsgi)')
    t.notOk('HTTPS' in env)
  })

  await t.test('over plain HTTP is_https() is 0 (mod_ssl loaded, no SSL on this connection)', async (t) => {
    await apache.waitForLog(/hook check_password user=spy .* https=0 cn=''/)
  })

  await t.test("hooks run in the request's process group, the named application group, else the default group", async (t) => {
    await apache.waitForLog(/hook check_password user=spy pid=\d+ process_group='authd' application_group=''/)
    t.equal((await get(port, '/appgroup', { headers: basic('bob', 'builder') })).status, 200)
    await apache.waitForLog(/hook check_password user=bob pid=\d+ process_group='other' application_group='hooks'/)
    const st = await get(port, '/static/file.txt', { headers: basic('spy', 'secret') })
    t.equal(st.status, 200)
    t.equal(st.text, 'static content\n', 'a static file protected by a Python hook')
    t.equal((await get(port, '/static/file.txt')).status, 401)
    await apache.waitForLog(/hook check_password user=spy pid=\d+ process_group='' application_group=''/)
    t.match(apache.log(), /started daemon process 1 of process group ''/, 'the default group runs hooks no group claims')
    t.equal((await get(port, '/static-pg/file.txt', { headers: basic('dave', 'd') })).status, 200)
    await apache.waitForLog(/hook check_password user=dave pid=\d+ process_group='other' application_group=''/)
  })

  await t.test('through an AuthnProviderAlias, as in the mod_wsgi documentation', async (t) => {
    const r = await get(port, '/aliased', { headers: basic('bob', 'builder') })
    t.equal(r.status, 200)
    t.equal(json(r).REMOTE_USER, 'bob')
    await apache.waitForLog(/hook check_password user=bob pid=\d+ process_group='authd' application_group='aliased'/)
    t.equal((await get(port, '/aliased', { headers: basic('bob', 'wrong') })).status, 401)
  })

  await t.test('Require wsgi-group: granted, not a member, and an exception in groups_for_user', async (t) => {
    const ok = await get(port, '/group', { headers: basic('spy', 'secret') })
    t.equal(ok.status, 200)
    await apache.waitForLog(/hook groups_for_user user=spy/)
    const bob = await get(port, '/group', { headers: basic('bob', 'builder') })
    t.equal(bob.status, 401)
    await apache.waitForLog(/WSGI01323: Authorization of user 'bob' to access '\/group' failed\. User is not a member of designated groups\./)
    const dave = await get(port, '/group', { headers: basic('dave', 'd') })
    t.equal(dave.status, 401, 'an exception denies (401, as mod_wsgi)')
    await apache.waitForLog(/RuntimeError: deliberate failure in groups_for_user/)
  })

  await t.test('composes with mod_authn_file and RequireAny', async (t) => {
    t.equal((await get(port, '/compose', { headers: basic('spy', 'secret') })).status, 200, 'wsgi user in the wsgi group')
    const filey = await get(port, '/compose', { headers: basic('filey', 'fromfile') })
    t.equal(filey.status, 200, 'file user through Require user')
    t.equal(json(filey).REMOTE_USER, 'filey')
    t.equal(count(apache.log(), /check_password user=filey/), 0, 'the file provider answered first')
    t.equal((await get(port, '/compose', { headers: basic('bob', 'builder') })).status, 401, 'neither requirement met')
  })

  await t.test('Digest through get_realm_hash, with curl --digest', async (t) => {
    const curl = async (user: string) => {
      const { stdout } = await run('curl', ['-s', '--digest', '-u', user, '-w', '\n%{http_code}', `http://127.0.0.1:${port}/digest`])
      const i = stdout.lastIndexOf('\n')
      return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) }
    }
    const ok = await curl('spy:secret')
    t.equal(ok.status, 200)
    t.equal(JSON.parse(ok.body).REMOTE_USER, 'spy')
    t.equal(JSON.parse(ok.body).AUTH_TYPE, 'Digest')
    await apache.waitForLog(/hook get_realm_hash user=spy realm=Digest Realm/)
    t.equal((await curl('spy:wrong')).status, 401)
    t.equal((await curl('nobody:x')).status, 401)
    t.equal((await curl('boom:x')).status, 500)
    await apache.waitForLog(/RuntimeError: deliberate failure in get_realm_hash/)
  })

  await t.test('allow_access by client address', async (t) => {
    const from = (a: string, path = '/access') => get(port, path, { localAddress: a })
    t.equal((await from('127.0.0.1')).status, 200, 'True: allowed')
    t.equal((await from('127.0.0.2')).status, 403, 'False: forbidden')
    await apache.waitForLog(/client 127\.0\.0\.2:\d+\] \[request [^\]]+\] WSGI01319: Client denied by server configuration/)
    t.equal((await from('127.0.0.3')).status, 200, 'None: no opinion, Require all granted decides')
    t.equal((await from('127.0.0.3', '/access-ip')).status, 403, 'None: no opinion, Require ip decides')
    t.equal((await from('127.0.0.4')).status, 403, 'an exception denies (403, as mod_wsgi)')
    await apache.waitForLog(/RuntimeError: deliberate failure in allow_access/)
    await apache.waitForLog(/hook allow_access host=127\.0\.0\.1 .* https=0/)
  })

  await t.test('the script is loaded once per application group and reloaded when it changes', async (t) => {
    t.equal(
      count(apache.log(), /Loading Python script file '[^']*auth-hooks\/auth\.wsgi' \(process 'authd', application ''\)/),
      1,
      'loaded once in authd for every hook so far',
    )
    t.equal((await get(port, '/reload', { headers: basic('u', 'one') })).status, 200)
    t.equal((await get(port, '/reload', { headers: basic('u', 'two') })).status, 401)
    writeFileSync(reloadScript, "def check_password(environ, user, password):\n    return password == 'two'\n")
    const later = new Date(Date.now() + 5000)
    utimesSync(reloadScript, later, later)
    t.equal((await get(port, '/reload', { headers: basic('u', 'two') })).status, 200, 'the new script answers')
    t.equal((await get(port, '/reload', { headers: basic('u', 'one') })).status, 401)
    await apache.waitForLog(/WSGI03014: Reloading WSGI script '[^']*reload\.wsgi'/)
  })
})

t.test('no default daemon is started when every hook has a process group', async (t) => {
  const apache = await startApache(t, {
    modules: ['auth_basic', 'authz_user'],
    config: `
WSGIDaemonProcess only threads=2
WSGIScriptAlias /app ${APP} process-group=only
<Location /app/secret>
  AuthType Basic
  AuthName "Top Secret"
  AuthBasicProvider wsgi
  WSGIAuthUserScript ${AUTH}
  Require valid-user
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  t.equal((await get(apache.port, '/app/secret', { headers: basic('spy', 'secret') })).status, 200)
  await apache.waitForLog(/hook check_password user=spy pid=\d+ process_group='only'/)
  t.match(apache.log(), /started daemon process 1 of process group 'only'/)
  t.notMatch(apache.log(), /process group ''/, 'no idle default group')
  t.equal(apache.daemonPids().length, 1)
})

t.test('configuration errors are refused by apache2 -t, naming directive and option', async (t) => {
  const check = (config: string) => {
    const a = new Apache({ modules: ['auth_basic', 'authz_user'], config })
    t.teardown(() => a.cleanup())
    return a.configTest()
  }
  let r = check('<Location /x>\n  WSGIAuthUserScript\n</Location>')
  t.not(r.status, 0)
  t.match(r.output, /WSGIAuthUserScript requires the path of a Python script/)
  r = check(`<Location /x>\n  WSGIAccessScript ${AUTH} bogus=1\n</Location>`)
  t.not(r.status, 0)
  t.match(r.output, /WSGIAccessScript: unknown option 'bogus' \(allowed: application-group, process-group\)/)
  r = check(`<Location /x>\n  WSGIAuthGroupScript ${AUTH} application-group=\n</Location>`)
  t.not(r.status, 0)
  t.match(r.output, /WSGIAuthGroupScript: option 'application-group' needs a non-empty value/)
  r = check(`<Location /x>\n  WSGIAuthUserScript ${AUTH} process-group=nowhere\n</Location>`)
  t.not(r.status, 0)
  t.match(r.output, /WSGIAuthUserScript names the process group 'nowhere', but no WSGIDaemonProcess defines it/)
  r = check('<Location /x>\n  AuthType Basic\n  AuthName x\n  AuthBasicProvider wsgi\n  Require wsgi-group\n</Location>')
  t.not(r.status, 0)
  t.match(r.output, /Require wsgi-group: at least one group name is required/)
  r = check(`<Location /x>\n  AuthType Basic\n  AuthName x\n  AuthBasicProvider wsgi\n  WSGIAuthUserScript ${AUTH} application-group=%{GLOBAL}\n  Require wsgi-group a b\n</Location>`)
  t.equal(r.status, 0, `a correct configuration passes: ${r.output}`)
})
