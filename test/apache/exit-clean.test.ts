// How a daemon process ends: Python finalised cleanly on every exit, and a crash during finalisation
// that says where it happened.
//  - A daemon with the main interpreter and two sub-interpreters in use is restarted (SIGUSR1) ten
//    times: every exit is status 0 after WSGI02029, none by a signal, also with an atexit function
//    that calls PyGILState_Ensure as C extensions do. Under CPython 3.13 (the wrapper in
//    python-3.13/) this caught Py_FinalizeEx freeing the finaliser's own thread state, which it took
//    for another thread's: a SIGSEGV at exit in about one daemon in ten.
//  - An application whose atexit function crashes the process: the error log gets the native stack
//    (native/addon/py/crash_trace.cc) and Apache's parent the signal, and a new daemon serves.
import t from 'tap'
import { ALLOW_FIXTURES, fixture, startApache, waitFor } from '../helpers/apache'
import { daemonOf, exited, pidOf } from '../helpers/daemons'

t.test('ten restarts with three interpreters in use: every exit is clean', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g threads=2
WSGIProcessGroup g
WSGIScriptAlias /main ${fixture('hello-world')} application-group=%{GLOBAL}
WSGIScriptAlias /one ${fixture('hello-world')} application-group=one
WSGIScriptAlias /two ${fixture('hello-world')} application-group=two
WSGIScriptAlias /gilstate ${fixture('gilstate-at-exit')} application-group=%{GLOBAL}
${ALLOW_FIXTURES}
`,
  })
  const ended: number[] = []
  let pid = await daemonOf(apache, 'g')
  for (let i = 0; i < 10; i++) {
    for (const path of ['/main', '/one', '/two', '/gilstate']) t.equal(pidOf(await apache.request(path)), pid, `${path} served by ${pid}`)
    process.kill(pid, 'SIGUSR1')
    await waitFor(() => exited(pid), 15000, 20, `pid ${pid} to exit`)
    ended.push(pid)
    pid = await daemonOf(apache, 'g', ended)
  }
  for (const p of ended) {
    await waitFor(() => new RegExp(`\\(pid ${p}\\) (stopped|exited) with`).test(apache.log()), 5000, 50, `the parent to note pid ${p}`)
    t.match(apache.log(), new RegExp(`\\[pid ${p}:tid \\d+\\] WSGI02029: Exiting process 'g' \\(status 0\\)`), `pid ${p}: Python finalised, status 0`)
  }
  t.notMatch(apache.log(), /killed by signal|exit signal|during Python finalisation/, 'no exit by a signal')
})

t.test('a crash during Python finalisation logs the native stack', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess c threads=2
WSGIProcessGroup c
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /armed ${fixture('segv-at-exit')}
WSGIScriptAlias /hello ${fixture('hello-world')}
${ALLOW_FIXTURES}
`,
  })
  const first = pidOf(await apache.request('/armed'))
  process.kill(first, 'SIGTERM')
  await waitFor(() => exited(first), 15000, 20, `pid ${first} to exit`)
  const line = await apache.waitForLog(new RegExp(`\\(pid ${first}\\) (?:exited|stopped) with code 11 \\(killed by signal 11, SIGSEGV\\)[^\\n]*`), 10000)
  t.ok(line, `the parent names the signal: ${line}`)
  const text = apache.log()
  t.match(text, /mod_wsgi: daemon process got Segmentation fault during Python finalisation \(ending interpreters, Py_FinalizeEx\); native stack of the thread:\n/)
  t.match(text, /wsgi_bridge\.node\(_ZN7modwsgi7Runtime8finalizeEv/, "the stack is the finalising thread's: Runtime::finalize")
  const second = await daemonOf(apache, 'c', [first])
  t.equal(pidOf(await apache.request('/hello')), second, 'a new daemon serves')
})
