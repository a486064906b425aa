// Process setup of a real daemon started as root: identity drop to www-data (checked from inside the
// application), supplementary groups, umask, home/cwd, environment, process title, priority; refusals
// (uid 0, malformed configuration) exit without serving.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Daemon, fixture, skipReason, startDaemon } from './harness'

const skip = skipReason()
if (skip) t.plan(0, skip)
if (!skip && process.getuid?.() !== 0) t.plan(0, 'these tests start the daemon as root')

async function info(d: Daemon): Promise<Record<string, any>> {
  const c = await d.connect()
  const a = await c.request({ script: fixture('daemon-process-info') })
  c.close()
  if (a.kind !== 'response') throw new Error(`no response: ${a.kind}`)
  return JSON.parse(a.body.toString())
}

t.test('defaults: www-data, its groups, the inherited working directory, title (wsgi:GROUP)', async (t) => {
  const d = await startDaemon(t)
  const i = await info(d)
  t.equal(i.uid, 33)
  t.equal(i.euid, 33)
  t.equal(i.gid, 33)
  t.equal(i.egid, 33)
  t.same(i.groups, [33], 'initgroups(www-data): root group gone')
  t.equal(i.env.USER, 'www-data')
  t.equal(i.env.LOGNAME, 'www-data')
  t.equal(i.env.HOME, '/var/www')
  t.equal(i.cwd, process.cwd(), "Apache's own user and no home=: the directory it was started from, as mod_wsgi")
  t.match(i.cmdline, /^\(wsgi:myapp\)/)
  t.match(d.stderr, /WSGI02003: Starting process 'myapp' with uid=33, gid=33 and threads=15\./)
})

t.test('options: supplementary-groups, umask, home, lang, locale, display-name, cpu-priority', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wsgi-home-'))
  chmodSync(home, 0o755)
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const d = await startDaemon(t, {
    group: 'site',
    options: {
      supplementary_groups: [4, 50],
      umask: 0o027,
      home,
      lang: 'C.UTF-8',
      locale: 'C.UTF-8',
      display_name: 'wsgi-%{GROUP}-x',
      cpu_priority: 5,
      python_eggs: '/tmp/eggs',
      threads: 1,
    },
  })
  const c = await d.connect()
  const a = await c.request({ script: fixture('daemon-process-info'), processGroup: 'site' })
  c.close()
  if (a.kind !== 'response') throw new Error(a.kind)
  const i = JSON.parse(a.body.toString())
  t.same(i.groups, [4, 50])
  t.equal(i.umask, 0o027)
  t.equal(i.cwd, home)
  t.equal(i.env.HOME, '/var/www', "HOME stays the user's")
  t.equal(i.env.LANG, 'C.UTF-8')
  t.equal(i.env.LC_ALL, 'C.UTF-8')
  t.equal(i.env.PYTHON_EGG_CACHE, '/tmp/eggs')
  t.equal(i.sys_path_0, '', 'home= puts the working directory first on sys.path')
  t.match(i.cmdline, /^wsgi-\(wsgi:site\)-x/)
  t.equal(i.nice, 5)
  t.equal(i.multithread, false)
})

t.test('cpu-time-limit, memory-limit and virtual-memory-limit become rlimits', async (t) => {
  const GiB = 1024 ** 3
  const d = await startDaemon(t, { options: { cpu_time_limit: 100, memory_limit: 3 * GiB, virtual_memory_limit: 6 * GiB, shutdown_timeout: 3, graceful_timeout: 2 } })
  const i = await info(d)
  t.same(i.limits.cpu, [100, 106], 'soft limit, then room for graceful and shutdown periods before SIGKILL')
  t.same(i.limits.data, [3 * GiB, 3 * GiB])
  t.same(i.limits.as, [6 * GiB, 6 * GiB])
})

t.test('uid 0 is refused: exit 3 without serving', async (t) => {
  const d = new Daemon({ options: { user: 'root', uid: 0, group: 'root', gid: 0 } })
  t.teardown(() => d.cleanup())
  const exit = await d.exited
  t.equal(exit.code, 3)
  t.match(d.stderr, /WSGI02004: Refusing to run daemon process 'myapp' as root/)
})

t.test('a numeric uid without a passwd entry (user=#54321) runs as that uid, no home', async (t) => {
  const d = await startDaemon(t, { options: { user: '#54321', uid: 54321, group: '#54321', gid: 54321 } })
  const i = await info(d)
  t.equal(i.euid, 54321)
  t.equal(i.egid, 54321)
  t.same(i.groups, [54321], 'no root group left')
  t.match(d.stderr, /WSGI02011: Unable to determine home directory for uid=54321/)
})

t.test('malformed configuration: exit 2 naming the field', async (t) => {
  const d = new Daemon({ rawConfig: JSON.stringify({ format: 1, group: 'x' }) })
  t.teardown(() => d.cleanup())
  const exit = await d.exited
  t.equal(exit.code, 2)
  t.match(d.stderr, /\[wsgi:crit\] .* WSGI02001: Invalid daemon configuration: server is missing\./)
  const d2 = new Daemon({ rawConfig: '{oops' })
  t.teardown(() => d2.cleanup())
  t.equal((await d2.exited).code, 2)
  t.match(d2.stderr, /WSGI02001: Invalid daemon configuration: MOD_WSGI_DAEMON_CONFIG is not valid JSON/)
})
