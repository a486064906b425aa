// mod_wsgi-express start-server: serves a script (or the welcome page) through Apache in the foreground,
// and Ctrl-C (SIGINT) stops Apache and every daemon.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { childPids, fixture, freePort, makeTempDir, request, ROOT, waitFor } from '../helpers/apache'

const EXPRESS = join(ROOT, 'bin', 'mod_wsgi-express')

interface Running {
  child: ChildProcess
  port: number
  root: string
  output: () => string
}

async function startExpress(t: Test, args: string[]): Promise<Running> {
  const port = await freePort()
  const root = join(makeTempDir('mod_wsgi-express-'), 'server')
  const child = spawn(process.execPath, [EXPRESS, 'start-server', ...args, '--port', String(port), '--server-root', root, '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (d) => (out += d))
  child.stderr?.on('data', (d) => (out += d))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM')
  })
  await waitFor(async () => (child.exitCode !== null ? Promise.reject(new Error(`express exited: ${out}`)) : request(port, '/').then(() => true, () => false)), 20000, 100, 'mod_wsgi-express to answer')
  return { child, port, root, output: () => out }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', (code) => resolve(code))))
}

t.test('serves a WSGI script, prints where things are, and stops everything on SIGINT', async (t) => {
  const s = await startExpress(t, [fixture('hello-world')])
  const r = await request(s.port, '/anything/below')
  t.equal(r.status, 200)
  t.equal(r.text, 'Hello World!')
  t.match(s.output(), `Server URL         : http://127.0.0.1:${s.port}/`)
  t.match(s.output(), `Server Root        : ${s.root}`)
  t.ok(existsSync(join(s.root, 'httpd.conf')), 'httpd.conf in the server root')
  t.ok(existsSync(join(s.root, 'apachectl')), 'apachectl in the server root')

  const apachePid = Number(readFileSync(join(s.root, 'httpd.pid'), 'utf8'))
  const daemons = childPids(apachePid)
  t.ok(daemons.length >= 1, 'Apache has children')
  s.child.kill('SIGINT')
  t.equal(await exited(s.child), 0, 'mod_wsgi-express exits cleanly')
  await waitFor(() => ![apachePid, ...daemons].some((p) => existsSync(`/proc/${p}`)), 10000, 50, 'Apache and daemons to exit')
  t.pass('no Apache or daemon process is left')
})

t.test('serves the welcome page when given no script', async (t) => {
  const s = await startExpress(t, [])
  const r = await request(s.port, '/')
  t.equal(r.status, 200)
  t.match(r.text, /mod_wsgi-express is serving/)
  t.match(r.headers['content-type'], /text\/html/)
})

t.test('setup-server writes a configuration that apachectl configtest accepts', async (t) => {
  const root = join(makeTempDir('mod_wsgi-express-'), 'server')
  const r = spawnSync(process.execPath, [EXPRESS, 'setup-server', fixture('hello-world'), '--port', '8765', '--server-root', root, '--processes', '2', '--threads', '3'], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  const conf = readFileSync(join(root, 'httpd.conf'), 'utf8')
  t.match(conf, /processes=2/)
  t.match(conf, /threads=3/)
  const test = spawnSync(join(root, 'apachectl'), ['configtest'], { encoding: 'utf8' })
  t.equal(test.status, 0, test.stderr)
})

t.test('module-location and module-config', async (t) => {
  const loc = spawnSync(process.execPath, [EXPRESS, 'module-location'], { encoding: 'utf8' })
  t.equal(loc.stdout.trim(), join(ROOT, 'build', 'mod_wsgi.so'))
  const conf = spawnSync(process.execPath, [EXPRESS, 'module-config'], { encoding: 'utf8' })
  t.match(conf.stdout, `LoadModule wsgi_module ${join(ROOT, 'build', 'mod_wsgi.so')}`)
})

t.test('a bad option is refused with a clear message', async (t) => {
  const r = spawnSync(process.execPath, [EXPRESS, 'start-server', '--header-buffer-size', '100'], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr, /--header-buffer-size must be at least 8192/)
})
