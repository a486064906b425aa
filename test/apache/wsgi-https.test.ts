// Issue 3, item 2: HTTPS is never in the environ. wsgi.url_scheme is 'https' over SSL (mod_ssl), or when
// HTTPS is set to a true value ("On" in any case, or "1", as mod_wsgi 4.1.0 tests it) by SetEnv,
// SetEnvIf or a rewrite rule — and HTTPS itself is then removed (release notes, Features Changed 2).
import { spawnSync } from 'node:child_process'
import * as https from 'node:https'
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, freePort, makeTempDir, startApache } from '../helpers/apache'

const APP = fixture('validated-environ')

function httpsGet(port: number, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, rejectUnauthorized: false, agent: false, timeout: 30000 }, (r) => {
      const chunks: Buffer[] = []
      r.on('data', (c: Buffer) => chunks.push(c))
      r.on('end', () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString('latin1') }))
      r.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

t.test('wsgi.url_scheme and HTTPS', async (t) => {
  const certDir = makeTempDir('mod_wsgi-cert-')
  t.teardown(() => spawnSync('rm', ['-rf', certDir]))
  const cert = join(certDir, 'cert.pem')
  const key = join(certDir, 'key.pem')
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=127.0.0.1'], { encoding: 'latin1' })
  t.equal(gen.status, 0, `self-signed certificate made ${gen.stderr}`)
  const sslPort = await freePort()

  const apache = await startApache(t, {
    modules: ['ssl', 'rewrite', 'socache_shmcb'],
    config: `
WSGIDaemonProcess https threads=4
WSGIProcessGroup https
WSGIScriptAlias /env ${APP}
WSGIScriptAlias /setenv-on ${APP}
WSGIScriptAlias /setenv-1 ${APP}
WSGIScriptAlias /setenv-off ${APP}
WSGIScriptAlias /rewritten ${APP}
<Location /setenv-on>
  SetEnv HTTPS On
</Location>
<Location /setenv-1>
  SetEnv HTTPS 1
</Location>
<Location /setenv-off>
  SetEnv HTTPS off
</Location>
SetEnvIf X-Forwarded-Proto ^https$ HTTPS=on
RewriteEngine On
RewriteRule ^/rw(.*)$ /rewritten$1 [PT,E=HTTPS:on]
SSLSessionCache shmcb:{{DIR}}/ssl_scache(512000)
Listen 127.0.0.1:${sslPort}
<VirtualHost 127.0.0.1:${sslPort}>
  SSLEngine on
  SSLCertificateFile ${cert}
  SSLCertificateKeyFile ${key}
  SSLOptions +StdEnvVars
</VirtualHost>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const env = async (path: string, headers: Record<string, string> = {}) => {
    const r = await apache.request(path, { headers })
    t.equal(r.status, 200, `${path}: validated`)
    return JSON.parse(r.text)
  }

  await t.test('over SSL', async (t) => {
    const r = await httpsGet(sslPort, '/env/x')
    t.equal(r.status, 200)
    const e = JSON.parse(r.text)
    t.equal(e['wsgi.url_scheme'], 'https')
    t.equal(e.REQUEST_SCHEME, 'https')
    t.equal(e.SERVER_PORT, String(sslPort))
    t.notOk('HTTPS' in e, 'HTTPS is not in the environ')
    t.match(e.SSL_PROTOCOL, /^TLSv1\.[23]$/, 'mod_ssl variables (SSLOptions +StdEnvVars) pass through')
    t.match(e['mod_wsgi.application_group'], new RegExp(`:${sslPort}\\|/env$`), 'the virtual host\'s name and port')
  })

  await t.test('plain HTTP', async (t) => {
    const e = await env('/env')
    t.equal(e['wsgi.url_scheme'], 'http')
    t.notOk('HTTPS' in e)
  })

  await t.test('HTTPS set by SetEnv, SetEnvIf or a rewrite rule', async (t) => {
    for (const [path, headers, scheme] of [
      ['/setenv-on', {}, 'https'],
      ['/setenv-1', {}, 'https'],
      ['/setenv-off', {}, 'http'],
      ['/env', { 'x-forwarded-proto': 'https' }, 'https'],
      ['/rw/z', {}, 'https'],
    ] as Array<[string, Record<string, string>, string]>) {
      const e = await env(path, headers)
      t.equal(e['wsgi.url_scheme'], scheme, `${path} ${JSON.stringify(headers)}: ${scheme}`)
      t.notOk('HTTPS' in e, `${path}: and HTTPS itself is removed`)
    }
  })
})
