// PythonOptions for the addon, derived from the daemon's configuration (src/native/types.ts).
import type { DaemonConfig } from '../config/daemon-config'
import type { PythonRequest, PythonSelection } from '../native/python-select'
import type { PythonOptions } from '../native/types'
import { toAddonLevel } from './log-levels'

/** Debian's interpreter: the one the default build embeds (never the python3 first on PATH). */
export const SYSTEM_PYTHON = '/usr/bin/python3.11'

/** Which Python the group asks for: its python-executable, else its python-home, else WSGIPythonHome. */
export function pythonRequest(c: DaemonConfig): PythonRequest {
  const o = c.options
  if (o.pythonExecutable !== null) return { home: null, executable: o.pythonExecutable }
  return { home: o.pythonHome ?? c.python.home, executable: null }
}

/** The addon's options; `sel` is the Python chosen for the group (program name and home come from it). */
export function pythonOptions(c: DaemonConfig, sel: PythonSelection | null = null): PythonOptions {
  const o = c.options
  // python-home / python-path of the group win over WSGIPythonHome / WSGIPythonPath. The Apache module
  // may already have merged them into python.*; merging again without duplicates is harmless.
  const home = sel !== null ? sel.home : (o.pythonHome ?? c.python.home)
  const path: string[] = []
  for (const p of [...o.pythonPath, ...c.python.path]) if (p !== '' && !path.includes(p)) path.push(p)
  return {
    programName: sel !== null ? sel.programName : home !== null ? `${home.replace(/\/+$/, '')}/bin/python` : SYSTEM_PYTHON,
    home,
    path,
    cwdFirstOnPath: o.home !== null,
    hashSeed: c.python.hashSeed,
    dontWriteBytecode: c.python.dontWriteBytecode,
    optimize: c.python.optimize,
    warnings: [...c.python.warnings],
    restrictSignal: c.python.restrictSignal,
    restrictStdin: c.python.restrictStdin,
    restrictStdout: c.python.restrictStdout,
    processGroup: c.group,
    threads: o.threads,
    stackSize: o.stackSize,
    multithread: o.threads > 1,
    multiprocess: o.multiprocess,
    runOnce: o.threads === 1 && o.maximumRequests === 1,
    logLevel: toAddonLevel(c.server.logLevel),
    verbose: c.python.verboseDebugging,
    // The addon gives sub-interpreters their own GIL only where CPython can (3.12+); the Apache module
    // has already warned about an older one.
    perInterpreterGil: c.python.perInterpreterGil,
    switchInterval: o.switchInterval,
    asgiLoop: o.asgiLoop,
  }
}
