// Entry point of a daemon process: `node lib/daemon/main.js <padding>`, started by the Apache parent with
// the group's listening socket as fd 3 and its configuration in MOD_WSGI_DAEMON_CONFIG
// (docs/daemon-config.md). Order matters and each step is checked:
//   signal handlers (so a signal during initialisation stops cleanly: release notes, Bugs Fixed 1),
//   configuration (removed from the environment before any application code runs), process title,
//   limits and priority (still privileged), identity drop, umask / cwd / environment, Python, the
//   WSGIImportScript preloads, and only then the listener and the watchdog.
// From the configuration on, the daemon also watches its Apache parent: when that is gone it stops.
import * as inspector from 'node:inspector'
import { parseDaemonConfig, type DaemonConfig } from '../config/daemon-config'
import * as native from '../native/index'
import type { Bridge, BridgeHandlers, ProcessControl, PythonOptions } from '../native/types'
import { E, errText } from './errors'
import { setAlarm } from './hard-exit'
import { dropIdentity } from './identity'
import { Exit, Lifecycle, type StopReason } from './lifecycle'
import { debug, log } from './log'
import { watchParent } from './parent-watch'
import { LoopRequestTimer } from './asgi/request-timeout'
import { applyLimits, applyProcessEnvironment } from './process-setup'
import { processTitle } from './process-title'
import { pythonOptions } from './python-options'
import { DaemonServer } from './server'
import { Watchdog } from './timeouts'

interface NativeModule {
  openBridge(options: PythonOptions, handlers: BridgeHandlers): Bridge
  processControl: ProcessControl
}

/** src/native/index.ts loads the addon binary lazily: touch it now so a broken build is one clear line. */
function loadNative(): NativeModule {
  native.processControl.getrlimit('nofile')
  return native
}

/** Requests after which the request path is compiled and Node's compilers can leave the resident set again. */
const WARM_REQUESTS = 1000

const SIGNALS: Record<string, StopReason> = {
  SIGTERM: 'signal',
  SIGINT: 'signal',
  SIGHUP: 'signal',
  SIGUSR1: 'graceful-signal',
  SIGXCPU: 'cpu-time-limit',
}

async function main(): Promise<void> {
  let config: DaemonConfig | null = null
  let lifecycle: Lifecycle | null = null
  let serving = false
  let initSignal: NodeJS.Signals | null = null
  /** The bridge while WSGIImportScript preloads run, else null. */
  let preloading: Bridge | null = null
  const abandon = (lc: Lifecycle, group: string, bridge: Bridge, sig: NodeJS.Signals): void => {
    log.report(E.signalDuringInit, group, sig)
    lc.abandonStartup(SIGNALS[sig] === 'cpu-time-limit' ? Exit.RESTART : Exit.OK, bridge)
  }
  let crashed = false

  // `sig` is the signal received, or SIGTERM standing for the parent's death (already logged).
  const onSignal = (sig: NodeJS.Signals, reason: StopReason = SIGNALS[sig]): void => {
    debug('signal %s', sig)
    if (!serving || lifecycle === null || config === null) {
      if (initSignal !== null) return
      initSignal = sig
      // Python is up but a WSGIImportScript is still importing (it may hang on a database): do not wait
      // for it, end Python within shutdown-timeout and go.
      if (preloading !== null && lifecycle !== null && config !== null) abandon(lifecycle, config.group, preloading, sig)
      return
    }
    const group = config.group
    if (!lifecycle.stopping) {
      if (reason === 'graceful-signal') {
        const o = config.options
        log.report(E.gracefulRequested, group, sig, o.gracefulTimeout > 0 ? o.gracefulTimeout : o.shutdownTimeout)
      } else if (reason === 'cpu-time-limit') log.report(E.cpuTimeLimit, group)
      else if (reason !== 'parent-died') log.report(E.shutdownRequested, group, sig)
    }
    lifecycle.stop(reason)
  }
  for (const sig of Object.keys(SIGNALS)) process.on(sig as NodeJS.Signals, (s: NodeJS.Signals) => onSignal(s))
  // A SIGUSR1 that arrived before the handler above existed made Node open its debugger on a local
  // port: close it, nobody may attach to a daemon.
  if (inspector.url() !== undefined) inspector.close()

  const onFatal = (err: unknown): void => {
    log.report(E.uncaught, config?.group ?? '?', err instanceof Error ? (err.stack ?? err.message) : String(err))
    if (crashed || lifecycle === null || lifecycle.finishing) process.exit(Exit.INTERNAL)
    crashed = true
    lifecycle.crash()
  }
  process.on('uncaughtException', onFatal)
  process.on('unhandledRejection', onFatal)

  // Configuration ------------------------------------------------------------------------------------
  try {
    config = parseDaemonConfig(process.env.MOD_WSGI_DAEMON_CONFIG)
  } catch (e) {
    log.report(E.configInvalid, errText(e))
    process.exit(Exit.CONFIG)
  }
  delete process.env.MOD_WSGI_DAEMON_CONFIG
  // The Apache parent's V8 settings for this process (docs/daemon-config.md): not for applications or
  // the programs they start.
  delete process.env.NODE_OPTIONS
  const c = config
  const o = c.options
  log.setLevel(c.server.logLevel)
  process.title = processTitle(c)
  const parentPid = c.server.parentPid ?? process.ppid
  watchParent({ parentPid }, (now) => {
    log.report(E.parentGone, c.group, parentPid, now)
    onSignal('SIGTERM', 'parent-died')
  })

  // Process: limits, identity, environment -----------------------------------------------------------
  let addon: NativeModule
  try {
    addon = loadNative()
  } catch (e) {
    log.report(E.addonLoad, errText(e))
    process.exit(Exit.STARTUP)
  }
  setAlarm(addon.processControl.alarm?.bind(addon.processControl) ?? null)
  applyLimits(o, addon.processControl)
  if (!dropIdentity({ group: c.group, user: o.user, uid: o.uid, gid: o.gid, supplementaryGroups: o.supplementaryGroups }))
    process.exit(Exit.STARTUP)
  applyProcessEnvironment(o, addon.processControl)
  log.report(E.starting, c.group, process.geteuid?.() ?? o.uid, process.getegid?.() ?? o.gid, o.threads)

  // Node's start-up code and data (bootstrap, snapshot, the compilers) need not stay resident: they
  // leave the resident set when the daemon is ready, and once more when the first WARM_REQUESTS
  // requests have had their code compiled (docs/daemon-config.md, "Memory").
  const releaseStartupPages = (when: string): void => {
    try {
      debug('%s: released %d bytes of start-up pages', when, addon.processControl.releaseStartupPages?.() ?? 0)
    } catch (e) {
      debug('releaseStartupPages: %s', errText(e))
    }
  }

  // Python and the server ----------------------------------------------------------------------------
  const lc = new Lifecycle({
    group: c.group,
    gracefulTimeoutMs: o.gracefulTimeout * 1000,
    shutdownTimeoutMs: o.shutdownTimeout * 1000,
    maximumRequests: o.maximumRequests,
  })
  lifecycle = lc
  let watchdog: Watchdog | null = null
  const server = new DaemonServer(
    {
      group: c.group,
      threads: o.threads,
      queueTimeoutMs: o.queueTimeout * 1000,
      socketTimeoutMs: o.socketTimeout * 1000,
      listenBacklog: o.listenBacklog,
      sendWithFd: addon.processControl.sendWithFd?.bind(addon.processControl) ?? null,
      tuneSocket:
        (o.sendBufferSize > 0 || o.receiveBufferSize > 0) && addon.processControl.setSocketBuffers
          ? (fd) => addon.processControl.setSocketBuffers?.(fd, o.sendBufferSize, o.receiveBufferSize)
          : null,
      processes: o.processes,
      dupFd: addon.processControl.dupFd?.bind(addon.processControl) ?? null,
    },
    {
      touch: () => watchdog?.touch(),
      admitted: () => {
        lc.admitted()
        if (lc.requestsAdmitted === WARM_REQUESTS) setImmediate(() => releaseStartupPages('warm'))
      },
      restartRequested: () => lc.stop('script-reload'),
      // memory-limit / virtual-memory-limit: the request that hit the limit got its MemoryError (a 500);
      // the process may be left fragmented or near the limit, so it restarts, gracefully.
      memoryExhausted: (count) => {
        if (o.memoryLimit <= 0 && o.virtualMemoryLimit <= 0) return
        if (lc.stopping) return
        log.report(E.memoryLimit, c.group, count)
        lc.stop('memory-limit')
      },
    },
  )
  let bridge: Bridge
  try {
    bridge = addon.openBridge(pythonOptions(c), server.handlers())
  } catch (e) {
    log.report(E.pythonStart, c.group, errText(e))
    process.exit(Exit.STARTUP)
  }
  server.attach(bridge)
  lc.attach(server, bridge)

  preloading = bridge
  for (const s of c.python.importScripts) {
    if (initSignal !== null) break
    try {
      await bridge.preload(s.script, s.applicationGroup)
    } catch (e) {
      // An ASGI application's lifespan startup failed (asgiref: log it and exit): not serving; the
      // Apache parent starts a new process (after a growing delay if it keeps failing).
      if ((e as { code?: unknown })?.code === 'ASGI_STARTUP_FAILED') {
        log.report(E.asgiStartupFailed, c.group, s.script, errText(e))
        preloading = null
        lc.abandonStartup(Exit.STARTUP, bridge)
        return
      }
      // As mod_wsgi: the failure is logged (with the traceback, by the addon) and the daemon serves on.
      log.report(E.importScript, s.script, s.applicationGroup, errText(e))
    }
  }
  preloading = null
  if (lc.finishing) return // abandoned by a signal meanwhile
  if (initSignal !== null) {
    abandon(lc, c.group, bridge, initSignal)
    return
  }

  try {
    await server.listen({ fd: 3 })
  } catch (e) {
    log.report(E.listen, errText(e))
    lc.abandonStartup(Exit.STARTUP, bridge)
    return
  }
  serving = true
  if (initSignal !== null) {
    // Arrived while listen() was completing.
    const sig: NodeJS.Signals = initSignal
    initSignal = null
    onSignal(sig)
    return
  }
  releaseStartupPages('ready')
  // ASGI requests: request-timeout cancels the one request (asgi/request-timeout.ts).
  new LoopRequestTimer(c.group, o.requestTimeout * 1000, server.dispatcher, bridge).start()

  const wd = new Watchdog(
    {
      threads: o.threads,
      requestTimeoutMs: o.requestTimeout * 1000,
      inactivityTimeoutMs: o.inactivityTimeout * 1000,
      deadlockTimeoutMs: o.deadlockTimeout * 1000,
    },
    {
      activeCount: () => server.dispatcher.activeCount,
      activeAgeSum: (now) => server.dispatcher.activeAgeSum(now),
      lastGilAcquired: () => bridge.lastGilAcquired(),
      expired: (kind, detail) => {
        if (kind === 'inactivity-timeout') log.report(E.inactivityTimeout, c.group)
        else if (kind === 'request-timeout') log.report(E.requestTimeout, c.group, detail)
        else log.report(E.deadlockTimeout, c.group, o.deadlockTimeout)
        if (kind !== 'inactivity-timeout') {
          try {
            bridge.dumpStacks(`${kind} expired: ${detail}`)
          } catch {
            /* diagnostics only */
          }
        }
        lc.stop(kind)
      },
    },
  )
  watchdog = wd
  lc.onStopBegin(() => wd.stop())
  wd.start()
}

main().catch((e) => {
  log.report(E.uncaught, '?', e instanceof Error ? (e.stack ?? e.message) : String(e))
  process.exit(Exit.INTERNAL)
})
