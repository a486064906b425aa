// What the WebSocket tests share: the Apache config serving test/fixtures/asgi/websocket, and a small
// promise-based wrapper over a Node `ws` client (messages in order, the close code and reason).
import WebSocket from 'ws'
import { ALLOW_ASGI, asgiFixture } from '../asgi/helpers'

export { ALLOW_ASGI, asgiFixture }

/** The WebSocket fixture mounted at /ws in a group `name` (extra daemon options appended). */
export function wsConfig(name = 'ws', options = '', extra = ''): string {
  return `
WSGIDaemonProcess ${name} threads=2 ${options}
WSGIProcessGroup ${name}
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /ws ${asgiFixture('websocket')}
${ALLOW_ASGI}
${extra}
`
}

export interface Closed {
  code: number
  reason: string
}

export interface Client {
  ws: WebSocket
  /** The next message (text as a string, binary as a Buffer); rejects if the socket closes first. */
  next(timeoutMs?: number): Promise<string | Buffer>
  /** Resolves when the connection is closed, with the close code and reason the client saw. */
  closed: Promise<Closed>
  send(data: string | Buffer): void
  /** Starts the closing handshake and waits for its end. */
  close(code?: number, reason?: string): Promise<Closed>
}

/** Opens a WebSocket (rejects with the HTTP status of a refused upgrade as `status`). */
export function connect(url: string, protocols?: string[], opts: WebSocket.ClientOptions = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...opts })
    const queue: Array<string | Buffer> = []
    const waiters: Array<{ ok: (m: string | Buffer) => void; fail: (e: Error) => void }> = []
    let closedInfo: Closed | null = null
    const closed = new Promise<Closed>((res) => {
      ws.on('close', (code, reason) => {
        closedInfo = { code, reason: reason.toString() }
        for (const w of waiters.splice(0)) w.fail(new Error(`closed ${code} ${reason.toString()}`))
        res(closedInfo)
      })
    })
    ws.on('message', (data, isBinary) => {
      const m = isBinary ? (data as Buffer) : data.toString()
      const w = waiters.shift()
      if (w) w.ok(m)
      else queue.push(m)
    })
    ws.on('unexpected-response', (_req, res) => {
      const err = new Error(`unexpected response ${res.statusCode}`) as Error & { status?: number; headers?: unknown; body?: string }
      err.status = res.statusCode
      err.headers = res.headers
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => {
        err.body = body
        reject(err)
      })
      res.on('error', () => reject(err))
    })
    ws.on('error', (e) => reject(e))
    ws.on('open', () =>
      resolve({
        ws,
        closed,
        send: (d) => ws.send(d),
        next: (timeoutMs = 10000) => {
          const m = queue.shift()
          if (m !== undefined) return Promise.resolve(m)
          if (closedInfo) return Promise.reject(new Error(`closed ${closedInfo.code}`))
          return new Promise((ok, fail) => {
            const timer = setTimeout(() => fail(new Error('no message in time')), timeoutMs)
            waiters.push({
              ok: (x) => {
                clearTimeout(timer)
                ok(x)
              },
              fail: (e) => {
                clearTimeout(timer)
                fail(e)
              },
            })
          })
        },
        close: (code?: number, reason?: string) => {
          ws.close(code, reason)
          return closed
        },
      }),
    )
  })
}
