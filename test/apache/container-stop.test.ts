// Apache as a container runs it (the official httpd image): in the foreground (httpd -DFOREGROUND), its
// error log on standard error (ErrorLog /proc/self/fd/2, a pipe here as under `docker logs`), stopped by
// the image's STOPSIGNAL, SIGWINCH, Apache's graceful stop.
//  - SIGWINCH: a request in flight finishes (200), then Apache and its daemons exit; with graceful-timeout
//    and shutdown-timeout set, a request that would run far longer gets 503 when they expire and Apache
//    exits soon after, instead of waiting for it.
//  - Every line on standard error is one record in Apache's format with a level: the daemons' messages,
//    application output, a traceback (one record per line), and Node.js's own warnings.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, constants, openSync, readlinkSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Apache, APACHE_BIN, childPids, fixture, FIXTURES, freePort, request, waitFor, type Response } from '../helpers/apache'

/** One line of Apache's default ErrorLogFormat: [time] [module:level] [pid P(:tid T)] ... */
const RECORD = /^\[[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}\.\d{6} \d{4}\] \[[a-z_0-9]*:(emerg|alert|crit|error|warn|notice|info|debug|trace\d)\] \[pid \d+(:tid \d+)?\] /

interface Foreground {
  apache: Apache
  proc: ChildProcess
  pid: number
  stderr: () => string
  exited: Promise<{ code: number | null; at: number }>
}

/** Starts Apache as httpd-foreground does, its error log on its standard error (a pipe we read). */
async function foreground(t: Test, config: string, env: Record<string, string> = {}): Promise<Foreground> {
  const apache = new Apache({
    config: `ErrorLog /proc/self/fd/2\n${config}\n<Directory ${FIXTURES}>\n  Require all granted\n</Directory>\n`,
  })
  apache.port = await freePort()
  apache.writeConfig()
  // A named pipe for its standard error, as Docker gives a container (Node's own 'pipe' is a socket pair,
  // which Apache cannot open as /proc/self/fd/2).
  const fifo = join(apache.dir, 'stderr.fifo')
  execFileSync('mkfifo', ['-m', '600', fifo])
  const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  const writeEnd = openSync(fifo, constants.O_WRONLY)
  const proc = spawn(APACHE_BIN, ['-d', apache.dir, '-f', apache.conf, '-DFOREGROUND'], {
    stdio: ['ignore', 'ignore', writeEnd],
    env: { ...process.env, ...env },
  })
  closeSync(writeEnd)
  let err = ''
  const reader = new net.Socket({ fd: readEnd, readable: true, writable: false })
  reader.on('data', (c: Buffer) => (err += c.toString('utf8')))
  reader.on('error', () => undefined)
  // Exited, and every writer of the pipe (Apache, its children, the daemons) has closed it: all read.
  const allRead = new Promise<void>((res) => reader.on('close', () => res()))
  const exited = new Promise<{ code: number | null; at: number }>((res) => proc.on('exit', (code) => res({ code, at: Date.now() }))).then(
    async (e) => {
      await Promise.race([allRead, new Promise((r) => setTimeout(r, 15000).unref())])
      return e
    },
  )
  let gone = false
  void exited.then(() => (gone = true))
  t.teardown(async () => {
    reader.destroy()
    if (!gone) {
      proc.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15000).unref())])
      if (!gone) proc.kill('SIGKILL')
    }
    await apache.cleanup(!t.passing())
  })
  await waitFor(() => /WSGI02003/.test(err), 20000, 50, "a daemon to start").catch((e: Error) => {
    throw new Error(`${e.message}:\n${err}`)
  })
  await waitFor(() => request(apache.port, '/nothing-here').then(() => true, () => false), 10000, 50, 'Apache to accept')
  return { apache, proc, pid: proc.pid!, stderr: () => err, exited }
}

function daemonsOf(pid: number): number[] {
  return childPids(pid).filter((p) => {
    try {
      return readlinkSync(`/proc/${p}/exe`).includes('node')
    } catch {
      return false
    }
  })
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('SIGWINCH (the image STOPSIGNAL): the request in flight finishes, then Apache and its daemons exit', async (t) => {
  const f = await foreground(
    t,
    `WSGIDaemonProcess app processes=2 threads=4
WSGIProcessGroup app
WSGIScriptAlias /sleep ${fixture('sleep')}`,
  )
  await waitFor(() => daemonsOf(f.pid).length === 2, 15000, 50, 'two daemons')
  const daemons = daemonsOf(f.pid)
  const sent = Date.now()
  const inFlight = request(f.apache.port, '/sleep?s=2', { timeoutMs: 30000 })
  await new Promise((r) => setTimeout(r, 500))
  const t0 = Date.now()
  process.kill(f.pid, 'SIGWINCH')
  const r = await inFlight
  t.equal(r.status, 200, 'the request in flight when SIGWINCH came got its answer')
  t.match(r.text, /^\d+ 2\.\d{3}$/, 'and ran its whole 2 s')
  const exit = await f.exited
  t.equal(exit.code, 0, 'Apache exited with status 0')
  t.ok(exit.at - t0 < 10000, `within docker stop's 10 s (${exit.at - t0} ms)`)
  t.ok(daemons.every((p) => !alive(p)), 'its daemons are gone')
  const log = f.stderr()
  t.match(log, /AH00492: caught SIGWINCH, shutting down gracefully/)
  t.match(log, /WSGI01600: graceful stop: 2 daemon process\(es\) serve on until Apache's children are gone/)
  t.equal(log.match(/WSGI02150: Apache is stopping gracefully/g)?.length, 2, 'each daemon was told')
  t.notMatch(log, /WSGI0110[8]|WSGI01112|WSGI02028/, 'no daemon was killed, no request abandoned')
  // The daemons stopped (SIGTERM) only after the request's child had finished with it.
  // Both daemons, the idle one too, served on until the children were gone: they exited after the
  // request's 2 s, not at SIGWINCH.
  const exits = [...log.matchAll(/^\[(\w{3} \w{3} \d{2} [\d:]{8})\.(\d{6}) (\d{4})\] \[wsgi:info\] \[pid \d+:tid \d+\] WSGI02029: Exiting process 'app'/gm)].map(
    (m) => new Date(`${m[1]} ${m[3]}`).getTime() + Number(m[2]) / 1000,
  )
  t.equal(exits.length, 2, 'both daemons logged their exit')
  t.ok(exits.every((at) => at >= sent + 2000), `both exited after the request's 2 s (${exits.map((at) => at - sent).join(', ')} ms after it was sent)`)
})

t.test('SIGWINCH with graceful-timeout and shutdown-timeout: a long request gets 503 when they expire, Apache does not wait for it', async (t) => {
  const f = await foreground(
    t,
    `WSGIDaemonProcess app processes=1 threads=4 graceful-timeout=1 shutdown-timeout=1
WSGIProcessGroup app
WSGIScriptAlias /sleep ${fixture('sleep')}`,
  )
  const long: Promise<Response> = request(f.apache.port, '/sleep?s=60', { timeoutMs: 60000 })
  await new Promise((r) => setTimeout(r, 500))
  const t0 = Date.now()
  process.kill(f.pid, 'SIGWINCH')
  const r = await long
  const answered = Date.now() - t0
  t.equal(r.status, 503, 'the request still running after graceful- and shutdown-timeout got 503')
  t.ok(answered >= 1800 && answered < 15000, `answered ${answered} ms after SIGWINCH (1 s graceful + 1 s shutdown)`)
  const exit = await f.exited
  t.ok(exit.at - t0 < 20000, `Apache exited ${exit.at - t0} ms after SIGWINCH, not after the request's 60 s`)
  const log = f.stderr()
  t.match(log, /WSGI02150: .*for at most 1 seconds \(graceful-timeout\)/)
  t.match(log, /WSGI02027: Graceful timeout expired with 1 active requests/)
  t.match(log, /WSGI02028: Aborting process 'app'/)
})

t.test('ErrorLog /proc/self/fd/2: every line on standard error is one record with a level', async (t) => {
  // --frozen-intrinsics makes Node warn at start ("ExperimentalWarning"), which it would print as two
  // bare lines of its own.
  const f = await foreground(
    t,
    `LogLevel info
WSGIDaemonProcess app processes=1 threads=2
WSGIProcessGroup app
WSGIScriptAlias /print ${fixture('print')}
WSGIScriptAlias /raise ${fixture('raise')}
WSGIScriptAlias /hello ${fixture('hello-world')}`,
    { MOD_WSGI_NODE_FLAGS: '--frozen-intrinsics' },
  )
  t.equal((await f.apache.request('/hello')).status, 200)
  t.equal((await f.apache.request('/print')).status, 200)
  t.equal((await f.apache.request('/raise')).status, 500)
  await waitFor(() => /RaiseAppError: boom/.test(f.stderr()), 10000, 50, 'the traceback')
  process.kill(f.pid, 'SIGWINCH')
  await f.exited
  const lines = f.stderr().split('\n').filter((l) => l !== '')
  const bare = lines.filter((l) => !RECORD.test(l))
  t.same(bare, [], 'no line without the record prefix and a level')
  const wsgi = (level: string, re: RegExp) => lines.some((l) => l.includes(`[wsgi:${level}]`) && re.test(l))
  t.ok(wsgi('info', /WSGI02003: Starting process 'app'/), "the daemon's own messages, at their level")
  t.ok(wsgi('warn', /WSGI02151: Node\.js ExperimentalWarning in daemon process 'app': Frozen intri/), "Node's warning, as one record at warn")
  t.ok(wsgi('error', /\] print-line to stdout$/), 'print() from the application, at error')
  t.ok(wsgi('error', /\] stderr-line one$/) && wsgi('error', /\] stderr-line two$/), 'two lines written at once: two records')
  t.ok(wsgi('error', /\] partial stderr line completed$/), 'a line written in two parts: one record')
  t.ok(wsgi('error', /WSGI03013: Exception occurred processing WSGI script/), 'the exception')
  t.ok(wsgi('error', /\] Traceback \(most recent call last\):$/), 'the traceback, a record per line')
  t.ok(wsgi('error', /RaiseAppError: boom from the raise app$/), 'its last line')
  t.ok(lines.some((l) => /\[mpm_event:notice\].*AH00492/.test(l)), "Apache's own lines are there too")
})
