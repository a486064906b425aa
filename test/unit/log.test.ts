// Log lines: Apache's format, level filtering, catalogue codes, one line per write.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { E } from '../../src/daemon/errors'
import { Logger, apacheTime } from '../../src/daemon/log'

t.test('timestamp format is Apache %{u}t', async (t) => {
  t.match(apacheTime(Date.UTC(2026, 10, 24, 20, 20, 3) * 1000 + 123456), /^(Mon|Tue|Wed) Nov 2[45] \d\d:\d\d:03\.123456 2026$/)
})

t.test('format, filtering and codes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wsgi-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'error.log')
  const fd = openSync(file, 'a')
  const logger = new Logger('warn', fd)
  logger.report(E.malformed, 'frame 0x7f')
  logger.report(E.starting, 'g', 33, 33, 15) // info: filtered at warn
  logger.report(E.queueTimeout, 'grp', 1200, '/x')
  logger.line('error', 'multi\nline')
  logger.setLevel('info')
  logger.report(E.starting, 'g', 33, 33, 15)
  closeSync(fd)
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean)
  t.equal(lines.length, 4)
  const re = /^\[\w{3} \w{3} \d\d \d\d:\d\d:\d\d\.\d{6} \d{4}\] \[wsgi:(\w+)\] \[pid (\d+):tid \d+\] (.*)$/
  for (const l of lines) t.match(l, re)
  t.match(lines[0], /\[wsgi:error\] .* WSGI02040: Malformed data received from Apache child, connection closed: frame 0x7f\.$/)
  t.match(lines[1], /WSGI02041: Queue timeout expired for WSGI daemon process 'grp'/)
  t.match(lines[2], /multi\\nline$/, 'one event stays on one line')
  t.match(lines[3], /\[wsgi:info\] .* WSGI02003: Starting process 'g' with uid=33, gid=33 and threads=15\.$/)
  t.equal(re.exec(lines[0])?.[2], String(process.pid))
})

t.test('catalogue codes are unique and in the daemon range', async (t) => {
  const codes = Object.values(E).map((m) => m.code)
  t.equal(new Set(codes).size, codes.length)
  for (const c of codes) t.match(c, /^WSGI02\d{3}$/)
})
