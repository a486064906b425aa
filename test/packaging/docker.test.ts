// apache-conf/docker: no Docker engine runs here, so the image's build script (install-mod_wsgi.sh, which
// the Dockerfile runs) is run against a throwaway prefix laid out like the httpd image's
// /usr/local/apache2, whose bin/httpd is Debian's apache2; then that Apache serves the sample app.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { tempDir } from '../express/express-helpers'
import { APACHE_BIN, APACHE_MODULES, childPids, freePort, request, ROOT, waitFor } from '../helpers/apache'

const SCRIPT = join(ROOT, 'apache-conf', 'docker', 'install-mod_wsgi.sh')

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** /usr/local/apache2 of the httpd image, as far as the script and Apache need it. */
function makePrefix(t: Test, port: number): string {
  const prefix = join(tempDir(t, 'mod_wsgi-docker-'), 'usr', 'local', 'apache2')
  for (const d of ['bin', 'conf', 'modules', 'logs', 'htdocs']) mkdirSync(join(prefix, d), { recursive: true, mode: 0o755 })
  for (const d of [join(prefix, '..'), join(prefix, '..', '..')]) chmodSync(d, 0o755)
  // httpd as the image has it: its ServerRoot and configuration compiled in.
  writeFileSync(join(prefix, 'bin', 'httpd'), `#!/bin/sh\nexec ${APACHE_BIN} -d '${prefix}' -f '${prefix}/conf/httpd.conf' "$@"\n`, { mode: 0o755 })
  symlinkSync('/usr/bin/apxs', join(prefix, 'bin', 'apxs'))
  for (const so of readdirSync(APACHE_MODULES)) if (so.endsWith('.so') && so !== 'mod_wsgi.so') symlinkSync(join(APACHE_MODULES, so), join(prefix, 'modules', so))
  copyFileSync('/etc/mime.types', join(prefix, 'conf', 'mime.types'))
  const conf = readFileSync(join(__dirname, 'fixtures', 'httpd-image.conf'), 'utf8')
  writeFileSync(join(prefix, 'conf', 'httpd.conf'), conf.replaceAll('@@PREFIX@@', prefix).replace(/^Listen 80$/m, `Listen 127.0.0.1:${port}`))
  writeFileSync(join(prefix, 'htdocs', 'index.html'), '<html><body><h1>It works!</h1></body></html>\n')
  return prefix
}

function install(prefix: string, extra: string[] = ['--skip-build']) {
  return spawnSync('sh', [SCRIPT, '--prefix', prefix, ...extra], { encoding: 'utf8', timeout: 60000 })
}

t.test('the Dockerfile builds through install-mod_wsgi.sh', async (t) => {
  const dockerfile = readFileSync(join(ROOT, 'apache-conf', 'docker', 'Dockerfile'), 'utf8')
  t.match(dockerfile, /^FROM httpd:2\.4-bookworm$/m, 'the official httpd 2.4 image (Debian 12)')
  t.match(dockerfile, /apt-get install .*\n?.*libapr1-dev libaprutil1-dev/, "what apxs needs")
  t.match(dockerfile, /RUN sh \/usr\/src\/mod_wsgi\/apache-conf\/docker\/install-mod_wsgi\.sh --prefix \/usr\/local\/apache2/)
  t.equal(spawnSync('sh', ['-n', SCRIPT]).status, 0, 'the script parses')
})

t.test('install-mod_wsgi.sh installs into a prefix laid out like /usr/local/apache2, which then serves the sample app as www-data', async (t) => {
  const port = await freePort()
  const prefix = makePrefix(t, port)
  const first = install(prefix)
  t.equal(first.status, 0, first.stderr)
  t.match(first.stdout + first.stderr, /Syntax OK/, 'it checks the configuration')
  t.same(readFileSync(join(prefix, 'modules', 'mod_wsgi.so')), readFileSync(join(ROOT, 'build', 'mod_wsgi.so')), 'mod_wsgi.so in modules/')
  t.ok(existsSync(join(prefix, 'wsgi', 'app.wsgi')), 'the sample app')

  // A second run replaces its block instead of adding another.
  const again = install(prefix)
  t.equal(again.status, 0, again.stderr)
  const conf = readFileSync(join(prefix, 'conf', 'httpd.conf'), 'utf8')
  t.equal(conf.match(/^LoadModule wsgi_module modules\/mod_wsgi\.so$/gm)?.length, 1, 'one LoadModule line')
  t.equal(conf.match(/^WSGIDaemonProcess /gm)?.length, 1, 'one WSGIDaemonProcess')
  t.match(conf, /^User www-data$/m)
  t.match(conf, /^Group www-data$/m)
  t.notMatch(conf, /^User daemon$/m)

  const start = spawnSync(join(prefix, 'bin', 'httpd'), ['-k', 'start'], { encoding: 'utf8' })
  t.equal(start.status, 0, start.stderr)
  const pidFile = join(prefix, 'logs', 'httpd.pid')
  t.teardown(async () => {
    if (!existsSync(pidFile)) return
    const pid = Number(readFileSync(pidFile, 'utf8'))
    if (pidAlive(pid)) process.kill(pid, 'SIGTERM')
    await waitFor(() => !pidAlive(pid), 15000, 50, 'Apache to stop').catch(() => process.kill(pid, 'SIGKILL'))
  })
  const hello = (await waitFor(() => request(port, '/').catch(() => null), 20000, 100, 'the sample app'))!
  t.equal(hello.status, 200)
  t.match(hello.text, /^Hello from Flask under mod_wsgi, daemon process \d+\n$/)
  const info = JSON.parse((await request(port, '/info')).text)
  t.match(info, { process_group: 'app', multiprocess: true, uid: 33 }, 'daemon process group app, as www-data')

  await waitFor(() => existsSync(pidFile), 10000, 50, 'the pid file')
  const apache = Number(readFileSync(pidFile, 'utf8'))
  const daemons = childPids(apache).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith('(wsgi:app)'))
  t.equal(daemons.length, 2, 'two daemon processes')
  t.ok(existsSync(join(prefix, 'logs')) && readdirSync(join(prefix, 'logs')).some((f) => f.startsWith('wsgi.')), "the daemons' sockets are in logs/, the image's runtime directory")
})

t.test('install-mod_wsgi.sh says what is wrong with a prefix', async (t) => {
  const empty = tempDir(t, 'mod_wsgi-docker-')
  const r = install(empty)
  t.equal(r.status, 1)
  t.match(r.stderr, /install-mod_wsgi: .*\/bin is missing: --prefix must be an Apache httpd laid out like \/usr\/local\/apache2/)
  const usage = install(empty, ['--bogus'])
  t.equal(usage.status, 2)
  t.match(usage.stderr, /usage: .*\[--prefix DIR\] \[--skip-build\]/)
})
