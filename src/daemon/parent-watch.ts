// The daemon's check that the Apache parent is still alive. When the parent dies abruptly (SIGKILL, a
// crash) nothing tells its daemons: they are re-parented (to init or a subreaper) and would serve a
// socket nobody connects to any more, forever. PR_SET_PDEATHSIG cannot help, since the kernel clears it
// when the daemon changes its credentials (the identity drop). So the parent pid is compared once a
// second, on an unref'd timer that never keeps the process alive and costs nothing per request.

export interface ParentWatchOptions {
  /** The Apache parent's pid. */
  parentPid: number
  everyMs?: number
  /** The current parent pid (process.ppid; injectable for tests). */
  currentParent?: () => number
}

/** Calls `gone` once when the parent is no longer `parentPid`. Returns a function that stops watching. */
export function watchParent(opts: ParentWatchOptions, gone: (now: number) => void): () => void {
  const current = opts.currentParent ?? (() => process.ppid)
  let timer: NodeJS.Timeout | null = setInterval(() => {
    const now = current()
    if (now === opts.parentPid) return
    stop()
    gone(now)
  }, opts.everyMs ?? 1000)
  timer.unref()
  const stop = (): void => {
    if (timer !== null) clearInterval(timer)
    timer = null
  }
  return stop
}
