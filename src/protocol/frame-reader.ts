// An incremental frame parser: feed it Buffers as they arrive from a socket, it calls back once per
// complete frame. It validates each header as soon as its 8 bytes are in (version, known type, type
// allowed in the caller's current state, payload length within the type's bounds) and throws a
// ProtocolError on the first violation, before reading or holding anything of that frame's payload.
// Memory: it keeps only what it was given of the frame in progress (never the declared length up front),
// so a peer announcing 8 MiB and sending 10 bytes costs 10 bytes.
import { ProtocolError } from './protocol-error'
import { HEADER_SIZE, WIRE_VERSION, frameTypeName, type LengthBounds } from './wire'

/** Called once per frame. `payload` may be a view into a Buffer given to push(): copy it to keep it
 *  beyond the underlying chunk's life (Node socket chunks are not reused, so views are safe there). */
export type FrameHandler = (type: number, flags: number, payload: Buffer) => void

const EMPTY = Buffer.alloc(0)

export class FrameReader {
  private readonly bounds: Array<LengthBounds | undefined> = new Array(256)
  private readonly allowed = new Uint8Array(256)

  // Header being assembled across chunks.
  private readonly hdr = Buffer.alloc(HEADER_SIZE)
  private hdrFill = 0
  // Payload being assembled across chunks (only when it does not arrive in one piece).
  private inPayload = false
  private type = 0
  private flags = 0
  private length = 0
  private pieces: Buffer[] = []
  private got = 0

  // Chunks held while paused, in order.
  private pending: Buffer[] = []
  private pendingBytes = 0
  private paused = false
  private running = false
  private failed = false

  constructor(
    bounds: ReadonlyMap<number, LengthBounds>,
    private readonly onFrame: FrameHandler,
    allowed: Iterable<number> = bounds.keys(),
  ) {
    for (const [type, b] of bounds) this.bounds[type] = b
    this.setAllowed(allowed)
  }

  /** Replaces the set of frame types accepted next (the caller's state machine). */
  setAllowed(types: Iterable<number>): void {
    this.allowed.fill(0)
    for (const t of types) this.allowed[t & 0xff] = 1
  }

  /** Stops delivering frames (from inside a handler too); bytes pushed meanwhile are kept in order. */
  pause(): void {
    this.paused = true
  }

  /** Delivers what was held while paused, synchronously, then goes on normally. */
  resume(): void {
    if (!this.paused) return
    this.paused = false
    if (this.running) return // the push() loop below us picks up the pending chunks
    this.drain()
  }

  get isPaused(): boolean {
    return this.paused
  }

  /** Bytes held: the partial frame and anything pushed while paused. */
  get buffered(): number {
    return this.hdrFill + this.got + this.pendingBytes
  }

  /** True between frames (nothing partial held): EOF here is clean. */
  get atBoundary(): boolean {
    return this.hdrFill === 0 && !this.inPayload && this.pendingBytes === 0
  }

  /** Feeds bytes. Throws ProtocolError on the first violation; after that every push is ignored. */
  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return
    if (!this.paused && !this.running && this.pending.length === 0) {
      // Common case: parse in place, keep only what a pause leaves over.
      this.running = true
      try {
        const used = this.consume(chunk)
        if (used < chunk.length) {
          // Ahead of anything a handler pushed meanwhile.
          this.pending.unshift(chunk.subarray(used))
          this.pendingBytes += chunk.length - used
        }
      } catch (e) {
        this.failed = true
        this.pending = []
        this.pendingBytes = 0
        this.pieces = []
        throw e
      } finally {
        this.running = false
      }
      // A handler may have pushed reentrantly, or paused and resumed.
      if (!this.paused && this.pending.length > 0) this.drain()
      return
    }
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    if (this.paused || this.running) return
    this.drain()
  }

  private drain(): void {
    this.running = true
    try {
      while (!this.paused && this.pending.length > 0) {
        const chunk = this.pending.shift() as Buffer
        this.pendingBytes -= chunk.length
        const used = this.consume(chunk)
        if (used < chunk.length) {
          // Paused by a handler mid-chunk: keep the rest first in line.
          const rest = chunk.subarray(used)
          this.pending.unshift(rest)
          this.pendingBytes += rest.length
        }
      }
    } catch (e) {
      this.failed = true
      this.pending = []
      this.pendingBytes = 0
      this.pieces = []
      throw e
    } finally {
      this.running = false
    }
  }

  /** Parses as much of `chunk` as possible; returns the bytes used (less than all only when paused). */
  private consume(chunk: Buffer): number {
    let off = 0
    const n = chunk.length
    while (off < n && !this.paused) {
      if (this.inPayload) {
        const take = Math.min(this.length - this.got, n - off)
        this.pieces.push(chunk.subarray(off, off + take))
        this.got += take
        off += take
        if (this.got === this.length) {
          const payload = this.pieces.length === 1 ? this.pieces[0] : Buffer.concat(this.pieces, this.length)
          this.pieces = []
          this.got = 0
          this.inPayload = false
          this.onFrame(this.type, this.flags, payload)
        }
        continue
      }
      // Header: straight from the chunk when all 8 bytes are there, else assembled.
      let h: Buffer
      let ho: number
      if (this.hdrFill === 0 && n - off >= HEADER_SIZE) {
        h = chunk
        ho = off
        off += HEADER_SIZE
      } else {
        const take = Math.min(HEADER_SIZE - this.hdrFill, n - off)
        chunk.copy(this.hdr, this.hdrFill, off, off + take)
        this.hdrFill += take
        off += take
        if (this.hdrFill < HEADER_SIZE) break
        this.hdrFill = 0
        h = this.hdr
        ho = 0
      }
      const type = h[ho + 1]
      const flags = (h[ho + 2] << 8) | h[ho + 3]
      const length = h.readUInt32BE(ho + 4)
      this.check(h[ho], type, length)
      if (length === 0) {
        this.onFrame(type, flags, EMPTY)
      } else if (n - off >= length) {
        const payload = chunk.subarray(off, off + length)
        off += length
        this.onFrame(type, flags, payload)
      } else {
        this.inPayload = true
        this.type = type
        this.flags = flags
        this.length = length
        this.got = 0
      }
    }
    return off
  }

  private check(version: number, type: number, length: number): void {
    if (version !== WIRE_VERSION)
      throw new ProtocolError(
        'version',
        `frame of protocol version ${version}, expected ${WIRE_VERSION}: the daemon and mod_wsgi.so are from different builds`,
      )
    const b = this.bounds[type]
    if (b === undefined) throw new ProtocolError('type', `unknown frame type ${frameTypeName(type)}`)
    if (this.allowed[type] === 0) throw new ProtocolError('not-allowed', `frame ${frameTypeName(type)} not allowed here`)
    if (length > b.max)
      throw new ProtocolError('too-large', `frame ${frameTypeName(type)} of ${length} bytes exceeds its limit of ${b.max}`)
    if (length < b.min)
      throw new ProtocolError('too-small', `frame ${frameTypeName(type)} of ${length} bytes is under its minimum of ${b.min}`)
  }
}
