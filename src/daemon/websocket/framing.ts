// The WebSocket framing this daemon uses: ws's Receiver and Sender (npm `ws`, the framing of Node's most
// used WebSocket server), which ws exports but its type declarations (@types/ws) leave out. Typed here
// for what tunnel.ts uses, the one module that loads them.
import type { Duplex } from 'node:stream'
import * as ws from 'ws'

export interface ReceiverOptions {
  /** Unmasked frames are a protocol error (a server's receiver). */
  isServer: boolean
  /** Largest message, bytes (0: no limit); beyond it the error WS_ERR_UNSUPPORTED_MESSAGE_LENGTH. */
  maxPayload: number
  /** Events are emitted while write() runs (not deferred to setImmediate). */
  allowSynchronousEvents: boolean
}

/** A writable stream (stream.Writable) of the peer's bytes; emits 'message' (data, isBinary), 'ping', 'pong',
 *  'conclude' (code, reason) and 'error' (an Error whose `code` is WS_ERR_*). */
export interface Receiver {
  write(chunk: Buffer): boolean
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): this
  on(event: 'ping' | 'pong', fn: (data: Buffer) => void): this
  on(event: 'conclude', fn: (code: number, reason: Buffer) => void): this
  on(event: 'error', fn: (err: Error) => void): this
}

export interface SendOptions {
  binary: boolean
  fin: boolean
  mask: boolean
  compress: boolean
}

/** Frames messages onto a socket. */
export interface Sender {
  send(data: Buffer, options: SendOptions, cb?: (err?: Error) => void): void
  ping(data: Buffer, mask: boolean, cb?: (err?: Error) => void): void
  pong(data: Buffer, mask: boolean, cb?: (err?: Error) => void): void
  /** `code` undefined: a close frame without a status. Throws on a code the RFC does not allow. */
  close(code: number | undefined, data: Buffer | string | undefined, mask: boolean, cb?: (err?: Error) => void): void
}

export interface FrameOptions {
  fin: boolean
  /** 1 text, 2 binary. */
  opcode: number
  mask: boolean
  readOnly: boolean
  rsv1: boolean
}

interface SenderClass {
  new (socket: Duplex): Sender
  /** One frame of `data`: the header, then `data` itself when it is not empty (not copied). */
  frame(data: Buffer, options: FrameOptions): Buffer[]
}

const lib = ws as unknown as {
  Receiver: new (options: ReceiverOptions) => Receiver
  Sender: SenderClass
}

export const Receiver = lib.Receiver
export const Sender = lib.Sender
