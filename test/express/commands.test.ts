// The other subcommands (setup-server, module-location, module-config, install-module), and how
// mod_wsgi-express finds Apache or says what to install.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { locateApache, type SearchPlaces } from '../../src/express/apache-locate'
import { fixture, MODULE, ROOT } from '../helpers/apache'
import { EXPRESS, tempDir } from './express-helpers'

function express(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [EXPRESS, ...args], { encoding: 'utf8', env, timeout: 30000 })
}

t.test('setup-server writes a server root that apachectl configtest accepts', async (t) => {
  const root = join(tempDir(t, 'mod_wsgi-express-'), 'server')
  const r = express(['setup-server', fixture('hello-world'), '--port', '8765', '--server-root', root, '--processes', '2', '--threads', '3', '--keep-alive-timeout', '3', '--error-document', '404', '/missing.html'])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, `Apache Control     : ${join(root, 'apachectl')}`)
  const conf = readFileSync(join(root, 'httpd.conf'), 'utf8')
  t.match(conf, /^Listen 8765$/m)
  t.match(conf, /processes=2/)
  t.match(conf, /threads=3/)
  t.match(conf, /KeepAlive On\nKeepAliveTimeout 3/)
  t.match(conf, /ErrorDocument 404 '\/missing.html'/)
  t.ok(existsSync(join(root, 'handler.wsgi')), 'handler.wsgi')
  t.ok(statSync(join(root, 'apachectl')).mode & 0o100, 'apachectl is executable')
  const test = spawnSync(join(root, 'apachectl'), ['configtest'], { encoding: 'utf8' })
  t.equal(test.status, 0, test.stderr)
  t.match(test.stderr, /Syntax OK/)
})

t.test('without --processes there is no processes= (wsgi.multiprocess stays false), and --user picks the identity', async (t) => {
  const root = join(tempDir(t, 'mod_wsgi-express-'), 'server')
  const r = express(['setup-server', fixture('hello-world'), '--server-root', root, '--user', 'nobody'])
  t.equal(r.status, 0, r.stderr)
  const conf = readFileSync(join(root, 'httpd.conf'), 'utf8')
  t.notMatch(conf, /processes=/)
  t.match(conf, /^User nobody$/m)
  t.match(conf, /^Group nogroup$/m, "the user's own group")
  t.match(r.stdout, 'Daemon Identity    : nobody (group nogroup)')
})

t.test("a server root someone else owns, may write to, or that is a symbolic link is refused", async (t) => {
  const base = tempDir(t, 'mod_wsgi-express-')
  const theirs = join(base, 'theirs')
  mkdirSync(theirs, { mode: 0o755 })
  spawnSync('chown', ['nobody', theirs])
  const open = join(base, 'open')
  mkdirSync(open)
  chmodSync(open, 0o777)
  const link = join(base, 'link')
  symlinkSync(tempDir(t, 'mod_wsgi-express-'), link)
  for (const [dir, why] of [
    [theirs, /belongs to uid \d+, not to you/],
    [open, /may be written by others \(mode 777\)/],
    [link, /is not a directory \(a symbolic link\?\)/],
  ] as const) {
    const r = express(['setup-server', '--server-root', dir])
    t.equal(r.status, 2, dir)
    t.match(r.stderr, why)
    t.notOk(existsSync(join(dir, 'httpd.conf')), 'nothing written there')
  }
})

t.test('the default server root is /tmp/mod_wsgi-<host>:<port>:<uid>', async (t) => {
  const { defaultServerRoot } = await import('../../src/express/server-root')
  const { defaultOptions } = await import('../../src/express/options')
  const o = defaultOptions()
  t.equal(defaultServerRoot(o), `/tmp/mod_wsgi-localhost:8000:${process.getuid?.()}`)
  t.equal(defaultServerRoot({ ...o, host: '127.0.0.1', port: 8080 }), `/tmp/mod_wsgi-127.0.0.1:8080:${process.getuid?.()}`)
})

t.test('module-location and module-config', async (t) => {
  t.equal(express(['module-location']).stdout.trim(), MODULE)
  const plain = express(['module-config'], { ...process.env, VIRTUAL_ENV: '' })
  t.equal(plain.stdout, `LoadModule wsgi_module '${MODULE}'\n`, 'Debian\'s Python needs nothing more')
  const venv = express(['module-config'], { ...process.env, VIRTUAL_ENV: '/srv/venv' })
  t.equal(venv.stdout, `LoadModule wsgi_module '${MODULE}'\nWSGIPythonHome '/srv/venv'\n`, 'an active virtualenv is named')
  t.match(express(['module-config', '--python-home', '/opt/env']).stdout, "WSGIPythonHome '/opt/env'")
})

t.test('install-module copies mod_wsgi.so into a modules directory and prints its LoadModule line', async (t) => {
  const dir = tempDir(t, 'mod_wsgi-modules-')
  const r = express(['install-module', '--modules-directory', dir])
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout, `LoadModule wsgi_module '${join(dir, 'mod_wsgi.so')}'\n`)
  t.same(readFileSync(join(dir, 'mod_wsgi.so')), readFileSync(MODULE), 'the built module')
  t.equal(statSync(join(dir, 'mod_wsgi.so')).mode & 0o777, 0o755)
  t.equal(express(['install-module', '--modules-directory', dir]).status, 0, 'again, over our own copy')

  const other = tempDir(t, 'mod_wsgi-modules-')
  symlinkSync('/usr/lib/apache2/modules/mod_wsgi.so-3.11', join(other, 'mod_wsgi.so'))
  const refused = express(['install-module', '--modules-directory', other])
  t.equal(refused.status, 2)
  t.match(refused.stderr, /is a symbolic link, probably another mod_wsgi's: remove it or pass --force/)
  t.equal(express(['install-module', '--modules-directory', other, '--force']).status, 0, '--force replaces it')
  t.notOk(lstatSync(join(other, 'mod_wsgi.so')).isSymbolicLink(), 'a file now')

  const none = express(['install-module', '--modules-directory', join(dir, 'nope')])
  t.equal(none.status, 2)
  t.match(none.stderr, /the modules directory .*nope does not exist/)
})

t.test('Apache is found through --httpd-executable, HTTPD or APXS, and a wrong one is named', async (t) => {
  const env = { ...process.env }
  const noHttpd = express(['setup-server', '--httpd-executable', '/nonexistent/httpd'], env)
  t.equal(noHttpd.status, 2)
  t.match(noHttpd.stderr, /--httpd-executable \/nonexistent\/httpd is not an executable file/)
  const badEnv = express(['setup-server'], { ...env, HTTPD: '/nonexistent/httpd' })
  t.equal(badEnv.status, 2)
  t.match(badEnv.stderr, /HTTPD=\/nonexistent\/httpd is not an executable file/)
  t.match(badEnv.stderr, /apt-get install apache2 apache2-dev/, 'says what to install')
  const badApxs = express(['setup-server'], { ...env, APXS: '/nonexistent/apxs' })
  t.equal(badApxs.status, 2)
  t.match(badApxs.stderr, /APXS=\/nonexistent\/apxs is not an executable file/)

  // $HTTPD names the binary; its modules and mime.types still come from apxs.
  const root = join(tempDir(t, 'mod_wsgi-express-'), 'server')
  const wrapper = join(tempDir(t, 'mod_wsgi-httpd-'), 'httpd')
  writeFileSync(wrapper, '#!/bin/sh\nexec /usr/sbin/apache2 "$@"\n')
  chmodSync(wrapper, 0o755)
  const viaEnv = express(['setup-server', '--server-root', root], { ...env, HTTPD: wrapper })
  t.equal(viaEnv.status, 0, viaEnv.stderr)
  t.match(readFileSync(join(root, 'apachectl'), 'utf8'), `HTTPD='${wrapper}'`)
  t.match(readFileSync(join(root, 'httpd.conf'), 'utf8'), "LoadModule rewrite_module '/usr/lib/apache2/modules/mod_rewrite.so'")
})

t.test('locating Apache: apxs first, then PATH and the usual places, else what to install', async (t) => {
  const dir = tempDir(t, 'mod_wsgi-locate-')
  const places = (over: Partial<SearchPlaces>): SearchPlaces => ({ path: [], apxs: [], httpd: [], modules: [], mimeTypes: [], ...over })
  const opts = { httpdExecutable: null, modulesDirectory: null, mimeTypes: null }
  t.throws(() => locateApache(opts, {}, places({})), { code: 'ERR_WSGI_EXPRESS_NO_APACHE', message: /Apache httpd was not found\. Install Apache httpd 2\.4/ })

  // An Apache under its own prefix, found on PATH: modules beside bin/, conf/mime.types.
  const prefix = join(dir, 'apache2')
  for (const d of ['bin', 'modules', 'conf']) mkdirSync(join(prefix, d), { recursive: true })
  writeFileSync(join(prefix, 'bin', 'httpd'), '#!/bin/sh\n')
  chmodSync(join(prefix, 'bin', 'httpd'), 0o755)
  writeFileSync(join(prefix, 'conf', 'mime.types'), 'text/plain txt\n')
  t.same(locateApache(opts, {}, places({ path: [join(prefix, 'bin')] })), {
    httpd: join(prefix, 'bin', 'httpd'),
    modulesDirectory: join(prefix, 'modules'),
    mimeTypes: join(prefix, 'conf', 'mime.types'),
    apxs: null,
  })
  // The system's apxs describes Debian's layout.
  const viaApxs = locateApache(opts, {}, places({ apxs: ['/usr/bin/apxs'], mimeTypes: ['/etc/mime.types'] }))
  t.same(viaApxs, { httpd: '/usr/sbin/apache2', modulesDirectory: '/usr/lib/apache2/modules', mimeTypes: '/etc/mime.types', apxs: '/usr/bin/apxs' })
  t.throws(() => locateApache(opts, {}, places({ apxs: ['/usr/bin/apxs'] })), /No mime.types file was found: name one with --mime-types/)
  t.throws(() => locateApache({ ...opts, modulesDirectory: join(dir, 'none') }, {}, places({ apxs: ['/usr/bin/apxs'] })), /--modules-directory .* is not a directory/)
})

t.test('mod_wsgi-express --help lists the commands', async (t) => {
  const r = express(['--help'])
  t.equal(r.status, 0)
  for (const c of ['start-server', 'setup-server', 'module-location', 'module-config', 'install-module']) t.match(r.stdout, c)
  t.ok(existsSync(join(ROOT, 'bin', 'mod_wsgi-express')))
})
