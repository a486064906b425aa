// The smallest memory-limit (RLIMIT_DATA) and virtual-memory-limit (RLIMIT_AS) a daemon process works
// with: a base for Node.js and CPython, plus each worker thread's stack. Measured with
// bench/memory-floor.ts (README, "Memory limits"); the same numbers as WSGI_FLOOR_* in
// native/apache/wsgi_config.h, which raises smaller configured values to these. No I/O here.

const MiB = 1024 * 1024

/** Address space: about 810-842 MiB measured at threads=1, 921-953 MiB at threads=15 (depending on how
 *  the daemon was started), and 998-1110 MiB in use with 15 threads busy after requests, varying from
 *  run to run (V8 and malloc reserve address space in large steps); the base and the per-thread part
 *  leave room for that and for V8's heap to grow under load. */
export const FLOOR_AS_BASE = 1024 * MiB
export const FLOOR_AS_PER_THREAD = 4 * MiB
/** Private writable memory: 72 MiB measured at threads=1, 191 MiB at threads=15; with the same room. */
export const FLOOR_DATA_BASE = 128 * MiB
export const FLOOR_DATA_PER_THREAD = MiB / 2
/** A thread's stack when stack-size is not given (glibc takes RLIMIT_STACK, usually 8 MiB). */
export const DEFAULT_THREAD_STACK = 8 * MiB

export interface MemoryFloors {
  /** Smallest working virtual-memory-limit, bytes. */
  virtualMemory: number
  /** Smallest working memory-limit, bytes. */
  data: number
}

export function memoryFloors(threads: number, stackSize: number): MemoryFloors {
  const stack = stackSize > 0 ? stackSize : DEFAULT_THREAD_STACK
  return {
    virtualMemory: FLOOR_AS_BASE + threads * (stack + FLOOR_AS_PER_THREAD),
    data: FLOOR_DATA_BASE + threads * (stack + FLOOR_DATA_PER_THREAD),
  }
}
