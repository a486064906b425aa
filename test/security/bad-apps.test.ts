// Issue 7, hostile and bad input: applications that misbehave (test/fixtures/wsgi/hostile, one ?mode= per
// behaviour). Each gets a clear status (500 before the response began; after it began, a response the
// client can tell is incomplete), a log line saying what the application did, and the daemon process
// serves on afterwards: the same pid answers the next request. Nothing the application sends can inject
// a header. Then: a generator that never ends, whose client went away, is closed and frees its thread;
// a thread the application leaves running does not stop the process from serving, nor from stopping.
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor, type Apache } from '../helpers/apache'
import { rawGet } from '../helpers/raw-http'

interface Case {
  mode: string
  status: number
  /** false: the response began and must end so that the client can tell it is incomplete. */
  complete?: boolean
  /** What the error log must say (after the request was sent). */
  log: RegExp
  /** The body the client gets, when it matters. */
  body?: string
  /** The iterable's close() must have been called. */
  closed?: boolean
  /** Sent once first (to keep start_response/write of a finished request). */
  prime?: boolean
}

const E500 = (log: RegExp): Omit<Case, 'mode'> => ({ status: 500, log })

const CASES: Case[] = [
  // status
  { mode: 'status-int', ...E500(/TypeError: expected unicode object for status, value of type int found/) },
  { mode: 'status-bytes', ...E500(/TypeError: expected unicode object for status, value of type bytes found/) },
  { mode: 'status-none', ...E500(/TypeError: expected unicode object for status, value of type NoneType found/) },
  { mode: 'status-nonlatin', ...E500(/ValueError: status must be encodable as latin-1/) },
  { mode: 'status-order', ...E500(/ValueError: status code is not a 3 digit integer: 'OK 200'/) },
  { mode: 'status-short', ...E500(/ValueError: status code is not a 3 digit integer: '20 OK'/) },
  { mode: 'status-crlf', ...E500(/ValueError: control character present in reason phrase/) },
  { mode: 'status-bare', ...E500(/ValueError: no space following status code: '200'/) },
  { mode: 'status-empty', ...E500(/ValueError: status code is not a 3 digit integer: ''/) },
  { mode: 'status-4digit', ...E500(/ValueError: status code is not a 3 digit integer: '2000 Too Big'/) },
  { mode: 'status-nul', ...E500(/ValueError: control character present in reason phrase/) },
  // headers
  { mode: 'headers-tuple', ...E500(/TypeError: response headers must be a list, not tuple/) },
  { mode: 'headers-dict', ...E500(/TypeError: response headers must be a list, not dict/) },
  { mode: 'header-3tuple', ...E500(/TypeError: list of tuple values expected for response headers/) },
  { mode: 'header-name-bytes', ...E500(/TypeError: expected unicode object for response header name, value of type bytes/) },
  { mode: 'header-value-int', ...E500(/TypeError: expected unicode object for response header value, value of type int/) },
  { mode: 'header-value-nonlatin', ...E500(/ValueError: response header 'X-Euro' must be encodable as latin-1/) },
  { mode: 'header-name-nonlatin', ...E500(/ValueError: response header '[^']*' must be encodable as latin-1/) },
  { mode: 'header-value-crlf', ...E500(/ValueError: embedded newline in response header with name 'X-Split'/) },
  { mode: 'header-value-lf', ...E500(/ValueError: embedded newline in response header with name 'X-Split'/) },
  { mode: 'header-name-crlf', ...E500(/ValueError: invalid response header name 'X-A/) },
  { mode: 'header-name-colon', ...E500(/ValueError: invalid response header name 'X-A: b'/) },
  { mode: 'header-name-space', ...E500(/ValueError: invalid response header name 'Bad Name'/) },
  { mode: 'header-name-empty', ...E500(/ValueError: invalid response header name ''/) },
  { mode: 'header-value-nul', ...E500(/ValueError: embedded null character in response header with name 'X-Nul'/) },
  { mode: 'header-hop', ...E500(/ValueError: hop-by-hop header 'Connection' is not allowed/) },
  { mode: 'header-te', ...E500(/ValueError: hop-by-hop header 'Transfer-Encoding' is not allowed/) },
  { mode: 'header-length-abc', ...E500(/ValueError: invalid Content-Length response header value 'abc'/) },
  { mode: 'header-length-negative', ...E500(/ValueError: invalid Content-Length response header value '-1'/) },
  { mode: 'header-huge', ...E500(/WSGI01229: Truncated or oversized response headers received from daemon process 'bad'[^\n]*header-buffer-size/) },
  { mode: 'headers-many', ...E500(/WSGI01229: Truncated or oversized response headers received from daemon process 'bad'/) },
  // start_response and write()
  { mode: 'no-start-response', ...E500(/RuntimeError: response has not been started/) },
  { mode: 'start-response-twice-after-output', status: 200, complete: false, body: 'first part\n', log: /RuntimeError: headers have already been sent/ },
  { mode: 'exc-info-not-tuple', ...E500(/RuntimeError: exception info must be a tuple of 3 items/) },
  { mode: 'write-str', ...E500(/TypeError: byte string value expected, value of type str found/) },
  { mode: 'write-saved', prime: true, ...E500(/RuntimeError: write\(\) called after the request finished/) },
  { mode: 'start-response-saved', prime: true, ...E500(/RuntimeError: start_response\(\) called after the request finished/) },
  // what the application returns
  { mode: 'return-none', ...E500(/TypeError: 'NoneType' object is not iterable/) },
  { mode: 'return-int', ...E500(/TypeError: 'int' object is not iterable/) },
  { mode: 'return-str', ...E500(/TypeError: sequence of byte string values expected, value of type str found/) },
  { mode: 'return-bytes', ...E500(/TypeError: sequence of byte string values expected, value of type int found/) },
  { mode: 'return-list-str', ...E500(/TypeError: sequence of byte string values expected, value of type str found/) },
  { mode: 'return-list-int', ...E500(/TypeError: sequence of byte string values expected, value of type int found/) },
  { mode: 'return-not-iterable', ...E500(/TypeError: 'NotIterable' object is not iterable/) },
  { mode: 'iter-raises', ...E500(/TypeError: __iter__ raised \(hostile\)/) },
  { mode: 'raise-before-output', closed: true, ...E500(/RuntimeError: iterable raised midway \(hostile\)/) },
  { mode: 'raise-midway', status: 200, complete: false, body: 'first block\n', closed: true, log: /RuntimeError: iterable raised midway \(hostile\)/ },
  { mode: 'str-midway', status: 200, complete: false, body: 'first block\n', closed: true, log: /TypeError: sequence of byte string values expected, value of type str found/ },
  // As mod_wsgi: close() raising after a complete body is logged, the response stands.
  { mode: 'close-raises', status: 200, body: 'complete body\n', closed: true, log: /RuntimeError: close\(\) raised \(hostile\)/ },
  { mode: 'length-short', status: 200, complete: false, body: 'only ten b', log: /WSGI03023: Response of WSGI script '[^']*' is shorter than its Content-Length \(10 of 100 bytes\)/ },
  { mode: 'length-long', status: 200, body: 'more ', log: /WSGI03022: Response of WSGI script '[^']*' is longer than its Content-Length \(5 bytes\)/ },
  // exceptions that are not errors elsewhere
  { mode: 'raise-exception', ...E500(/ValueError: the application raised \(hostile\)/) },
  { mode: 'sys-exit', ...E500(/SystemExit: 3/) },
  { mode: 'keyboard-interrupt', ...E500(/KeyboardInterrupt/) },
  { mode: 'recursion', ...E500(/RecursionError: maximum recursion depth exceeded/) },
  // process-level mischief
  { mode: 'signal-handler', status: 200, body: 'signal handler attempted\n', log: /WSGI03030: Callback registration for signal 15 ignored/ },
  { mode: 'redirect-loop', ...E500(/AH00124: Request exceeded the limit of 10 internal redirects/) },
  { mode: 'thread-late-write', status: 200, body: 'answered before the thread wrote\n', log: /RuntimeError: write\(\) called after the request finished/ },
]

const CONFIG = `
WSGIDaemonProcess bad threads=4 shutdown-timeout=2
WSGIProcessGroup bad
WSGIScriptAlias /bad ${fixture('hostile')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`

function recordDir(apache: Apache): string {
  const dir = join(apache.dir, 'rec')
  if (!existsSync(dir)) {
    mkdirSync(dir)
    chmodSync(dir, 0o777) // written by the application (www-data)
  }
  return dir
}

const read = (f: string): string => (existsSync(f) ? readFileSync(f, 'latin1') : '')

t.test(`${CASES.length} bad application behaviours: clear status, a log line, the daemon serves on`, async (t) => {
  t.ok(CASES.length >= 30, `at least 30 behaviours (${CASES.length})`)
  const apache = await startApache(t, { config: CONFIG })
  const ok = await rawGet(apache.port, '/bad?mode=ok')
  t.equal(ok.status, 200)
  const pid = Number(ok.body.split(' ')[1])
  const rec = recordDir(apache)

  for (const c of CASES) {
    await t.test(c.mode, async (t) => {
      const record = join(rec, c.mode)
      const path = `/bad?mode=${c.mode}&record=${record}`
      if (c.prime) t.equal((await rawGet(apache.port, path)).status, 200, 'the first request keeps its callable')
      const mark = apache.log().length
      const r = await rawGet(apache.port, path, 15000)
      t.equal(r.status, c.status, `status ${c.status}`)
      t.equal(r.complete, c.complete ?? true, c.complete === false ? 'the client can tell the response is incomplete' : 'a complete response')
      if (c.body !== undefined) t.equal(r.body, c.body, 'the body the application produced')
      if (c.status === 500) t.notMatch(r.body, /should not be seen|never/, "none of the application's output")
      t.notOk('x-injected' in r.headers, 'no injected header')
      const seen = await waitFor(() => c.log.test(apache.log().slice(mark)), 5000, 50, `log ${c.log}`).catch(() => false)
      t.ok(seen, `logged: ${c.log}`)
      if (c.closed) t.match(read(record), /closed/, "the iterable's close() was called")
      const after = await rawGet(apache.port, '/bad?mode=ok')
      t.equal(after.body, `ok ${pid}`, 'the same daemon process serves the next request')
    })
  }
  t.match(apache.log(), /WSGI03013: Exception occurred processing WSGI script '[^']*hostile\/app\.wsgi'/, "mod_wsgi's words for an application error")
  t.notMatch(apache.log(), /WSGI01104|WSGI02031/, 'no daemon died or hit an internal error')
})

t.test('a generator that never ends, its client gone: closed, its thread freed', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  const rec = recordDir(apache)
  const pid = Number((await rawGet(apache.port, '/bad?mode=ok')).body.split(' ')[1])
  // More such requests than threads: each must free its thread once its client is gone.
  for (let i = 0; i < 6; i++) {
    const record = join(rec, `forever-${i}`)
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(apache.port, '127.0.0.1')
      let got = 0
      s.on('data', (d: Buffer) => {
        got += d.length
        if (got > 8192) {
          s.destroy() // the client goes away mid-response
          resolve()
        }
      })
      s.on('error', reject)
      s.write(`GET /bad?mode=forever&record=${record} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
    })
    await waitFor(() => read(record).includes('closed'), 10000, 50, `close() of generator ${i}`)
  }
  t.pass('each endless generator was closed after its client went away')
  await apache.waitForLog(/WSGI03024: Client connection closed before the response of WSGI script '[^']*hostile\/app\.wsgi' was complete/)
  const burst = await Promise.all(Array.from({ length: 4 }, () => rawGet(apache.port, '/bad?mode=ok', 10000)))
  t.ok(burst.every((r) => r.body === `ok ${pid}`), 'all four threads are free again, in the same process')
})

t.test('a thread left running: the process serves on, and still stops within shutdown-timeout', async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  const rec = recordDir(apache)
  const record = join(rec, 'spinner')
  const r = await rawGet(apache.port, `/bad?mode=thread-left-running&record=${record}`)
  t.equal(r.status, 200)
  await waitFor(() => read(record).includes('thread running'), 5000, 50, 'the thread')
  const [daemon] = apache.daemonPids()
  const more = await Promise.all(Array.from({ length: 8 }, () => rawGet(apache.port, '/bad?mode=ok')))
  t.ok(more.every((x) => x.body === `ok ${daemon}`), 'the process serves on')
  const began = Date.now()
  await apache.stop()
  await waitFor(() => !existsSync(`/proc/${daemon}`), 15000, 50, 'the daemon to exit')
  t.ok(Date.now() - began < 2000 + 5000, `it stopped in ${Date.now() - began} ms despite the thread (shutdown-timeout 2 s)`)
})
