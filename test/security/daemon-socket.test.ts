// Issue 7, security of the daemon socket. Only Apache's child user can connect to a daemon socket: a
// throwaway local user (even one in www-data's group) is refused by connect(), www-data is not. The
// socket file is 0600 and www-data's. At startup the WSGISocketPrefix directory is checked, with a clear
// error and no daemon started: missing, not searchable by Apache's User (the classic trap), or writable
// by every user without the sticky bit (anyone could swap the sockets); a sticky shared directory works.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Apache, APACHE_BIN, childPids, fixture, FIXTURES, freePort, makeTempDir, startApache, waitFor } from '../helpers/apache'

const GROUP_CONFIG = `
WSGIDaemonProcess g threads=2
WSGIProcessGroup g
WSGIScriptAlias /hello ${fixture('hello-world')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

const sockets = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.sock'))

/** Runs Python as `user` trying to connect() to `path`: the errno name, or 'connected'. */
function connectAs(user: string, path: string): string {
  const py = `
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
    print('connected')
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
`
  const r = spawnSync('runuser', ['-u', user, '--', '/usr/bin/python3', '-c', py, path], { encoding: 'latin1', timeout: 10000 })
  return (r.stdout || r.stderr).trim()
}

t.test('only the Apache child user can connect to a daemon socket', async (t) => {
  const user = `wsgi7t${process.pid % 100000}`
  const add = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '-G', 'www-data', user], { encoding: 'latin1' })
  t.equal(add.status, 0, `useradd ${user} (in group www-data): ${add.stderr}`)
  t.teardown(() => {
    spawnSync('userdel', [user])
  })
  const apache = await startApache(t, { config: GROUP_CONFIG })
  t.equal((await apache.request('/hello')).status, 200, 'the group serves')
  const [name] = sockets(apache.socketDir)
  t.ok(name, `the group's socket exists (${name})`)
  const path = join(apache.socketDir, name)
  const st = statSync(path)
  t.equal(st.mode & 0o777, 0o600, 'socket mode 0600')
  t.equal(st.uid, 33, "owned by Apache's User (www-data)")
  t.ok(st.isSocket(), 'a socket')

  t.equal(connectAs(user, path), 'EACCES', `${user} (another local user, in www-data's group) is refused`)
  t.equal(connectAs('nobody', path), 'EACCES', 'nobody is refused')
  t.equal(connectAs('www-data', path), 'connected', "Apache's child user connects")
  t.equal((await apache.request('/hello')).status, 200, 'the daemon serves on')
})

/** Starts Apache in the foreground with `prefix` and returns its exit status and log. */
async function startWithPrefix(prefix: string): Promise<{ status: number | null; log: string; apache: Apache; left: number[] }> {
  const apache = new Apache({ config: `WSGISocketPrefix ${prefix}\n${GROUP_CONFIG}` })
  apache.port = await freePort()
  apache.writeConfig()
  const r = spawnSync(APACHE_BIN, ['-d', apache.dir, '-f', apache.conf, '-DFOREGROUND'], { encoding: 'latin1', timeout: 15000 })
  return { status: r.status, log: apache.log(), apache, left: childPids(r.pid ?? 0) }
}

t.test('WSGISocketPrefix directories that cannot work are refused at startup, clearly', async (t) => {
  const base = makeTempDir('mod_wsgi-prefix-')
  t.teardown(() => spawnSync('rm', ['-rf', base]))
  const mk = (name: string, mode: number): string => {
    const d = join(base, name)
    mkdirSync(d, { recursive: true })
    chmodSync(d, mode)
    return d
  }
  const closedParent = mk('closed', 0o700)
  mk('closed/inner', 0o755)
  const cases: Array<[string, string, RegExp]> = [
    ['missing directory', join(base, 'nowhere', 'wsgi'), /WSGI01111: WSGISocketPrefix [^\n]*nowhere\/wsgi: the directory '[^']*nowhere\/' does not exist or cannot be searched by user 'www-data'/],
    ['directory only root can search', join(mk('private', 0o700), 'wsgi'), /WSGI01111: WSGISocketPrefix [^\n]*private\/wsgi: the directory '[^']*private\/' does not exist or cannot be searched by user 'www-data'/],
    ['a parent only root can search', join(closedParent, 'inner', 'wsgi'), /WSGI01111: [^\n]*closed\/inner\/' does not exist or cannot be searched by user 'www-data'/],
    ['world-writable, no sticky bit', join(mk('open', 0o777), 'wsgi'), /WSGI01160: WSGISocketPrefix [^\n]*open\/wsgi: the directory '[^']*open\/' is writable by every user and has no sticky bit/],
  ]
  for (const [what, prefix, re] of cases) {
    const r = await startWithPrefix(prefix)
    t.teardown(() => r.apache.cleanup())
    t.not(r.status, 0, `${what}: Apache does not start`)
    t.match(r.log, re, `${what}: the error says why and what to do`)
    t.same(r.left, [], `${what}: no daemon was left behind`)
  }
  t.same(sockets(join(base, 'open')), [], 'no socket was created in the unsafe directory')

  // A shared directory with the sticky bit (as /tmp) is safe: others cannot rename or remove our files.
  const sticky = mk('sticky', 0o1777)
  const apache = new Apache({ config: `WSGISocketPrefix ${join(sticky, 'wsgi')}\n${GROUP_CONFIG}` })
  t.teardown(() => apache.cleanup())
  await apache.start()
  await waitFor(async () => (await apache.request('/hello')).status === 200, 15000, 100, 'the sticky-directory server to serve')
  t.pass('a sticky world-writable directory works')
  t.equal(statSync(join(sticky, sockets(sticky)[0])).mode & 0o777, 0o600, 'its socket is 0600 too')
})
