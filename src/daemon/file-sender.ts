// Output that carries a FILE frame (wsgi.file_wrapper over a plain file). The frame travels with the
// file's descriptor as SCM_RIGHTS so the Apache child serves the bytes itself (sendfile where enabled):
// Node's sockets cannot send ancillary data, so the addon's sendWithFd() does the sendmsg(), once Node's
// own write queue for the socket is empty so that the frame arrives in order (embedding-notes, "Passing
// a file descriptor to Apache"). Without sendWithFd, or without the socket's descriptor, the file is read
// here and sent as BODY frames with backpressure: slower, equally correct.
import { close, read } from 'node:fs'
import type { Socket } from 'node:net'
import { decodeFile, splitFrames, writeHeader } from '../protocol/frames'
import { FILE_TO_EOF, FrameType, HEADER_SIZE } from '../protocol/wire'
import { debug } from './log'

/** ProcessControl.sendWithFd: bytes sent (0: socket full, nothing sent), throws on errors. */
export type SendWithFd = (socketFd: number, data: Buffer, fd: number) => number

const CHUNK = 256 * 1024
const EMPTY = Buffer.alloc(0)

/** The OS descriptor under a Node socket, or -1. */
function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : -1
}

/**
 * Writes the whole frames in `data` to `socket`; a FILE frame goes with descriptor `fd` (or, failing
 * that, as BODY frames read from it). `fd` is closed when done. `done` is called once, asynchronously.
 */
export function sendFrames(
  socket: Socket,
  data: Buffer,
  fd: number,
  sendWithFd: SendWithFd | null,
  done: (err: Error | null) => void,
): void {
  const frames = splitFrames(data)
  let i = 0
  let fdOpen = fd >= 0
  const finish = (err: Error | null): void => {
    if (fdOpen) {
      fdOpen = false
      close(fd, () => done(err))
    } else setImmediate(() => done(err))
  }
  const afterFile = (err: Error | null): void => {
    if (err) return finish(err)
    fdOpen = false
    close(fd, () => step())
  }
  const step = (): void => {
    if (socket.destroyed) return finish(new Error('connection closed while sending a file'))
    while (i < frames.length) {
      const f = frames[i++]
      if (f.type !== FrameType.FILE) {
        socket.write(data.subarray(f.start, f.end))
        continue
      }
      if (!fdOpen) return finish(new Error('FILE frame without a file descriptor'))
      const frame = data.subarray(f.start, f.end)
      const sfd = socketFd(socket)
      if (sendWithFd !== null && sfd >= 0) {
        debug('FILE frame: passing fd %d to the child', fd)
        passDescriptor(socket, sfd, frame, fd, sendWithFd, afterFile)
      } else {
        const range = decodeFile(frame.subarray(HEADER_SIZE))
        const remaining = range.count === FILE_TO_EOF ? Number.POSITIVE_INFINITY : Number(range.count)
        debug('FILE frame: fd %d offset %s count %s sent as BODY frames', fd, range.offset, range.count)
        streamFile(socket, fd, Number(range.offset), remaining, afterFile)
      }
      return
    }
    finish(null)
  }
  step()
}

/** sendmsg() of the FILE frame with its descriptor, after Node's queue drained; retries while full. */
function passDescriptor(socket: Socket, sfd: number, frame: Buffer, fd: number, send: SendWithFd, cb: (err: Error | null) => void): void {
  let delay = 1
  const attempt = (): void => {
    if (socket.destroyed) return cb(new Error('connection closed while passing a file descriptor'))
    if (socket.writableLength > 0) {
      // The callback of an empty write runs once everything queued before it has reached the kernel.
      socket.write(EMPTY, () => attempt())
      return
    }
    let n: number
    try {
      n = send(sfd, frame, fd)
    } catch (e) {
      return cb(e instanceof Error ? e : new Error(String(e)))
    }
    if (n === 0) {
      // The kernel buffer is full and Node cannot tell us when it empties for a write it did not make.
      setTimeout(attempt, delay)
      delay = Math.min(delay * 2, 50)
      return
    }
    // The descriptor went with the first byte; the rest of the frame is ordinary bytes.
    if (n < frame.length) socket.write(frame.subarray(n))
    cb(null)
  }
  attempt()
}

function streamFile(socket: Socket, fd: number, position: number, remaining: number, cb: (err: Error | null) => void): void {
  if (remaining <= 0) {
    setImmediate(() => cb(null))
    return
  }
  const want = Math.min(CHUNK, remaining)
  const buf = Buffer.allocUnsafe(HEADER_SIZE + want)
  read(fd, buf, HEADER_SIZE, want, position, (err, n) => {
    if (err) return cb(err)
    if (socket.destroyed) return cb(new Error('connection closed while sending a file'))
    if (n === 0) return cb(null) // end of file (short file: the app's Content-Length is its own affair)
    writeHeader(buf, 0, FrameType.RBODY, n)
    const more = () => streamFile(socket, fd, position + n, remaining - n, cb)
    if (socket.write(buf.subarray(0, HEADER_SIZE + n))) more()
    else waitDrain(socket, more, () => cb(new Error('connection closed while sending a file')))
  })
}

function waitDrain(socket: Socket, onDrain: () => void, onClose: () => void): void {
  const d = (): void => {
    socket.off('close', c)
    onDrain()
  }
  const c = (): void => {
    socket.off('drain', d)
    onClose()
  }
  socket.once('drain', d)
  socket.once('close', c)
}
