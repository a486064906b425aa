// The load client of bench/websocket.ts, a process of its own (so that its work is not counted as the
// harness's): `connections` Node `ws` clients, each sending a message and waiting for its echo, again
// and again for `seconds`; or (`--idle`) connections opened and held. Prints one JSON line.
//   node build/bench/bench/ws-load.js URL --connections 16 --seconds 8 --size 32 [--binary] [--idle]
import WebSocket from 'ws'
import { benchArgs, exitWith } from './args'

interface Args {
  url: string
  connections: number
  seconds: number
  size: number
  binary: boolean
  idle: boolean
}

function parse(argv: string[]): Args {
  const usage = 'usage: $0 URL [options]\n\nThe load client of bench/websocket.ts: echo round trips (or --idle connections held); one JSON line out.'
  const a = benchArgs(argv, usage, {
    connections: { type: 'number', default: 16, describe: 'WebSocket connections' },
    seconds: { type: 'number', default: 8, describe: 'Seconds of echo round trips' },
    size: { type: 'number', default: 32, describe: 'Bytes of each message' },
    binary: { type: 'boolean', default: false, describe: 'Binary messages instead of text' },
    idle: { type: 'boolean', default: false, describe: 'Open the connections and hold them until a line on stdin, then one echo each' },
  })
    .command('$0 <url>', false)
    .positional('url', { type: 'string', demandOption: true, describe: 'ws:// URL of the echo application' })
    .parseSync()
  return { url: a.url, connections: a.connections, seconds: a.seconds, size: a.size, binary: a.binary, idle: a.idle }
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

/** Closes every socket and waits (at most 5 s) for the close handshakes. */
function closeAll(sockets: WebSocket[]): Promise<unknown> {
  const done = sockets.map((ws) => new Promise((r) => (ws.readyState === WebSocket.CLOSED ? r(null) : ws.once('close', r))))
  for (const ws of sockets) ws.close()
  return Promise.race([Promise.all(done), new Promise((r) => setTimeout(r, 5000).unref())])
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2))
  const sockets: WebSocket[] = []
  for (let i = 0; i < a.connections; i++) sockets.push(await open(a.url))
  if (a.idle) {
    // Held open until told (a line on stdin), then each proves it is alive with one echo.
    process.stdout.write(JSON.stringify({ open: sockets.length }) + '\n')
    await new Promise((r) => process.stdin.once('data', r))
    let alive = 0
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((r) => {
            ws.once('message', () => {
              alive++
              r()
            })
            ws.send('ping')
            setTimeout(r, 10000).unref()
          }),
      ),
    )
    process.stdout.write(JSON.stringify({ alive }) + '\n')
    process.stdin.destroy()
    await closeAll(sockets)
    return
  }
  const payload = a.binary ? Buffer.alloc(a.size, 0x61) : 'a'.repeat(a.size)
  const latencies: number[] = []
  let errors = 0
  const end = Date.now() + a.seconds * 1000
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          let sent = 0n
          const next = (): void => {
            if (Date.now() >= end) return resolve()
            sent = process.hrtime.bigint()
            ws.send(payload)
          }
          ws.on('message', (data: Buffer, isBinary: boolean) => {
            if ((isBinary ? data.length : data.toString().length) !== a.size) errors++
            latencies.push(Number(process.hrtime.bigint() - sent) / 1e6)
            next()
          })
          ws.on('close', () => resolve())
          ws.on('error', () => {
            errors++
            resolve()
          })
          next()
        }),
    ),
  )
  await closeAll(sockets)
  latencies.sort((x, y) => x - y)
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN
  process.stdout.write(JSON.stringify({ roundTrips: latencies.length, perSecond: latencies.length / a.seconds, p50: q(0.5), p99: q(0.99), errors }) + '\n')
}

main().then(() => process.exit(0), exitWith)
