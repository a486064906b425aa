// PythonOptions for the addon, derived from the daemon's configuration (src/native/types.ts).
import type { DaemonConfig } from '../config/daemon-config'
import type { PythonOptions } from '../native/types'
import { toAddonLevel } from './log-levels'

/** Debian's interpreter: the one the addon embeds (never the python3 first on PATH). */
export const SYSTEM_PYTHON = '/usr/bin/python3.11'

export function pythonOptions(c: DaemonConfig): PythonOptions {
  const o = c.options
  // python-home / python-path of the group win over WSGIPythonHome / WSGIPythonPath. The Apache module
  // may already have merged them into python.*; merging again without duplicates is harmless.
  const home = o.pythonHome ?? c.python.home
  const path: string[] = []
  for (const p of [...o.pythonPath, ...c.python.path]) if (p !== '' && !path.includes(p)) path.push(p)
  return {
    programName: home !== null ? `${home.replace(/\/+$/, '')}/bin/python` : SYSTEM_PYTHON,
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
    asgiLoop: o.asgiLoop,
  }
}
