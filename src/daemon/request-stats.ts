// Request statistics on this process's board slot (docs/board.md, "Request statistics"): as each request
// ends, its status class and two histogram observations (how long it took from when Apache read it, and
// how long it waited for an application thread) are added there, where Apache's children read them for
// wsgi-status, wsgi-metrics and server-status. Plain stores into shared memory from the JavaScript thread
// (the only writer): each field is an f64 written whole, so a reader sees every count whole.
import { BOARD_BUCKETS, BOARD_STATUS_CLASSES, BUCKET_BOUNDS, Slot } from '../protocol/board-layout'

/** Microseconds since the epoch, with sub-millisecond resolution (Date.now() has milliseconds only). */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000
}

/** The bucket of a time in seconds: the first whose bound is at least that long, else the last (+Inf). */
export function bucketOf(seconds: number): number {
  const b = BUCKET_BOUNDS
  for (let i = 0; i < b.length; i++) if (seconds <= b[i]) return i
  return BOARD_BUCKETS - 1
}

/** The status class index: 0 for 1xx ... 4 for 5xx, 5 for anything else (600-999, or none known). */
export function statusClass(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : BOARD_STATUS_CLASSES - 1
}

const F64 = 8

export class RequestStats {
  /** The slot's statistics as doubles, indexed from Slot.STATUS; null without a board. */
  private readonly f: Float64Array | null
  /** Requests counted so far by this process (also without a board). */
  count = 0

  /** `slot`: the whole segment and the byte offset of this process's slot, or null. */
  constructor(slot: { mem: Buffer; at: number } | null) {
    let f: Float64Array | null = null
    if (slot !== null) {
      const start = slot.mem.byteOffset + slot.at + Slot.STATUS
      const n = (Slot.STATS + Slot.STATS_SIZE - Slot.STATUS) / F64
      // A segment mapped by the addon is page-aligned; anything else cannot be written as doubles.
      if (start % F64 === 0) f = new Float64Array(slot.mem.buffer, start, n)
    }
    this.f = f
  }

  /**
   * One request answered: `status` (0 when none is known), when Apache read it (`startUs`), when a
   * thread took it (`admittedUs`, or the end for a request that never ran), when it ended (`endUs`).
   */
  record(status: number, startUs: number, admittedUs: number, endUs: number): void {
    this.count++
    const f = this.f
    if (f === null) return
    const took = Math.max(0, (endUs - startUs) / 1e6)
    const waited = Math.max(0, (admittedUs - startUs) / 1e6)
    const d = (Slot.DURATION - Slot.STATUS) / F64
    const q = (Slot.QUEUE_WAIT - Slot.STATUS) / F64
    f[statusClass(status)] += 1
    f[d + bucketOf(took)] += 1
    f[d + BOARD_BUCKETS] += took
    f[q + bucketOf(waited)] += 1
    f[q + BOARD_BUCKETS] += waited
  }
}
