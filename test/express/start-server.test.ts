// mod_wsgi-express start-server: serves a script (or the welcome page) through Apache in the foreground,
// says where things are, and Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or
// SIGTERM stops Apache and every daemon.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { childPids, fixture, freePort, request, ROOT, waitFor } from '../helpers/apache'
import { EXPRESS, exited, pidAlive, processesMentioning, processUid, startExpress, tempDir } from './express-helpers'

t.test('serves a WSGI script, prints where things are, and Ctrl-C leaves no process behind', async (t) => {
  const s = await startExpress(t, [fixture('hello-world'), '--processes', '2'], { detached: true })
  const r = await request(s.port, '/anything/below')
  t.equal(r.status, 200)
  t.equal(r.text, 'Hello World!')
  const out = s.stdout()
  t.match(out, `Server URL         : http://127.0.0.1:${s.port}/`)
  t.match(out, `Server Root        : ${s.root}`)
  t.match(out, `Server Conf        : ${join(s.root, 'httpd.conf')}`)
  t.match(out, `Error Log File     : ${join(s.root, 'error_log')} (info)`)
  t.ok(existsSync(join(s.root, 'httpd.conf')), 'httpd.conf in the server root')
  t.ok(existsSync(join(s.root, 'apachectl')), 'apachectl in the server root')

  const apache = s.apachePid()
  await waitFor(() => s.daemonPids().length === 2, 10000, 50, 'two daemon processes')
  const everything = [s.child.pid as number, apache, ...childPids(apache)]
  // What a terminal does on Ctrl-C: SIGINT to every process of the foreground group.
  process.kill(-(s.child.pid as number), 'SIGINT')
  const end = await exited(s.child)
  t.same(end, { code: 0, signal: null }, 'mod_wsgi-express exits with status 0')
  await waitFor(() => !everything.some(pidAlive), 15000, 50, 'Apache, its children and the daemons to exit')
  t.pass(`none of ${everything.length} processes (express, Apache, children, daemons) is left`)
})

t.test('SIGTERM to mod_wsgi-express alone stops Apache and the daemons', async (t) => {
  const s = await startExpress(t, [fixture('hello-world')])
  const apache = s.apachePid()
  await waitFor(() => s.daemonPids().length === 1, 10000, 50, 'the daemon process')
  const everything = [apache, ...childPids(apache)]
  s.child.kill('SIGTERM')
  t.same(await exited(s.child), { code: 0, signal: null })
  await waitFor(() => !everything.some(pidAlive), 15000, 50, 'Apache and the daemons to exit')
  t.pass('no Apache or daemon process is left')
})

t.test('serves the welcome page when given no script', async (t) => {
  const s = await startExpress(t, [])
  const r = await request(s.port, '/')
  t.equal(r.status, 200)
  t.match(r.text, /mod_wsgi-express is serving/)
  t.match(r.headers['content-type'], /text\/html/)
})

t.test("in the daemon, mod_wsgi is this package (mod_wsgi.server included) extended by mod_wsgi", async (t) => {
  const s = await startExpress(t, [fixture('mod_wsgi-package')])
  const info = JSON.parse((await request(s.port, '/')).text)
  t.equal(info.server_file, join(ROOT, 'python', 'mod_wsgi', 'server', '__init__.py'), 'importable without installing it')
  t.equal(info.where, join(ROOT, 'build', 'mod_wsgi.so'))
  t.equal(info.process_group, `127.0.0.1:${s.port}`)
  t.same(info.version, [4, 1, 0])
})

t.test('run as root, Apache children and daemons run as an unprivileged user', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  const s = await startExpress(t, [fixture('hello-world')])
  t.match(s.stdout(), 'Daemon Identity    : www-data (group www-data)')
  const daemons = s.daemonPids()
  t.ok(daemons.length >= 1)
  for (const pid of daemons) t.equal(processUid(pid), 33, `daemon ${pid} runs as www-data`)
  const children = childPids(s.apachePid()).filter((p) => !daemons.includes(p))
  for (const pid of children) t.equal(processUid(pid), 33, `Apache child ${pid} runs as www-data`)
})

t.test('a port in use is reported and nothing is left running', async (t) => {
  const port = await freePort()
  const blocker = net.createServer()
  await new Promise<void>((res) => blocker.listen(port, '127.0.0.1', () => res()))
  t.teardown(() => blocker.close())
  const root = join(tempDir(t, 'mod_wsgi-express-'), 'server')
  const r = spawnSync(process.execPath, [EXPRESS, 'start-server', fixture('hello-world'), '--host', '127.0.0.1', '--port', String(port), '--server-root', root], {
    encoding: 'utf8',
    timeout: 30000,
  })
  t.not(r.status, 0, 'mod_wsgi-express fails')
  t.match(r.stderr, /Address already in use/, "Apache's own reason is shown")
  t.match(r.stderr, /mod_wsgi-express: Apache exited with status \d+/)
  t.same(processesMentioning(root), [], 'no Apache left')
})

t.test('a missing script or a bad option is refused with a clear message', async (t) => {
  const bad = spawnSync(process.execPath, [EXPRESS, 'start-server', '--header-buffer-size', '100'], { encoding: 'utf8' })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--header-buffer-size must be at least 8192/)
  const missing = spawnSync(process.execPath, [EXPRESS, 'start-server', '/nonexistent/app.wsgi'], { encoding: 'utf8' })
  t.equal(missing.status, 2)
  t.match(missing.stderr, /the WSGI script \/nonexistent\/app.wsgi does not exist/)
  // Refused before anything starts (the timeout is only a guard: a server would run until stopped).
  const unknown = spawnSync(process.execPath, [EXPRESS, 'start-server', '--bogus-option', '--port', '1'], { encoding: 'utf8', timeout: 15000 })
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /Unknown argument: bogus-option/)
  t.match(unknown.stderr, /Run 'mod_wsgi-express --help' for usage/)
})
