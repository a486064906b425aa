// Issue 3, item 10: wsgi.errors, print() and sys.stderr (and so the logging module) land in Apache's
// error log one line per line, at level error, tagged with the daemon's pid — whole lines even when
// several requests write at once.
import t from 'tap'
import { fixture, FIXTURES, startApache, waitFor } from '../helpers/apache'

t.test('application output in the error log', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess logs processes=2 threads=4
WSGIProcessGroup logs
WSGIScriptAlias /log ${fixture('errors-log')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const tags = Array.from({ length: 12 }, (_, i) => `tag${i}`)
  const responses = await Promise.all(tags.map((tag) => apache.request(`/log?tag=${tag}`)))
  t.ok(responses.every((r) => r.status === 200 && r.text === 'logged'), 'every request answered')
  const daemons = apache.daemonPids()

  const expected = (tag: string) => [
    `print ${tag}`,
    `stderr ${tag} one`,
    `stderr ${tag} two`,
    `parts ${tag} joined`,
    `errors ${tag}`,
    `lines ${tag} a`,
    `lines ${tag} b`,
    `WARNING:errors-log:logging ${tag}`,
    `unterminated ${tag}`,
  ]
  const line = /^\[\w{3} \w{3} \d\d \d\d:\d\d:\d\d\.\d{6} \d{4}\] \[wsgi:error\] \[pid (\d+):tid \d+\] (?:\[client 127\.0\.0\.1:\d+\] \[request [^\]]+\] )?(.*)$/
  await waitFor(() => tags.every((tag) => apache.log().includes(`unterminated ${tag}\n`)), 10000, 50, 'every line')
  const lines = apache.log().split('\n')
  for (const tag of tags) {
    const mine = lines.filter((l) => new RegExp(`\\b${tag}\\b`).test(l))
    const texts: string[] = []
    const pids = new Set<number>()
    for (const l of mine) {
      const m = line.exec(l)
      t.ok(m, `a whole error-log line: ${l}`)
      if (!m) continue
      pids.add(Number(m[1]))
      texts.push(m[2])
    }
    t.same(texts.sort(), expected(tag).sort(), `${tag}: one log line per line of output, each whole`)
    t.equal(pids.size, 1, `${tag}: all tagged with one pid`)
    t.ok(daemons.includes([...pids][0]), `${tag}: the pid of the daemon process that ran it`)
  }
  const tagged = lines.filter((l) => / errors tag0$/.test(l))
  t.match(tagged[0], /\[client 127\.0\.0\.1:\d+\] \[request [^\]]+\] errors tag0$/, 'wsgi.errors lines name the client, as mod_wsgi does, and the request')
})
