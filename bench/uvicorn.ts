// What bench/asgi.ts and bench/websocket.ts measure this module against: uvicorn (Debian's, uvloop and
// httptools, one worker) behind a private Apache's mod_proxy, the setup ASGI users run today; and what
// both need of either side while it runs (resident memory, CPU ticks of Apache's children and of the
// Python process).
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { Apache, freePort, request, waitFor } from '../test/helpers/apache'
import { APACHE_TUNING, BENCH_DIR, processTicks, rssMiB, serverProcesses } from './common'

/** A server under measurement: this module (uvicorn null) or uvicorn behind Apache. */
export interface Running {
  apache: Apache
  uvicorn: ChildProcess | null
  /** Resident memory of the Python side (MiB): the daemon process, or the uvicorn process. */
  rss(): number
  stop(): Promise<void>
}

/** CPU time (clock ticks) used so far by Apache's children, and by the daemon or uvicorn process. */
export function serverTicks(s: Running): { apache: number; python: number } {
  const { children, daemons } = serverProcesses(s.apache)
  const sum = (pids: number[]) => pids.reduce((a, p) => a + processTicks(p), 0)
  return { apache: sum(children), python: s.uvicorn ? processTicks(s.uvicorn.pid ?? 0) : sum(daemons) }
}

export interface UvicornOptions {
  /** "module:callable" of bench/apps. */
  app: string
  /** uvicorn options beyond the common ones ('--ws', 'websockets', say). */
  args?: string[]
  /** A path uvicorn answers 200 on once it serves. */
  readyPath: string
  /** Apache's proxy modules, and its proxy lines for uvicorn's port. */
  modules: string[]
  proxy: (port: number) => string
}

export async function startUvicornBehindApache(o: UvicornOptions): Promise<Running> {
  const port = await freePort()
  const child = spawn(
    '/usr/bin/python3',
    ['-m', 'uvicorn', o.app, '--app-dir', join(BENCH_DIR, 'apps'), '--host', '127.0.0.1', '--port', String(port),
      '--loop', 'uvloop', '--http', 'httptools', ...(o.args ?? []), '--no-access-log', '--log-level', 'warning'],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  )
  await waitFor(() => request(port, o.readyPath).then((r) => r.status === 200, () => false), 15000, 50, 'uvicorn')
  const apache = new Apache({
    logLevel: 'warn',
    noWsgi: true,
    modules: o.modules,
    config: `${APACHE_TUNING}LogLevel warn
${o.proxy(port)}`,
  })
  try {
    await apache.start()
  } catch (e) {
    child.kill('SIGTERM')
    throw e
  }
  return {
    apache,
    uvicorn: child,
    rss: () => rssMiB(child.pid ?? 0),
    stop: async () => {
      await apache.cleanup()
      child.kill('SIGTERM')
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)))
    },
  }
}
