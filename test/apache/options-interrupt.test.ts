// mod_wsgi 6's interrupt-timeout and switch-interval through a real Apache. With request-timeout and
// interrupt-timeout, a request over its time gets mod_wsgi.RequestTimeout in its own thread: if it
// unwinds, its client gets 504 and the process and its other requests carry on (same pid); if it is
// still running interrupt-timeout later, the process restarts as request-timeout always did.
// switch-interval= (and WSGISwitchInterval for the default group) is sys.getswitchinterval().
import t from 'tap'
import { ALLOW_FIXTURES, assertRefused, fixture, startApache } from '../helpers/apache'
import { daemonOf, pidOf, replacedLogged, timed } from '../helpers/daemons'

t.test('interrupt-timeout: the stuck request gets 504, the process and a concurrent request carry on', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g threads=2 request-timeout=1 interrupt-timeout=5 shutdown-timeout=1
WSGIProcessGroup g
WSGIScriptAlias /hello ${fixture('hello-world')}
WSGIScriptAlias /hang ${fixture('hang')}
WSGIScriptAlias /pid ${fixture('pid-sleep')}
${ALLOW_FIXTURES}
`,
  })
  const pid = await daemonOf(apache, 'g')
  const stuck = timed(apache.request('/hang'))
  // Runs while the other one is stuck, and never itself longer than request-timeout: with 2 threads
  // the measure (the mean age) passes 1 s when the stuck one is about 1.5 to 2 s old.
  await new Promise((res) => setTimeout(res, 1000))
  const concurrent = apache.request('/pid?ms=500')
  const [r, took] = await stuck
  t.equal(r.status, 504, 'Gateway Timeout')
  t.ok(took >= 1500 && took < 6000, `when request-timeout's measure was exceeded (${took} ms)`)
  const other = await concurrent
  t.equal(other.status, 200, 'the concurrent request completed')
  t.equal(pidOf(other), pid, 'in the same process')
  const after = await apache.request('/hello')
  t.equal(pidOf(after), pid, 'the process was not restarted')
  t.equal((await apache.request('/pid?ms=1')).status, 200, 'and its threads serve on')
  const log = apache.log()
  t.match(log, /WSGI02103: Request exceeded request-timeout in daemon process 'g' after \d+ ms: raising mod_wsgi\.RequestTimeout in its thread, 5 seconds to unwind \(interrupt-timeout\): \/hang\./)
  t.match(log, /WSGI01224: Daemon process 'g' failed the request with status 504: Request of WSGI script '[^']*hang\/app\.wsgi' interrupted by mod_wsgi\.RequestTimeout \(request-timeout, interrupt-timeout\) at [^ ]*hang\/app\.wsgi:\d+ in stuck_in_here_forever\./,
    'one line for the request, saying where it was interrupted')
  t.notMatch(log, /WSGI02024|exited with code/, 'no restart')
  t.notMatch(log, /Traceback/, 'no traceback: the exception is the server\'s own')
})

t.test('interrupt-timeout: a request computing in Python (never blocking) is interrupted too', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g threads=1 request-timeout=1 interrupt-timeout=10 shutdown-timeout=1
WSGIProcessGroup g
WSGIScriptAlias /hello ${fixture('hello-world')}
WSGIScriptAlias /burn ${fixture('cpu-burn')}
${ALLOW_FIXTURES}
`,
  })
  const pid = await daemonOf(apache, 'g')
  const [r, took] = await timed(apache.request('/burn?cpu=60&max=60'))
  t.equal(r.status, 504)
  t.ok(took >= 900 && took < 8000, `soon after request-timeout (${took} ms)`)
  t.match(apache.log(), /interrupted by mod_wsgi\.RequestTimeout \(request-timeout, interrupt-timeout\) at [^ ]*cpu-burn\/app\.wsgi:\d+ in application\./)
  t.equal(pidOf(await apache.request('/hello')), pid, 'the process was not restarted')
})

t.test('interrupt-timeout: a request that does not unwind in time restarts the process', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g threads=1 request-timeout=1 interrupt-timeout=1 shutdown-timeout=1
WSGIProcessGroup g
WSGIScriptAlias /hello ${fixture('hello-world')}
WSGIScriptAlias /sleep ${fixture('sleep')}
${ALLOW_FIXTURES}
`,
  })
  const pid = await daemonOf(apache, 'g')
  // One sleep of 30 s in C: the exception can only land when it returns.
  const [r, took] = await timed(apache.request('/sleep?s=30'))
  t.equal(r.status, 504)
  t.ok(took >= 1800 && took < 8000, `after request-timeout + interrupt-timeout (${took} ms)`)
  const log = apache.log()
  t.match(log, /WSGI02103: .*\/sleep\?s=30\./, 'interrupted first')
  t.match(log, /WSGI02024: Daemon process request time limit exceeded, stopping process 'g': \/sleep\?s=30 is still running \d+ ms after it was interrupted with mod_wsgi\.RequestTimeout \(interrupt-timeout 1000 ms\)\./)
  await replacedLogged(apache, 'g', pid)
  t.not(pidOf(await apache.request('/hello')), pid, 'a new daemon serves')
})

t.test('switch-interval= and WSGISwitchInterval: sys.getswitchinterval()', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGISwitchInterval 0.003
WSGIDaemonProcess fast switch-interval=0.0015 threads=1
WSGIDaemonProcess plain threads=1
WSGIScriptAlias /fast ${fixture('python-info')} process-group=fast
WSGIScriptAlias /fast-sub ${fixture('python-info')} process-group=fast application-group=sub
WSGIScriptAlias /plain ${fixture('python-info')} process-group=plain
WSGIScriptAlias /default ${fixture('python-info')}
${ALLOW_FIXTURES}
`,
  })
  const interval = async (path: string) => JSON.parse((await apache.request(path)).text).switch_interval as number
  t.equal(await interval('/fast'), 0.0015, 'switch-interval=0.0015')
  t.equal(await interval('/fast-sub'), 0.0015, 'the same GIL in a sub-interpreter')
  t.equal(await interval('/plain'), 0.005, "no switch-interval: Python's default (WSGISwitchInterval is the default group's)")
  t.equal(await interval('/default'), 0.003, 'WSGISwitchInterval: the default process group')
})

t.test('apache2 -t names the directive and the option on a bad value', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['WSGIDaemonProcess g interrupt-timeout=-1', /WSGIDaemonProcess 'g': option 'interrupt-timeout' must be an integer from 0 to \d+, not '-1'/],
    ['WSGIDaemonProcess g interrupt-timeout=10s', /option 'interrupt-timeout' must be an integer from 0 to \d+, not '10s'/],
    ['WSGIDaemonProcess g switch-interval=0', /WSGIDaemonProcess 'g': option 'switch-interval' must be a number of seconds from 0\.000001 to 60 \(as sys\.setswitchinterval\(\)\), not '0'/],
    ['WSGIDaemonProcess g switch-interval=5ms', /option 'switch-interval' must be a number of seconds .*, not '5ms'/],
    ['WSGISwitchInterval -0.1', /WSGISwitchInterval must be a number of seconds from 0\.000001 to 60 \(as sys\.setswitchinterval\(\)\), not '-0\.1'/],
    ['WSGISwitchInterval 61', /WSGISwitchInterval must be a number of seconds .*, not '61'/],
    ['<VirtualHost *:80>\nWSGISwitchInterval 0.01\n</VirtualHost>', /WSGISwitchInterval cannot occur within <VirtualHost> section/],
    ['<VirtualHost *:80>\nWSGIPerInterpreterGIL On\n</VirtualHost>', /WSGIPerInterpreterGIL cannot occur within <VirtualHost> section/],
  ]
  for (const [config, message] of bad) await assertRefused(t, config, message)
})
