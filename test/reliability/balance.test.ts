// Issue 7, several processes: requests must not wait in a busy daemon process while another process of
// the group has a free thread. Two processes of two threads; three long requests make one process
// full; short requests sent then must all be served at once by the process with room (the busy one
// sends back what reaches it with GOAWAY and accepts nothing while full), none waiting behind the
// long ones.
import { chmodSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'

const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=2
WSGIProcessGroup pool
WSGIScriptAlias /hold ${fixture('hold')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

const LONG_MS = 4000

t.test('a full process sends work to the process with a free thread', async (t) => {
  const apache = await startApache(t, { config: CONFIG, modulePath: process.env.MOD_WSGI_TEST_MODULE })
  await waitFor(() => apache.daemonPids().length === 2, 15000, 50, 'two daemon processes')
  // Warm both processes and fill the Apache child's pool with connections to each.
  for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: 8 }, () => apache.request('/hold?ms=5')))

  const rec = join(apache.dir, 'rec')
  mkdirSync(rec)
  chmodSync(rec, 0o777)
  const starts = join(rec, 'long')
  const lines = () => {
    try {
      return readFileSync(starts, 'latin1').trim().split('\n').filter(Boolean)
    } catch {
      return []
    }
  }
  const longs = Array.from({ length: 3 }, () => apache.request(`/hold?ms=${LONG_MS}&record=${starts}`))
  // Three long requests on four threads: one process is full, the other has one thread free.
  await waitFor(() => lines().length === 3, 3000, 20, 'the three long requests to start').catch(() => {})
  const perPid = new Map<number, number>()
  for (const l of lines()) perPid.set(Number(l.split(' ')[0]), (perPid.get(Number(l.split(' ')[0])) ?? 0) + 1)
  t.equal(lines().length, 3, `the three long requests all started at once (${JSON.stringify([...perPid])})`)
  const full = [...perPid].find(([, n]) => n === 2)?.[0]

  const began = Date.now()
  const shorts = await Promise.all(
    Array.from({ length: 6 }, async () => {
      const r = await apache.request('/hold?ms=50')
      return { status: r.status, pid: Number(r.text), ms: Date.now() - began }
    }),
  )
  const waited = shorts.filter((s) => s.ms > LONG_MS / 2)
  t.comment(
    `short requests while one process was full: ${shorts.map((s) => `${s.ms} ms`).join(', ')}; ` +
      `${waited.length} of ${shorts.length} waited behind the long ones`,
  )
  t.ok(shorts.every((s) => s.status === 200), 'all short requests answered 200')
  t.equal(waited.length, 0, 'no short request waited in the full process')
  if (full !== undefined) t.notOk(shorts.some((s) => s.pid === full), `none was served by the full process ${full}`)
  const longResults = await Promise.all(longs)
  t.ok(longResults.every((r) => r.status === 200), 'the long requests completed')
})
