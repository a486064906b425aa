// How much of a process's own executable is resident: the Rss of the mappings of /proc/PID/exe in
// /proc/PID/smaps, in bytes. For the tests of releaseStartupPages (Node's start-up pages).
import { readFileSync, readlinkSync } from 'node:fs'

export function executableResident(pid: number | 'self'): number {
  const exe = readlinkSync(`/proc/${pid}/exe`)
  let inExe = false
  let kb = 0
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head) inExe = head[1] === exe
    else if (inExe && line.startsWith('Rss:')) kb += Number(line.split(/\s+/)[1])
  }
  return kb * 1024
}
