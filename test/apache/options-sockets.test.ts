// The socket options of WSGIDaemonProcess through a real Apache: listen-backlog, send-buffer-size and
// receive-buffer-size (on both ends of each connection), connect-timeout (a full backlog is retried with a
// growing delay, then 503), socket-timeout (a daemon that stops answering: 504; an Apache child that stops
// sending the body: the daemon gives up), queue-timeout (a request that waited too long is never run: 503).
// A daemon is made unresponsive with SIGSTOP, and always continued again.
import { spawnSync } from 'node:child_process'
import * as net from 'node:net'
import t from 'tap'
import { ALLOW_FIXTURES, assertRefused, childPids, fixture, startApache, waitFor } from '../helpers/apache'
import { daemonOf, pause, timed } from '../helpers/daemons'

t.test('listen-backlog, send-buffer-size and receive-buffer-size', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess buf listen-backlog=7 send-buffer-size=65536 receive-buffer-size=32768 threads=2
WSGIDaemonProcess dflt threads=2
WSGIScriptAlias /buf ${fixture('process-observe')} process-group=buf
WSGIScriptAlias /dflt ${fixture('process-observe')} process-group=dflt
${ALLOW_FIXTURES}
`,
  })
  const listening = spawnSync('ss', ['-xlnH'], { encoding: 'latin1' }).stdout.split('\n')
  // ss shows the name the socket was bound to: the parent binds it as NAME.GENERATION.new and renames it.
  const backlog = (group: string) => {
    const line = listening.find((l) => l.includes(apache.socketDir) && new RegExp(`\\.${group}-[0-9a-f]{8}\\.sock(\\.\\d+\\.new)? `).test(l))
    return line ? Number(line.trim().split(/\s+/)[3]) : NaN
  }
  t.equal(backlog('buf'), 7, 'listen-backlog=7 is the daemon socket backlog (ss Send-Q)')
  t.equal(backlog('dflt'), 100, 'listen-backlog defaults to 100')

  const r = await apache.request('/buf')
  t.equal(r.status, 200)
  const info = JSON.parse(r.text)
  t.ok(info.buffers.length >= 1, `the daemon sees its connection(s) from Apache (${info.buffers.length})`)
  // Linux reports twice the size asked for (the kernel's bookkeeping overhead).
  t.ok(
    info.buffers.every(([snd, rcv]: number[]) => snd === 2 * 65536 && rcv === 2 * 32768),
    `daemon end: SO_SNDBUF is send-buffer-size, SO_RCVBUF receive-buffer-size (${JSON.stringify(info.buffers)})`,
  )
  const d = JSON.parse((await apache.request('/dflt')).text)
  t.ok(d.buffers.every(([snd]: number[]) => snd !== 2 * 65536), 'without the options the system defaults stay')

  // The Apache child's end, seen with ss: the converse sizes (what it sends is what the daemon receives).
  const children = childPids(apache.pid).filter((p) => !apache.daemonPids().includes(p))
  const mem = spawnSync('ss', ['-xmpnH'], { encoding: 'latin1' }).stdout.split('\n')
  const childSockets = mem.filter((l) => children.some((p) => l.includes(`pid=${p},`)))
  t.ok(
    childSockets.some((l) => /rb131072,t\d+,tb65536/.test(l)),
    "child end: SO_SNDBUF is receive-buffer-size, SO_RCVBUF send-buffer-size",
  )
})

t.test('socket-timeout: a daemon that stops answering gets 504 and a log line', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess st socket-timeout=1 threads=2
WSGIScriptAlias /hello ${fixture('hello-world')} process-group=st
${ALLOW_FIXTURES}
`,
  })
  t.equal((await apache.request('/hello')).status, 200, 'served while answering')
  const resume = pause(t, await daemonOf(apache, 'st'))
  const [r, took] = await timed(apache.request('/hello'))
  t.equal(r.status, 504, 'Gateway Timeout')
  t.ok(took >= 900 && took < 6000, `after socket-timeout (${took} ms)`)
  t.match(apache.log(), /WSGI01225: Timeout when reading response headers from daemon process 'st'/)
  resume()
  const again = await waitFor(async () => (await apache.request('/hello')).status === 200, 10000, 100, 'serving again')
  t.ok(again, 'the daemon serves again once continued')
})

t.test('socket-timeout: the daemon gives up on an Apache child that stops sending the body', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess st socket-timeout=1 threads=2
WSGIScriptAlias /echo ${fixture('echo')} process-group=st
${ALLOW_FIXTURES}
`,
  })
  // A client that promises 100000 bytes and sends 10: the Apache child forwards them and waits on the
  // client (Apache's Timeout, 30 s), so the daemon waits on the child.
  const sock = net.connect(apache.port, '127.0.0.1')
  t.teardown(() => sock.destroy())
  await new Promise((res) => sock.once('connect', res))
  sock.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n0123456789')
  const line = await apache.waitForLog(/WSGI02043: Timeout after 1 seconds reading the request body from the Apache child[^\n]*/, 8000)
  t.match(line, /request abandoned: \/echo/, 'the daemon logs it and abandons the request')
  sock.destroy()
  const r = await apache.request('/echo', { method: 'POST', body: 'still here' })
  t.equal(r.status, 200, 'and serves the next request')
})

t.test('connect-timeout: a full listen backlog is retried, then 503 with a log line', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess ct listen-backlog=1 connect-timeout=2 socket-timeout=4 threads=1
WSGIScriptAlias /hello ${fixture('hello-world')} process-group=ct
${ALLOW_FIXTURES}
`,
  })
  const resume = pause(t, await daemonOf(apache, 'ct'))
  // The backlog holds two connections (Linux takes backlog + 1); later ones find it full.
  const results = await Promise.all(Array.from({ length: 5 }, () => timed(apache.request('/hello'))))
  const refused = results.filter(([r]) => r.status === 503)
  const waited = results.filter(([r]) => r.status === 504)
  t.ok(refused.length >= 1, `some requests could not connect: ${results.map(([r, ms]) => `${r.status}/${ms}ms`).join(' ')}`)
  t.ok(refused.every(([, ms]) => ms >= 1800 && ms < 4000), 'they were retried for connect-timeout (2 s), not failed at once')
  t.ok(waited.length >= 1, 'those that got into the backlog waited for socket-timeout instead')
  t.equal(refused.length + waited.length, 5, 'nothing else')
  const log = apache.log()
  const m = /WSGI01201: Unable to connect to WSGI daemon process 'ct' on '[^']+' after (\d+) attempt\(s\) within connect-timeout 2 s/.exec(log)
  t.ok(m, 'the connect failure is logged')
  t.ok(Number(m?.[1]) >= 4 && Number(m?.[1]) < 40, `with a growing delay between attempts (${m?.[1]} attempts in 2 s)`)
  resume()
  t.ok(await waitFor(async () => (await apache.request('/hello')).status === 200, 15000, 100, 'serving again'))
})

t.test('queue-timeout: a request that waited longer is not run, 503', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess qt queue-timeout=1 threads=1
WSGIProcessGroup qt
WSGIScriptAlias /sleep ${fixture('sleep-logged')}
WSGIScriptAlias /count ${fixture('counter')}
${ALLOW_FIXTURES}
`,
  })
  t.equal((await apache.request('/count?op=get')).status, 200)
  const slow = timed(apache.request('/sleep?s=2.5&id=holder'))
  await apache.waitForLog(/sleep-logged: holder started/)
  const [queued, took] = await timed(apache.request('/count?op=inc'))
  t.equal(queued.status, 503, 'Service Unavailable (release notes, New Features 11)')
  t.ok(took < 5000, `answered once a thread was free (${took} ms)`)
  const [first] = await slow
  t.equal(first.status, 200, 'the request that held the thread completed')
  t.match((await apache.request('/count?op=get')).text, / 0$/, 'the queued request never ran')
  t.match(apache.log(), /WSGI02041: Queue timeout expired for WSGI daemon process 'qt' \(request waited \d+ ms\): \/count\?op=inc/)
  t.equal((await apache.request('/count?op=inc')).text.split(' ')[1], '1', 'a request that did not wait runs')
})

t.test('apache2 -t names the directive and the option on a bad socket option', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['listen-backlog=65536', /WSGIDaemonProcess 'g': option 'listen-backlog' must be an integer from 0 to 65535, not '65536'/],
    ['listen-backlog=x', /option 'listen-backlog' must be an integer/],
    ['receive-buffer-size=511', /option 'receive-buffer-size' must be 0 \(the default\) or a size in bytes >= 512, not '511'/],
    ['send-buffer-size=-1', /option 'send-buffer-size' must be 0 \(the default\) or a size in bytes >= 512, not '-1'/],
    ['connect-timeout=soon', /option 'connect-timeout' must be an integer from 0 to \d+, not 'soon'/],
    ['socket-timeout=-1', /option 'socket-timeout' must be an integer from 0 to \d+, not '-1'/],
    ['queue-timeout=1.5', /option 'queue-timeout' must be an integer from 0 to \d+, not '1.5'/],
  ]
  for (const [option, message] of bad) await assertRefused(t, `WSGIDaemonProcess g ${option}`, message, option)
})
