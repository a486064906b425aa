// Issue 7, bad wire data against the real daemon (TypeScript decoder and the addon's native parse of
// REQUEST and AUTH payloads): for a bounded time (FUZZ_DAEMON_MS, default 6000) many connections send
// truncated, oversized, mutated and random frames, some stopping mid-frame, some dribbling bytes, some
// closing at random. Throughout, the daemon keeps answering a well-formed request on a connection of its
// own; afterwards it is still the same process, logs a line for what it dropped, never an internal
// error, holds no connection it was sent garbage on, and its memory did not grow without bound.
import * as net from 'node:net'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { encodeAuth, encodeVarValue } from '../../src/protocol/auth-frames'
import { BODY_END_FRAME, encodeBody, encodeFrame, encodeRequest } from '../../src/protocol/frames'
import { FrameType, HEADER_SIZE, Limit } from '../../src/protocol/wire'
import { fixture, requestFrames, skipReason, startDaemon, waitFor } from '../daemon/harness'
import { prng } from '../helpers/prng'

const skip = skipReason()
if (skip) t.plan(0, skip)

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9)
const DURATION = Number(process.env.FUZZ_DAEMON_MS ?? 6000)
const rnd = prng(SEED)
const int = (n: number): number => Math.floor(rnd() * n)
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const HELLO = fixture('hello-world')

function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? 0)
}

/** One hostile byte stream. */
function hostile(): Buffer {
  const good = Buffer.concat(requestFrames({ script: HELLO, body: rnd() < 0.5 ? bytes(int(2000)) : undefined }))
  switch (int(10)) {
    case 0:
      return bytes(1 + int(200)) // noise
    case 1:
      return good.subarray(0, 1 + int(good.length - 1)) // cut mid-frame
    case 2: {
      const b = Buffer.from(good) // a byte of the variables changed: the addon parses them
      b[HEADER_SIZE + 16 + int(Math.max(1, b.length - HEADER_SIZE - 16))] = int(256)
      return b
    }
    case 3: {
      const b = Buffer.from(good) // a string length inside the REQUEST made huge
      b.writeUInt32BE(pick([0xffffffff, 0x7fffffff, 1 << 24]), HEADER_SIZE + 16)
      return b
    }
    case 4: {
      const h = Buffer.alloc(HEADER_SIZE) // announces more than allowed, or the maximum, then little
      h[0] = 1
      h[1] = pick([FrameType.REQUEST, FrameType.BODY, FrameType.AUTH, FrameType.VAR_VALUE, 0x11, 0x7f])
      h.writeUInt32BE(pick([Limit.REQUEST, Limit.REQUEST + 1, 0xffffffff, Limit.BODY + 1]) >>> 0, 4)
      return Buffer.concat([h, bytes(int(500))])
    }
    case 5:
      return Buffer.concat([good, encodeBody('stray'), BODY_END_FRAME]) // frames out of order
    case 6:
      return Buffer.concat([encodeVarValue('unasked'), good]) // an answer nobody asked for
    case 7: {
      const a = encodeAuth({ hook: 1 + int(4), script: HELLO, applicationGroup: '', arg1: 'u', arg2: 'p', vars: [['A', 'b']] })
      a[HEADER_SIZE + 16 + int(a.length - HEADER_SIZE - 16)] = int(256) // a hook whose strings are broken
      return a
    }
    case 8: {
      const b = encodeRequest({ bodyFollows: false, vars: [['SCRIPT_FILENAME', HELLO]] })
      b[0] = pick([0, 2, 255]) // wrong version
      return b
    }
    default:
      return Buffer.concat([good, encodeFrame(FrameType.REQUEST, bytes(int(40)))]) // then a bad REQUEST
  }
}

function pick<T>(a: readonly T[]): T {
  return a[int(a.length)]
}

/** Sends one stream in pieces, perhaps slowly, then closes after a while; resolves when closed. */
function attack(path: string): Promise<'closed-by-daemon' | 'closed-by-us'> {
  return new Promise((resolve) => {
    const sock = net.connect(path)
    let ended: 'closed-by-daemon' | 'closed-by-us' = 'closed-by-daemon'
    const data = hostile()
    sock.on('error', () => {})
    sock.on('data', () => {})
    sock.on('close', () => resolve(ended))
    sock.on('connect', async () => {
      const slow = rnd() < 0.2
      for (let off = 0; off < data.length && !sock.destroyed; ) {
        const n = 1 + int(slow ? 8 : 4096)
        sock.write(data.subarray(off, off + n))
        off += n
        if (slow) await sleep(int(20))
      }
      // Some keep the connection open (mid-frame or idle) until the daemon's socket-timeout or ours.
      setTimeout(() => {
        if (!sock.destroyed) {
          ended = 'closed-by-us'
          sock.destroy()
        }
      }, rnd() < 0.3 ? 2000 : int(200))
    })
  })
}

t.test(`random, truncated, oversized and mutated frames for ${DURATION} ms: the daemon serves on`, async (t) => {
  t.comment(`FUZZ_SEED=${SEED}`)
  const d = await startDaemon(t, { options: { threads: 4, socket_timeout: 3 } })
  const rss0 = rssKb(d.pid)
  const probe = await d.connect()
  const until = Date.now() + DURATION
  let attacks = 0
  let probes = 0
  const outcomes = { 'closed-by-daemon': 0, 'closed-by-us': 0 }
  const attackers = Array.from({ length: 8 }, async () => {
    while (Date.now() < until) {
      outcomes[await attack(d.socketPath)]++
      attacks++
    }
  })
  const prober = (async () => {
    while (Date.now() < until) {
      const a = await probe.request({ script: HELLO }, 10000)
      if (a.kind !== 'response' || a.status !== 200) t.fail(`a well-formed request got ${a.kind} during the attack`)
      probes++
      await sleep(20)
    }
  })()
  await Promise.all([...attackers, prober])
  probe.close()

  t.comment(`${attacks} hostile connections (${outcomes['closed-by-daemon']} closed by the daemon), ${probes} well-formed requests answered meanwhile`)
  t.ok(attacks > 50, 'enough hostile connections')
  t.ok(probes > 20, 'the daemon kept answering during the attack')
  t.equal(d.exit, null, 'the daemon did not exit')
  const c = await d.connect()
  const a = await c.request({ script: fixture('daemon-process-info') })
  c.close()
  t.equal(a.kind === 'response' && JSON.parse(a.body.toString()).pid, d.pid, 'the same process answers afterwards')
  t.match(d.stderr, /WSGI02040: Malformed data received from Apache child, connection closed/, 'dropped connections are logged')
  t.notMatch(d.stderr, /WSGI02031|Internal error|FATAL|Segmentation|Aborted/, 'no internal error')
  await waitFor(() => rssKb(d.pid) > 0, 1000)
  const grown = rssKb(d.pid) - rss0
  t.ok(grown < 100 * 1024, `memory grew by ${(grown / 1024).toFixed(1)} MiB (bounded)`)
})

t.test('a REQUEST whose fixed part is right but whose variables are not: dropped with one line, not an internal error', async (t) => {
  const d = await startDaemon(t, { options: { threads: 2 } })
  const good = encodeRequest({ bodyFollows: false, vars: [['SCRIPT_FILENAME', HELLO], ['A', 'b']] })
  const bad = Buffer.from(good)
  bad.writeUInt32BE(1000, bad.length - 5) // the last value's length now runs past the end
  const c = await d.connect()
  c.write(bad)
  t.equal((await c.answer(5000)).kind, 'closed', 'the connection is dropped')
  await d.waitForLog(/WSGI02040: Malformed data received from Apache child, connection closed: submit\(\): malformed REQUEST payload/)
  t.notMatch(d.stderr, /WSGI02031/, 'not reported as an internal error')
  const ok = await d.connect()
  const a = await ok.request({ script: HELLO })
  ok.close()
  t.equal(a.kind === 'response' && a.status, 200, 'the daemon serves on')
})
