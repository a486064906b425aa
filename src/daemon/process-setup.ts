// Per-process settings of WSGIDaemonProcess other than identity: resource limits and CPU priority (applied
// while still privileged, before Python starts), then umask, working directory and environment (after the
// identity drop, so the directory is checked with the user's own rights). Failures of limits and chdir
// are logged at 'alert' and the daemon goes on, as mod_wsgi does; identity failures are fatal elsewhere.
import type { DaemonOptions } from '../config/daemon-config'
import { memoryFloors } from '../config/memory-floor'
import type { ProcessControl, RlimitResource } from '../native/types'
import { E, errText } from './errors'
import { userEnvironment } from './identity'
import { log } from './log'

function lower(pc: ProcessControl, resource: RlimitResource, what: string, soft: number, hard: number): void {
  try {
    // Never ask for more than the current hard limit: only root may raise it, and we only mean to lower.
    const cur = pc.getrlimit(resource)
    const cap = (v: number) => (cur.hard >= 0 && Number.isFinite(cur.hard) && v > cur.hard ? cur.hard : v)
    pc.setrlimit(resource, cap(soft), cap(hard))
  } catch (e) {
    log.report(E.rlimit, what, soft, errText(e))
  }
}

/** cpu-time-limit, memory-limit, virtual-memory-limit, cpu-priority. */
export function applyLimits(o: DaemonOptions, pc: ProcessControl): void {
  if (o.cpuTimeLimit > 0) {
    // The soft limit sends SIGXCPU (a graceful restart, see lifecycle.ts); the hard limit kills. Leave
    // room between them for the graceful and shutdown periods, as CPU seconds keep counting.
    const grace = Math.max(o.gracefulTimeout, 0) + Math.max(o.shutdownTimeout, 0) + 1
    lower(pc, 'cpu', 'cpu-time-limit (RLIMIT_CPU)', o.cpuTimeLimit, o.cpuTimeLimit + grace)
  }
  // The Apache module raises smaller values to these floors; a configuration from elsewhere is warned.
  const floors = memoryFloors(o.threads, o.stackSize)
  if (o.memoryLimit > 0) {
    if (o.memoryLimit < floors.data) log.report(E.memoryLow, 'memory-limit', o.memoryLimit, floors.data)
    lower(pc, 'data', 'memory-limit (RLIMIT_DATA)', o.memoryLimit, o.memoryLimit)
  }
  if (o.virtualMemoryLimit > 0) {
    if (o.virtualMemoryLimit < floors.virtualMemory)
      log.report(E.memoryLow, 'virtual-memory-limit', o.virtualMemoryLimit, floors.virtualMemory)
    lower(pc, 'as', 'virtual-memory-limit (RLIMIT_AS)', o.virtualMemoryLimit, o.virtualMemoryLimit)
  }
  if (o.memoryLimit > 0 || o.virtualMemoryLimit > 0) {
    // Each thread's malloc arena reserves 64 MiB of address space: cap them under a memory limit.
    try {
      pc.setMallocArenaMax(2)
    } catch {
      /* an optimisation only */
    }
  }
  if (o.cpuPriority !== 0) {
    try {
      pc.setPriority(o.cpuPriority)
    } catch (e) {
      log.report(E.priority, o.cpuPriority, errText(e))
    }
  }
}

/**
 * The working directory, by mod_wsgi's rule: `home=` when given; else, for a process running as another
 * user than Apache's own (user=), that user's home directory; else none (null): the process keeps the
 * directory the Apache parent was started from (`/` for a service). undefined: the user's home directory
 * is needed but unknown.
 */
export function workingDirectory(home: string | null, euid: number, apacheUid: number, userHome: string | null): string | null | undefined {
  if (home !== null) return home
  if (euid === apacheUid) return null
  return userHome ?? undefined
}

/** umask, working directory, environment and locale, after the identity drop (before Python starts, which
 *  takes LC_CTYPE from the environment). */
export function applyProcessEnvironment(o: DaemonOptions, apacheUid: number, pc?: ProcessControl): void {
  if (o.umask !== null) process.umask(o.umask)
  const env = userEnvironment(o.user)
  process.env.USER = env.user
  process.env.LOGNAME = env.user
  if (env.home !== null) process.env.HOME = env.home
  const dir = workingDirectory(o.home, process.geteuid?.() ?? apacheUid, apacheUid, env.home)
  if (dir === undefined) log.report(E.noHome, process.geteuid?.() ?? -1)
  else if (dir !== null) {
    try {
      process.chdir(dir)
    } catch (e) {
      log.report(E.chdir, dir, errText(e))
    }
  }
  if (o.lang !== null) process.env.LANG = o.lang
  if (o.locale !== null) {
    process.env.LC_ALL = o.locale
    // As mod_wsgi: every category of the C locale, not only what Python takes (LC_CTYPE).
    if (pc?.setLocale && pc.setLocale(o.locale) === null) log.report(E.locale, o.locale)
  }
  if (o.pythonEggs !== null) process.env.PYTHON_EGG_CACHE = o.pythonEggs
}
