// Issue 3, item 4: start_response and output through a real Apache — exc_info rules, the write()
// callable, close() of the iterable in every path, status and header validation (500 and a log line
// naming the problem), HEAD, an application's Content-Length, hop-by-hop headers.
import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, makeTempDir, startApache, waitFor } from '../helpers/apache'
import { rawGet, rawRequest } from '../helpers/raw-http'

t.test('start_response and output', async (t) => {
  const apache = await startApache(t, {
    modules: ['filter', 'deflate'],
    config: `
WSGIDaemonProcess output threads=4
WSGIProcessGroup output
WSGIScriptAlias /basic ${fixture('response-basic')}
WSGIScriptAlias /deflated ${fixture('response-basic')}
WSGIScriptAlias /write ${fixture('write')}
WSGIScriptAlias /exc-info ${fixture('exc-info')}
WSGIScriptAlias /close ${fixture('close')}
WSGIScriptAlias /bad-status ${fixture('bad-status')}
WSGIScriptAlias /bad-headers ${fixture('bad-headers')}
WSGIScriptAlias /non-bytes ${fixture('non-bytes')}
WSGIScriptAlias /content-length ${fixture('content-length')}
<Location /deflated>
  SetOutputFilter DEFLATE
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  /** Waits for a log line that appears after `mark` characters of the log. */
  const logAfter = (mark: number, re: RegExp) =>
    waitFor(() => re.test(apache.log().slice(mark)), 10000, 50, `log line ${re}`)

  await t.test('the write() callable, then the returned iterable', async (t) => {
    const r = await apache.request('/write')
    t.equal(r.status, 200)
    t.equal(r.text, 'one,two,three')
  })

  await t.test("the application's status line reaches the client", async (t) => {
    const r = await rawGet(apache.port, '/basic?status=299%20Custom%20Reason')
    t.match(r.text, /^HTTP\/1\.1 299 Custom Reason\r\n/)
    const empty = await rawGet(apache.port, '/basic?status=200%20')
    t.equal(empty.status, 200, "a status with an empty reason ('200 ') is valid")
  })

  await t.test('exc_info', async (t) => {
    const before = await apache.request('/exc-info?mode=before')
    t.equal(before.status, 503, 'before any output, start_response with exc_info replaces status and headers')
    t.equal(before.headers['x-error'], 'yes')
    t.equal(before.text, 'error page')

    let mark = apache.log().length
    const after = await rawGet(apache.port, '/exc-info?mode=after')
    t.equal(after.status, 200, 'after output the head stays')
    t.equal(after.body, 'partial output\n')
    t.notOk(after.complete, 'the exception is re-raised: the response is cut short, not ended cleanly')
    await logAfter(mark, /ValueError: failed after output/)

    const twice = await apache.request('/exc-info?mode=twice')
    t.equal(twice.status, 201, 'a second start_response before any output replaces the first, as in mod_wsgi')
    t.equal(twice.headers['x-second'], 'yes')
    t.equal(twice.text, 'second start_response')

    mark = apache.log().length
    const late = await rawGet(apache.port, '/exc-info?mode=twice-after')
    t.equal(late.body, 'output started\n')
    t.notOk(late.complete)
    await logAfter(mark, /RuntimeError: headers have already been sent/)

    mark = apache.log().length
    const bad = await apache.request('/exc-info?mode=bad-exc-info')
    t.equal(bad.status, 500)
    await logAfter(mark, /RuntimeError: exception info must be a tuple/)
  })

  await t.test("the iterable's close() is called after success, an exception and a client disconnect", async (t) => {
    const dir = makeTempDir('mod_wsgi-close-')
    chmodSync(dir, 0o777) // the daemon (www-data) writes the record
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const record = join(dir, 'closed.txt')
    const q = (mode: string) => `/close?mode=${mode}&record=${encodeURIComponent(record)}`
    const ok = await apache.request(q('ok'))
    t.equal(ok.text, 'first\nsecond\n')
    const raised = await rawGet(apache.port, q('raise'))
    t.equal(raised.body, 'first\n')
    t.notOk(raised.complete, 'an exception after output cuts the response short')
    const str = await rawGet(apache.port, q('str'))
    t.notOk(str.complete, 'a str block after output cuts the response short')
    // The client reads the first block, then goes away while the app still produces output.
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(apache.port, '127.0.0.1')
      s.on('data', () => {
        s.destroy()
        resolve()
      })
      s.on('error', reject)
      s.write(`GET ${q('slow')} HTTP/1.1\r\nHost: x\r\n\r\n`)
    })
    const lines = await waitFor(() => {
      const l = existsSync(record) ? readFileSync(record, 'utf8').trim().split('\n').sort() : []
      return l.length >= 4 ? l : null
    }, 15000, 100, 'close() of every iterable')
    t.same(lines, ['closed ok', 'closed raise', 'closed slow', 'closed str'])
  })

  await t.test('a bad status: 500 and a log line naming the problem', async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['int', /TypeError: expected unicode object for status, value of type int found/],
      ['bytes', /TypeError: expected unicode object for status, value of type bytes found/],
      ['nonlatin', /ValueError: status must be encodable as latin-1/],
      ['form', /ValueError: status code is not a 3 digit integer: 'OK 200'/],
      ['short', /ValueError: status code is not a 3 digit integer: '20 OK'/],
      ['crlf', /ValueError: control character present in reason phrase/],
      ['none-reason', /ValueError: no space following status code: '200'/],
    ]
    for (const [mode, re] of cases) {
      const mark = apache.log().length
      const r = await apache.request(`/bad-status?mode=${mode}`)
      t.equal(r.status, 500, `${mode}: 500`)
      t.notMatch(r.text, /should not be seen/)
      await logAfter(mark, re)
      t.match(apache.log().slice(mark), /Exception occurred processing WSGI script '[^']*bad-status\/app\.wsgi'/)
    }
  })

  await t.test('bad headers: 500 and a log line naming the problem; hop-by-hop headers refused', async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['tuple', /TypeError: response headers must be a list, not tuple/],
      ['item', /TypeError: list of tuple values expected for response headers/],
      ['name-bytes', /TypeError: expected unicode object for response header name, value of type bytes found/],
      ['value-int', /TypeError: expected unicode object for response header value, value of type int found/],
      ['nonlatin', /ValueError: response header 'X-Euro' must be encodable as latin-1/],
      ['crlf', /ValueError: embedded newline in response header with name 'X-Split'/],
      ['name-space', /ValueError: invalid response header name 'Bad Name'/],
      ['hop', /ValueError: hop-by-hop header 'Connection' is not allowed in a WSGI response/],
      ['length', /ValueError: invalid Content-Length response header value 'abc'/],
    ]
    for (const [mode, re] of cases) {
      const mark = apache.log().length
      const r = await apache.request(`/bad-headers?mode=${mode}`)
      t.equal(r.status, 500, `${mode}: 500`)
      t.notOk('x-injected' in r.headers)
      await logAfter(mark, re)
    }
    const mark = apache.log().length
    const list = await apache.request('/non-bytes?mode=list')
    t.equal(list.status, 500, 'a str in the iterable before any output: 500')
    await logAfter(mark, /TypeError: sequence of byte string values expected, value of type str found/)
    t.equal((await apache.request('/write')).text, 'one,two,three', 'the daemon serves on')
  })

  await t.test('HEAD sends no body', async (t) => {
    const r = await rawRequest(apache.port, 'HEAD /basic HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    t.equal(r.status, 200)
    t.equal(r.headers['content-length'], '25', "the application's Content-Length")
    t.equal(r.headers['x-method'], 'HEAD', 'the application sees HEAD')
    t.equal(r.rawBody, '', 'and no body is sent')
    const filtered = await rawRequest(apache.port, 'HEAD /deflated HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n')
    t.equal(filtered.headers['x-method'], 'GET', 'with an output filter that needs the body, the app sees GET (as mod_wsgi does)')
    t.equal(filtered.rawBody, '', 'still no body')
  })

  await t.test("the application's Content-Length is honoured", async (t) => {
    for (const gen of ['0', '1']) {
      let mark = apache.log().length
      const long = await rawGet(apache.port, `/content-length?mode=long&gen=${gen}`)
      t.equal(long.headers['content-length'], '15')
      t.equal(long.rawBody, '0123456789abcde', `gen=${gen}: output beyond Content-Length is dropped`)
      await logAfter(mark, /is longer than its Content-Length \(15 bytes\): the extra output is dropped/)

      mark = apache.log().length
      const short = await rawGet(apache.port, `/content-length?mode=short&gen=${gen}`)
      t.equal(short.headers['content-length'], '30')
      t.equal(short.rawBody, '0123456789abcdefghij')
      t.notOk(short.complete, `gen=${gen}: short output: the connection closes short of Content-Length`)
      await logAfter(mark, /is shorter than its Content-Length \(20 of 30 bytes\)/)
    }
  })
})
