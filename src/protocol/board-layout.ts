// The board's layout (docs/board.md): shared memory between the Apache parent, a group's daemons and
// Apache's children. Mirrors native/common/wsgi_board.h one for one (test/unit/wire-agreement.test.ts
// compares them). Offsets in bytes; integers little-endian, at their natural alignment. No I/O here.

export const BOARD_MAGIC = 0x42475357
export const BOARD_VERSION = 1
export const BOARD_HEADER_SIZE = 256
export const BOARD_SLOT_SIZE = 4096
export const BOARD_NAME_MAX = 128

/** Header fields. */
export const BoardHeader = {
  MAGIC: 0,
  VERSION: 4,
  SLOTS: 8,
  SLOT_SIZE: 12,
  PROCESSES: 16,
  THREADS: 20,
  GENERATION: 24,
  NAME: 64,
} as const

/** Slot fields: who writes each is in wsgi_board.h (P the parent, D the daemon). */
export const Slot = {
  STATE: 0,
  PID: 4,
  INDEX: 8,
  FLAGS: 12,
  REASON: 16,
  SUCCESSOR: 20,
  SUCCESSOR_PID: 24,
  PREDECESSOR: 28,
  STARTED_US: 32,
  READY_US: 40,
  HEARTBEAT_US: 48,
  GENERATION: 56,
  REQUESTS: 64,
  ACTIVE: 72,
  THREADS_BUSY: 76,
  QUEUED: 80,
  WEBSOCKETS: 84,
  RSS: 88,
  CPU_US: 96,
  STATS: 128,
  STATS_SIZE: 384,
  /** Request statistics, f64 each (wsgi_board.h): the status classes, then two histograms. */
  STATUS: 128,
  DURATION: 176,
  DURATION_SUM: 304,
  QUEUE_WAIT: 312,
  QUEUE_WAIT_SUM: 440,
  SCRIPTS: 512,
  SCRIPTS_SIZE: 4096 - 512,
} as const

/** Status classes counted at Slot.STATUS: 1xx, 2xx, 3xx, 4xx, 5xx, other. */
export const BOARD_STATUS_CLASSES = 6
/** Buckets of each histogram (the last is +Inf). */
export const BOARD_BUCKETS = 16
/** The buckets' upper bounds in seconds (wsgi_board_bounds of wsgi_board.h). */
export const BUCKET_BOUNDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export const SlotState = {
  FREE: 0,
  STARTING: 1,
  READY: 2,
  DRAINING: 3,
  STOPPING: 4,
} as const

export const SlotFlag = {
  WANT_SUCCESSOR: 0x01,
  SUCCESSOR_FAILED: 0x100,
  DRAIN: 0x200,
  APACHE_STOPPING: 0x400,
  REPLACE: 0x800,
} as const

/** Why a process wants a successor or stops: the same words in logs, status, history and metrics. */
export const REASONS = [
  'none',
  'maximum-requests',
  'restart-interval',
  'memory-recycle',
  'memory-limit',
  'cpu-time-limit',
  'request-timeout',
  'deadlock-timeout',
  'inactivity-timeout',
  'startup-timeout',
  'script-reload',
  'signal',
  'graceful-restart',
  'crash',
  'startup-failure',
  'stop',
  'internal-error',
] as const
export type Reason = (typeof REASONS)[number]

/** A reason's number on the board. */
export function reasonCode(r: Reason): number {
  return REASONS.indexOf(r)
}
