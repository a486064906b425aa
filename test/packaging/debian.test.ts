// apache-conf/debian on a Debian Apache: the README's steps (install-module, wsgi.load and wsgi.conf into
// mods-available, `a2enmod wsgi`, the sample site with `a2ensite`) carried out on a throwaway copy of
// /etc/apache2 (never the real one), then the system apache2 binary serves the sample Flask app.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { appendFileSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../express/express-helpers'
import { APACHE_BIN, childPids, freePort, request, ROOT, waitFor } from '../helpers/apache'

const DEBIAN = join(ROOT, 'apache-conf', 'debian')

function check(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stdout}${r.stderr}`)
  return `${r.stdout}${r.stderr}`
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('a2enmod wsgi and the sample site on a copy of /etc/apache2 serve a Flask app', { skip: !existsSync('/etc/apache2/apache2.conf') && 'no Debian Apache' }, async (t) => {
  const tmp = tempDir(t, 'mod_wsgi-debian-')
  const etc = join(tmp, 'etc', 'apache2')
  mkdirSync(join(tmp, 'etc'), { mode: 0o755 })
  check(spawnSync('cp', ['-a', '/etc/apache2', etc], { encoding: 'utf8' }), 'copying /etc/apache2')
  const dirs = { run: join(tmp, 'run'), lock: join(tmp, 'lock'), log: join(tmp, 'log'), state: join(tmp, 'state'), modules: join(tmp, 'modules') }
  for (const d of Object.values(dirs)) mkdirSync(d, { mode: 0o755 })
  const port = await freePort()

  // The copy's own runtime places, port and environment, as a second Apache instance would have them.
  appendFileSync(
    join(etc, 'envvars'),
    `\nexport APACHE_RUN_DIR=${dirs.run}\nexport APACHE_LOCK_DIR=${dirs.lock}\nexport APACHE_LOG_DIR=${dirs.log}\nexport APACHE_PID_FILE=${dirs.run}/apache2.pid\n`,
  )
  writeFileSync(join(etc, 'ports.conf'), `Listen 127.0.0.1:${port}\n`)
  const env = { ...process.env, APACHE_CONFDIR: etc, APACHE_STATE_DIRECTORY: dirs.state }
  const inEnv = (cmd: string) => spawnSync('sh', ['-c', `. ${etc}/envvars && ${cmd}`], { encoding: 'utf8', env, timeout: 30000 })

  // README step 1: the module into Apache's modules directory (here a throwaway one).
  const installed = check(
    spawnSync(process.execPath, [join(ROOT, 'bin', 'mod_wsgi-express'), 'install-module', '--modules-directory', dirs.modules], { encoding: 'utf8' }),
    'install-module',
  )
  t.match(installed, `LoadModule wsgi_module '${join(dirs.modules, 'mod_wsgi.so')}'`)

  // Step 2: wsgi.load and wsgi.conf into mods-available (wsgi.load names the modules directory used).
  const load = readFileSync(join(DEBIAN, 'wsgi.load'), 'utf8')
  t.match(load, /^LoadModule wsgi_module \/usr\/lib\/apache2\/modules\/mod_wsgi\.so$/m, 'wsgi.load names Debian\'s modules directory')
  writeFileSync(join(etc, 'mods-available', 'wsgi.load'), load.replace('/usr/lib/apache2/modules/', `${dirs.modules}/`))
  copyFileSync(join(DEBIAN, 'wsgi.conf'), join(etc, 'mods-available', 'wsgi.conf'))

  // This machine's /etc/apache2 may have more enabled than a fresh install: mod_python, which mod_wsgi
  // 4.1.0 refuses to run with (release notes, Features Removed 1), and other sites.
  if (existsSync(join(etc, 'mods-enabled', 'python.load'))) check(spawnSync('a2dismod', ['-q', 'python'], { encoding: 'utf8', env }), 'a2dismod python')
  for (const f of readdirSync(join(etc, 'sites-enabled')))
    check(spawnSync('a2dissite', ['-q', f.replace(/\.conf$/, '')], { encoding: 'utf8', env }), `a2dissite ${f}`)

  // Step 3: a2enmod (the copy may have Debian's own mod_wsgi enabled: start from disabled).
  if (existsSync(join(etc, 'mods-enabled', 'wsgi.load'))) check(spawnSync('a2dismod', ['-q', 'wsgi'], { encoding: 'utf8', env }), 'a2dismod')
  t.notOk(existsSync(join(etc, 'mods-enabled', 'wsgi.load')))
  t.match(check(spawnSync('a2enmod', ['wsgi'], { encoding: 'utf8', env }), 'a2enmod'), /Enabling module wsgi/)
  for (const f of ['wsgi.load', 'wsgi.conf']) {
    t.ok(lstatSync(join(etc, 'mods-enabled', f)).isSymbolicLink(), `mods-enabled/${f}`)
    t.equal(readlinkSync(join(etc, 'mods-enabled', f)), `../mods-available/${f}`)
  }
  t.ok(existsSync(join(dirs.state, 'module', 'enabled_by_admin', 'wsgi')), "a2enmod kept its state in the copy's state directory")

  // Step 4: the sample site and its Flask app.
  const srv = join(tmp, 'srv', 'wsgi-sample')
  mkdirSync(srv, { recursive: true, mode: 0o755 })
  copyFileSync(join(ROOT, 'apache-conf', 'sample', 'flask.wsgi'), join(srv, 'app.wsgi'))
  const site = readFileSync(join(DEBIAN, 'wsgi-sample.conf'), 'utf8')
  writeFileSync(join(etc, 'sites-available', 'wsgi-sample.conf'), site.replaceAll('/srv/wsgi-sample', srv).replace('<VirtualHost *:80>', `<VirtualHost *:${port}>`))
  check(spawnSync('a2ensite', ['wsgi-sample'], { encoding: 'utf8', env }), 'a2ensite')

  t.match(check(inEnv(`${APACHE_BIN} -d ${etc} -t`), 'apache2 -t'), /Syntax OK/)
  check(inEnv(`${APACHE_BIN} -d ${etc} -k start`), 'apache2 -k start')
  const pidFile = join(dirs.run, 'apache2.pid')
  t.teardown(async () => {
    if (!existsSync(pidFile)) return
    const pid = Number(readFileSync(pidFile, 'utf8'))
    if (pidAlive(pid)) process.kill(pid, 'SIGTERM')
    await waitFor(() => !pidAlive(pid), 15000, 50, 'Apache to stop').catch(() => process.kill(pid, 'SIGKILL'))
  })
  await waitFor(() => existsSync(pidFile), 10000, 50, 'the pid file')
  const headers = { host: 'wsgi-sample.localhost' }
  const hello = (await waitFor(() => request(port, '/', { headers }).catch(() => null), 20000, 100, 'the site'))!
  t.equal(hello.status, 200)
  t.match(hello.text, /^Hello from Flask under mod_wsgi, daemon process \d+\n$/)
  const info = JSON.parse((await request(port, '/info', { headers })).text)
  t.match(info, { path: '/info', script_name: '', process_group: 'wsgi-sample', multiprocess: true, uid: 33 })

  const apache = Number(readFileSync(pidFile, 'utf8'))
  const daemons = childPids(apache).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('(wsgi:wsgi-sample)'))
  t.equal(daemons.length, 2, 'processes=2 of the sample site')
  t.notMatch(readFileSync(join(dirs.log, 'error.log'), 'utf8'), /\[wsgi:(error|crit|alert|emerg)\]/, 'no mod_wsgi errors in the log')
})
