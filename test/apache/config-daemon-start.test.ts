// How the Apache parent starts and supervises daemon processes (docs/daemon-config.md), observed with a
// stand-in daemon: a small Python program that records its argv, descriptors and environment, says it is
// ready on its board slot (docs/board.md) and answers every request on fd 3 per docs/protocol.md; it
// exits when the board tells it to drain. MOD_WSGI_NODE / MOD_WSGI_DAEMON_MAIN of the
// Apache parent point at it. Covers the start contract, graceful restart, stop and restart back-off.
import t from 'tap'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { childPids, fixture, makeTempDir, PYTHON, sleep, startApache, waitFor } from '../helpers/apache'
import { alive } from '../helpers/daemons'

const STAND_IN = `
import json, mmap, os, signal, socket, struct, sys, threading, time

def fds():
    out = {}
    for fd in os.listdir('/proc/self/fd'):
        try:
            out[fd] = os.readlink('/proc/self/fd/' + fd)
        except OSError:
            pass  # the descriptor listdir itself used
    return out

cfg_text = os.environ.get('MOD_WSGI_DAEMON_CONFIG')
record = {
    'pid': os.getpid(), 'ppid': os.getppid(), 'argv': sys.argv,
    'argv0': open('/proc/self/cmdline', 'rb').read().split(b'\\0')[0].decode(),
    'fds': fds(), 'env': {k: v for k, v in os.environ.items() if k != 'MOD_WSGI_DAEMON_CONFIG'},
    'config': json.loads(cfg_text) if cfg_text else None,
}
listener = socket.socket(fileno=3)
record['listening'] = listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
# Written aside and renamed, so that the test never reads a half-written record.
_path = os.path.join(os.environ['STAND_IN_DIR'], '%d.json' % os.getpid())
with open(_path + '.tmp', 'w') as f:
    json.dump(record, f)
os.rename(_path + '.tmp', _path)
if os.environ.get('STAND_IN_EXIT_AT_ONCE'):
    sys.exit(1)

def frame(t, payload=b''):
    return struct.pack('>BBHI', 1, t, 0, len(payload)) + payload

def s(b):
    return struct.pack('>I', len(b)) + b

def recvn(c, n):
    b = b''
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b

def serve(c):
    try:
        while True:
            v, t, fl, ln = struct.unpack('>BBHI', recvn(c, 8))
            payload = recvn(c, ln)
            if struct.unpack('>I', payload[:4])[0] & 1:
                while True:
                    v, t, fl, ln = struct.unpack('>BBHI', recvn(c, 8))
                    recvn(c, ln)
                    if t == 3:
                        break
            body = ('%d %d' % (os.getpid(), record['config']['generation'])).encode()
            head = struct.pack('>I', 200) + s(b'200 OK') + struct.pack('>I', 1) + s(b'Content-Type') + s(b'text/plain')
            c.sendall(frame(0x11, head) + frame(0x12, body) + frame(0x13, b'\\0\\0\\0\\0'))
    except (EOFError, OSError):
        c.close()

# The board (fd 4): READY on this process's slot; DRAIN (a newer generation is ready) ends it.
board = mmap.mmap(4, 0)
slot = 256 + record['config']['board']['slot'] * 4096
board[slot:slot + 4] = struct.pack('<I', 2)

def watch_board():
    while True:
        if struct.unpack('<I', board[slot + 12:slot + 16])[0] & 0x200:
            time.sleep(0.3)
            os._exit(0)
        time.sleep(0.05)

threading.Thread(target=watch_board, daemon=True).start()

def on_term(*a):
    if not os.environ.get('STAND_IN_IGNORE_TERM'):
        os._exit(0)

def on_usr1(*a):
    threading.Timer(0.3, lambda: os._exit(0)).start()

signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGUSR1, on_usr1)
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

const dumps = makeTempDir('mod_wsgi-stand-in-')
const standIn = join(dumps, 'stand-in.py')
writeFileSync(standIn, STAND_IN, { mode: 0o644 })
process.env.MOD_WSGI_NODE = PYTHON
process.env.MOD_WSGI_DAEMON_MAIN = standIn
t.teardown(() => {
  delete process.env.MOD_WSGI_NODE
  delete process.env.MOD_WSGI_DAEMON_MAIN
  rmSync(dumps, { recursive: true, force: true })
})

type Dict = { [k: string]: string }

/** What a stand-in daemon recorded about itself at start. */
interface Record {
  pid: number
  ppid: number
  argv: string[]
  argv0: string
  fds: Dict
  env: Dict
  listening: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  config: any
}

/** A fresh directory for the records of one Apache's daemons. */
function recordDir(name: string): string {
  const dir = join(dumps, name)
  mkdirSync(dir, { mode: 0o755 })
  process.env.STAND_IN_DIR = dir
  return dir
}

function records(dir: string): Record[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record)
}

/** Waits until fn returns a value (not null/undefined) and returns it. */
async function until<T>(fn: () => T | null | undefined, what: string, ms = 10000): Promise<T> {
  return (await waitFor(fn, ms, 50, what)) as T
}

const app = fixture('hello-world')

t.test('a daemon process starts exactly as docs/daemon-config.md says', async (t) => {
  const dir = recordDir('contract')
  const apache = await startApache(t, {
    config: `
WSGIPythonPath /c:/d
WSGIPythonHashSeed random
WSGIRestrictStdout On
WSGIDaemonProcess g processes=2 threads=3 python-path=/a:/b home=/tmp display-name=%{GROUP} umask=027 header-buffer-size=16384
WSGIImportScript ${app} process-group=g application-group=%{GLOBAL}
WSGIScriptAlias /g ${app} process-group=g
`,
  })
  const recs = await until(() => (records(dir).length === 2 ? records(dir) : null), 'two daemons')
  t.same(recs.map((r) => r.config.process_index).sort(), [1, 2], 'process_index 1..processes')
  for (const r of recs) {
    t.equal(r.ppid, apache.pid, 'a child of the Apache parent')
    t.equal(r.argv0, '(wsgi:g)', 'argv[0] is (wsgi:GROUP)')
    t.equal(r.argv[0], standIn, 'then the daemon main')
    t.equal(r.argv[1], '-'.repeat(64), 'then 64 characters of padding')
    t.equal(r.argv.length, 2, 'and nothing else')
    t.same(Object.keys(r.fds).map(Number).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5], 'only descriptors 0-5')
    t.equal(r.fds['0'], '/dev/null')
    t.equal(r.fds['1'], apache.errorLog, 'stdout is the error log')
    t.equal(r.fds['2'], apache.errorLog, 'stderr is the error log')
    t.match(r.fds['3'], /^socket:/)
    t.equal(r.listening, 1, 'fd 3 is a listening socket')
    t.match(r.fds['4'], /^\/memfd:mod_wsgi-board/, 'fd 4 is the board segment')
    t.match(r.fds['5'], /^pipe:/, 'fd 5 is the doorbell')
    t.match(r.config.board, { slots: 5, doorbell: true }, 'its slot on the board (2 x processes + 1 slots)')
    t.equal(r.config.succession, null, 'not a successor')
    t.equal(r.env.USER, 'www-data')
    t.equal(r.env.LOGNAME, 'www-data')
    t.equal(r.env.HOME, '/var/www', "the target user's home")

    const c = r.config
    t.equal(c.format, 1)
    t.equal(c.group, 'g')
    t.equal(typeof c.generation, 'number')
    t.match(c.server, { hostname: '127.0.0.1', server_root: apache.dir, apache_user: 'www-data', apache_uid: 33, apache_gid: 33, timeout: 30, log_level: 'info', error_log: apache.errorLog })
    t.same(c.python.path, ['/a', '/b', '/c', '/d'], "the group's python-path first, then WSGIPythonPath")
    t.equal(c.python.hash_seed, 'random')
    t.equal(c.python.restrict_stdout, true)
    t.equal(c.python.restrict_stdin, false, 'stdin not restricted unless WSGIRestrictStdin On (as mod_wsgi)')
    t.equal(c.python.restrict_signal, true, 'signal() restricted by default (as mod_wsgi)')
    t.same(c.python.import_scripts, [{ script: app, application_group: '' }])
    t.match(c.options, {
      processes: 2, multiprocess: true, threads: 3, user: 'www-data', uid: 33, group: 'www-data', gid: 33,
      supplementary_groups: null, umask: 0o27, home: '/tmp', display_name: '(wsgi:g)', python_path: ['/a', '/b'],
      shutdown_timeout: 5, deadlock_timeout: 300, connect_timeout: 15, socket_timeout: 30, listen_backlog: 100,
      header_buffer_size: 16384, queue_timeout: 0, maximum_requests: 0,
    })
  }
  const r = await apache.request('/g')
  t.equal(r.status, 200)
  t.match(r.text, /^\d+ \d+$/, 'answered by a stand-in daemon')
})

t.test('graceful restart: a changed group gets new daemons on the same socket, no request lost, old ones reaped', async (t) => {
  const dir = recordDir('graceful')
  const config = (threads: number) => `
WSGIDaemonProcess g processes=2 threads=${threads}
WSGIScriptAlias /g ${app} process-group=g
`
  const apache = await startApache(t, { config: config(2) })
  const first = await until(() => (records(dir).length === 2 ? records(dir) : null), 'two daemons')
  const socketsBefore = readdirSync(apache.socketDir).filter((f) => f.endsWith('.sock'))

  let stop = false
  const statuses: number[] = []
  const generations = new Set<string>()
  const load = (async () => {
    while (!stop) {
      const r = await apache.request('/g').catch(() => ({ status: 0, text: '' }))
      statuses.push(r.status)
      generations.add(r.text.split(' ')[1])
    }
  })()
  await sleep(300)
  await apache.graceful(config(3))
  await waitFor(() => records(dir).length === 4, 10000, 50, 'the new generation')
  await sleep(800)
  stop = true
  await load

  t.ok(statuses.length > 20, `requests ran during the restart (${statuses.length})`)
  t.same(statuses.filter((s) => s !== 200), [], 'every request answered 200')
  t.ok(generations.size >= 2, 'answered by both generations')
  const second = records(dir).filter((r) => !first.some((f) => f.pid === r.pid))
  t.equal(second.length, 2)
  t.ok(second.every((r) => r.config.generation > first[0].config.generation), 'the new daemons carry a later generation')
  await waitFor(() => first.every((r) => !alive(r.pid)), 10000, 50, 'old daemons to exit')
  t.same(readdirSync(apache.socketDir).filter((f) => f.endsWith('.sock')), socketsBefore, 'the socket path did not change')
  t.notMatch(apache.log(), /long lost child/, 'Apache knew the old daemons when it reaped them')
  t.match(apache.log(), /WSGI01117: process group 'g': the daemon processes of the new configuration are ready and take over/)
  t.match(apache.log(), /WSGI01103: daemon process \d of process group 'g' \(pid \d+\) stopped with exit status 0/)

  // Unchanged configuration: the pool and its daemons are kept, and each daemon is asked (the REPLACE
  // flag on its slot) to be replaced start-first; the stand-in does not ask for a successor, so it serves
  // on (test/apache/options-restarts.test.ts has real daemons replaced).
  const now = records(dir).map((r) => r.pid).filter(alive)
  await apache.graceful(config(3))
  await apache.waitForLog(/WSGI01119: process group 'g': configuration unchanged, its daemon processes are replaced one at a time/)
  await sleep(500)
  t.same(records(dir).length, 4, 'no new pool: no daemon started by the parent itself')
  t.ok(now.every(alive), 'the same daemons serve on until they ask for successors')
  t.equal((await apache.request('/g')).status, 200)
})

t.test('stop: a daemon that ignores SIGTERM is killed after shutdown-timeout + 1 s', async (t) => {
  const dir = recordDir('stop')
  process.env.STAND_IN_IGNORE_TERM = '1'
  t.teardown(() => {
    delete process.env.STAND_IN_IGNORE_TERM
  })
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g shutdown-timeout=1
WSGIScriptAlias /g ${app} process-group=g
`,
  })
  const [rec] = await until(() => (records(dir).length === 1 ? records(dir) : null), 'a daemon')
  const started = Date.now()
  await apache.stop()
  const took = Date.now() - started
  t.notOk(alive(rec.pid), 'the daemon is gone')
  t.ok(took >= 1900 && took < 8000, `Apache waited shutdown-timeout + 1 s before SIGKILL (${took} ms)`)
  t.match(apache.log(), /WSGI01108: daemon process 1 of process group 'g' \(pid \d+\) did not stop within 2 s of SIGTERM; sending SIGKILL/)
  t.same(readdirSync(apache.socketDir).filter((f) => f.endsWith('.sock')), [], 'no socket file remains')
})

t.test('a daemon that keeps exiting at once is restarted with a growing delay', async (t) => {
  const dir = recordDir('backoff')
  process.env.STAND_IN_EXIT_AT_ONCE = '1'
  t.teardown(() => {
    delete process.env.STAND_IN_EXIT_AT_ONCE
  })
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g
WSGIScriptAlias /g ${app} process-group=g
`,
  })
  await apache.waitForLog(/after a delay of 2 s/, 15000)
  const log = apache.log()
  t.match(log, /WSGI01104: daemon process 1 of process group 'g' \(pid \d+\) exited with code 1 .* 1 time\(s\) in a row soon after starting; starting a new one/)
  t.match(log, /after a delay of 1 s/)
  const starts = records(dir).length
  t.ok(starts <= 5, `not restarted in a tight loop (${starts} starts)`)
  const parent = apache.pid
  const children = childPids(parent)
  const stopping = Date.now()
  await apache.stop()
  t.ok(Date.now() - stopping < 8000, 'a daemon waiting out its delay does not hold up the stop')
  t.notOk(alive(parent))
  t.same(children.filter(alive), [], 'no process of this Apache remains')
})

t.test('a daemon that dies is replaced with the same process index', async (t) => {
  const dir = recordDir('replace')
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess g processes=2
WSGIScriptAlias /g ${app} process-group=g
`,
  })
  const recs = await until(() => (records(dir).length === 2 ? records(dir) : null), 'two daemons')
  const victim = recs[0]
  process.kill(victim.pid, 'SIGKILL')
  const replacement = await until(() => records(dir).find((r) => !recs.some((x) => x.pid === r.pid)), 'a new daemon')
  t.equal(replacement.config.process_index, victim.config.process_index, 'same process index')
  t.equal(replacement.ppid, apache.pid)
  await apache.waitForLog(new RegExp(`WSGI01104: daemon process ${victim.config.process_index} of process group 'g' \\(pid ${victim.pid}\\) exited with code 9`))
  const r = await apache.request('/g')
  t.equal(r.status, 200)
})
