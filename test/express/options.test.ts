// start-server options: --help documents each one with mod_wsgi 4.1.0's defaults, and a sample of them
// changes what a real Apache does (processes/threads, url-alias, document-root, working-directory,
// include-file, server-status, log-to-terminal, access-log, startup-log).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { defaultOptions, OPTION_SPECS } from '../../src/express/options'
import { childPids, fixture, request, waitFor } from '../helpers/apache'
import { EXPRESS, exited, pidAlive, startExpress, tempDir } from './express-helpers'

t.test('start-server --help documents every option and its default', async (t) => {
  const r = spawnSync(process.execPath, [EXPRESS, 'start-server', '--help'], { encoding: 'utf8' })
  t.equal(r.status, 0)
  const help = r.stdout.replace(/\s+/g, ' ')
  for (const s of OPTION_SPECS) {
    t.match(help, `--${s.flag} `, `--${s.flag} is listed`)
    if (typeof s.default === 'number' || typeof s.default === 'string') t.match(help, `[default: ${JSON.stringify(s.default)}]`, `--${s.flag} shows its default`)
    t.ok(s.describe.length > 20, `--${s.flag} has a description`)
  }
})

t.test("the defaults are mod_wsgi 4.1.0's", async (t) => {
  const d = defaultOptions()
  t.match(d, {
    host: null,
    port: 8000,
    processes: null,
    threads: 5,
    maxClients: null,
    limitRequestBody: 10485760,
    maximumRequests: 0,
    restartInterval: 0,
    startupTimeout: 15,
    memoryRecycle: '0',
    shutdownTimeout: 5,
    gracefulTimeout: 15,
    deadlockTimeout: 60,
    inactivityTimeout: 0,
    requestTimeout: 60,
    connectTimeout: 15,
    socketTimeout: 60,
    queueTimeout: 30,
    serverBacklog: 500,
    daemonBacklog: 100,
    headerBufferSize: 32768,
    reloadOnChanges: false,
    callableObject: 'application',
    keepAliveTimeout: 0,
    serverStatus: false,
    metrics: false,
    healthCheck: false,
    logLevel: 'info',
    accessLog: false,
    logToTerminal: false,
    startupLog: false,
  })
  t.same(d.urlAlias, [])
  t.same(d.includeFile, [])
  t.same(d.statusAllowFrom, [])
})

t.test('--processes and --threads: daemon processes, wsgi.multiprocess and wsgi.multithread', async (t) => {
  const s = await startExpress(t, [fixture('daemon-process-info'), '--processes', '2', '--threads', '3'])
  const info = JSON.parse((await request(s.port, '/')).text)
  t.equal(info.multiprocess, true)
  t.equal(info.multithread, true)
  await waitFor(() => s.daemonPids().length === 2, 10000, 50, 'two daemon processes')
  const conf = readFileSync(join(s.root, 'httpd.conf'), 'utf8')
  t.match(conf, /processes=2/)
  t.match(conf, /threads=3/)
  t.match(s.stdout(), 'Request Capacity   : 6 (2 processes * 3 threads)')
  t.match(s.stdout(), 'Server Capacity    : 9 (client connections)', '1.5 times the daemon threads')
})

t.test('--document-root, --url-alias, --working-directory, --include-file and --server-status', async (t) => {
  const dir = tempDir(t, 'mod_wsgi-express-static-')
  const docroot = join(dir, 'htdocs')
  const assets = join(dir, 'assets')
  const work = join(dir, 'work')
  for (const d of [docroot, assets, work]) mkdirSync(d, { mode: 0o755 })
  writeFileSync(join(docroot, 'static.txt'), 'from the document root\n')
  writeFileSync(join(assets, 'site.css'), 'body { color: red }\n')
  writeFileSync(join(dir, 'robots.txt'), 'User-agent: *\n')
  writeFileSync(join(dir, 'included.txt'), 'included\n')
  const include = join(dir, 'extra.conf')
  writeFileSync(include, `Alias /included ${join(dir, 'included.txt')}\n<Directory ${dir}>\n<Files included.txt>\nRequire all granted\n</Files>\n</Directory>\n`)

  const s = await startExpress(t, [
    fixture('daemon-process-info'),
    '--document-root', docroot,
    '--url-alias', '/assets', assets,
    '--url-alias', '/robots.txt', join(dir, 'robots.txt'),
    '--working-directory', work,
    '--include-file', include,
    '--server-status',
  ])
  const stat = await request(s.port, '/static.txt')
  t.equal(stat.text, 'from the document root\n', 'a static file in the document root wins over the app')
  t.match(stat.headers['content-type'], /text\/plain/)
  const css = await request(s.port, '/assets/site.css')
  t.equal(css.text, 'body { color: red }\n', 'a directory alias')
  t.match(css.headers['content-type'], /text\/css/)
  t.equal((await request(s.port, '/robots.txt')).text, 'User-agent: *\n', 'a single-file alias')
  t.equal((await request(s.port, '/included')).text, 'included\n', 'the included configuration applies')
  t.match((await request(s.port, '/server-status')).text, /Apache Server Status/)

  const app = await request(s.port, '/not/a/file')
  t.equal(app.status, 200, 'anything else goes to the application')
  const info = JSON.parse(app.text)
  t.equal(info.cwd, work, 'the daemon runs in the working directory')
  t.equal(info.sys_path_0, '', 'and imports from it, as the WSGIDaemonProcess home option does')
})

t.test('--log-to-terminal with --access-log and --startup-log', async (t) => {
  const s = await startExpress(t, [fixture('print'), '--log-to-terminal', '--access-log', '--startup-log'])
  t.equal((await request(s.port, '/printed')).text, 'printed')
  await waitFor(() => /stderr-line one/.test(s.stderr()), 10000, 50, "the app's output on the terminal")
  await waitFor(() => /"GET \/printed HTTP\/1\.1" 200/.test(s.stdout()), 10000, 50, 'the access log on the terminal')
  t.match(s.stderr(), /WSGI02003: Starting process/, "the daemon's log lines too")
  t.notOk(existsSync(join(s.root, 'error_log')), 'no error_log file')
  t.match(s.stdout(), 'Error Log File     : /dev/stderr (info)')
  t.match(s.stdout(), 'Startup Log File   : /dev/stderr')

  // The log pipes are Apache's children: they go with it.
  const everything = [s.apachePid(), ...childPids(s.apachePid())]
  t.ok(everything.length >= 4, 'Apache, its child, the daemon and the log pipes')
  s.child.kill('SIGINT')
  t.same(await exited(s.child), { code: 0, signal: null })
  await waitFor(() => !everything.some(pidAlive), 15000, 50, 'every process to exit')
})

t.test('--access-log and --startup-log into files in --log-directory', async (t) => {
  const logs = join(tempDir(t, 'mod_wsgi-express-logs-'), 'logs')
  const s = await startExpress(t, [fixture('hello-world'), '--access-log', '--startup-log', '--log-directory', logs])
  await request(s.port, '/logged')
  await waitFor(() => existsSync(join(logs, 'access_log')) && /GET \/logged/.test(readFileSync(join(logs, 'access_log'), 'utf8')), 10000, 50, 'access_log')
  t.ok(existsSync(join(logs, 'error_log')), 'error_log in the log directory')
  t.ok(existsSync(join(logs, 'startup_log')), 'startup_log in the log directory')
  t.match(s.stdout(), `Access Log File    : ${join(logs, 'access_log')}`)
})

t.test('--restart-interval, --startup-timeout and --memory-recycle reach WSGIDaemonProcess and pass apache2 -t', async (t) => {
  const root = join(tempDir(t, 'mod_wsgi-express-restart-'), 'server')
  const r = spawnSync(process.execPath, [EXPRESS, 'setup-server', fixture('hello-world'), '--server-root', root, '--restart-interval', '3600', '--startup-timeout', '30', '--memory-recycle', '512M'], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  const conf = readFileSync(join(root, 'httpd.conf'), 'utf8')
  t.match(conf, /restart-interval=3600/)
  t.match(conf, /startup-timeout=30/)
  t.match(conf, /memory-recycle='?512M'?/)
  const test = spawnSync(join(root, 'apachectl'), ['configtest'], { encoding: 'utf8' })
  t.equal(test.status, 0, test.stderr)
  const bad = spawnSync(process.execPath, [EXPRESS, 'setup-server', fixture('hello-world'), '--server-root', `${root}2`, '--memory-recycle', '10M'], { encoding: 'utf8' })
  const badTest = spawnSync(join(`${root}2`, 'apachectl'), ['configtest'], { encoding: 'utf8' })
  t.equal(bad.status, 0)
  t.not(badTest.status, 0, 'a memory-recycle below 64M is refused by apache2 -t')
  t.match(badTest.stderr + badTest.stdout, /option 'memory-recycle' must be 0 \(the default\) or a size of at least 64M/)
})

t.test('--server-status, --metrics, --health-check: the daemons\' status, metrics and health, their URLs printed', async (t) => {
  const s = await startExpress(t, [fixture('hello-world'), '--processes', '2', '--server-status', '--metrics', '--health-check'])
  const base = `http://127.0.0.1:${s.port}`
  t.match(s.stdout(), `Server Status      : ${base}/server-status`)
  t.match(s.stdout(), `Daemon Status      : ${base}/wsgi-status`)
  t.match(s.stdout(), `Metrics            : ${base}/wsgi-metrics`)
  t.match(s.stdout(), `Health Check       : ${base}/wsgi-health`)
  t.equal((await request(s.port, '/hello')).status, 200)
  const health = (await waitFor(async () => {
    const r = await request(s.port, '/wsgi-health')
    return r.status === 200 ? r : null
  }, 15000, 100, 'health 200')) as { text: string }
  t.match(health.text, /^ready/)
  const before = JSON.parse((await request(s.port, '/wsgi-status')).text)
  t.equal(before.groups[0].processes, 2, 'the JSON status of the daemon group')
  const n = before.groups[0].requests as number
  t.equal((await request(s.port, '/hello')).status, 200)
  t.equal(JSON.parse((await request(s.port, '/wsgi-status')).text).groups[0].requests, n + 1, 'which counts each request')
  t.match((await request(s.port, '/wsgi-metrics')).text, new RegExp(`^mod_wsgi_requests_total\\{group="[^"]+",status_class="2xx"\\} ${n + 1}$`, 'm'), 'the metrics')
  t.match((await request(s.port, '/server-status?auto')).text, new RegExp(`^WSGI [^\\n]+ Requests: ${n + 1}$`, 'm'), "mod_status's page has the daemons' section")
  const conf = readFileSync(join(s.root, 'httpd.conf'), 'utf8')
  t.match(conf, /<Location \/wsgi-metrics>\n    SetHandler wsgi-metrics\n    Require local\n<\/Location>/, 'status and metrics from localhost only')
  t.match(conf, /<Location \/wsgi-health>\n    SetHandler wsgi-health\n    Require all granted\n<\/Location>/, 'the health check from anywhere')
})
