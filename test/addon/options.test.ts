// src/native/index.ts: option validation and normalisation (no Python started here), and the
// ProcessControl primitives.
import { spawn } from 'node:child_process'
import { closeSync, openSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import t from 'tap'

import { DEFAULT_PYTHON_OPTIONS, normalisePythonOptions, processControl } from '../../src/native/index'
import { tempDir } from './harness'

t.test('defaults and normalisation', async (t) => {
  const o = normalisePythonOptions({})
  t.same(o, DEFAULT_PYTHON_OPTIONS)
  t.not(o, DEFAULT_PYTHON_OPTIONS, 'a fresh object')
  const n = normalisePythonOptions({ threads: 3, path: ['/a', '', '/b'], hashSeed: 'random', home: undefined })
  t.equal(n.threads, 3)
  t.same(n.path, ['/a', '/b'], 'empty entries dropped')
  t.equal(n.hashSeed, 'random')
  t.equal(n.home, null)
})

t.test('bad options are refused with the field named', async (t) => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ programName: 'python3' }, /programName must be an absolute path/],
    [{ home: 'relative/venv' }, /home must be an absolute path/],
    [{ threads: 0 }, /threads must be an integer from 1/],
    [{ threads: 1.5 }, /threads must be an integer/],
    [{ optimize: 3 }, /optimize must be an integer from 0 to 2/],
    [{ hashSeed: -1 }, /hashSeed must be an integer from 0 to 4294967295/],
    [{ hashSeed: 'sometimes' }, /hashSeed must be an integer/],
    [{ logLevel: 'loud' }, /logLevel must be one of emerg/],
    [{ warnings: ['ok', 3] }, /warnings\[1\] must be a string/],
    [{ warnings: [''] }, /warnings\[0\] must be a non-empty warning filter/],
    [{ path: '/a' }, /path must be an array of strings/],
    [{ processGroup: 'a\0b' }, /processGroup must be a string without NUL/],
    [{ verbose: 'yes' }, /verbose must be a boolean/],
    [{ stackSize: -1 }, /stackSize must be an integer/],
  ]
  for (const [options, message] of bad) t.throws(() => normalisePythonOptions(options as never), message)
})

t.test('processControl', async (t) => {
  const nofile = processControl.getrlimit('nofile')
  t.type(nofile.soft, 'number')
  t.ok(nofile.soft <= nofile.hard)
  processControl.setrlimit('nofile', nofile.soft, nofile.hard)
  t.same(processControl.getrlimit('nofile'), nofile)
  const as = processControl.getrlimit('as')
  t.equal(as.hard, Infinity, 'RLIM_INFINITY is Infinity')
  t.throws(() => processControl.getrlimit('bogus' as never), /resource must be one of/)
  t.throws(() => processControl.setrlimit('nofile', -5, 10), /soft must be a non-negative integer/)
  t.throws(() => processControl.setrlimit('nofile', nofile.hard + 1, nofile.hard), /setrlimit\(nofile\) failed: Invalid argument/)
  processControl.setMallocArenaMax(2)
  t.throws(() => processControl.setMallocArenaMax(0), /arena count/)
  processControl.setPriority(0)
  t.throws(() => processControl.setPriority(99), /nice must be an integer from -20 to 20/)
})

// A receiver in Python (socket.recv_fds): what the Apache child does with a FILE frame's descriptor.
const RECEIVER = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1)
print('listening', flush=True)
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 100, 1)
rest = b''
while True:
    more = c.recv(100)
    if not more:
        break
    rest += more
print((msg + rest).decode(), len(fds), os.pread(fds[0], 100, 0).decode(), flush=True)
`

t.test('sendWithFd passes a descriptor with the bytes (SCM_RIGHTS)', async (t) => {
  const dir = tempDir(t, 'addon-fd-')
  const path = join(dir, 'sock')
  const file = join(dir, 'payload.txt')
  writeFileSync(file, 'file content')
  const py = spawn('/usr/bin/python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (py.exitCode === null) py.kill('SIGKILL')
  })
  let out = ''
  py.stdout.setEncoding('utf8')
  py.stdout.on('data', (d: string) => (out += d))
  await new Promise<void>((res) => py.stdout.once('data', () => res()))
  const sock = net.connect(path)
  await new Promise((res) => sock.once('connect', res))
  const sockFd = (sock as unknown as { _handle: { fd: number } })._handle.fd
  const fd = openSync(file, 'r')
  const n = processControl.sendWithFd(sockFd, Buffer.from('with-fd'), fd)
  closeSync(fd) // the receiver has its own copy now
  t.equal(n, 7)
  sock.end('after')
  await new Promise((res) => py.once('exit', res))
  t.equal(out.split('\n')[1], 'with-fdafter 1 file content', 'bytes in order, one descriptor, readable')
  t.throws(() => processControl.sendWithFd(sockFd, Buffer.alloc(0), 0), /non-empty Buffer/)
})
