// Issue 7, faults: an application that leaks memory under memory-limit, while other requests keep the
// process busy. The allocation that crosses the limit fails with MemoryError (500, the traceback in the
// error log); the process then restarts gracefully (the other requests are not lost) instead of failing
// every request from then on, and requests succeed again on the fresh process.
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'
import { replacedLogged } from '../helpers/daemons'
import { runLoad, summarise } from '../helpers/load'

const LIMIT_MB = 1024
const CONFIG = `
WSGIDaemonProcess leaky threads=4 memory-limit=${LIMIT_MB * 1024 * 1024} shutdown-timeout=5
WSGIProcessGroup leaky
WSGIScriptAlias /leak ${fixture('leak')}
WSGIScriptAlias /hello ${fixture('hello-world')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

t.test('memory-limit: MemoryError, then a restart, not a wedged daemon', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  const first = await waitFor(() => (apache.daemonPids().length === 1 ? apache.daemonPids()[0] : 0), 15000, 50, 'the daemon')
  await apache.request('/hello')
  let fresh = 0
  // Other requests of the same group meanwhile, until a fresh process serves.
  const background = runLoad({ port: apache.port, path: '/hello', connections: 2, durationMs: 60000, timeoutMs: 20000, until: () => fresh > 0 })

  const statuses: number[] = []
  let failedAt = -1
  for (let i = 0; i < 60 && failedAt < 0; i++) {
    const r = await apache.request('/leak?mb=64', { timeoutMs: 20000 })
    statuses.push(r.status)
    if (r.status !== 200) failedAt = i
  }
  t.comment(`memory-limit ${LIMIT_MB} MiB: ${failedAt} requests of 64 MiB succeeded before the first failure (${statuses.at(-1)})`)
  t.ok(failedAt > 0, 'requests succeeded until the limit was reached')
  t.equal(statuses.at(-1), 500, 'the request that crossed the limit got 500')
  await apache.waitForLog(/MemoryError/, 10000)
  t.pass('MemoryError and its traceback are in the error log')
  t.match(await apache.waitForLog(/WSGI02033: [^\n]*/), /Memory limit reached .*restarting process/, 'the daemon says why it restarts')

  // Not wedged: the process restarts, and a fresh one serves.
  fresh = await waitFor(
    () => {
      const now = apache.daemonPids()
      return now.length === 1 && now[0] !== first ? now[0] : 0
    },
    20000,
    50,
    'a fresh daemon process',
  )
  t.ok(fresh, `a fresh daemon (${fresh}) replaced ${first}`)
  t.ok(await replacedLogged(apache, 'leaky', first), 'exit status 4: replaced')
  const after = await Promise.all(Array.from({ length: 4 }, () => apache.request('/leak?mb=1')))
  t.ok(after.every((r) => r.status === 200), 'requests succeed again')
  t.ok(after.every((r) => Number(r.text.split(' ')[0]) === fresh), 'served by the fresh process')
  t.ok(Math.max(...after.map((r) => Number(r.text.split(' ')[1]))) <= 4, 'which holds none of the leaked memory')

  const bg = summarise((await background).samples)
  t.comment(`other requests meanwhile: ${bg.total}, ${JSON.stringify(bg.byStatus)} ${JSON.stringify(bg.byFailure)}, max ${bg.max} ms`)
  t.ok(bg.total > 0, 'other requests ran meanwhile')
  t.equal(bg.ok, bg.total, 'none of them failed: the restart was graceful')
})
