// Issue 7, faults under load: `apache2 -k graceful` while wrk runs gives zero failed requests. Each
// graceful restart with the configuration unchanged replaces each daemon start-first: the old one serves
// until its successor is ready (docs/restarts.md; a changed group's new daemons take over once ready:
// test/reliability/restarts.test.ts). Before that, each restart
// started a new generation of daemons on the same socket path and the old ones drained (GOAWAY:
// a request they did not run is sent again to the new ones).
//
// What a client can still see is Apache's own doing, not mod_wsgi's: on a graceful restart Apache's old
// children close their idle keep-alive connections, and a client that sent its next request on one just
// then finds it closed before any byte of a response. wrk counts that as a "read" socket error; HTTP
// clients retry it (RFC 9112, 9.3.1). So the run is made three ways: wrk with keep-alive (no non-2xx
// response, no timeout; read errors counted and reported), our own client with keep-alive (which tells
// those closed-idle-connection cases from real failures, and shows there are no real ones), and wrk with
// `Connection: close` (no keep-alive, so no such case: zero errors of any kind).
import t from 'tap'
import { fixture, FIXTURES, sleep, startApache, waitFor, type Apache } from '../helpers/apache'
import { runLoad, summarise } from '../helpers/load'
import { runWrk, wrkAvailable } from '../helpers/wrk'

const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=8
WSGIProcessGroup pool
WSGIScriptAlias /hello ${fixture('hello-world')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`
// Apache tuning as in bench-notes: no child retired mid-run for spare-thread reasons.
const PREAMBLE = `
MaxKeepAliveRequests 0
KeepAliveTimeout 30
`

const SECONDS = 6
const GRACEFULS_AT = [1500, 3000, 4500]

/** Sends `apache2 -k graceful` at the given times (ms from now); resolves with how many were sent. */
async function gracefuls(apache: Apache, at: number[]): Promise<number> {
  const t0 = Date.now()
  let n = 0
  for (const when of at) {
    await sleep(Math.max(0, when - (Date.now() - t0)))
    await apache.graceful()
    n++
  }
  return n
}

/** Waits until the `generation`-th restart was taken in: the configuration is unchanged, so the parent
 *  has its daemons replaced one at a time (docs/restarts.md) and says so once per restart. */
async function daemonsOfNewGeneration(apache: Apache, generation: number): Promise<void> {
  await waitFor(() => (apache.log().match(/WSGI01119: process group 'pool': configuration unchanged/g) ?? []).length >= generation, 20000, 50, `generation ${generation}`)
}

t.test('apache2 -k graceful three times under wrk: zero failed requests', { skip: wrkAvailable() ? false : 'wrk is not installed' }, async (t) => {
  const apache = await startApache(t, { config: CONFIG, preamble: PREAMBLE })
  await waitFor(() => apache.daemonPids().length === 2, 15000, 50, 'two daemon processes')
  await Promise.all(Array.from({ length: 16 }, () => apache.request('/hello')))
  const url = `http://127.0.0.1:${apache.port}/hello`

  // 1. wrk, keep-alive.
  const [ka, n1] = await Promise.all([runWrk({ url, connections: 16, seconds: SECONDS }), gracefuls(apache, GRACEFULS_AT)])
  await daemonsOfNewGeneration(apache, n1)
  t.comment(
    `wrk keep-alive, ${n1} gracefuls: ${ka.requests} requests (${ka.rps} req/s), non-2xx ${ka.non2xx}, ` +
      `socket errors ${JSON.stringify(ka.errors)}, p99 ${ka.latency.p99} ms, max ${ka.latency.max} ms`,
  )
  t.ok(ka.requests > 1000, 'a real load ran')
  t.equal(ka.non2xx, 0, 'no request got an error status')
  t.equal(ka.errors.timeout, 0, 'no request timed out')
  t.equal(ka.errors.connect, 0, 'no connect error')
  t.ok(ka.errors.read <= 16 * n1, `read errors (${ka.errors.read}): at most one per keep-alive connection per restart`)

  // 2. Our client, keep-alive: which failures are closed idle connections, and are there others?
  let sent = 0
  const [own] = await Promise.all([
    runLoad({ port: apache.port, path: '/hello', connections: 16, durationMs: SECONDS * 1000, timeoutMs: 10000 }),
    gracefuls(apache, GRACEFULS_AT).then((n) => (sent = n)),
  ])
  await daemonsOfNewGeneration(apache, n1 + sent)
  const s = summarise(own.samples)
  t.comment(
    `own client keep-alive, ${sent} gracefuls: ${s.total} requests, ${JSON.stringify(s.byStatus)}, ` +
      `failures ${JSON.stringify(s.byFailure)} (keepalive-closed: Apache closed an idle keep-alive connection as the ` +
      `next request went out on it), p99 ${s.p99} ms, max ${s.max} ms`,
  )
  t.same(Object.keys(s.byStatus), ['200'], 'every answered request got 200')
  t.equal(s.byFailure.error ?? 0, 0, 'no request failed otherwise (reset or cut short)')
  t.equal(s.byFailure.timeout ?? 0, 0, 'no request timed out')
  const closed = own.samples.filter((x) => x.failure === 'keepalive-closed')
  t.ok(closed.every((x) => x.reused), 'every keepalive-closed case was on a reused connection')

  // 3. wrk without keep-alive: zero errors of any kind.
  const [nk, n3] = await Promise.all([
    runWrk({ url, connections: 16, seconds: SECONDS, headers: ['Connection: close'] }),
    gracefuls(apache, GRACEFULS_AT),
  ])
  t.comment(
    `wrk Connection: close, ${n3} gracefuls: ${nk.requests} requests (${nk.rps} req/s), non-2xx ${nk.non2xx}, ` +
      `socket errors ${JSON.stringify(nk.errors)}, p99 ${nk.latency.p99} ms, max ${nk.latency.max} ms`,
  )
  t.ok(nk.requests > 500, 'a real load ran')
  t.equal(nk.non2xx, 0, 'no request got an error status')
  t.same(nk.errors, { connect: 0, read: 0, write: 0, timeout: 0 }, 'no socket error of any kind')
  t.notMatch(apache.log(), /WSGI0122[0-9]|WSGI0120[01]|WSGI01235|WSGI02040|WSGI02045/, 'no failed or malformed exchange with a daemon in the log')
})
