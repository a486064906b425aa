// Start before stop, the daemon's side (docs/restarts.md). A process that is to be replaced asks the
// Apache parent for a successor on the board and rings the doorbell, then goes on serving; it stops
// taking requests only when its successor's slot says READY (or the parent orders a drain: a newer
// generation of the group is ready). A successor that dies before it is ready leaves this process
// serving; the parent tries again after a back-off while the request stands.
import { statSync } from 'node:fs'
import { type Reason, SlotFlag, SlotState, reasonCode } from '../protocol/board-layout'
import type { BoardSlot } from './board'

/** How often the slot is looked at while something is awaited (and the parent's orders, always). */
const POLL_MS = 50
/** While no successor is assigned (the parent waits out a back-off after a failed one), the doorbell is
 *  rung again this often, so that the parent looks once the delay has passed. */
const RING_AGAIN_MS = 1000

/** The scripts' modification times on disk now (µs), for those that exist. */
export function scriptVersions(scripts: ReadonlyArray<{ script: string }>): Array<{ script: string; mtimeUs: number }> {
  const out: Array<{ script: string; mtimeUs: number }> = []
  for (const { script } of scripts) {
    try {
      out.push({ script, mtimeUs: Number(statSync(script, { bigint: true }).mtimeNs / 1000n) })
    } catch {
      /* gone: nothing to accept */
    }
  }
  return out
}

export interface HandoverHooks {
  /** Stop taking requests now: the successor is ready ('reason' is why it was asked for), or the parent
   *  ordered a drain ('graceful-restart'). Called once. */
  drain(reason: Reason): void
  /** The successor died before it was ready (each time one does): this process goes on serving. */
  successorFailed(reason: Reason): void
  /** Apache's graceful stop began (the parent's flag): serve on until told to stop. Called once. */
  apacheStopping(): void
  /** Apache restarted gracefully (the parent's flag): be replaced, start-first. Called once. */
  replace(): void
}

export class Handover {
  private wanted: Reason | null = null
  private failedSeen = false
  private done = false
  private timer: NodeJS.Timeout | null = null
  private rangAt = 0
  private apacheStopSeen = false
  private replaceSeen = false

  constructor(
    private readonly slot: BoardSlot,
    private readonly hooks: HandoverHooks,
    /** The scripts this process has loaded: its successor imports them before it is ready. */
    private readonly scripts: () => ReadonlyArray<{ script: string; applicationGroup: string }>,
  ) {}

  /** Starts watching the slot (an unref'd timer: it never keeps the process alive). */
  start(): void {
    if (this.timer !== null) return
    this.timer = setInterval(() => this.poll(), POLL_MS)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Why a successor was asked for, while it is awaited. */
  get pending(): Reason | null {
    return this.wanted
  }

  /** Asks for a successor. Once asked, later reasons change nothing until it comes or is withdrawn. */
  request(reason: Reason): void {
    if (this.done || this.wanted !== null) return
    this.wanted = reason
    // A failure the parent reported earlier is not this request's: only a successor started from now on
    // (the parent clears the flag when it starts one) can fail it.
    this.failedSeen = (this.slot.flags & SlotFlag.SUCCESSOR_FAILED) !== 0
    this.slot.writeScripts(this.scripts())
    this.slot.reason = reasonCode(reason)
    this.slot.setFlag(SlotFlag.WANT_SUCCESSOR, true)
    this.ring()
  }

  private ring(): void {
    this.rangAt = Date.now()
    this.slot.ring()
  }

  /** Stops asking (a successor could not load a changed script: this process serves on as it is). */
  withdraw(): void {
    this.wanted = null
    this.slot.setFlag(SlotFlag.WANT_SUCCESSOR, false)
  }

  poll(): void {
    if (this.done) return
    const flags = this.slot.flags
    if ((flags & SlotFlag.APACHE_STOPPING) !== 0 && !this.apacheStopSeen) {
      this.apacheStopSeen = true
      this.hooks.apacheStopping()
    }
    if ((flags & SlotFlag.REPLACE) !== 0 && !this.replaceSeen) {
      this.replaceSeen = true
      this.hooks.replace()
    }
    if ((flags & SlotFlag.DRAIN) !== 0) return this.finish(this.wanted ?? 'graceful-restart')
    const wanted = this.wanted
    if (wanted === null) return
    const failed = (flags & SlotFlag.SUCCESSOR_FAILED) !== 0
    if (failed && !this.failedSeen) {
      this.failedSeen = true
      this.hooks.successorFailed(wanted)
      return
    }
    if (!failed) this.failedSeen = false
    const s = this.slot.successor()
    if (s !== null && s.state === SlotState.READY) this.finish(wanted)
    else if (s === null && Date.now() - this.rangAt >= RING_AGAIN_MS) this.ring()
  }

  private finish(reason: Reason): void {
    this.done = true
    this.stop()
    this.hooks.drain(reason)
  }
}
