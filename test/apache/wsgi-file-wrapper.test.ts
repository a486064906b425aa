// Issue 3, item 6: wsgi.file_wrapper through a real Apache — real files, file-like objects without
// fileno(), pipes; with and without Content-Length; the block size honoured; close() called. And
// WSGIEnableSendfile (default Off, release notes Features Changed 1): with it On the daemon hands the open
// file to the Apache child, which sends it with the kernel's sendfile() — seen with strace on the child;
// with it Off no byte goes out through sendfile().
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { childPids, fixture, FIXTURES, makeTempDir, startApache, waitFor, type Apache } from '../helpers/apache'

/** strace on every Apache child (not the daemons), all threads, sendfile calls only. */
async function traceChildren(apache: Apache, out: string): Promise<ChildProcess> {
  const children = childPids(apache.pid).filter((p) => {
    try {
      return !readlinkSync(`/proc/${p}/exe`).includes('node')
    } catch {
      return false
    }
  })
  if (children.length === 0) throw new Error('no Apache child to trace')
  const args = ['-f', '-qq', '-e', 'trace=sendfile,sendfile64', '-o', out, ...children.flatMap((p) => ['-p', String(p)])]
  const strace = spawn('strace', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  strace.stderr?.on('data', (d: Buffer) => (err += d.toString()))
  // strace attaches before it writes anything; the thread list of each child is then in its status.
  await waitFor(() => {
    if (strace.exitCode !== null) throw new Error(`strace exited: ${err}`)
    return children.every((p) => {
      try {
        return /TracerPid:\s+[1-9]/.test(readFileSync(`/proc/${p}/status`, 'latin1'))
      } catch {
        return false
      }
    })
  }, 10000, 50, 'strace to attach')
  return strace
}

async function stopTrace(strace: ChildProcess): Promise<void> {
  if (strace.exitCode !== null) return
  const done = new Promise((r) => strace.once('exit', r))
  strace.kill('SIGINT')
  await done
}

/** Bytes sent by successful sendfile() calls in an strace output file. */
function sendfileBytes(out: string): { calls: number; bytes: number } {
  let calls = 0
  let bytes = 0
  for (const line of readFileSync(out, 'latin1').split('\n')) {
    const m = /sendfile(?:64)?\(.*\)\s+=\s+(\d+)/.exec(line)
    if (m) {
      calls++
      bytes += Number(m[1])
    }
  }
  return { calls, bytes }
}

t.test('wsgi.file_wrapper', async (t) => {
  const dir = makeTempDir('mod_wsgi-files-')
  chmodSync(dir, 0o777) // the daemon (www-data) writes the close() record here
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const data = randomBytes(1024 * 1024 + 123)
  const dataFile = join(dir, 'data.bin')
  writeFileSync(dataFile, data, { mode: 0o644 })
  const record = join(dir, 'record.txt')

  const apache = await startApache(t, {
    // One Apache child, so that strace sees whichever serves the request.
    preamble: 'ServerLimit 1\nThreadsPerChild 25\nMaxRequestWorkers 25\nMinSpareThreads 1\nMaxSpareThreads 25',
    config: `
WSGIDaemonProcess files threads=4
WSGIProcessGroup files
WSGIScriptAlias /off ${fixture('file-like')}
WSGIScriptAlias /on ${fixture('file-like')}
WSGIScriptAlias /env-on ${fixture('validated-environ')}
WSGIScriptAlias /daemon-file ${fixture('daemon-file-wrapper')}
<Location /on>
  WSGIEnableSendfile On
</Location>
<Location /env-on>
  WSGIEnableSendfile On
</Location>
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  const q = (kind: string, extra = '') =>
    `kind=${kind}&path=${encodeURIComponent(dataFile)}&record=${encodeURIComponent(record)}${extra}`
  const records = async (n: number): Promise<string[]> =>
    (await waitFor(() => {
      const lines = existsSync(record) ? readFileSync(record, 'latin1').trim().split('\n') : []
      return lines.length >= n ? lines : null
    }, 10000, 50, `${n} close() records`)) as string[]

  await t.test('a real file, whole, with close() called', async (t) => {
    rmSync(record, { force: true })
    const r = await apache.request(`/off?${q('real')}`)
    t.equal(r.status, 200)
    t.ok(r.body.equals(data), 'the whole file')
    const [line] = await records(1)
    t.equal(line, 'real reads= closed', 'close() called; never read() by the daemon: the Apache child sent the file')
  })

  await t.test('a real file with Content-Length, from its current position', async (t) => {
    let r = await apache.request(`/daemon-file?path=${encodeURIComponent(dataFile)}&length=1000`)
    t.equal(r.headers['content-length'], '1000')
    t.ok(r.body.equals(data.subarray(0, 1000)), 'only Content-Length bytes')
    r = await apache.request(`/daemon-file?path=${encodeURIComponent(dataFile)}&offset=5000`)
    t.ok(r.body.equals(data.subarray(5000)), 'from the offset the app had seeked to')
    r = await apache.request(`/daemon-file?path=${encodeURIComponent(dataFile)}&offset=100&length=50&prefix=3`)
    t.ok(r.body.equals(Buffer.concat([Buffer.from('ppp'), data.subarray(100, 147)])), 'after write() output, within Content-Length')
  })

  await t.test('a file-like object without fileno(): read in blocks of blksize, close() called', async (t) => {
    rmSync(record, { force: true })
    const r = await apache.request(`/off?${q('filelike', '&blksize=100000')}`)
    t.ok(r.body.equals(data), 'the whole content')
    const [line] = await records(1)
    const m = /^filelike reads=([\d,]+) closed$/.exec(line)
    t.ok(m, line)
    const reads = (m?.[1] ?? '').split(',').map(Number)
    t.ok(reads.every((n) => n === 100000), `every read() asked for blksize: ${reads.length} reads`)
    t.equal(reads.length, Math.ceil(data.length / 100000) + 1, 'until read() returned b""')

    rmSync(record, { force: true })
    const limited = await apache.request(`/off?${q('filelike', '&blksize=4096&length=10000')}`)
    t.equal(limited.body.length, 10000, 'Content-Length honoured')
    t.ok(limited.body.equals(data.subarray(0, 10000)))
    t.match((await records(1))[0], /^filelike reads=4096,4096,4096(,4096)* closed$/, 'and close() called')
  })

  await t.test('a pipe (fileno() but not a plain file) is read in blocks', async (t) => {
    rmSync(record, { force: true })
    const r = await apache.request(`/off?${q('pipe', '&blksize=65536')}`)
    t.ok(r.body.equals(data), 'the whole content')
    t.match((await records(1))[0], /^real reads=65536(,65536)+ closed$/)
  })

  await t.test('WSGIEnableSendfile On: the Apache child sends the file with sendfile()', async (t) => {
    const env = JSON.parse((await apache.request('/env-on')).text)
    t.equal(env['mod_wsgi.enable_sendfile'], '1')
    const out = join(dir, 'strace-on.txt')
    const strace = await traceChildren(apache, out)
    try {
      const r = await apache.request(`/on?${q('real')}`)
      t.ok(r.body.equals(data), 'the whole file arrives')
    } finally {
      await stopTrace(strace)
    }
    const s = sendfileBytes(out)
    t.ok(s.calls >= 1, `sendfile() called ${s.calls} times`)
    t.equal(s.bytes, data.length, 'every byte of the file went through sendfile()')
  })

  await t.test('WSGIEnableSendfile Off (the default): no sendfile()', async (t) => {
    const out = join(dir, 'strace-off.txt')
    const strace = await traceChildren(apache, out)
    try {
      const r = await apache.request(`/off?${q('real')}`)
      t.ok(r.body.equals(data), 'the whole file arrives')
    } finally {
      await stopTrace(strace)
    }
    t.same(sendfileBytes(out), { calls: 0, bytes: 0 }, 'not one sendfile() call')
  })
})
