// Daemon processes under the Apache parent: several processes and threads share the load, a killed
// daemon is replaced, and stopping Apache leaves nothing behind.
import { existsSync, readdirSync } from 'node:fs'
import t from 'tap'
import { cmdline, fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'

const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=4 display-name=%{GROUP}
WSGIProcessGroup pool
WSGIScriptAlias /pid ${fixture('pid-sleep')}
WSGIScriptAlias /hello ${fixture('hello-world')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

t.test('2 processes x 4 threads answer 200 concurrent requests, both processes serving', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  await waitFor(() => apache.daemonPids().length === 2, 10000, 50, 'two daemon processes')
  const daemons = apache.daemonPids()
  // The title is set by the daemon once Node has started (argv[0] is already "(wsgi:pool)" before that).
  for (const pid of daemons) {
    await waitFor(() => cmdline(pid) === '(wsgi:pool)', 10000, 50, `daemon ${pid} title`).catch(() => {})
    t.equal(cmdline(pid), '(wsgi:pool)', `daemon ${pid} shows its display-name`)
  }

  const results = await Promise.all(Array.from({ length: 200 }, () => apache.request('/pid?ms=30')))
  t.ok(results.every((r) => r.status === 200), 'all 200 answered 200')
  const pids = new Set(results.map((r) => Number(r.text.split(' ')[0])))
  const threads = new Set(results.map((r) => r.text))
  t.same([...pids].sort(), [...daemons].sort(), 'both daemon processes served requests')
  t.ok(threads.size > 2, `requests ran on several threads (${threads.size} pid/thread pairs)`)
})

t.test('a daemon killed with SIGKILL is replaced and the next requests succeed', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  await waitFor(() => apache.daemonPids().length === 2, 10000, 50, 'two daemon processes')
  const [victim, survivor] = apache.daemonPids()
  process.kill(victim, 'SIGKILL')
  const replaced = await waitFor(
    () => {
      const now = apache.daemonPids()
      return now.length === 2 && !now.includes(victim) && now.includes(survivor) ? now : null
    },
    10000,
    50,
    'a replacement daemon',
  )
  t.equal(replaced?.length, 2, 'two daemons again')
  const results = await Promise.all(Array.from({ length: 40 }, () => apache.request('/hello')))
  t.ok(results.every((r) => r.status === 200 && r.text === 'Hello World!'), 'requests after the kill all succeed')
  t.match(apache.log(), new RegExp(`${victim}`), 'the death of the daemon is logged')
})

t.test('stopping Apache leaves no daemon process and no socket file', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  await waitFor(() => apache.daemonPids().length === 2, 10000, 50, 'two daemon processes')
  const daemons = apache.daemonPids()
  const sockets = () => readdirSync(apache.socketDir).filter((f) => f.startsWith('wsgi'))
  t.ok(sockets().length >= 1, 'a socket exists while running')
  await apache.stop()
  await waitFor(() => daemons.every((p) => !existsSync(`/proc/${p}`)), 10000, 50, 'daemons to exit')
  t.same(sockets(), [], 'no socket file remains')
})
