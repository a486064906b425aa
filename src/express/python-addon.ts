// mod_wsgi-express and the Python of the daemons: a virtualenv it is started from ($VIRTUAL_ENV) is the
// one they embed unless --python-home or --python-executable says otherwise, and the addon for that
// Python's version is built on first use (scripts/build.sh addon --python ..., about a minute), so that
// nobody has to know node-gyp. A Python that cannot be embedded is a usage error, in one line.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { AddonNotBuiltError, PythonSelectError, selectPython, type PythonSelection } from '../native/python-select'
import type { ExpressOptions } from './options'

const ROOT = join(__dirname, '..', '..')

/** The options with --python-home defaulting to the active virtualenv. */
export function withActiveVirtualenv(o: ExpressOptions, env: NodeJS.ProcessEnv = process.env): ExpressOptions {
  if (o.pythonHome !== null || o.pythonExecutable !== null || !env.VIRTUAL_ENV) return o
  return { ...o, pythonHome: env.VIRTUAL_ENV }
}

/**
 * The Python the daemons will embed, its addon built if it was not. Throws PythonSelectError with the
 * reason when it cannot be embedded (or the build failed). Debian's own Python (neither option) needs
 * nothing: the default build is part of every build.
 */
export function ensurePythonAddon(o: ExpressOptions, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): PythonSelection | null {
  if (o.pythonHome === null && o.pythonExecutable === null) return null
  const request = { home: o.pythonHome, executable: o.pythonExecutable }
  try {
    return selectPython(request)
  } catch (e) {
    if (!(e instanceof AddonNotBuiltError)) throw e
    log(`mod_wsgi-express: building the addon for Python ${e.version} (${e.executable}), once; this takes about a minute...`)
    const r = spawnSync('sh', [join(ROOT, 'scripts', 'build.sh'), 'addon', '--python', e.executable], { stdio: ['ignore', 2, 2] })
    if (r.status !== 0) throw new PythonSelectError(`building the addon for Python ${e.version} (${e.executable}) failed: see the lines above`)
  }
  return selectPython(request)
}
