// Entry point of a daemon process: `node lib/daemon/main.js <padding>`, started by the Apache parent with
// the group's listening socket as fd 3 and its configuration in MOD_WSGI_DAEMON_CONFIG
// (docs/daemon-config.md). Order matters and each step is checked:
//   signal handlers (so a signal during initialisation stops cleanly: release notes, Bugs Fixed 1),
//   configuration (removed from the environment before any application code runs), process title,
//   which CPython (python-select.ts: the addon build for the group's Python), limits and priority
//   (still privileged), identity drop, umask / cwd / environment, Python, the
//   WSGIImportScript preloads, and only then the listener and the watchdog.
// From the configuration on, the daemon also watches its Apache parent: when that is gone it stops.
import * as inspector from 'node:inspector'
import { parseDaemonConfig, type DaemonConfig } from '../config/daemon-config'
import { reasonCode, SlotState } from '../protocol/board-layout'
import { BoardSlot } from './board'
import { Handover, scriptVersions } from './handover'
import { Reporter } from './reporter'
import * as native from '../native/index'
import { addonErrorCode } from '../native/errors'
import { unreadableBy, type PythonSelection } from '../native/python-select'
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
import { pythonOptions, pythonRequest } from './python-options'
import { payloadUri, RequestInterrupter } from './request-interrupt'
import { RequestStats } from './request-stats'
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
/** Signals that ask for a replacement (start-first with a board) rather than a stop. */
const RETIRE = new Set<StopReason>(['graceful-signal', 'cpu-time-limit'])

async function main(): Promise<void> {
  let config: DaemonConfig | null = null
  let lifecycle: Lifecycle | null = null
  let serving = false
  let initSignal: NodeJS.Signals | null = null
  /** The bridge while WSGIImportScript preloads run, else null. */
  let preloading: Bridge | null = null
  const abandon = (lc: Lifecycle, group: string, bridge: Bridge, sig: NodeJS.Signals): void => {
    log.report(E.signalDuringInit, group, sig)
    const retire = SIGNALS[sig] === 'cpu-time-limit'
    lc.abandonStartup(retire ? Exit.RESTART : Exit.OK, bridge, retire ? 'cpu-time-limit' : 'stop')
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
    if (RETIRE.has(reason)) lifecycle.retire(reason)
    else lifecycle.stop(reason)
  }
  for (const sig of Object.keys(SIGNALS)) process.on(sig as NodeJS.Signals, (s: NodeJS.Signals) => onSignal(s))
  // SIGUSR2: the Python stack of every thread, with the request each serves, to the error log. Installed
  // first thing: its default action would end the process.
  let dumpStacks: (() => void) | null = null
  process.on('SIGUSR2', () => dumpStacks?.())
  // Node prints its own warnings (deprecations, experimental features) on stderr as two bare lines; the
  // error log gets one line with a level instead, like everything else the daemon writes.
  process.removeAllListeners('warning')
  process.on('warning', (w: Error) => log.report(E.nodeWarning, config?.group ?? '?', w.name, w.message))
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

  // Which CPython: the addon build for the group's Python, checked before anything loads it.
  let python: PythonSelection
  try {
    python = native.selectPython(pythonRequest(c))
    native.usePython(python)
  } catch (e) {
    log.report(E.pythonSelect, c.group, errText(e))
    process.exit(Exit.STARTUP)
  }

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
  applyProcessEnvironment(o, c.server.apacheUid, addon.processControl)
  // This process's slot on its pool's board (fd 4), mapped while the process can still read it.
  let slot: BoardSlot | null = null
  if (c.board !== null && addon.processControl.mapShared) {
    try {
      slot = new BoardSlot(addon.processControl.mapShared(4), c.board.slot, c.board.doorbell)
    } catch (e) {
      log.report(E.boardUnavailable, errText(e))
    }
  }
  // startup-timeout: a process not ready by then is replaced (it exits; its predecessor, if any, serves on).
  let startupTimer: NodeJS.Timeout | null = null
  let reloadVersions: Array<{ script: string; mtimeUs: number }> = []
  log.report(E.starting, c.group, process.geteuid?.() ?? o.uid, process.getegid?.() ?? o.gid, o.threads)
  // A Python under a directory the daemon's user cannot read (a pyenv under /root, say) would fail
  // deep in its start-up with "No module named 'encodings'": say so plainly instead.
  const unreadable = python.library !== null ? unreadableBy(python) : null
  if (unreadable !== null) {
    const what = python.venv !== null ? `Python ${python.version} (virtualenv ${python.venv})` : `Python ${python.version} under ${python.prefix}`
    log.report(E.pythonUnreadable, c.group, what, o.user, process.geteuid?.() ?? o.uid, unreadable)
    process.exit(Exit.STARTUP)
  }
  log.report(E.pythonSelected, c.group, python.version, python.programName, python.library ?? 'the default build')

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
      stats: new RequestStats(slot?.region ?? null),
      webSocket: {
        maxMessage: o.websocketMaxMessage,
        pingIntervalMs: o.websocketPingInterval * 1000,
        pingTimeoutMs: o.websocketPingTimeout * 1000,
        idleTimeoutMs: o.websocketIdleTimeout * 1000,
        maxLifetimeMs: o.websocketMaxLifetime * 1000,
      },
    },
    {
      touch: () => watchdog?.touch(),
      admitted: () => {
        lc.admitted()
        if (lc.requestsAdmitted === WARM_REQUESTS) setImmediate(() => releaseStartupPages('warm'))
      },
      restartRequested: () => {
        // The versions of the scripts that asked for it: if the successor cannot load them, they are
        // taken as they are (and a later edit asks again).
        if (lc.retiring === null && !lc.stopping) reloadVersions = scriptVersions(bridge.loadedScripts?.() ?? [])
        lc.retire('script-reload')
      },
      holdRetries: () => lc.retiring === 'script-reload',
      // memory-limit / virtual-memory-limit: the request that hit the limit got its MemoryError (a 500);
      // the process may be left fragmented or near the limit, so it restarts, gracefully.
      memoryExhausted: (count) => {
        if (o.memoryLimit <= 0 && o.virtualMemoryLimit <= 0) return
        if (lc.stopping) return
        log.report(E.memoryLimit, c.group, count)
        lc.retire('memory-limit')
      },
    },
  )
  let bridge: Bridge
  try {
    bridge = addon.openBridge(pythonOptions(c, python), server.handlers())
  } catch (e) {
    log.report(E.pythonStart, c.group, errText(e))
    process.exit(Exit.STARTUP)
  }
  server.attach(bridge)
  lc.attach(server, bridge)
  dumpStacks = () => {
    try {
      bridge.dumpStacks('SIGUSR2 received')
    } catch (e) {
      debug('dumpStacks: %s', errText(e))
    }
  }
  if (o.startupTimeout > 0) {
    startupTimer = setTimeout(() => {
      log.report(E.startupTimeout, c.group, o.startupTimeout)
      lc.abandonStartup(Exit.STARTUP, bridge, 'startup-timeout')
    }, o.startupTimeout * 1000)
    startupTimer.unref()
  }
  let handover: Handover | null = null
  if (slot !== null) {
    const s = slot
    handover = new Handover(
      s,
      {
        drain: (reason) => lc.drained(reason),
        // apachectl graceful: new code is loaded by a successor, as mod_wsgi's restart would (docs/restarts.md).
        replace: () => lc.retire('graceful-restart'),
        // Apache's graceful stop (native/apache/wsgi_stop.c): serve what its children still forward.
        apacheStopping: () => {
          if (lc.stopping) return
          log.report(E.apacheStopping, c.group, o.gracefulTimeout)
          lc.stop('apache-stopping')
        },
        successorFailed: (reason) => {
          // A changed script its successor could not load: the code already loaded serves on until the
          // script changes again. Other reasons: ask again (the parent waits a growing delay).
          const giveUp = reason === 'script-reload'
          log.report(
            E.successorFailed,
            c.group,
            reason,
            giveUp ? 'this process serves on with the code already loaded until the script changes again' : 'this process serves on and asks again',
          )
          if (giveUp) {
            bridge.acceptScriptChanges?.(reloadVersions)
            lc.successorFailed(true)
            server.releaseParked()
          }
        },
      },
      () => bridge.loadedScripts?.() ?? [],
    )
    lc.attachHandover(handover)
    lc.onStopBegin(() => {
      s.state = SlotState.DRAINING
    })
    lc.onFinish((reason) => s.stopping(reasonCode(reason)))
  }

  preloading = bridge
  for (const s of c.python.importScripts) {
    if (initSignal !== null) break
    try {
      await bridge.preload(s.script, s.applicationGroup)
    } catch (e) {
      // An ASGI application's lifespan startup failed (asgiref: log it and exit): not serving; the
      // Apache parent starts a new process (after a growing delay if it keeps failing).
      if (addonErrorCode(e) === 'ERR_WSGI_ASGI_STARTUP') {
        log.report(E.asgiStartupFailed, c.group, s.script, errText(e))
        preloading = null
        lc.abandonStartup(Exit.STARTUP, bridge)
        return
      }
      // As mod_wsgi: the failure is logged (with the traceback, by the addon) and the daemon serves on.
      log.report(E.importScript, s.script, s.applicationGroup, errText(e))
    }
  }
  // A successor imports what its predecessor serves before it says it is ready; if it cannot, it exits
  // and the predecessor serves on (docs/restarts.md).
  const preloaded = new Set(c.python.importScripts.map((s) => `${s.applicationGroup}\0${s.script}`))
  for (const s of c.succession?.scripts ?? []) {
    if (initSignal !== null || lc.finishing) break
    if (preloaded.has(`${s.applicationGroup}\0${s.script}`)) continue
    try {
      await bridge.preload(s.script, s.applicationGroup)
    } catch (e) {
      log.report(E.successorScript, c.group, s.script, errText(e))
      preloading = null
      lc.abandonStartup(Exit.STARTUP, bridge)
      return
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
  if (startupTimer !== null) clearTimeout(startupTimer)
  log.report(E.ready, c.group, Math.round(process.uptime() * 1000))
  if (slot !== null) {
    slot.ready(Date.now() * 1000)
    slot.ring()
  }
  handover?.start()
  releaseStartupPages('ready')
  // ASGI requests: request-timeout cancels the one request (asgi/request-timeout.ts).
  new LoopRequestTimer(c.group, o.requestTimeout * 1000, server.dispatcher, bridge).start()

  // What the process reports on the board (status, metrics, memory-recycle), once a second.
  const reporter = new Reporter(server, slot, {
    memoryRecycle: o.memoryRecycle,
    overMemory: (rss) => {
      if (lc.retiring !== null || lc.stopping) return
      log.report(E.memoryRecycle, c.group, rss, o.memoryRecycle)
      lc.retire('memory-recycle')
    },
  })
  reporter.start()
  lc.onStopBegin(() => reporter.stop())
  if (o.restartInterval > 0) {
    // The first processes of a group start together: each is given its share of the interval more, so
    // that they are not all replaced at once. Replacements start at different times already.
    const share = c.succession === null ? ((c.processIndex - 1) / o.processes) * o.restartInterval : 0
    const t = setTimeout(() => {
      log.report(E.restartInterval, c.group, o.restartInterval)
      lc.retire('restart-interval')
    }, (o.restartInterval + share) * 1000)
    t.unref()
    lc.onStopBegin(() => clearTimeout(t))
  }

  // interrupt-timeout: request-timeout first raises mod_wsgi.RequestTimeout in the overdue requests.
  const interrupter =
    o.requestTimeout > 0 && o.interruptTimeout > 0 && bridge.interrupt
      ? new RequestInterrupter(
          { requestTimeoutMs: o.requestTimeout * 1000, interruptTimeoutMs: o.interruptTimeout * 1000 },
          {
            active: (now) =>
              [...server.dispatcher.active.values()]
                .filter((j) => !j.onLoop)
                .map((j) => ({ id: j.id, ageMs: now - j.startedAt, uri: payloadUri(j.id, j.kind, j.payload) })),
            interrupt: (id) => bridge.interrupt?.(id) ?? false,
            raised: (r) => log.report(E.requestInterrupting, c.group, r.uri, Math.round(r.ageMs), o.interruptTimeout),
          },
        )
      : null
  const wd = new Watchdog(
    {
      threads: o.threads,
      requestTimeoutMs: o.requestTimeout * 1000,
      inactivityTimeoutMs: o.inactivityTimeout * 1000,
      deadlockTimeoutMs: o.deadlockTimeout * 1000,
      interrupter,
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
        lc.retire(kind)
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
