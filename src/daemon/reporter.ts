// Once a second, what this process reports about itself: its counters on the board (read by the Apache
// parent and children for status and metrics, docs/board.md), and its resident memory against
// memory-recycle. An unref'd timer: it never keeps the process alive.
import { readFileSync } from 'node:fs'
import type { BoardSlot } from './board'
import type { DaemonServer } from './server'

const TICK_MS = 1000
const PAGE = 4096

export interface ReporterOptions {
  /** Bytes; 0: not watched. */
  memoryRecycle: number
  /** The resident set passed memoryRecycle (called at every tick while it stays above). */
  overMemory(rss: number): void
}

/** Resident set in bytes, from /proc/self/statm (cheaper than process.memoryUsage(), which also walks
 *  V8's heap). */
export function residentBytes(): number {
  try {
    return Number(readFileSync('/proc/self/statm', 'latin1').split(' ')[1]) * PAGE
  } catch {
    return process.memoryUsage.rss()
  }
}

export class Reporter {
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly server: DaemonServer,
    private readonly slot: BoardSlot | null,
    private readonly opts: ReporterOptions,
  ) {}

  start(): void {
    if (this.timer !== null || (this.slot === null && this.opts.memoryRecycle <= 0)) return
    this.timer = setInterval(() => this.tick(), TICK_MS)
    this.timer.unref()
    this.tick()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  tick(): void {
    const rss = residentBytes()
    if (this.slot !== null) {
      const d = this.server.dispatcher
      const cpu = process.cpuUsage()
      this.slot.counters(
        {
          requests: this.server.completed,
          active: d.activeCount,
          threadsBusy: d.threadCount,
          queued: d.queuedCount,
          websockets: this.server.webSockets.count,
          rss,
          cpuUs: cpu.user + cpu.system,
        },
        Date.now() * 1000,
      )
    }
    if (this.opts.memoryRecycle > 0 && rss > this.opts.memoryRecycle) this.opts.overMemory(rss)
  }
}
