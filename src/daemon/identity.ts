// Dropping from the Apache parent's user (root on a normal start) to the group's user, in the order that
// leaves no way back: supplementary groups (the configured list, else initgroups), then the gid, then the
// uid. Each step is checked afterwards rather than assumed: real and effective ids, the group list, and
// that uid 0 cannot be regained. Any failure is reported and the daemon does not serve.
import { readFileSync } from 'node:fs'
import * as os from 'node:os'
import { E, errText } from './errors'
import { log } from './log'

export interface IdentityTarget {
  group: string
  user: string
  uid: number
  gid: number
  /** null: initgroups(user, gid); a list: exactly these supplementary groups. */
  supplementaryGroups: number[] | null
}

/** The process primitives used, injectable for tests. */
export interface IdentityOps {
  getuid(): number
  geteuid(): number
  getgid(): number
  getegid(): number
  /** The supplementary groups exactly as the kernel holds them (without an added egid). */
  getgroups(): number[]
  setgroups(groups: number[]): void
  initgroups(user: string | number, extraGroup: string | number): void
  setgid(id: number): void
  setuid(id: number): void
}

/** The real process (Node's POSIX credential functions). */
export function processIdentityOps(): IdentityOps {
  // initgroups exists on POSIX but is missing from @types/node 20.
  const p = process as Required<typeof process> & { initgroups(user: string | number, extraGroup: string | number): void }
  return {
    getuid: () => p.getuid(),
    geteuid: () => p.geteuid(),
    getgid: () => p.getgid(),
    getegid: () => p.getegid(),
    getgroups: kernelGroups,
    setgroups: (g) => p.setgroups(g),
    initgroups: (u, g) => p.initgroups(u, g),
    setgid: (id) => p.setgid(id),
    setuid: (id) => p.setuid(id),
  }
}

/**
 * The supplementary groups exactly as the kernel holds them. Node's process.getgroups() always adds the
 * egid, which would hide whether root's group 0 is really gone; /proc/self/status has the true list.
 */
export function kernelGroups(): number[] {
  try {
    const m = /^Groups:[ \t]*(.*)$/m.exec(readFileSync('/proc/self/status', 'latin1'))
    if (m) return m[1].trim() === '' ? [] : m[1].trim().split(/\s+/).map(Number)
  } catch {
    /* no procfs: fall back */
  }
  return process.getgroups?.() ?? []
}

function sameGroups(a: number[], b: number[]): boolean {
  const sa = new Set(a)
  const sb = new Set(b)
  if (sa.size !== sb.size) return false
  for (const g of sa) if (!sb.has(g)) return false
  return true
}

/** Drops to `t`. Returns true when the process now runs as intended, false (after logging) otherwise. */
export function dropIdentity(t: IdentityTarget, ops: IdentityOps = processIdentityOps()): boolean {
  if (t.uid === 0) {
    log.report(E.rootRefused, t.group)
    return false
  }
  if (ops.geteuid() !== 0) {
    // Nothing to drop (Apache itself was started unprivileged and ignores User the same way).
    const current = ops.geteuid()
    if (current === 0) return false
    if (current !== t.uid) log.report(E.notRoot, t.group, t.user, t.uid, current)
    return true
  }

  let expectedGroups: number[]
  try {
    if (t.supplementaryGroups !== null) ops.setgroups(t.supplementaryGroups)
    else ops.initgroups(t.user, t.gid)
    expectedGroups = ops.getgroups()
  } catch (e) {
    log.report(E.setGroups, t.user, t.gid, errText(e))
    return false
  }
  if (t.supplementaryGroups !== null && !sameGroups(expectedGroups, t.supplementaryGroups)) {
    log.report(E.identityCheck, `groups are [${expectedGroups.join(',')}] after setgroups([${t.supplementaryGroups.join(',')}])`)
    return false
  }
  try {
    ops.setgid(t.gid)
  } catch (e) {
    log.report(E.setGid, t.gid, errText(e))
    return false
  }
  try {
    ops.setuid(t.uid)
  } catch (e) {
    log.report(E.setUid, t.uid, errText(e))
    return false
  }

  const problems: string[] = []
  if (ops.getuid() !== t.uid || ops.geteuid() !== t.uid)
    problems.push(`uid is ${ops.getuid()}/${ops.geteuid()} (real/effective), expected ${t.uid}`)
  if (ops.getgid() !== t.gid || ops.getegid() !== t.gid)
    problems.push(`gid is ${ops.getgid()}/${ops.getegid()} (real/effective), expected ${t.gid}`)
  const groups = ops.getgroups()
  if (!sameGroups(groups, expectedGroups)) problems.push(`groups are [${groups.join(',')}], expected [${expectedGroups.join(',')}]`)
  if (t.supplementaryGroups === null && !groups.includes(t.gid)) problems.push(`initgroups left gid ${t.gid} out of [${groups.join(',')}]`)
  // The drop must be permanent: root must be out of reach now.
  let regained = false
  try {
    ops.setuid(0)
    regained = true
  } catch {
    /* expected: EPERM */
  }
  if (regained) problems.push('setuid(0) succeeded after the drop')
  if (problems.length > 0) {
    log.report(E.identityCheck, problems.join('; '))
    return false
  }
  return true
}

/** HOME, USER and LOGNAME for the user the process now runs as (as mod_wsgi sets them). */
export function userEnvironment(fallbackUser: string): { home: string | null; user: string } {
  try {
    const info = os.userInfo()
    return { home: info.homedir || null, user: info.username || fallbackUser }
  } catch {
    return { home: null, user: fallbackUser }
  }
}
