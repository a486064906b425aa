// WSGIDaemonProcess identity and process options through a real Apache, observed by the application from
// inside its daemon process (test/fixtures/wsgi/process-observe): user, group (names and #ids),
// supplementary-groups (replacing initgroups), umask, home (cwd, and '' first on sys.path: release notes
// Features Changed 5), display-name (with %{GROUP}), lang, locale, cpu-priority, processes and threads;
// script-user and script-group.
import { chmodSync, chownSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { type Apache, assertRefused, cmdline, fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Info = Record<string, any>

async function observe(apache: Apache, path: string): Promise<Info> {
  const r = await apache.request(path)
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.text}\n${apache.log()}`)
  return JSON.parse(r.text)
}

const home = mkdtempSync(join(tmpdir(), 'wsgi-home-'))
chmodSync(home, 0o755)
t.teardown(() => rmSync(home, { recursive: true, force: true }))

const CONFIG = `
WSGIDaemonProcess custom user=nobody group=#65534 supplementary-groups=adm,#50,users umask=0027 \\
    home=${home} display-name="wsgi %{GROUP} app" lang=C.UTF-8 locale=C.UTF-8 cpu-priority=-2 threads=3
WSGIDaemonProcess plain processes=2
WSGIDaemonProcess titled display-name=%{GROUP} threads=1
WSGIDaemonProcess useronly user=backup threads=1
WSGIScriptAlias /custom ${fixture('process-observe')} process-group=custom
WSGIScriptAlias /plain ${fixture('process-observe')} process-group=plain
WSGIScriptAlias /plain-pid ${fixture('pid-sleep')} process-group=plain
WSGIScriptAlias /titled ${fixture('process-observe')} process-group=titled
WSGIScriptAlias /useronly ${fixture('process-observe')} process-group=useronly
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

t.test('identity and process options, as the application sees its own process', async (t) => {
  const apache = await startApache(t, { config: CONFIG })

  const c = await observe(apache, '/custom')
  t.equal(c.euid, 65534, 'user=nobody')
  t.equal(c.uid, 65534, 'real uid too')
  t.equal(c.egid, 65534, 'group=#65534')
  t.equal(c.gid, 65534)
  t.same(c.kernel_groups, [4, 50, 100, 65534], 'supplementary-groups replaces initgroups(): the primary group and the listed ones, no root group')
  t.same(c.groups, [4, 50, 100, 65534], 'os.getgroups()')
  t.equal(c.umask, 0o027, 'umask=0027')
  t.equal(c.cwd, home, 'home= is the working directory')
  t.equal(c.sys_path[0], '', "home= puts '' first on sys.path (4.1.0 Features Changed 5)")
  t.equal(c.env.LANG, 'C.UTF-8', 'lang= sets LANG')
  t.equal(c.env.LC_ALL, 'C.UTF-8', 'locale= sets LC_ALL')
  t.match(c.locale, /^C\.(UTF-8|utf8)$/, 'locale= is the C library locale of every category (setlocale(LC_ALL))')
  t.equal(c.preferred_encoding, 'UTF-8', "so Python's preferred encoding is UTF-8")
  t.equal(c.nice, -2, 'cpu-priority=-2 (set while still privileged)')
  t.equal(c.cmdline, 'wsgi (wsgi:custom) app', 'display-name with %{GROUP} expanded')
  t.equal(c.multithread, true, 'threads=3: wsgi.multithread')
  t.equal(c.multiprocess, false, 'processes not given: wsgi.multiprocess is False')
  t.equal(c.env.USER, 'nobody', 'USER of the target user')
  t.equal(c.env.HOME, '/nonexistent', "HOME is the user's home, not home=")

  const p = await observe(apache, '/plain')
  t.equal(p.euid, 33, "no user=: Apache's User (www-data)")
  t.equal(p.egid, 33, "no group=: Apache's Group")
  t.same(p.kernel_groups, [33], 'initgroups(www-data): the root group is gone')
  // mod_wsgi's rule: without home= and without another user, the directory Apache was started from.
  t.equal(p.cwd, readlinkSync(`/proc/${apache.pid}/cwd`), "no home= and no user=: the Apache parent's working directory")
  t.not(p.cwd, '/var/www', "not Apache's User's home directory")
  t.not(p.sys_path[0], '', "no home=: '' is not added to sys.path")
  t.equal(p.nice, 0)
  t.equal(p.multithread, true, 'threads default 15')
  t.equal(p.multiprocess, true, 'processes=2: wsgi.multiprocess')

  // processes=2: two daemons of the group, each serving.
  const plainPids = await waitFor(
    () => {
      const pids = apache.daemonPids().filter((pid) => cmdline(pid).startsWith('(wsgi:plain)'))
      return pids.length === 2 ? pids : null
    },
    10000,
    50,
    'two daemons of the group plain',
  )
  // Both accept on the one socket; only concurrent requests (new connections) reach both for sure.
  const served = new Set<number>()
  for (let i = 0; i < 10 && served.size < 2; i++) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => apache.request('/plain-pid?ms=50')))
    for (const b of batch) served.add(Number(b.text.split(' ')[0]))
  }
  t.same([...served].sort(), [...(plainPids ?? [])].sort(), 'both processes of processes=2 serve')

  const u = await observe(apache, '/useronly')
  t.equal(u.euid, 34, 'user=backup')
  t.equal(u.cwd, '/var/backups', "user= without home=: that user's home directory")

  const d = await observe(apache, '/titled')
  t.equal(d.cmdline, '(wsgi:titled)', 'display-name=%{GROUP} shows (wsgi:NAME) in ps')
  t.equal(d.multithread, false, 'threads=1: wsgi.multithread is False')
})

t.test('apache2 -t names the directive and the option on a bad identity value', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['user=', /WSGIDaemonProcess 'g': option 'user' must be a user name or #uid, not ''/],
    ['user=#abc', /option 'user' must be a user name or #uid, not '#abc'/],
    ['user=#0', /option 'user': daemon processes may not run as root \(uid 0\)/],
    ['group=#x', /option 'group' must be a group name or #gid, not '#x'/],
    ['supplementary-groups=adm,,#q', /option 'supplementary-groups' must be a group name or #gid, not '#q'/],
    ['umask=8', /option 'umask' must be an octal number from 0 to 0777, not '8'/],
    ['umask=01000', /option 'umask' must be an octal number from 0 to 0777, not '01000'/],
    ['home=', /option 'home' must be an absolute directory path, not ''/],
    ['cpu-priority=-21', /option 'cpu-priority' must be an integer from -20 to 20, not '-21'/],
    ['processes=abc', /option 'processes' must be an integer from 1 to 10000, not 'abc'/],
    ['threads=0', /option 'threads' must be an integer from 1 to 10000, not '0'/],
  ]
  for (const [option, message] of bad) await assertRefused(t, `WSGIDaemonProcess g ${option}`, message, option)
})

t.test('script-user and script-group: the owner a WSGI script must have, else 403', async (t) => {
  // Scripts in directories owned by www-data, and the repository's own (root's) fixtures.
  const mine = mkdtempSync(join(tmpdir(), 'wsgi-owned-'))
  t.teardown(() => rmSync(mine, { recursive: true, force: true }))
  chmodSync(mine, 0o755)
  const script = join(mine, 'app.wsgi')
  writeFileSync(script, readFileSync(fixture('hello-world')))
  chmodSync(script, 0o644)
  chownSync(mine, 33, 33)
  chownSync(script, 33, 33)
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess su script-user=www-data threads=1
WSGIDaemonProcess sg script-group=#33 threads=1
WSGIScriptAlias /su-ok ${script} process-group=su
WSGIScriptAlias /su-root ${fixture('hello-world')} process-group=su
WSGIScriptAlias /sg-ok ${script} process-group=sg
WSGIScriptAlias /sg-root ${fixture('hello-world')} process-group=sg
<Directory ${mine}>
  Require all granted
</Directory>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  t.equal((await apache.request('/su-ok')).status, 200, 'script-user=www-data: a script owned by www-data runs')
  t.equal((await apache.request('/su-root')).status, 403, "one owned by root does not")
  t.match(apache.log(), /WSGI01231: WSGI script file or its directory is not owned by, or is writable by others than, user 'www-data' \(script-user of process group 'su'\)/)
  t.equal((await apache.request('/sg-ok')).status, 200, 'script-group=#33: a script of group www-data runs')
  t.equal((await apache.request('/sg-root')).status, 403, 'one of group root does not')
  t.match(apache.log(), /WSGI01232: WSGI script file or its directory does not belong to group 'www-data' \(script-group of process group 'sg'\)/)
  chmodSync(script, 0o666)
  t.equal((await apache.request('/su-ok')).status, 403, 'a script writable by others is refused too')
})
