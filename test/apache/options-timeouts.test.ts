// request-timeout (release notes, New Features 8) and deadlock-timeout through a real Apache. With one
// thread a request older than request-timeout restarts the process; with N threads the summed age of the
// active requests divided by N must exceed it. Either way the Python stack of every active thread is
// logged, the clients get 504, and request-timeout works whatever deadlock-timeout is. deadlock-timeout
// restarts a process whose GIL cannot be obtained (an extension holding it) and gives 503.
import t from 'tap'
import { ALLOW_FIXTURES, type Apache, assertRefused, fixture, startApache } from '../helpers/apache'
import { daemonOf, pidOf, replacedLogged, timed } from '../helpers/daemons'

function start(t: Parameters<typeof startApache>[0], options: string): Promise<Apache> {
  return startApache(t, {
    config: `
WSGIDaemonProcess g ${options}
WSGIProcessGroup g
WSGIScriptAlias /hello ${fixture('hello-world')}
WSGIScriptAlias /sleep ${fixture('sleep-logged')}
WSGIScriptAlias /gil ${fixture('hold-gil')}
${ALLOW_FIXTURES}
`,
  })
}

const count = (text: string, re: RegExp) => (text.match(new RegExp(re.source, 'g')) ?? []).length

t.test('request-timeout, threads=1: the request\'s age; 504, stacks logged, restart', async (t) => {
  const apache = await start(t, 'threads=1 request-timeout=1 deadlock-timeout=0 shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  const [r, took] = await timed(apache.request('/sleep?s=30&id=stuck'))
  t.equal(r.status, 504, 'Gateway Timeout')
  t.ok(took >= 900 && took < 4000, `after request-timeout (${took} ms), although deadlock-timeout is off`)
  const log = apache.log()
  t.match(log, /WSGI02024: Daemon process request time limit exceeded, stopping process 'g': the active request has run for \d+ ms \(request-timeout 1000 ms\)\./)
  t.match(log, /WSGI03040: Dump of Python stacks requested: request-timeout expired/)
  t.match(log, /File "[^"]*sleep-logged\/app\.wsgi", line \d+ in wait_for_backend/, "the stack shows where the request is blocked")
  await replacedLogged(apache, 'g', first)
  t.not(pidOf(await apache.request('/hello')), first, 'a new daemon serves')
})

t.test('request-timeout, threads=4: one long request is within capacity; four are not', async (t) => {
  const apache = await start(t, 'threads=4 request-timeout=2 shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  const [alone, took] = await timed(apache.request('/sleep?s=3.5&id=alone'))
  t.equal(alone.status, 200, 'one request running 3.5 s over 4 threads: load 0.9 s per thread, not restarted')
  t.equal(pidOf(alone), first)
  t.ok(took >= 3400)
  t.notMatch(apache.log(), /WSGI02024/)

  const all = await Promise.all(['a', 'b', 'c', 'd'].map((id) => timed(apache.request(`/sleep?s=30&id=${id}`))))
  t.same(all.map(([r]) => r.status), [504, 504, 504, 504], 'four requests running at once: all 504')
  t.ok(all.every(([, ms]) => ms >= 1800 && ms < 6000), `after about request-timeout (${all.map(([, ms]) => ms).join(', ')} ms)`)
  const log = apache.log()
  t.match(log, /WSGI02024: .*4 active requests have run \d+ ms in total, \d+ ms per thread over 4 threads \(request-timeout 2000 ms\)\./)
  t.ok(count(log, /line \d+ in wait_for_backend/) >= 4, 'the stack of every active thread is logged')
  await replacedLogged(apache, 'g', first)
})

t.test('deadlock-timeout: a GIL held for good restarts the daemon (503), stacks logged', async (t) => {
  const apache = await start(t, 'threads=2 deadlock-timeout=2 shutdown-timeout=1')
  const first = await daemonOf(apache, 'g')
  t.equal((await apache.request('/hello')).status, 200)
  const [r, took] = await timed(apache.request('/gil?s=60'))
  t.equal(r.status, 503, 'Service Unavailable')
  t.ok(took >= 1500 && took < 7000, `after deadlock-timeout (${took} ms)`)
  const log = apache.log()
  t.match(log, /WSGI02025: Daemon process deadlock timer expired, stopping process 'g' \(Python's GIL not acquired for 2 seconds\)\./)
  t.match(log, /WSGI03040: Dump of Python stacks requested: deadlock-timeout expired/)
  t.match(log, /hold-gil\/app\.wsgi", line \d+ in application/, 'the stack shows the thread holding the GIL')
  await replacedLogged(apache, 'g', first, 10000, '4|14')
  const second = await daemonOf(apache, 'g', [first])
  t.equal(pidOf(await apache.request('/hello')), second, 'a new daemon serves')
})

t.test('apache2 -t names the directive and the option on a bad timeout', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['request-timeout=-5', /WSGIDaemonProcess 'g': option 'request-timeout' must be an integer from 0 to \d+, not '-5'/],
    ['deadlock-timeout=x', /option 'deadlock-timeout' must be an integer from 0 to \d+, not 'x'/],
    ['inactivity-timeout=1m', /option 'inactivity-timeout' must be an integer from 0 to \d+, not '1m'/],
    ['graceful-timeout=', /option 'graceful-timeout' must be an integer from 0 to \d+, not ''/],
    ['shutdown-timeout=5s', /option 'shutdown-timeout' must be an integer from 0 to \d+, not '5s'/],
    ['cpu-time-limit=-1', /option 'cpu-time-limit' must be an integer from 0 to \d+, not '-1'/],
    ['maximum-requests=1e3', /option 'maximum-requests' must be an integer from 0 to \d+, not '1e3'/],
  ]
  for (const [option, message] of bad) await assertRefused(t, `WSGIDaemonProcess g ${option}`, message, option)
})
