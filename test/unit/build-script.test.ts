// scripts/build.sh answers a missing prerequisite with one clear line, not a compiler trace.
import { spawnSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/apache'
import { pyenvPython, staticPython } from '../helpers/pythons'

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

t.test('the Apache module refuses to build against Apache 2.2 (or older) headers', async (t) => {
  const inc = spawnSync('apxs', ['-q', 'INCLUDEDIR'], { encoding: 'utf8' }).stdout.trim()
  const apr = spawnSync('apr-1-config', ['--includes'], { encoding: 'utf8' }).stdout.trim().split(/\s+/)
  // Apache 2.2's magic number, given before httpd.h reads the real ap_mmn.h (whose guard it sets).
  const fake = join(ROOT, 'build', 'ap_mmn-2.2.h')
  writeFileSync(
    fake,
    '#define APACHE_AP_MMN_H\n#define MODULE_MAGIC_COOKIE 0x41503232UL\n#define MODULE_MAGIC_NUMBER_MAJOR 20051115\n' +
      '#define MODULE_MAGIC_NUMBER_MINOR 0\n#define AP_MODULE_MAGIC_AT_LEAST(major,minor) ((major) < MODULE_MAGIC_NUMBER_MAJOR ' +
      '|| ((major) == MODULE_MAGIC_NUMBER_MAJOR && (minor) <= MODULE_MAGIC_NUMBER_MINOR))\n',
  )
  t.teardown(() => rmSync(fake, { force: true }))
  const args = ['-fsyntax-only', '-include', fake, `-I${inc}`, ...apr, `-I${join(ROOT, 'native', 'common')}`, join(ROOT, 'native', 'apache', 'mod_wsgi.c')]
  const r = spawnSync('gcc', args, { encoding: 'utf8' })
  t.not(r.status, 0, 'the build fails')
  t.match(r.stderr, /#error "mod_wsgi needs Apache httpd 2\.4 or later/, 'saying why')
  const ok = spawnSync('gcc', args.filter((a, i) => a !== '-include' && args[i - 1] !== '-include'), { encoding: 'utf8' })
  t.equal(ok.status, 0, `with the real (2.4) headers it compiles: ${ok.stderr}`)
})

t.test('addon --python: a Python that cannot be embedded is one line saying why and what to do', async (t) => {
  const addon = (python: string) =>
    spawnSync('sh', [join(ROOT, 'scripts', 'build.sh'), 'addon', '--python', python], { encoding: 'utf8' })
  const notPython = addon('/etc/passwd')
  t.equal(notPython.status, 1)
  t.match(notPython.stderr, /^mod_wsgi build: \/etc\/passwd is not a Python executable \(give bin\/python3\.N of the installation or virtualenv\)\n$/)
  const old = pyenvPython('3.7')
  if (old !== null) {
    const r = addon(old.executable)
    t.equal(r.status, 1)
    t.match(r.stderr, /^mod_wsgi build: \S+ is Python 3\.7: this mod_wsgi embeds CPython 3\.8 to 3\.13\n$/)
  }
  const stat = staticPython('3.12') ?? staticPython('3.13')
  if (stat !== null) {
    const r = addon(stat.executable)
    t.equal(r.status, 1)
    t.match(r.stderr, new RegExp(`^mod_wsgi build: \\S+ \\(Python ${stat.version.replace('.', '\\.')} under \\S+\\) has no shared libpython${stat.version.replace('.', '\\.')}\\.so and cannot be embedded: rebuild it with --enable-shared`))
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  }
})
