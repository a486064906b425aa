// Issue 19, scaling out: three "hosts" on this machine, each a network namespace joined to a balancer's
// namespace by a veth pair, each running its own private Apache with the module and the same Flask app
// (test/fixtures/wsgi/scale-out), whose state is one shared SQLite database, never a process. HAProxy
// (Debian's) balances them with HTTP health checks; wrk loads it from the balancer's namespace. All
// traffic stays on the namespaces' addresses.
//   1. Shared state: writes through the balancer land on every host; each host reads the same total.
//   2. Rolling deploy under load, host by host: drain it in HAProxy, wait until it has no session, stop
//      its Apache gracefully (SIGWINCH), put the new version of the app in place, start Apache, let the
//      health check bring it back, rejoin. No request fails.
//   3. SIGKILL of one host's Apache under load (its whole process group: parent, children, daemons, as
//      when a container's PID 1 is killed): only that host's requests in flight may fail, HAProxy marks
//      it down and the load goes on on the others without a failure.
// Skipped, with the reason, only where network namespaces cannot be created (or HAProxy or wrk are
// missing); bounded in time; the namespaces and every process in them are removed even on failure.
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Apache, APACHE_BIN, fixture, makeTempDir, PYTHON, sleep, waitFor } from '../helpers/apache'
import { alive } from '../helpers/daemons'
import { Haproxy, haproxyAvailable, type ServerStat } from '../helpers/haproxy'
import { Lab, netnsUnavailable, type Netns } from '../helpers/netns'
import { parseWrk, WRK, wrkAvailable, type WrkResult } from '../helpers/wrk'

// The balancer's health check: the module's health endpoint (SetHandler wsgi-health). APP_HEALTH, a plain
// application URL, is what the test used before the module had one.
interface HealthCheck {
  path: string
  apacheConfig: string
}
export const APP_HEALTH: HealthCheck = { path: '/app/health', apacheConfig: '' }
export const WSGI_HEALTH: HealthCheck = { path: '/wsgi-health', apacheConfig: '<Location /wsgi-health>\n  SetHandler wsgi-health\n</Location>' }
const HEALTH: HealthCheck = WSGI_HEALTH

const HOSTS = ['h1', 'h2', 'h3']
const PORT = 8000
const LB = '127.0.0.1:8080'
const CONNECTIONS = 12
const APP = fixture('scale-out')
/** What wrk asks for: 20 ms of work each, so that every host has requests in flight at any moment. */
const LOAD_PATH = '/app/?ms=20'
const WWW_DATA = { uid: 33, gid: 33 }

// The whole run takes about a minute on a loaded 2-core machine; the file's bound leaves room.
t.setTimeout(180000)

const skip = netnsUnavailable() ?? (haproxyAvailable() ? null : 'haproxy is not installed (scripts/setup.sh)') ?? (wrkAvailable() ? null : 'wrk is not installed')

interface Host {
  name: string
  ns: Netns
  address: string
  dir: string
  apache: Apache
}

/** One host's copy of the app (`version` in its VERSION line), and where it runs. */
function deploy(h: { name: string; dir: string }, db: string, version: string): void {
  const app = join(h.dir, 'app')
  mkdirSync(app, { recursive: true, mode: 0o755 })
  writeFileSync(join(app, 'deploy.json'), JSON.stringify({ host: h.name, database: db }))
  const code = readFileSync(APP, 'utf8').replace(/^VERSION = 'v1'$/m, `VERSION = '${version}'`)
  // Replaced in one step, as a deploy tool would.
  writeFileSync(join(app, 'app.wsgi.tmp'), code, { mode: 0o644 })
  renameSync(join(app, 'app.wsgi.tmp'), join(app, 'app.wsgi'))
  chmodSync(join(app, 'deploy.json'), 0o644)
}

function apacheFor(h: { dir: string; address: string }): Apache {
  const app = join(h.dir, 'app')
  return new Apache({
    preamble: `Listen ${h.address}:${PORT}`,
    config: `
WSGIDaemonProcess app processes=2 threads=4 graceful-timeout=10 display-name=%{GROUP}
WSGIProcessGroup app
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /app ${app}/app.wsgi
<Directory ${app}>
  Require all granted
</Directory>
${HEALTH.apacheConfig}
`,
  })
}

/** Starts a host's Apache inside its namespace; resolves when it serves the app. */
async function startHost(h: Host): Promise<void> {
  h.apache.port = PORT
  h.apache.writeConfig()
  const r = h.ns.run(APACHE_BIN, ['-d', h.apache.dir, '-f', h.apache.conf, '-k', 'start'])
  if (r.status !== 0) throw new Error(`${h.name}: apache2 -k start: ${r.out}\n${h.apache.log()}`)
  await waitFor(() => h.ns.get(`http://${h.address}:${PORT}${HEALTH.path}`).status === 200, 30000, 200, `${h.name} to serve`)
}

/** Apache's graceful stop on a host (SIGWINCH, as `docker stop` of the httpd image); waits for its end. */
async function gracefulStop(h: Host): Promise<void> {
  const pid = h.apache.pid
  process.kill(pid, 'SIGWINCH')
  await waitFor(() => !alive(pid), 30000, 50, `${h.name}'s Apache to stop`)
}

/** wrk in the balancer's namespace until stopped (SIGINT: it prints its report and exits). */
function startWrk(lb: Netns, path: string): { stop: () => Promise<WrkResult> } {
  const p = lb.spawn(WRK, ['-t2', `-c${CONNECTIONS}`, '-d120s', '--timeout', '10s', '--latency', `http://${LB}${path}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout?.on('data', (c: Buffer) => (out += c.toString()))
  p.stderr?.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise<void>((r) => p.once('exit', () => r()))
  return {
    stop: async () => {
      p.kill('SIGINT')
      await Promise.race([exited, sleep(10000)])
      if (p.exitCode === null) p.kill('SIGKILL')
      return parseWrk(out)
    },
  }
}

const failures = (w: WrkResult) => w.non2xx + w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout
const summary = (w: WrkResult) => `${w.requests} requests (${w.rps} req/s), non-2xx ${w.non2xx}, socket errors ${JSON.stringify(w.errors)}, p99 ${w.latency.p99} ms`

t.test('three hosts behind HAProxy: shared state, a rolling deploy and a SIGKILL under wrk', { skip: skip ?? false }, async (t) => {
  const lab = new Lab('mwso')
  const base = makeTempDir('mod_wsgi-scale-out-')
  const hosts: Host[] = []
  let haproxy: Haproxy | null = null
  t.teardown(async () => {
    await haproxy?.stop()
    for (const h of hosts) await h.apache.cleanup(!t.passing()).catch(() => undefined)
    lab.destroy()
    if (t.passing()) rmSync(base, { recursive: true, force: true })
  })

  // The shared database: a directory www-data (Apache's children and the daemons) can write to.
  const dbDir = join(base, 'db')
  mkdirSync(dbDir, { mode: 0o755 })
  const db = join(dbDir, 'app.sqlite3')
  const init = spawnSync(PYTHON, ['-c', `import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute('PRAGMA journal_mode=WAL')
c.execute('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT)')
c.executemany('INSERT INTO kv VALUES (?, ?)', [('greeting', 'hello from the shared database'), ('hits', '0')])
c.commit()`, db], { encoding: 'utf8' })
  t.equal(init.status, 0, `database created ${init.stderr}`)
  for (const f of [dbDir, db]) chownSync(f, WWW_DATA.uid, WWW_DATA.gid)

  // The network: the balancer's namespace, linked to each host's.
  const lb = lab.add('lb')
  HOSTS.forEach((name, i) => {
    const ns = lab.add(name)
    const address = `10.231.${i + 1}.2`
    lab.link(lb, `10.231.${i + 1}.1/24`, ns, `${address}/24`)
    const dir = join(base, name)
    mkdirSync(dir, { mode: 0o755 })
    deploy({ name, dir }, db, 'v1')
    hosts.push({ name, ns, address, dir, apache: apacheFor({ dir, address }) })
  })
  await Promise.all(hosts.map((h) => startHost(h)))
  t.equal(lb.get(`http://127.0.0.1:${PORT}/`, 1).status, 0, 'nothing listens in the balancer namespace but HAProxy (sanity)')

  haproxy = new Haproxy({
    dir: base,
    bind: LB,
    servers: hosts.map((h) => ({ name: h.name, address: `${h.address}:${PORT}` })),
    healthPath: HEALTH.path,
  })
  const hp = haproxy
  const check = hp.check()
  t.ok(check.ok, `haproxy -c: ${check.out.trim()}`)
  hp.start(lb)
  const allUp = async (): Promise<boolean> => {
    const s = await hp.stats().catch(() => ({}) as Record<string, ServerStat>)
    return HOSTS.every((n) => s[n]?.status === 'UP')
  }
  await waitFor(allUp, 20000, 100, `every host UP in HAProxy:\n${hp.output}`)

  // 1. Shared state ---------------------------------------------------------------------------------
  const seen = new Set<string>()
  for (let i = 0; i < 9; i++) {
    const r = lb.run('curl', ['-sS', '--max-time', '10', '-X', 'POST', `http://${LB}/app/hit`])
    seen.add(r.out.split(' ')[0])
  }
  t.same([...seen].sort(), HOSTS, 'nine writes through the balancer were spread over the three hosts')
  for (const h of hosts) t.equal(lb.get(`http://${h.address}:${PORT}/app/hits`).body.trim(), `${h.name} 9`, `${h.name} reads the 9 writes`)
  const before = lb.get(`http://${LB}/app/`).body
  t.match(before, /^v1 h\d \d+ hello from the shared database$/m, 'version 1 everywhere')

  // 2. Rolling deploy under load -------------------------------------------------------------------
  const rolling = startWrk(lb, LOAD_PATH)
  await sleep(1000)
  const phases: string[] = []
  for (const h of hosts) {
    const t0 = Date.now()
    await hp.setState(h.name, 'drain')
    await waitFor(async () => (await hp.stats())[h.name]?.scur === 0, 15000, 50, `${h.name} drained`)
    await gracefulStop(h)
    deploy(h, db, 'v2')
    await startHost(h)
    // Back when the health check passes again (DRAIN: up, but still out of rotation), then rejoin.
    await waitFor(async () => (await hp.stats())[h.name]?.status === 'DRAIN', 20000, 50, `${h.name} healthy again`)
    await hp.setState(h.name, 'ready')
    await waitFor(async () => (await hp.stats())[h.name]?.status === 'UP', 10000, 50, `${h.name} back in rotation`)
    t.match(lb.get(`http://${h.address}:${PORT}/app/`).body, new RegExp(`^v2 ${h.name} `), `${h.name} runs version 2`)
    phases.push(`${h.name} ${Date.now() - t0} ms`)
    await sleep(500)
  }
  const r1 = await rolling.stop()
  t.comment(`rolling deploy (${phases.join(', ')}): ${summary(r1)}`)
  t.ok(r1.requests > 200, 'a real load ran through the deploy')
  t.equal(failures(r1), 0, 'no request failed during the rolling deploy')
  const after = new Set(Array.from({ length: 12 }, () => lb.get(`http://${LB}/app/`).body.split(' ')[0]))
  t.same([...after], ['v2'], 'every host answers with version 2')

  // 3. SIGKILL of one host's Apache under load ------------------------------------------------------
  const victim = hosts[1]
  const pid = victim.apache.pid
  const pgid = Number(readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ')[2])
  t.equal(pgid, pid, "the host's Apache leads its own process group (children and daemons in it)")
  const statsBefore = await hp.stats()
  const load = startWrk(lb, LOAD_PATH)
  await sleep(2000)
  const inFlight = (await hp.stats())[victim.name].scur
  process.kill(-pgid, 'SIGKILL')
  const killedAt = Date.now()
  // Its pid file now names a dead process (whose pid may be reused): the teardown must not signal it.
  rmSync(victim.apache.pidFile, { force: true })
  await waitFor(async () => (await hp.stats())[victim.name]?.status.startsWith('DOWN'), 10000, 50, `${victim.name} DOWN in HAProxy`)
  const detectMs = Date.now() - killedAt
  await sleep(3000)
  const r2 = await load.stop()
  const statsAfter = await hp.stats()
  t.comment(
    `SIGKILL of ${victim.name} (${inFlight} of its sessions open just before; DOWN in HAProxy after ${detectMs} ms): ${summary(r2)}; ` +
      `HAProxy retries ${statsAfter[victim.name].wretr - statsBefore[victim.name].wretr}, redispatches ${statsAfter[victim.name].wredis - statsBefore[victim.name].wredis}`,
  )
  t.ok(r2.requests > 200, 'a real load ran')
  t.ok(failures(r2) <= CONNECTIONS, `failures (${failures(r2)}) no more than the requests that can be in flight (${CONNECTIONS})`)
  t.equal(r2.errors.timeout, 0, 'no request hung')
  const others = hosts.filter((h) => h !== victim)
  t.ok(others.every((h) => statsAfter[h.name].status === 'UP'), 'the other hosts stay UP')

  // Routed around: another run on the two hosts left has no failure at all.
  const r3 = startWrk(lb, LOAD_PATH)
  await sleep(3000)
  const around = await r3.stop()
  t.comment(`after the SIGKILL, on ${others.map((h) => h.name).join(' and ')}: ${summary(around)}`)
  t.ok(around.requests > 100, 'a real load ran')
  t.equal(failures(around), 0, 'no request failed once HAProxy routed around the dead host')
  const served = await hp.stats()
  t.ok(served[victim.name].stot === statsAfter[victim.name].stot, 'nothing more was sent to the dead host')
})
