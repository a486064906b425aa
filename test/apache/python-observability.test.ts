// What an application sees of mod_wsgi's observability: mod_wsgi.LogHandler sends `logging` records to
// the error log at the Apache level of their Python level, so that `LogLevel wsgi:LEVEL` filters them,
// tagged with the request they belong to; print() and sys.stderr stay at error. mod_wsgi.process_metrics()
// and mod_wsgi.request_metrics() answer with mod_wsgi 4.8's keys. SIGUSR2 to a daemon logs the Python
// stack of every thread, with the request each serves and for how long.
import t from 'tap'
import { fixture, FIXTURES, sleep, startApache, waitFor, type Apache } from '../helpers/apache'
import { groupPids } from '../helpers/daemons'

const config = `
WSGIDaemonProcess py processes=1 threads=3
WSGIScriptAlias /py ${fixture('python-logging')} process-group=py application-group=%{GLOBAL}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

async function up(apache: Apache): Promise<void> {
  await waitFor(async () => (await apache.request('/py')).status === 200, 20000, 100, 'the daemon')
}

/** The log lines that mention `text`. */
const linesWith = (apache: Apache, text: string) => apache.log().split('\n').filter((l) => l.includes(text))

t.test('LogHandler: each record at its Apache level, filtered by LogLevel wsgi:info, tagged with its request', async (t) => {
  const apache = await startApache(t, { config, logLevel: 'warn wsgi:info' })
  await up(apache)
  t.equal((await apache.request('/py?emit=AAA')).status, 200)
  await apache.waitForLog(/stderr AAA/)
  const level = (what: string) => linesWith(apache, `fixture ${what} AAA`).map((l) => /\[wsgi:([a-z]+)\]/.exec(l)?.[1])
  t.same(level('debug'), [], 'DEBUG is below wsgi:info: dropped')
  t.same(level('info'), ['info'], 'INFO at info')
  t.same(level('warning'), ['warn'], 'WARNING at warn')
  t.same(level('error'), ['error'], 'ERROR at error')
  t.same(level('critical'), ['crit'], 'CRITICAL at crit')
  t.same(level('level35'), ['warn'], 'a level between WARNING and ERROR rounds down')
  t.same(linesWith(apache, 'first line AAA').map((l) => /\[wsgi:([a-z]+)\]/.exec(l)?.[1]), ['info'], 'a two-line record: its first line')
  t.same(linesWith(apache, 'second line AAA').map((l) => /\[wsgi:([a-z]+)\]/.exec(l)?.[1]), ['info'], 'and its second, each a log line')
  const tagged = linesWith(apache, ' AAA').filter((l) => l.includes('fixture '))
  t.ok(tagged.length >= 6 && tagged.every((l) => /\[client 127\.0\.0\.1:\d+\] \[request [^\]]+\] fixture /.test(l)), 'each tagged with its client and request')
  t.match(linesWith(apache, 'printed AAA').join('\n'), /\[wsgi:error\][^\n]*printed AAA/, 'print() stays at error')
  t.match(linesWith(apache, 'stderr AAA').join('\n'), /\[wsgi:error\][^\n]*stderr AAA/, 'sys.stderr stays at error')
  t.match(apache.log(), /\[wsgi:warn\] \[pid \d+:tid \d+\] fixture imported, outside any request/, 'a record outside a request: no tag')
})

t.test('LogLevel wsgi:warn drops INFO records, keeps WARNING and above', async (t) => {
  const apache = await startApache(t, { config, logLevel: 'warn' })
  await up(apache)
  await apache.request('/py?emit=BBB')
  await apache.waitForLog(/stderr BBB/)
  t.same(linesWith(apache, 'fixture info BBB'), [], 'INFO dropped')
  t.same(linesWith(apache, 'first line BBB'), [], 'INFO dropped')
  t.equal(linesWith(apache, 'fixture warning BBB').length, 1, 'WARNING kept')
  t.equal(linesWith(apache, 'fixture error BBB').length, 1, 'ERROR kept')
})

t.test("process_metrics() and request_metrics() with mod_wsgi 4.8's keys", async (t) => {
  const apache = await startApache(t, { config })
  await up(apache)
  const first = JSON.parse((await apache.request('/py?metrics=1')).text)
  t.equal(first.is_subclass, true, 'LogHandler is a logging.Handler')
  const pm = first.process_metrics
  for (const k of ['pid', 'request_busy_time', 'request_count', 'memory_max_rss', 'memory_rss', 'cpu_user_time', 'cpu_system_time',
    'restart_time', 'current_time', 'running_time', 'request_threads', 'active_requests', 'threads'])
    t.ok(k in pm, `process_metrics()['${k}']`)
  t.equal(pm.pid, groupPids(apache, 'py')[0], 'pid of the daemon')
  t.equal(pm.active_requests, 1, 'the request asking is active')
  t.ok(pm.request_count >= 1, 'requests so far')
  t.ok(pm.memory_rss > 10 * 1024 * 1024 && pm.memory_max_rss >= pm.memory_rss, 'memory in bytes')
  t.ok(Array.isArray(pm.threads) && pm.threads.every((x: { thread_id: number; request_count: number }) => x.thread_id >= 1 && 'request_count' in x), 'threads: thread_id and request_count')
  t.same(first.request_metrics, {}, 'the first request_metrics() starts the sampling period: {}')
  for (let i = 0; i < 5; i++) await apache.request('/py?sleep=0.02')
  const second = JSON.parse((await apache.request('/py?metrics=1')).text).request_metrics
  for (const k of ['pid', 'start_time', 'stop_time', 'sample_period', 'cpu_user_time', 'cpu_system_time', 'memory_max_rss', 'memory_rss',
    'request_threads_maximum', 'request_threads_started', 'request_threads_active', 'capacity_utilization', 'request_count',
    'request_throughput', 'server_time', 'queue_time', 'daemon_time', 'application_time', 'server_time_buckets', 'queue_time_buckets',
    'daemon_time_buckets', 'application_time_buckets', 'request_threads_buckets'])
    t.ok(k in second, `request_metrics()['${k}']`)
  t.equal(second.request_count, 6, 'the requests of the period (the first metrics request and 5)')
  t.equal(second.request_threads_maximum, 3, 'threads=3')
  t.equal(second.application_time_buckets.length, 16, '16 buckets, as mod_wsgi')
  t.equal(second.application_time_buckets.reduce((a: number, b: number) => a + b, 0), 6, 'every request of the period in them')
  t.ok(second.application_time >= 0.015, `the average application time covers the 20 ms sleeps (${second.application_time})`)
  t.ok(second.sample_period > 0 && second.stop_time > second.start_time, 'a period')
})

t.test('SIGUSR2: every thread\'s stack, with the request it serves and for how long', async (t) => {
  const apache = await startApache(t, { config })
  await up(apache)
  const slow = apache.request('/py?sleep=3&case=usr2')
  await sleep(800)
  const pid = groupPids(apache, 'py')[0]
  process.kill(pid, 'SIGUSR2')
  const head = await apache.waitForLog(/WSGI03040: Dump of Python stacks requested: SIGUSR2 received/)
  t.ok(head, 'the dump is announced')
  const line = await apache.waitForLog(/Thread 0x[0-9a-f]+ serving \/py\?sleep=3&case=usr2 \[request [^\]]+\] for \d+ ms \(most recent call first\):/)
  const ms = Number(/for (\d+) ms/.exec(line)?.[1])
  t.ok(ms >= 500 && ms < 3000, `the thread serving it, for how long (${ms} ms)`)
  t.match(apache.log(), /File "[^"]*python-logging\/app\.wsgi", line \d+ in application/, 'and its stack')
  t.equal((await slow).status, 200, 'the request goes on')
  t.equal(pid, groupPids(apache, 'py')[0], 'the daemon too')
})
