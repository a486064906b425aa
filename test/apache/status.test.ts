// What the daemons are doing, seen through Apache (wsgi-status JSON, mod_status's section), checked
// against what the test did: after N requests across 2 processes the counters sum to N, per status class
// and in the histograms; a SIGKILLed daemon shows in the restart history with signal 9 and its
// replacement's pid, and the group's counters do not go backwards; nothing is exposed unless the
// configuration puts a handler somewhere, and Apache's Require applies.
import t from 'tap'
import { fixture, FIXTURES, sleep, startApache, waitFor, type Apache } from '../helpers/apache'
import { pause, pidOf } from '../helpers/daemons'

const HANDLERS = `
<Location /wsgi-status>
  SetHandler wsgi-status
</Location>
<Location /denied-status>
  SetHandler wsgi-status
  Require all denied
</Location>
<Location /denied-metrics>
  SetHandler wsgi-metrics
  Require all denied
</Location>
<Location /denied-health>
  SetHandler wsgi-health
  Require all denied
</Location>
<Location /server-status>
  SetHandler server-status
</Location>
`

const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=4
WSGIDaemonProcess other processes=1 threads=2
WSGIScriptAlias /app ${fixture('status-codes')} process-group=pool
WSGIScriptAlias /other ${fixture('status-codes')} process-group=other
<Directory ${FIXTURES}>
  Require all granted
</Directory>
<Directory {{DIR}}/htdocs>
  Require all granted
</Directory>
${HANDLERS}
`

interface Proc {
  slot: number
  index: number
  pid: number
  state: string
  requests: number
  active: number
  threads_busy: number
  threads_idle: number
  rss: number
  cpu_seconds: number
  started_at: number
  last_restart_reason: string | null
}
interface Group {
  name: string
  processes: number
  threads: number
  requests: number
  requests_by_status: Record<string, number>
  request_duration_seconds: { count: number; sum: number }
  queue_wait_seconds: { count: number; sum: number }
  processes_by_state: Record<string, number>
  processes_ended: number
  restarts: Record<string, number>
  accept_queue: number | null
  threads_idle: number
  process: Proc[]
}
interface Restart {
  time: number
  group: string
  slot: number
  index: number
  old_pid: number
  new_pid: number | null
  reason: string
  exit_status: number | null
  signal: number | null
  signal_name: string | null
}
interface Status {
  time: number
  apache_stopping: boolean
  healthy: boolean
  groups: Group[]
  restarts: Restart[]
}

async function status(apache: Apache): Promise<Status> {
  const r = await apache.request('/wsgi-status')
  if (r.status !== 200) throw new Error(`wsgi-status answered ${r.status}`)
  if (!/^application\/json/.test(String(r.headers['content-type']))) throw new Error(`content type ${r.headers['content-type']}`)
  return JSON.parse(r.text) as Status
}

const group = (s: Status, name: string): Group => {
  const g = s.groups.find((x) => x.name === name)
  if (g === undefined) throw new Error(`no group ${name} in ${JSON.stringify(s.groups.map((x) => x.name))}`)
  return g
}

async function ready(apache: Apache, name: string, n: number): Promise<Status> {
  return waitFor<Status | null>(async () => {
    const s = await status(apache)
    return group(s, name).processes_by_state.ready === n ? s : null
  }, 20000, 100, `${n} ready processes in ${name}`) as Promise<Status>
}

t.test('counters after N requests across 2 processes sum to N, by status class and in the histograms', async (t) => {
  const apache = await startApache(t, { config: CONFIG, modules: ['status'] })
  const before = await ready(apache, 'pool', 2)
  const g0 = group(before, 'pool')
  t.equal(g0.processes, 2, 'processes= of the group')
  t.equal(g0.threads, 4, 'threads= of the group')
  t.equal(g0.requests, 0, 'no request yet')
  t.equal(g0.process.length, 2, 'two processes listed')
  for (const p of g0.process) {
    t.equal(p.state, 'ready')
    t.ok(p.pid > 0 && apache.daemonPids().includes(p.pid), `pid ${p.pid} is a daemon of this Apache`)
    t.ok(p.rss > 10 * 1024 * 1024, `its resident memory is reported (${p.rss} bytes)`)
    t.equal(p.threads_idle, 4, 'all its threads idle')
    t.equal(p.last_restart_reason, null, 'started with Apache, not restarted')
  }

  // 120 requests, 4 at a time (both processes serve), of known statuses.
  const codes = [200, 200, 404, 201, 503, 302]
  const pids = new Set<number>()
  const sent: Record<string, number> = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 }
  for (let i = 0; i < 30; i++) {
    const batch = Array.from({ length: 4 }, (_, k) => codes[(i * 4 + k) % codes.length])
    const rs = await Promise.all(batch.map((c) => apache.request(`/app?code=${c}&ms=${k(c)}`)))
    rs.forEach((r, j) => {
      t.equal(r.status, batch[j])
      pids.add(pidOf(r))
      sent[`${String(batch[j])[0]}xx`]++
    })
  }
  function k(c: number): number {
    return c === 404 ? 30 : 0
  }
  t.equal(pids.size, 2, 'both processes served requests')
  const s = await status(apache)
  const g = group(s, 'pool')
  t.equal(g.requests, 120, 'the group counted 120 requests')
  t.same(g.requests_by_status, sent, 'by status class as sent')
  t.equal(g.process.reduce((n, p) => n + p.requests, 0), 120, "the processes' counts add up to 120")
  t.ok(g.process.every((p) => p.requests > 0), 'each process counted its own')
  t.equal(g.request_duration_seconds.count, 120, 'the duration histogram counts every request')
  t.equal(g.queue_wait_seconds.count, 120, 'the queue-wait histogram too')
  // 20 requests slept 30 ms.
  t.ok(g.request_duration_seconds.sum >= 20 * 0.03, `durations add up to at least the sleeps (${g.request_duration_seconds.sum} s)`)
  t.ok(g.request_duration_seconds.sum < 120, 'and to something plausible')
  t.ok(g.queue_wait_seconds.sum <= g.request_duration_seconds.sum, 'waiting is part of the duration')
  t.equal(group(s, 'other').requests, 0, 'another group is counted apart')
  t.equal(g.accept_queue, 0, "nothing waits in the group's socket")
  t.equal(s.healthy, true)
  t.equal(s.apache_stopping, false)
})

t.test('a SIGKILLed daemon: the history holds the crash with signal 9 and the new pid; counters go on', async (t) => {
  const apache = await startApache(t, { config: CONFIG, modules: ['status'] })
  await ready(apache, 'pool', 2)
  for (let i = 0; i < 40; i++) await apache.request('/app')
  const s0 = await status(apache)
  const victim = group(s0, 'pool').process[0]
  const survivor = group(s0, 'pool').process[1]
  process.kill(victim.pid, 'SIGKILL')
  const s1 = (await waitFor<Status | null>(async () => {
    const s = await status(apache)
    const g = group(s, 'pool')
    return g.processes_by_state.ready === 2 && !g.process.some((p) => p.pid === victim.pid) ? s : null
  }, 20000, 100, 'a replacement ready')) as Status
  const g1 = group(s1, 'pool')
  const crash = s1.restarts[0]
  t.ok(crash, 'the history has an entry')
  t.match(crash, { group: 'pool', reason: 'crash', signal: 9, signal_name: 'SIGKILL', exit_status: null, old_pid: victim.pid, slot: victim.slot, index: victim.index })
  const replacement = g1.process.find((p) => p.pid !== survivor.pid)
  t.ok(replacement, 'a new process stands in the group')
  t.equal(crash.new_pid, replacement?.pid, 'the history names the new pid')
  t.equal(replacement?.slot, victim.slot, 'in the same slot, so its metrics series go on')
  t.equal(replacement?.last_restart_reason, 'crash', 'the new process says why it was started')
  t.equal(g1.restarts.crash, 1, 'the group counts one crash')
  t.equal(g1.processes_ended, 1)
  t.ok(Math.abs(crash.time - Date.now() / 1000) < 30, 'stamped with the time')
  t.equal(g1.requests, 40, 'the dead process\'s requests still count in the group')
  for (let i = 0; i < 10; i++) await apache.request('/app')
  t.equal(group(await status(apache), 'pool').requests, 50, 'and new ones add to them')
  t.match(apache.log(), new RegExp(`WSGI01104: daemon process \\d of process group 'pool' \\(pid ${victim.pid}\\) exited with code 9 \\(killed by signal 9, SIGKILL\\), reason crash`), 'the log line says the same')
})

t.test('a process that restarts by itself: maximum-requests in the history and the counters', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess mr processes=1 threads=1 maximum-requests=5
WSGIScriptAlias /mr ${fixture('status-codes')} process-group=mr
<Directory ${FIXTURES}>
  Require all granted
</Directory>
${HANDLERS}`,
  })
  await ready(apache, 'mr', 1)
  const first = group(await status(apache), 'mr').process[0].pid
  for (let i = 0; i < 5; i++) t.equal((await apache.request('/mr')).status, 200)
  const s = (await waitFor<Status | null>(async () => {
    const x = await status(apache)
    return x.restarts.length > 0 && group(x, 'mr').processes_by_state.ready === 1 && group(x, 'mr').process.length === 1 ? x : null
  }, 20000, 100, 'the restart recorded')) as Status
  t.match(s.restarts[0], { reason: 'maximum-requests', exit_status: 4, signal: null, old_pid: first })
  t.not(s.restarts[0].new_pid, null, 'its successor named')
  t.equal(group(s, 'mr').restarts['maximum-requests'], 1)
  t.equal(group(s, 'mr').requests, 5, 'its 5 requests still count')
  t.equal(group(s, 'mr').process[0].last_restart_reason, 'maximum-requests')
})

t.test("mod_status's page has a section for the daemon groups: HTML and ?auto", async (t) => {
  const apache = await startApache(t, { config: CONFIG, modules: ['status'] })
  await ready(apache, 'pool', 2)
  for (let i = 0; i < 7; i++) await apache.request('/app?code=404')
  await apache.request('/other')
  const auto = (await apache.request('/server-status?auto')).text
  t.match(auto, /^Total Accesses: \d+$/m, "mod_status's own lines")
  t.match(auto, /^WSGIHealthy: 1$/m)
  t.match(auto, /^WSGI pool Requests: 7$/m, 'Key: value lines per group')
  t.match(auto, /^WSGI pool Requests 4xx: 7$/m)
  t.match(auto, /^WSGI other Requests: 1$/m)
  t.match(auto, /^WSGI pool Processes ready: 2$/m)
  t.match(auto, /^WSGI pool IdleThreads: 8$/m)
  const html = (await apache.request('/server-status')).text
  t.match(html, /<h2>mod_wsgi daemon processes<\/h2>/, 'an HTML section')
  const pids = group(await status(apache), 'pool').process.map((p) => p.pid)
  for (const pid of pids) t.match(html, new RegExp(`<td>pool</td><td>\\d+</td><td>${pid}</td><td>ready</td>`), `process ${pid} in the table`)
})

t.test('nothing is exposed by default, and Require applies', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  await ready(apache, 'pool', 2)
  for (const p of ['/denied-status', '/denied-metrics', '/denied-health']) t.equal((await apache.request(p)).status, 403, `${p}: 403`)
  t.equal((await apache.request('/wsgi-metrics')).status, 404, 'no handler, nothing there')
  t.equal((await apache.request('/wsgi-health')).status, 404)
  t.equal((await apache.request('/wsgi-status', { method: 'POST', body: 'x' })).status, 405, 'GET only')
  await sleep(10)
})

t.test('SIGUSR1 and a graceful restart with a changed configuration: the reason words signal and graceful-restart', async (t) => {
  const conf = (threads: number) => `
WSGIDaemonProcess rg processes=1 threads=${threads}
WSGIScriptAlias /rg ${fixture('status-codes')} process-group=rg
<Directory ${FIXTURES}>
  Require all granted
</Directory>
${HANDLERS}`
  const apache = await startApache(t, { config: conf(2) })
  const s0 = await ready(apache, 'rg', 1)
  const first = group(s0, 'rg').process[0].pid
  process.kill(first, 'SIGUSR1')
  const s1 = (await waitFor<Status | null>(async () => {
    const x = await status(apache)
    return x.restarts.some((r) => r.old_pid === first) ? x : null
  }, 20000, 100, 'the SIGUSR1 restart recorded')) as Status
  const usr1 = s1.restarts.find((r) => r.old_pid === first) as Restart
  t.match(usr1, { reason: 'signal', exit_status: 0, signal: null }, 'SIGUSR1: reason signal, a clean exit')
  const second = usr1.new_pid as number
  t.ok(second > 0 && second !== first, 'its successor named')
  t.equal(group(s1, 'rg').restarts.signal, 1)

  await apache.graceful(conf(3))
  const s2 = (await waitFor<Status | null>(async () => {
    const x = await status(apache).catch(() => null)
    return x !== null && x.restarts.some((r) => r.old_pid === second) ? x : null
  }, 30000, 200, 'the graceful restart recorded')) as Status
  const graceful = s2.restarts.find((r) => r.old_pid === second) as Restart
  t.match(graceful, { reason: 'graceful-restart', signal: null }, 'the old configuration\'s process ended for graceful-restart')
  const now = group(s2, 'rg').process.map((p) => p.pid)
  t.ok(graceful.new_pid !== null && now.includes(graceful.new_pid), 'the history names the process of the new configuration')
  t.equal(group(s2, 'rg').threads, 3, 'the group as configured now')
  t.equal(group(s2, 'rg').restarts['graceful-restart'], 1)
})

t.test("requests waiting in the group's socket show as its accept queue", async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess q processes=1 threads=1 listen-backlog=10
WSGIScriptAlias /q ${fixture('status-codes')} process-group=q
<Directory ${FIXTURES}>
  Require all granted
</Directory>
${HANDLERS}`,
    modules: ['status'],
  })
  const s0 = await ready(apache, 'q', 1)
  const resume = pause(t, group(s0, 'q').process[0].pid)
  // The stopped daemon accepts nothing: these wait in the socket's backlog.
  const waiting = Array.from({ length: 3 }, () => apache.request('/q'))
  const s = (await waitFor<Status | null>(async () => {
    const x = await status(apache)
    return (group(x, 'q').accept_queue ?? 0) >= 3 ? x : null
  }, 10000, 100, 'the accept queue')) as Status
  t.equal(group(s, 'q').accept_queue, 3, 'three connections wait to be accepted')
  t.match((await apache.request('/server-status?auto')).text, /^WSGI q AcceptQueue: 3$/m)
  resume()
  t.same((await Promise.all(waiting)).map((r) => r.status), [200, 200, 200], 'and are served once the daemon runs again')
  t.equal(group(await status(apache), 'q').accept_queue, 0, 'none waits any more')
})
