// A WebSocket client at the level of frames, for the protocol tests (the cases of the Autobahn suite,
// which cannot be installed here): it sends the handshake and whatever frames a test builds, masked or
// not, and parses what the server sends back, including whether the server closed the TCP connection.
import { createHash, randomBytes } from 'node:crypto'
import * as net from 'node:net'

export interface Frame {
  fin: boolean
  rsv: number
  opcode: number
  payload: Buffer
}

export interface FrameOptions {
  fin?: boolean
  /** RSV bits (0-7), as the 3 bits after FIN. */
  rsv?: number
  /** Mask the payload (clients must); default true. */
  mask?: boolean
}

/** One frame's bytes. */
export function frame(opcode: number, payload: Buffer | string = Buffer.alloc(0), o: FrameOptions = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const mask = o.mask !== false
  const len = data.length
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0))
  head[0] = ((o.fin === false ? 0 : 1) << 7) | ((o.rsv ?? 0) << 4) | opcode
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127)
  if (ext === 2) head.writeUInt16BE(len, 2)
  else if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2)
  if (!mask) return Buffer.concat([head, data])
  const key = randomBytes(4)
  key.copy(head, 2 + ext)
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3]
  return Buffer.concat([head, body])
}

/** A close frame's payload: the code, then the reason. */
export function closeBody(code: number, reason: Buffer | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason
  const b = Buffer.alloc(2 + r.length)
  b.writeUInt16BE(code, 0)
  r.copy(b, 2)
  return b
}

export class RawClient {
  private buf = Buffer.alloc(0)
  private waiting: (() => void) | null = null
  /** The server closed the TCP connection (FIN or reset). */
  ended = false
  head = ''

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c])
      this.wake()
    })
    socket.on('end', () => {
      this.ended = true
      this.wake()
    })
    socket.on('close', () => {
      this.ended = true
      this.wake()
    })
    socket.on('error', () => {
      this.ended = true
      this.wake()
    })
  }

  private wake(): void {
    const w = this.waiting
    this.waiting = null
    w?.()
  }

  private async more(deadline: number): Promise<void> {
    if (this.ended) throw new Error('connection closed')
    const left = deadline - Date.now()
    if (left <= 0) throw new Error('timed out')
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left)
      this.waiting = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  /** Connects and completes the handshake (throws unless the answer is a 101 with the right accept). */
  static async open(port: number, path: string, extraHeaders = ''): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1')
    await new Promise<void>((res, rej) => {
      socket.once('connect', () => res())
      socket.once('error', rej)
    })
    socket.setNoDelay(true)
    const c = new RawClient(socket)
    const key = randomBytes(16).toString('base64')
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`,
    )
    const deadline = Date.now() + 10000
    for (;;) {
      const at = c.buf.indexOf('\r\n\r\n')
      if (at >= 0) {
        c.head = c.buf.subarray(0, at).toString('latin1')
        c.buf = c.buf.subarray(at + 4)
        break
      }
      await c.more(deadline)
    }
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    if (!/^HTTP\/1\.1 101 /.test(c.head)) throw new Error(`no 101: ${c.head}`)
    if (!c.head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) throw new Error(`bad accept: ${c.head}`)
    return c
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames))
  }

  /** The next frame from the server (unmasked, as a server's must be). */
  async read(timeoutMs = 10000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const f = this.parse()
      if (f) return f
      await this.more(deadline)
    }
  }

  private parse(): Frame | null {
    const b = this.buf
    if (b.length < 2) return null
    if (b[1] & 0x80) throw new Error('the server masked a frame')
    let len = b[1] & 0x7f
    let at = 2
    if (len === 126) {
      if (b.length < 4) return null
      len = b.readUInt16BE(2)
      at = 4
    } else if (len === 127) {
      if (b.length < 10) return null
      len = Number(b.readBigUInt64BE(2))
      at = 10
    }
    if (b.length < at + len) return null
    const f = { fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, payload: Buffer.from(b.subarray(at, at + len)) }
    this.buf = b.subarray(at + len)
    return f
  }

  /** Reads until a close frame and the end of the TCP connection: the close code (1005 when none). */
  async closeCode(timeoutMs = 10000): Promise<{ code: number; reason: string; frames: Frame[]; tcpClosed: boolean }> {
    const frames: Frame[] = []
    for (;;) {
      const f = await this.read(timeoutMs)
      if (f.opcode !== 8) {
        frames.push(f)
        continue
      }
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005
      const reason = f.payload.subarray(2).toString()
      const deadline = Date.now() + timeoutMs
      while (!this.ended && Date.now() < deadline) await this.more(deadline).catch(() => undefined)
      return { code, reason, frames, tcpClosed: this.ended }
    }
  }

  /** Waits for the server to close the TCP connection. */
  async waitEnd(timeoutMs = 10000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!this.ended && Date.now() < deadline) await this.more(deadline).catch(() => undefined)
    return this.ended
  }

  destroy(): void {
    this.socket.destroy()
  }
}
