// scripts/build.sh answers a missing prerequisite with one clear line, not a compiler trace.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/apache'

const build = (target: string, env: Record<string, string>) =>
  spawnSync('sh', [join(ROOT, 'scripts', 'build.sh'), target], { encoding: 'utf8', env: { ...process.env, ...env } })

t.test('a missing apxs names the package to install', async (t) => {
  const r = build('apache', { APXS: '/nonexistent/apxs' })
  t.equal(r.status, 1)
  t.match(r.stderr, /^mod_wsgi build: apxs not found: install Debian's apache2-dev \(apt-get install apache2-dev\)/)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
})

t.test('a missing libpython names the package to install', async (t) => {
  const r = build('addon', { PYTHON_CONFIG: '/nonexistent/python3.11-config' })
  t.equal(r.status, 1)
  t.match(r.stderr, /^mod_wsgi build: \/nonexistent\/python3\.11-config not found: install Debian's libpython3\.11-dev/)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
})

t.test('an unknown target is refused', async (t) => {
  const r = build('everything', {})
  t.equal(r.status, 1)
  t.match(r.stderr, /unknown target 'everything'/)
})

t.test('setup as a non-root user prints the exact apt-get line for what is missing, and stops', async (t) => {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', join(ROOT, 'scripts', 'setup.sh')], {
    encoding: 'utf8',
    env: { ...process.env, MOD_WSGI_SETUP_EXTRA: 'mod-wsgi-test-missing-package' },
  })
  t.equal(r.status, 1)
  t.match(r.stderr, /run as root:\n {2}apt-get install -y mod-wsgi-test-missing-package\n/)
})
