// This process's slot on its pool's board (docs/board.md, src/protocol/board-layout.ts): shared memory the
// Apache parent maps and passes as fd 4. The daemon writes its own fields (state, what it asks for, its
// counters) and reads what the parent writes there (its successor, a drain order) and the state of its
// successor's slot. The doorbell (fd 5) wakes the parent when it has something to act on.
import { writeSync } from 'node:fs'
import { BOARD_HEADER_SIZE, BOARD_MAGIC, BOARD_SLOT_SIZE, BoardHeader, Slot, SlotState } from '../protocol/board-layout'

const DOORBELL_FD = 5
const ONE = Buffer.from([1])

export interface SlotCounters {
  requests: number
  active: number
  threadsBusy: number
  queued: number
  websockets: number
  rss: number
  cpuUs: number
}

export class BoardSlot {
  private readonly at: number

  /** `mem` is the whole segment (mapShared(4)); throws when it is not one. */
  constructor(
    private readonly mem: Buffer,
    readonly slot: number,
    private readonly doorbell: boolean,
  ) {
    if (mem.length < BOARD_HEADER_SIZE || mem.readUInt32LE(BoardHeader.MAGIC) !== BOARD_MAGIC)
      throw new Error('fd 4 is not a mod_wsgi board segment')
    const slots = mem.readUInt32LE(BoardHeader.SLOTS)
    if (slot >= slots || mem.length < BOARD_HEADER_SIZE + slots * BOARD_SLOT_SIZE)
      throw new Error(`slot ${slot} is not on the board (${slots} slots)`)
    this.at = BOARD_HEADER_SIZE + slot * BOARD_SLOT_SIZE
  }

  private u32(field: number, slot = this.at): number {
    return this.mem.readUInt32LE(slot + field)
  }

  private setU32(field: number, v: number): void {
    this.mem.writeUInt32LE(v >>> 0, this.at + field)
  }

  private setU64(field: number, v: number): void {
    this.mem.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(v))), this.at + field)
  }

  /** The whole segment and where this slot starts in it (request-stats.ts writes its statistics there). */
  get region(): { mem: Buffer; at: number } {
    return { mem: this.mem, at: this.at }
  }

  /** This process stops, and why (the parent records the reason when it is gone). */
  stopping(reason: number): void {
    this.setU32(Slot.REASON, reason)
    this.state = SlotState.STOPPING
  }

  get state(): number {
    return this.u32(Slot.STATE)
  }

  set state(s: number) {
    this.setU32(Slot.STATE, s)
  }

  get flags(): number {
    return this.u32(Slot.FLAGS)
  }

  /** Sets or clears one of the daemon's own flag bits (the parent's bits are left as they are). */
  setFlag(bit: number, on: boolean): void {
    const f = this.flags
    this.setU32(Slot.FLAGS, on ? f | bit : f & ~bit)
  }

  set reason(code: number) {
    this.setU32(Slot.REASON, code)
  }

  /** The successor the parent started for us, and its state; null when there is none. */
  successor(): { pid: number; state: number } | null {
    const n = this.u32(Slot.SUCCESSOR)
    const pid = this.u32(Slot.SUCCESSOR_PID)
    const slots = this.mem.readUInt32LE(BoardHeader.SLOTS)
    if (n === 0 || n > slots || pid === 0) return null
    const other = BOARD_HEADER_SIZE + (n - 1) * BOARD_SLOT_SIZE
    if (this.u32(Slot.PID, other) !== pid) return { pid, state: SlotState.STARTING }
    return { pid, state: this.u32(Slot.STATE, other) }
  }

  ready(nowUs: number): void {
    this.setU64(Slot.READY_US, nowUs)
    this.state = SlotState.READY
  }

  counters(c: SlotCounters, nowUs: number): void {
    this.setU64(Slot.REQUESTS, c.requests)
    this.setU32(Slot.ACTIVE, c.active)
    this.setU32(Slot.THREADS_BUSY, c.threadsBusy)
    this.setU32(Slot.QUEUED, c.queued)
    this.setU32(Slot.WEBSOCKETS, c.websockets)
    this.setU64(Slot.RSS, c.rss)
    this.setU64(Slot.CPU_US, c.cpuUs)
    this.setU64(Slot.HEARTBEAT_US, nowUs)
  }

  /** The scripts a successor is to import first (as many as fit): u32 count, then string pairs. */
  writeScripts(scripts: ReadonlyArray<{ script: string; applicationGroup: string }>): void {
    const base = this.at + Slot.SCRIPTS
    const end = base + Slot.SCRIPTS_SIZE
    let at = base + 4
    let count = 0
    for (const s of scripts) {
      const a = Buffer.from(s.script)
      const b = Buffer.from(s.applicationGroup)
      if (at + 8 + a.length + b.length > end) break
      this.mem.writeUInt32LE(a.length, at)
      a.copy(this.mem, at + 4)
      at += 4 + a.length
      this.mem.writeUInt32LE(b.length, at)
      b.copy(this.mem, at + 4)
      at += 4 + b.length
      count++
    }
    this.mem.writeUInt32LE(count, base)
  }

  /** Wakes the Apache parent (the doorbell): a successor to start, or a new process ready. */
  ring(): void {
    if (!this.doorbell) return
    try {
      writeSync(DOORBELL_FD, ONE)
    } catch {
      // EAGAIN: the pipe is full of rings the parent has not taken yet; it will look anyway.
    }
  }
}
