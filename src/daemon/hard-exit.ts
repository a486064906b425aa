// The last guarantee that a stopping daemon goes away: a tiny worker thread that SIGKILLs the process if
// it is still alive after a deadline. It runs on its own thread, so it fires even while the main thread
// is blocked (a bridge.shutdown() stuck behind Python, a static destructor at exit).
import { Worker } from 'node:worker_threads'

const SOURCE = `
const { workerData } = require('node:worker_threads')
setTimeout(() => process.kill(workerData.pid, 'SIGKILL'), workerData.ms)
`

let armed = false

/** Arms the deadline (once). Failure to start the thread (e.g. under a tight RLIMIT_AS) is ignored. */
export function armHardExit(ms: number): void {
  if (armed) return
  armed = true
  try {
    const w = new Worker(SOURCE, { eval: true, workerData: { pid: process.pid, ms: Math.max(0, Math.round(ms)) } })
    w.on('error', () => undefined)
    w.unref()
  } catch {
    /* best effort */
  }
}
