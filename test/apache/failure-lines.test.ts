// Failures that say what happened: every 5xx the module produces has exactly one error-log line with a
// message code that names the cause and the request, whichever side logged it (the Apache child or the
// daemon), and every line about the request carries its id. The id is Apache's request log id (%L),
// also the request note mod_wsgi.request_id (loggable in the access log) and environ['mod_wsgi.request_id'];
// with mod_unique_id loaded it is UNIQUE_ID.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, sleep, startApache, waitFor, type Apache, type Response } from '../helpers/apache'
import { groupPids } from '../helpers/daemons'
import { ALLOW_ASGI, asgiFixture } from '../asgi/helpers'

const APP = fixture('status-codes')
const CONFIG = `
LogFormat "%{mod_wsgi.request_id}n %L \\"%r\\" %>s" wsgi
CustomLog {{DIR}}/logs/access.log wsgi
WSGIDaemonProcess main processes=1 threads=4 header-buffer-size=8192
WSGIDaemonProcess qt processes=1 threads=1 queue-timeout=1
WSGIDaemonProcess rt processes=1 threads=1 request-timeout=2
WSGIDaemonProcess crash processes=1 threads=2
WSGIDaemonProcess st processes=1 threads=1 socket-timeout=2
WSGIScriptAlias /main ${APP} process-group=main
WSGIScriptAlias /qt ${APP} process-group=qt
WSGIScriptAlias /rt ${APP} process-group=rt
WSGIScriptAlias /crash ${APP} process-group=crash
WSGIScriptAlias /st ${APP} process-group=st
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

/** The request id the access log gives the request whose query has case=NAME, and its status. */
function accessEntry(apache: Apache, name: string): { id: string; logId: string; status: number } | null {
  let text = ''
  try {
    text = readFileSync(join(apache.dir, 'logs', 'access.log'), 'latin1')
  } catch {
    return null
  }
  const m = new RegExp(`^(\\S+) (\\S+) "GET [^"]*[?&]case=${name}[& ][^"]*" (\\d+)$`, 'm').exec(text)
  return m ? { id: m[1], logId: m[2], status: Number(m[3]) } : null
}

type Entry = { id: string; logId: string; status: number }

/** Waits for the access log entry of case NAME. */
async function entry(apache: Apache, name: string, timeoutMs: number): Promise<Entry> {
  return (await waitFor(() => accessEntry(apache, name), timeoutMs, 50, `the access log entry of ${name}`)) as Entry
}

/** Error-level lines about request `id` that carry a message code. */
function errorLines(apache: Apache, id: string): string[] {
  return apache
    .log()
    .split('\n')
    .filter((l) => l.includes(`[request ${id}]`) && /\[wsgi:(error|crit|alert|emerg)\]/.test(l) && /WSGI0\d{4}: /.test(l))
}

interface Case {
  name: string
  path: string
  status: number
  cause: RegExp
}

const CASES: Case[] = [
  { name: 'raise', path: '/main?raise=1', status: 500, cause: /WSGI03013: Exception occurred processing WSGI script '[^']*status-codes\/app\.wsgi'/ },
  { name: 'badstatus', path: '/main?badstatus=1', status: 500, cause: /WSGI03013: Exception occurred processing WSGI script/ },
  { name: 'badheader', path: '/main?badheader=1', status: 500, cause: /WSGI03013: Exception occurred processing WSGI script/ },
  { name: 'big', path: '/main?big=10000', status: 500, cause: /WSGI01229: Truncated or oversized response headers received from daemon process 'main': [^\n]*header-buffer-size, 8192 bytes/ },
  { name: 'queued', path: '/qt', status: 503, cause: /WSGI02041: Queue timeout expired for WSGI daemon process 'qt' \(request waited \d+ ms\): \/qt\?case=queued/ },
  { name: 'rt', path: '/rt?ms=8000', status: 504, cause: /WSGI02048: Request interrupted by daemon restart: \/rt\?ms=8000&case=rt \(daemon process 'rt' answered 504: daemon process restarting: request-timeout expired\)/ },
  { name: 'crash', path: '/crash?ms=8000', status: 502, cause: /WSGI01701: Daemon process 'crash' closed connection before sending complete response headers: daemon process 1 \(pid \d+\) was killed by signal 9 \(SIGKILL\), reason crash; pid \d+ replaces it/ },
  { name: 'st', path: '/st?ms=4000', status: 504, cause: /WSGI01225: Timeout when reading response headers from daemon process 'st' \(socket-timeout 2 s\)/ },
]

t.test('each 5xx: one error line with a code, naming the cause and the request; the id everywhere', async (t) => {
  const apache = await startApache(t, { config: CONFIG, })
  for (const g of ['main', 'qt', 'rt', 'crash', 'st'])
    await waitFor(async () => (await apache.request(`/${g}?case=warm-${g}`)).status === 200, 20000, 100, `group ${g}`)

  // A request that succeeds: its environ has the id the access log has.
  const ok = await apache.request('/main?case=ok')
  t.equal(ok.status, 200)

  const url = (c: Case) => `${c.path}${c.path.includes('?') ? '&' : '?'}case=${c.name}`
  const pending = new Map<string, Promise<number>>()
  for (const c of CASES) {
    if (c.name === 'queued') continue
    if (c.name === 'crash') continue
    pending.set(c.name, apache.request(url(c)).then((r) => r.status))
  }
  // queue-timeout: one request holds qt's only thread for 2.5 s; the next waits longer than 1 s.
  const hold = apache.request('/qt?ms=2500&case=hold')
  await sleep(300)
  pending.set('queued', apache.request(url(CASES.find((c) => c.name === 'queued') as Case)).then((r) => r.status))
  // crash: the process serving it is killed mid-request.
  const crashing = apache.request(url(CASES.find((c) => c.name === 'crash') as Case)).then((r) => r.status)
  await sleep(800)
  for (const p of groupPids(apache, 'crash')) process.kill(p, 'SIGKILL')
  pending.set('crash', crashing)
  t.equal((await hold).status, 200, 'the request that held the thread')

  for (const c of CASES) {
    const status = await pending.get(c.name)
    t.equal(status, c.status, `${c.name}: ${c.status}`)
  }
  const okEntry = await entry(apache, 'ok', 5000)
  t.equal(ok.headers['x-request-id'], okEntry.id, "environ['mod_wsgi.request_id'] is the id of the access log's %{mod_wsgi.request_id}n")
  t.equal(okEntry.logId, okEntry.id, "and of Apache's %L")
  t.match(okEntry.id, /^[A-Za-z0-9@_+\/-]{8,}$/, 'an id of a few characters')

  const ids = new Set<string>()
  for (const c of CASES) {
    const e = await entry(apache, c.name, 10000)
    t.equal(e.status, c.status, `${c.name}: logged with its status`)
    t.equal(e.logId, e.id, `${c.name}: the note and %L agree`)
    ids.add(e.id)
    // The daemon's line may come a moment after the answer.
    const lines = ((await waitFor(() => {
      const l = errorLines(apache, e.id)
      return l.length > 0 && l.some((x) => c.cause.test(x)) ? l : null
    }, 10000, 50, `the error line of ${c.name}`).catch(() => errorLines(apache, e.id))) ?? []) as string[]
    await sleep(c.name === 'crash' ? 300 : 0)
    const settled = errorLines(apache, e.id)
    t.equal(settled.length, 1, `${c.name}: exactly one error line with a code about the request: ${settled.join('\n')}`)
    t.match(lines[0] ?? '', c.cause, `${c.name}: it names the cause`)
  }
  t.equal(ids.size, CASES.length, 'every request has an id of its own')

  // The traceback of the exception carries the request's tag on each of its lines.
  const raise = accessEntry(apache, 'raise')
  const tb = apache.log().split('\n').filter((l) => l.includes(`[request ${raise?.id}]`) && !/WSGI0\d{4}/.test(l))
  t.ok(tb.some((l) => /Traceback \(most recent call last\):/.test(l)), 'the traceback lines are tagged with the request')
  t.ok(tb.some((l) => /RuntimeError: status-codes fixture raised on purpose/.test(l)))
  t.ok(tb.every((l) => /\[client 127\.0\.0\.1:\d+\] \[request /.test(l)), 'client and request, as Apache tags its own lines')
  // The stuck request's stack, with what the thread was serving.
  const rt = accessEntry(apache, 'rt')
  t.match(apache.log(), new RegExp(`Thread 0x[0-9a-f]+ serving /rt\\?ms=8000&case=rt \\[request ${rt?.id?.replace(/[+]/g, '\\+')}\\] for \\d+ ms \\(most recent call first\\):`), 'request-timeout logs the stuck thread\'s stack, naming its request')
  // The child's own line about a failure the daemon logged is at info.
  const queued = accessEntry(apache, 'queued')
  t.match(apache.log(), new RegExp(`\\[wsgi:info\\][^\\n]*\\[request ${queued?.id?.replace(/[+]/g, '\\+')}\\] WSGI01224: Daemon process 'qt' failed the request with status 503`))
})

t.test('with mod_unique_id loaded, the request id is UNIQUE_ID', async (t) => {
  const apache = await startApache(t, {
    modules: ['unique_id'],
    config: `
LogFormat "%{mod_wsgi.request_id}n %{UNIQUE_ID}e \\"%r\\" %>s" wsgi
CustomLog {{DIR}}/logs/access.log wsgi
WSGIDaemonProcess main processes=1 threads=2
WSGIScriptAlias /main ${APP} process-group=main
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const r = (await waitFor(async () => {
    const x = await apache.request('/main?case=uid')
    return x.status === 200 ? x : null
  }, 20000, 100, 'an answer')) as Response
  const e = await entry(apache, 'uid', 5000)
  t.equal(e.logId, e.id, 'the note is UNIQUE_ID')
  t.equal(r.headers['x-request-id'], e.id, 'and so is the environ value')
  t.match(e.id, /^[A-Za-z0-9@_-]{20,}$/, "mod_unique_id's form")
})

t.test('ASGI: each failure has one error line with a code, tagged with the request', async (t) => {
  const apache = await startApache(t, {
    config: `
LogFormat "%{mod_wsgi.request_id}n %L \\"%r\\" %>s" wsgi
CustomLog {{DIR}}/logs/access.log wsgi
WSGIDaemonProcess asgi processes=1 threads=2
WSGIScriptAlias /e ${asgiFixture('errors')} process-group=asgi application-group=%{GLOBAL}
${ALLOW_ASGI}
`,
  })
  const cases: Case[] = [
    { name: 'araise', path: '/e/raise-before', status: 500, cause: /WSGI03200: Exception occurred processing ASGI application 'application' of script '[^']*'/ },
    { name: 'anoresp', path: '/e/no-response', status: 500, cause: /WSGI0320\d: ASGI application 'application' of script '[^']*' returned without starting a response/ },
    { name: 'abadstatus', path: '/e/bad-status', status: 500, cause: /WSGI032\d\d: / },
  ]
  for (const c of cases) {
    const r = await apache.request(`${c.path}?case=${c.name}`)
    t.equal(r.status, c.status, `${c.name}: ${c.status}`)
  }
  for (const c of cases) {
    const e = await entry(apache, c.name, 10000)
    const lines = (await waitFor(() => {
      const l = errorLines(apache, e.id)
      return l.some((x) => c.cause.test(x)) ? l : null
    }, 10000, 50, `the error line of ${c.name}`).catch(() => errorLines(apache, e.id))) as string[]
    await sleep(200)
    const settled = errorLines(apache, e.id)
    t.equal(settled.length, 1, `${c.name}: exactly one error line with a code about the request: ${settled.join('\n')}`)
    t.match(lines[0] ?? '', c.cause, `${c.name}: it names the cause`)
    t.match(lines[0] ?? '', /\[client 127\.0\.0\.1:\d+\] \[request /, `${c.name}: tagged with client and request`)
  }
})
