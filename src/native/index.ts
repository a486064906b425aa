// The only module that loads the addon binary: build/Release/wsgi_bridge.node for Debian's CPython, or
// the build for the process group's Python (python-select.ts, usePython()), after that Python's own
// libpython has been made global by python_preload.node. It validates and normalises every option
// before native code sees it, and exposes exactly src/native/types.ts.
import { isAbsolute, join } from 'node:path'
import type { PythonSelection } from './python-select'

import type {
  Bridge,
  BridgeHandlers,
  DetachedHandler,
  InputResumeHandler,
  LogLevel,
  OutputHandler,
  ProcessControl,
  PythonOptions,
  RlimitResource,
} from './types'

export type * from './types'
export { addonErrorCode } from './errors'
export { PythonSelectError, selectPython, type PythonSelection } from './python-select'

/** What python_preload.node exports (native/addon/preload/python_preload.c). */
interface Preload {
  loadGlobal(library: string): void
}

/** What the binary exports (native/addon/addon.cc, process_control.cc). */
interface Binding {
  openBridge(options: PythonOptions, output: OutputHandler, inputResume: InputResumeHandler, detached?: DetachedHandler): Bridge
  setrlimit(resource: RlimitResource, soft: number, hard: number): void
  getrlimit(resource: RlimitResource): { soft: number; hard: number }
  setPriority(nice: number): void
  setMallocArenaMax(n: number): void
  sendWithFd(socketFd: number, data: Buffer, fd: number): number
  alarm(seconds: number): void
  setSocketBuffers(fd: number, send: number, receive: number): void
  setLocale(name: string): string | null
  dupFd(fd: number): number
  releaseStartupPages(): number
  mapShared(fd: number): Buffer
}

/** lib/native/index.js and src/native/index.ts both sit two levels below the package root. */
export const ADDON_PATH = join(__dirname, '..', '..', 'build', 'Release', 'wsgi_bridge.node')

let binding: Binding | undefined
let selected: PythonSelection | null = null

/**
 * Chooses the CPython this process embeds (selectPython's answer) before anything loads the addon:
 * processControl and openBridge then use that Python's build. Without it, the default build is loaded.
 * Throws if the addon is already loaded (one Python per process).
 */
export function usePython(selection: PythonSelection): void {
  if (binding !== undefined && selected !== selection) throw new Error('the addon is already loaded: usePython() comes first')
  selected = selection
}

/** The Python chosen with usePython(), or null for the default build. */
export function selectedPython(): PythonSelection | null {
  return selected
}

// Loaded on first use: importing this module must not start (or even load) Python.
function load(): Binding {
  if (!binding) {
    const sel = selected
    if (sel !== null && sel.library !== null) {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      ;(require(sel.preload) as Preload).loadGlobal(sel.library)
    }
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    binding = require(sel?.addon ?? ADDON_PATH) as Binding
  }
  return binding
}

export const LOG_LEVELS: readonly LogLevel[] = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug']

/** Defaults matching mod_wsgi 4.1.0 with Debian's Python. */
export const DEFAULT_PYTHON_OPTIONS: Readonly<PythonOptions> = Object.freeze({
  programName: '/usr/bin/python3.11',
  home: null,
  path: [],
  cwdFirstOnPath: false,
  hashSeed: null,
  dontWriteBytecode: false,
  optimize: 0,
  warnings: [],
  restrictSignal: true,
  restrictStdin: false,
  restrictStdout: false,
  processGroup: '',
  threads: 15,
  stackSize: 0,
  multithread: true,
  multiprocess: false,
  runOnce: false,
  logLevel: 'warn',
  verbose: false,
  perInterpreterGil: false,
  switchInterval: null,
  asgiLoop: 'asyncio',
})

function fail(field: string, expected: string, value: unknown): never {
  throw new TypeError(`PythonOptions.${field} must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`)
}

function cString(field: string, v: unknown): string {
  if (typeof v !== 'string') fail(field, 'a string', v)
  if (v.includes('\0')) fail(field, 'a string without NUL characters', v)
  return v
}

function absolutePath(field: string, v: unknown): string {
  const s = cString(field, v)
  if (s === '' || !isAbsolute(s)) fail(field, 'an absolute path', v)
  return s
}

function bool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(field, 'a boolean', v)
  return v
}

function integer(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(field, `an integer from ${min} to ${max}`, v)
  }
  return v
}

function positive(field: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) fail(field, `null or a number of seconds above 0, at most ${max}`, v)
  return v
}

function strings(field: string, v: unknown): string[] {
  if (!Array.isArray(v)) fail(field, 'an array of strings', v)
  return v.map((e, i) => cString(`${field}[${i}]`, e))
}

/**
 * Checks every field and returns a fresh, complete options object. Fields left undefined take
 * DEFAULT_PYTHON_OPTIONS' values, so callers may pass only what they configure.
 */
export function normalisePythonOptions(options: Partial<PythonOptions>): PythonOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('PythonOptions must be an object')
  const o: PythonOptions = { ...DEFAULT_PYTHON_OPTIONS, ...stripUndefined(options) }
  const hashSeed = o.hashSeed
  if (hashSeed !== null && hashSeed !== 'random') integer('hashSeed', hashSeed, 0, 4294967295)
  const logLevel = o.logLevel
  if (!LOG_LEVELS.includes(logLevel)) fail('logLevel', `one of ${LOG_LEVELS.join(', ')}`, logLevel)
  const warnings = strings('warnings', o.warnings)
  warnings.forEach((w, i) => {
    if (w === '') fail(`warnings[${i}]`, 'a non-empty warning filter', w)
  })
  return {
    programName: absolutePath('programName', o.programName),
    home: o.home === null ? null : absolutePath('home', o.home),
    path: strings('path', o.path).filter((p) => p !== ''),
    cwdFirstOnPath: bool('cwdFirstOnPath', o.cwdFirstOnPath),
    hashSeed,
    dontWriteBytecode: bool('dontWriteBytecode', o.dontWriteBytecode),
    optimize: integer('optimize', o.optimize, 0, 2),
    warnings,
    restrictSignal: bool('restrictSignal', o.restrictSignal),
    restrictStdin: bool('restrictStdin', o.restrictStdin),
    restrictStdout: bool('restrictStdout', o.restrictStdout),
    processGroup: cString('processGroup', o.processGroup),
    threads: integer('threads', o.threads, 1, 100000),
    stackSize: integer('stackSize', o.stackSize, 0, 2 ** 40),
    multithread: bool('multithread', o.multithread),
    multiprocess: bool('multiprocess', o.multiprocess),
    runOnce: bool('runOnce', o.runOnce),
    logLevel,
    verbose: bool('verbose', o.verbose),
    perInterpreterGil: bool('perInterpreterGil', o.perInterpreterGil),
    switchInterval: o.switchInterval === null ? null : positive('switchInterval', o.switchInterval, 60),
    asgiLoop: o.asgiLoop === 'uvloop' || o.asgiLoop === 'asyncio' ? o.asgiLoop : fail('asgiLoop', "'asyncio' or 'uvloop'", o.asgiLoop),
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/**
 * Starts Python in this process (once: CPython cannot be initialised twice) and returns the bridge
 * that runs requests on its worker threads. Throws if Python cannot start.
 */
export function openBridge(options: Partial<PythonOptions>, handlers: BridgeHandlers): Bridge {
  const normalised = normalisePythonOptions(options)
  if (handlers === null || typeof handlers !== 'object') throw new TypeError('BridgeHandlers must be an object')
  if (typeof handlers.output !== 'function') throw new TypeError('BridgeHandlers.output must be a function')
  if (typeof handlers.inputResume !== 'function') throw new TypeError('BridgeHandlers.inputResume must be a function')
  if (handlers.detached !== undefined && typeof handlers.detached !== 'function')
    throw new TypeError('BridgeHandlers.detached must be a function')
  return load().openBridge(normalised, handlers.output, handlers.inputResume, handlers.detached)
}

const RESOURCES: readonly RlimitResource[] = ['cpu', 'data', 'as', 'stack', 'nofile']

function resource(r: unknown): RlimitResource {
  if (!RESOURCES.includes(r as RlimitResource)) {
    throw new TypeError(`resource must be one of ${RESOURCES.join(', ')}, got ${String(r)}`)
  }
  return r as RlimitResource
}

/** setrlimit/getrlimit/setpriority/mallopt/sendmsg/alarm/setsockopt/setlocale/dup/madvise for src/daemon. Infinity stands for RLIM_INFINITY. */
export const processControl: Required<ProcessControl> = {
  setrlimit(r, soft, hard) {
    load().setrlimit(resource(r), soft, hard)
  },
  getrlimit(r) {
    return load().getrlimit(resource(r))
  },
  setPriority(nice) {
    load().setPriority(nice)
  },
  setMallocArenaMax(n) {
    load().setMallocArenaMax(n)
  },
  sendWithFd(socketFd, data, fd) {
    return load().sendWithFd(socketFd, data, fd)
  },
  alarm(seconds) {
    load().alarm(seconds)
  },
  setSocketBuffers(fd, send, receive) {
    load().setSocketBuffers(fd, send, receive)
  },
  setLocale(name) {
    if (typeof name !== 'string' || name.includes('\0')) throw new TypeError('setLocale(name): a string without NUL')
    return load().setLocale(name)
  },
  dupFd(fd) {
    return load().dupFd(fd)
  },
  releaseStartupPages() {
    return load().releaseStartupPages()
  },
  mapShared(fd) {
    return load().mapShared(fd)
  },
}
