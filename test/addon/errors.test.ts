// Applications that fail: exceptions (before and after the head), scripts that cannot load, bad
// status/headers/output, exc_info, and close() in every path. Each gets a 500 (or an incomplete
// end), an error-log line, and the worker serves the next request.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'

import { AddonProcess, body, fixture, header, spec, tempDir } from './harness'

function tempScript(t: Test, source: string): string {
  const dir = tempDir(t, 'addon-errors-')
  const file = join(dir, 'app.wsgi')
  writeFileSync(file, source)
  return file
}

t.test('an exception before any output: ERROR 500, traceback logged, next request fine', async (t) => {
  const host = await AddonProcess.start({ threads: 1 })
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('raise')))
  t.same(r.violations, [])
  t.equal(r.error?.status, 500)
  t.equal(r.head, undefined)
  t.match(r.error?.message, /Exception occurred processing WSGI script/)
  const script = fixture('raise').replace(/[.]/g, '\\.')
  t.match(await host.logs(), new RegExp(`\\[wsgi:error\\] \\[pid \\d+:tid \\d+\\] \\[client 127\\.0\\.0\\.1:40000\\] WSGI03013: Exception occurred processing WSGI script '${script}'\\.`))
  t.match(await host.logs(), /\] Traceback \(most recent call last\):$/m)
  t.match(await host.logs(), /RaiseAppError: boom from the raise app$/m)
  const next = await host.run(spec(fixture('hello')))
  t.equal(next.head?.status, 200)
})

t.test('an exception after the head: END 1 (incomplete)', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const r = await host.run(spec(fixture('raise'), { query: 'mode=late' }))
  t.same(r.violations, [])
  t.equal(r.head?.status, 200)
  t.equal(body(r).toString(), 'first block\n')
  t.equal(r.end, 1)
  t.match(await host.logs(), /RaiseAppError: late boom from the raise app/)
})

t.test('scripts that cannot load, and missing callables', async (t) => {
  const host = await AddonProcess.start({ threads: 1 })
  t.teardown(() => host.kill())
  const script = tempScript(t, 'import no_such_module_here\n')
  const r = await host.run(spec(script))
  t.equal(r.error?.status, 500)
  t.match(r.error?.message, /cannot be loaded as Python module/)
  t.match(await host.logs(), /WSGI03011: Target WSGI script '.*' cannot be loaded as Python module\./)
  t.match(await host.logs(), /ModuleNotFoundError: No module named 'no_such_module_here'/)
  // Fixed on disk: the failed load was not cached.
  writeFileSync(script, readFileSync(fixture('hello')))
  const fixed = await host.run(spec(script))
  t.equal(fixed.head?.status, 200)

  const missing = await host.run(spec('/nonexistent/dir/app.wsgi'))
  t.equal(missing.error?.status, 500)
  t.match(await host.logs(), /FileNotFoundError: \[Errno 2\] No such file or directory: '\/nonexistent\/dir\/app\.wsgi'/)

  const nocallable = await host.run(spec(fixture('hello'), { callable: 'nothere' }))
  t.equal(nocallable.error?.status, 500)
  t.match(await host.logs(), /WSGI03012: Target WSGI script '.*hello\/app\.wsgi' does not contain WSGI application 'nothere'\./)
  const named = await host.run(spec(fixture('flask'), { callable: 'app' }))
  t.equal(named.head?.status, 200, 'mod_wsgi.callable_object names the callable')

  const syntax = tempScript(t, 'def application(:\n')
  const bad = await host.run(spec(syntax))
  t.equal(bad.error?.status, 500)
  t.match(await host.logs(), /SyntaxError/)
  t.equal((await host.run(spec(fixture('hello')))).head?.status, 200, 'the worker lives on')
})

t.test('bad status, headers and output: 500 and a log line naming the problem', async (t) => {
  const host = await AddonProcess.start({ threads: 2 })
  t.teardown(() => host.kill())
  const cases: [string, string, RegExp][] = [
    ['bad-status', 'int', /TypeError: expected unicode object for status, value of type int found/],
    ['bad-status', 'bytes', /TypeError: expected unicode object for status, value of type bytes found/],
    ['bad-status', 'nonlatin', /ValueError: status must be encodable as latin-1/],
    ['bad-status', 'form', /ValueError: status code is not a 3 digit integer: 'OK 200'/],
    ['bad-status', 'short', /ValueError: status code is not a 3 digit integer: '20 OK'/],
    ['bad-status', 'crlf', /ValueError: control character present in reason phrase: '200 OK\\r\\nX-Injected: yes'/],
    ['bad-status', 'none-reason', /ValueError: no space following status code: '200'/],
    ['bad-headers', 'tuple', /TypeError: response headers must be a list, not tuple/],
    ['bad-headers', 'item', /TypeError: list of tuple values expected for response headers/],
    ['bad-headers', 'name-bytes', /TypeError: expected unicode object for response header name, value of type bytes found/],
    ['bad-headers', 'value-int', /TypeError: expected unicode object for response header value, value of type int found/],
    ['bad-headers', 'nonlatin', /ValueError: response header 'X-Euro' must be encodable as latin-1/],
    ['bad-headers', 'crlf', /ValueError: embedded newline in response header with name 'X-Split'/],
    ['bad-headers', 'name-space', /ValueError: invalid response header name 'Bad Name'/],
    ['bad-headers', 'hop', /ValueError: hop-by-hop header 'Connection' is not allowed/],
    ['bad-headers', 'length', /ValueError: invalid Content-Length response header value 'abc'/],
    ['non-bytes', 'list', /TypeError: sequence of byte string values expected, value of type str found/],
    ['non-bytes', 'write', /TypeError: byte string value expected, value of type str found/],
  ]
  for (const [app, mode, message] of cases) {
    const mark = host.logLength
    const r = await host.run(spec(fixture(app), { query: `mode=${mode}` }))
    t.same(r.violations, [], `${app} ${mode}`)
    t.equal(r.error?.status, 500, `${app} ${mode}: 500`)
    const log = (await host.logs(mark))
    t.match(log, /WSGI03013: Exception occurred processing WSGI script/, `${app} ${mode}: logged`)
    t.match(log, message, `${app} ${mode}: names the problem`)
  }
  const late = await host.run(spec(fixture('non-bytes'), { query: 'mode=later' }))
  t.equal(late.head?.status, 200, 'non-bytes after the head was sent')
  t.equal(body(late).toString(), 'a bytes block\n')
  t.equal(late.end, 1)
  const after = await host.run(spec(fixture('hello')))
  t.equal(after.head?.status, 200)
})

t.test('start_response never called', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const script = tempScript(t, 'def application(environ, start_response):\n    return []\n')
  const r = await host.run(spec(script))
  t.equal(r.error?.status, 500)
  t.match(await host.logs(), /WSGI03021: WSGI script '.*' did not call start_response\(\)\./)
  const early = tempScript(t, 'def application(environ, start_response):\n    return [b"no head"]\n')
  const r2 = await host.run(spec(early))
  t.equal(r2.error?.status, 500)
  t.match(await host.logs(), /RuntimeError: response has not been started/)
})

t.test('exc_info', async (t) => {
  const host = await AddonProcess.start()
  t.teardown(() => host.kill())
  const before = await host.run(spec(fixture('exc-info'), { query: 'mode=before' }))
  t.same(before.violations, [])
  t.equal(before.head?.status, 503, 'a second start_response with exc_info replaces the status')
  t.equal(header(before, 'x-error'), 'yes')
  t.equal(body(before).toString(), 'error page')
  t.equal(before.end, 0)

  const after = await host.run(spec(fixture('exc-info'), { query: 'mode=after' }))
  t.equal(after.head?.status, 200)
  t.equal(body(after).toString(), 'partial output\n')
  t.equal(after.end, 1, 'too late to change the head: the exception is re-raised')
  t.match(await host.logs(), /ValueError: failed after output/)

  const twice = await host.run(spec(fixture('exc-info'), { query: 'mode=twice' }))
  t.equal(twice.head?.status, 201, 'before any output a second start_response replaces the first, as in mod_wsgi')
  t.equal(body(twice).toString(), 'second start_response')

  const late = await host.run(spec(fixture('exc-info'), { query: 'mode=twice-after' }))
  t.equal(late.head?.status, 200)
  t.equal(late.end, 1)
  t.match(await host.logs(), /RuntimeError: headers have already been sent/)
})

t.test('close() is called in every path', async (t) => {
  const host = await AddonProcess.start({ logLevel: 'info' })
  t.teardown(() => host.kill())
  const dir = tempDir(t, 'addon-close-')
  const record = join(dir, 'closed.txt')
  const q = (mode: string) => `mode=${mode}&record=${encodeURIComponent(record)}`
  const ok = await host.run(spec(fixture('close'), { query: q('ok') }))
  t.equal(body(ok).toString(), 'first\nsecond\n')
  const raised = await host.run(spec(fixture('close'), { query: q('raise') }))
  t.equal(raised.end, 1)
  const str = await host.run(spec(fixture('close'), { query: q('str') }))
  t.equal(str.end, 1)
  const gone = await host.run(spec(fixture('close'), { query: q('slow') }, { abortAfterOutput: 3000 }))
  t.equal(gone.end, 1, 'the client went away mid-response')
  const lines = readFileSync(record, 'utf8').trim().split('\n').sort()
  t.same(lines, ['closed ok', 'closed raise', 'closed slow', 'closed str'])
  t.match(await host.logs(), /WSGI03024: Client connection closed before the response of WSGI script/)
})
