// Finding, replacing and pausing the daemon processes of a test Apache (test/helpers/apache.ts), for the
// option tests: every signal goes to a pid this test's Apache started, never by name.
import { readFileSync } from 'node:fs'
import { cmdline, waitFor, type Apache, type Response } from './apache'

/** The pids of the daemons of `group` (their title starts with (wsgi:GROUP) unless display-name says otherwise). */
export function groupPids(apache: Apache, group: string, title = `(wsgi:${group})`): number[] {
  return apache.daemonPids().filter((p) => cmdline(p).startsWith(title))
}

/** The pid of the daemon that answered: its X-Pid header, or the first word of the body (fixtures that
 *  answer "PID ..."). */
export const pidOf = (r: Response): number => Number(r.headers['x-pid'] ?? r.text.split(' ')[0])

/** Waits for a daemon of `group` (other than those in `not`) and returns its pid. */
export function daemonOf(apache: Apache, group: string, not: number[] = [], timeoutMs = 15000): Promise<number> {
  return waitFor(
    () => groupPids(apache, group).find((p) => !not.includes(p)) ?? 0,
    timeoutMs,
    50,
    `a daemon of ${group}${not.length ? ` other than ${not.join(',')}` : ''}`,
  )
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** True once `pid` has exited (a zombie not yet reaped by Apache counts as exited). */
export function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

/**
 * Waits for Apache to log that `pid` of `group` stopped to be replaced (status 4): after its successor
 * was ready (start-first, docs/restarts.md: "... pid N replaces it"), or exited and was replaced after.
 */
export function replacedLogged(apache: Apache, group: string, pid: number, timeoutMs = 10000, codes = '4'): Promise<string> {
  return apache.waitForLog(
    new RegExp(
      `(WSGI01103: daemon process \\d+ of process group '${group}' \\(pid ${pid}\\) stopped with code (${codes}) [^\\n]*replaces it|` +
        `WSGI01104: daemon process \\d+ of process group '${group}' \\(pid ${pid}\\) exited with code (${codes}) )`,
    ),
    timeoutMs,
  )
}

/** Stops a daemon with SIGSTOP; it is continued at teardown whatever happens. Returns `resume`. */
export function pause(t: { teardown: (fn: () => unknown) => void }, pid: number): () => void {
  let stopped = true
  const resume = (): void => {
    if (!stopped) return
    stopped = false
    try {
      process.kill(pid, 'SIGCONT')
    } catch {
      /* gone */
    }
  }
  process.kill(pid, 'SIGSTOP')
  t.teardown(resume)
  return resume
}

/** Resolves with [value, milliseconds taken]. */
export async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const start = Date.now()
  const v = await p
  return [v, Date.now() - start]
}
