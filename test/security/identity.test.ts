// Issue 7, identity of the daemon processes (CVE-2014-0240: an unchecked setuid(); CVE-2014-8583:
// supplementary groups kept). Read from /proc/<pid>/status of the running daemons: exactly the configured
// uid, gid and supplementary groups (real, effective, saved and filesystem ids alike), root's group 0
// gone, no capability left. A drop that fails (here: the daemon started without CAP_SETUID) refuses to
// serve: the daemon exits before accepting, so a request waits in the socket's backlog until
// socket-timeout and gets 504, never an answer from a process that kept root. uid 0 is refused by
// `apache2 -t`.
import { spawnSync } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Apache, fixture, FIXTURES, makeTempDir, startApache } from '../helpers/apache'

const tag = process.pid % 100000
const USER = `wsgi7u${tag}`
const G1 = `wsgi7a${tag}`
const G2 = `wsgi7b${tag}`
const G3 = `wsgi7c${tag}`

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'latin1' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`)
  return r.stdout.trim()
}

const gid = (name: string): number => Number(run('getent', ['group', name]).split(':')[2])

/** The groups initgroups(user, primary) gives: primary plus every group listing the user. */
function initgroupsOf(user: string, primary: number): number[] {
  const out = new Set<number>([primary])
  for (const line of run('getent', ['group']).split('\n')) {
    const [, , g, members] = line.split(':')
    if ((members ?? '').split(',').includes(user)) out.add(Number(g))
  }
  return [...out].sort((a, b) => a - b)
}

interface Ids {
  uid: number[]
  gid: number[]
  groups: number[]
  capEff: string
  capPrm: string
}

function ids(pid: number): Ids {
  const s = readFileSync(`/proc/${pid}/status`, 'latin1')
  const field = (name: string) => (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(s)?.[1] ?? '').trim()
  const nums = (v: string) => (v === '' ? [] : v.split(/\s+/).map(Number))
  return {
    uid: nums(field('Uid')),
    gid: nums(field('Gid')),
    groups: nums(field('Groups')).sort((a, b) => a - b),
    capEff: field('CapEff'),
    capPrm: field('CapPrm'),
  }
}

t.before(() => {
  for (const g of [G1, G2, G3]) run('groupadd', ['--system', g])
  run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '-G', G3, USER])
})
t.teardown(() => {
  spawnSync('userdel', [USER])
  for (const g of [G1, G2, G3]) spawnSync('groupdel', [g])
})

t.test('daemons run with exactly the configured uid, gid and supplementary groups', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess listed user=${USER} group=${G1} supplementary-groups=${G2} display-name=listed
WSGIDaemonProcess initgroups user=${USER} group=${G1} display-name=initgroups
WSGIDaemonProcess default display-name=default
WSGIScriptAlias /listed ${fixture('hello-world')} process-group=listed
WSGIScriptAlias /initgroups ${fixture('hello-world')} process-group=initgroups
WSGIScriptAlias /default ${fixture('hello-world')} process-group=default
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const uid = Number(run('id', ['-u', USER]))
  const www = { uid: Number(run('id', ['-u', 'www-data'])), gid: Number(run('id', ['-g', 'www-data'])) }
  const expected: Record<string, { uid: number; gid: number; groups: number[] }> = {
    // As mod_wsgi: the primary group, then the listed ones (and nothing of initgroups).
    listed: { uid, gid: gid(G1), groups: [gid(G1), gid(G2)].sort((a, b) => a - b) },
    initgroups: { uid, gid: gid(G1), groups: initgroupsOf(USER, gid(G1)) },
    default: { uid: www.uid, gid: www.gid, groups: initgroupsOf('www-data', www.gid) },
  }
  for (const [name, want] of Object.entries(expected)) {
    const r = await apache.request(`/${name}`)
    t.equal(r.status, 200, `${name}: serves`)
    const pid = Number(r.headers['x-pid'])
    const got = ids(pid)
    t.same(got.uid, [want.uid, want.uid, want.uid, want.uid], `${name}: real, effective, saved and fs uid ${want.uid}`)
    t.same(got.gid, [want.gid, want.gid, want.gid, want.gid], `${name}: real, effective, saved and fs gid ${want.gid}`)
    t.same(got.groups, want.groups, `${name}: supplementary groups exactly [${want.groups.join(',')}]`)
    t.notOk(got.groups.includes(0), `${name}: root's group 0 is not kept`)
    t.equal(got.capEff, '0000000000000000', `${name}: no effective capability`)
    t.equal(got.capPrm, '0000000000000000', `${name}: no permitted capability`)
  }
  t.match(apache.log(), new RegExp(`WSGI02003: Starting process 'listed' with uid=${uid}, gid=${gid(G1)}`), 'the drop is logged with the ids')
})

t.test('a failed privilege drop refuses to serve', async (t) => {
  // The daemon starts as root but without CAP_SETUID (dropped from the bounding set before node runs):
  // setuid() fails with EPERM, as it would on any failure of the drop.
  const dir = makeTempDir('mod_wsgi-nosetuid-')
  t.teardown(() => spawnSync('rm', ['-rf', dir]))
  const wrapper = join(dir, 'node-without-setuid')
  writeFileSync(wrapper, `#!/bin/sh\nexec /usr/bin/setpriv --bounding-set=-setuid -- ${process.execPath} "$@"\n`)
  chmodSync(wrapper, 0o755)
  const saved = process.env.MOD_WSGI_NODE
  process.env.MOD_WSGI_NODE = wrapper
  let apache: Apache
  try {
    apache = await startApache(t, {
      config: `
WSGIDaemonProcess locked threads=2 socket-timeout=3
WSGIProcessGroup locked
WSGIScriptAlias /hello ${fixture('hello-world')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
    })
  } finally {
    if (saved === undefined) delete process.env.MOD_WSGI_NODE
    else process.env.MOD_WSGI_NODE = saved
  }
  await apache.waitForLog(/WSGI02007: Unable to change to uid=33: [^\n]*EPERM|WSGI02007: Unable to change to uid=33: [^\n]*not permitted/, 15000)
  t.pass('the failed setuid is logged')
  const began = Date.now()
  const r = await apache.request('/hello', { timeoutMs: 20000 })
  t.equal(r.status, 504, `the request is not served: 504 after socket-timeout (${Date.now() - began} ms)`)
  t.notOk(r.text.includes('Hello World'), 'the application never ran')
  t.match(apache.log(), /WSGI01104: daemon process 1 of process group 'locked' \(pid \d+\) exited with code 3/, 'the daemon exited with status 3 (could not start)')
  t.notMatch(apache.log(), /WSGI03010: Loading Python script/, 'no script was ever loaded')
  t.match(apache.log(), /WSGI01225: Timeout when reading response headers from daemon process 'locked'/, 'the child says why')
  await apache.waitForLog(/WSGI01104: [^\n]*'locked'[^\n]*2 time\(s\) in a row soon after starting/, 15000)
  t.pass('Apache keeps trying, with a growing delay')
})

t.test('uid 0 is refused before anything starts', async (t) => {
  for (const user of ['root', '#0']) {
    const a = new Apache({ config: `WSGIDaemonProcess g user=${user}\n` })
    t.teardown(() => a.cleanup())
    const r = a.configTest()
    t.not(r.status, 0, `user=${user}: apache2 -t fails`)
    t.match(r.output, /WSGIDaemonProcess 'g': option 'user': daemon processes may not run as root \(uid 0\)/, `user=${user}: says why`)
  }
})
