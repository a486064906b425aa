// The last guarantee that a stopping daemon goes away, whatever blocks its main thread (a
// bridge.shutdown() stuck behind Python, a static destructor at exit): alarm(). Nothing in the daemon
// handles SIGALRM, so when the deadline passes the kernel ends the process. It needs no thread and no
// memory, which matters under a tight virtual-memory-limit: a worker thread is a whole V8 isolate, and
// one that cannot reserve its address space aborts the process (V8's "Fatal process OOM").
// Without the addon's alarm() (it failed to load) a worker thread SIGKILLs the process instead.
import { Worker } from 'node:worker_threads'

const SOURCE = `
const { workerData } = require('node:worker_threads')
setTimeout(() => process.kill(workerData.pid, 'SIGKILL'), workerData.ms)
`

let armed = false
let alarmFn: ((seconds: number) => void) | null = null

/** The addon's alarm(), given by main.ts once the addon is loaded. */
export function setAlarm(fn: ((seconds: number) => void) | null): void {
  alarmFn = fn
}

/** Arms the deadline (once); alarm() has a resolution of a second, rounded up. */
export function armHardExit(ms: number): void {
  if (armed) return
  armed = true
  const deadline = Math.max(0, Math.round(ms))
  if (alarmFn !== null) {
    try {
      alarmFn(Math.max(1, Math.ceil(deadline / 1000)))
      return
    } catch {
      /* fall back to the worker */
    }
  }
  try {
    const w = new Worker(SOURCE, { eval: true, workerData: { pid: process.pid, ms: deadline } })
    w.on('error', () => undefined)
    w.unref()
  } catch {
    /* best effort */
  }
}
