// The CPythons the tests embed besides Debian's 3.11: the machine's pyenv builds under
// ~/.pyenv/versions stand in for a user's own Pythons. A test of another version reports itself skipped,
// with the reason, only when that Python is absent; when it is present but its addon is not built yet,
// the test builds it (scripts/build.sh, the same command a user runs; setup.sh builds the ones the
// suite uses ahead).
//
// Apache's children and the daemons run as www-data, which cannot enter /root (where pyenv lives here):
// a Python under an unreadable directory is used through a copy made of hard links (instant, no extra
// space) under build/test-pythons/, and the virtualenvs made from it live under build/test-venvs/. Both
// are made once and reused by later runs.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { ROOT } from './apache'

export const PYENV_VERSIONS = join(process.env.PYENV_ROOT ?? join(process.env.HOME ?? '/root', '.pyenv'), 'versions')
const COPIES = join(ROOT, 'build', 'test-pythons')
const VENVS = join(ROOT, 'build', 'test-venvs')

export interface TestPython {
  /** "3.12" */
  version: string
  /** "3.12.1" */
  release: string
  /** The installation as the daemons see it (a readable copy when the original is not). */
  prefix: string
  /** Its bin/python3.N. */
  executable: string
}

/** Debian's own Python, the default build's. */
export const DEBIAN_PYTHON: TestPython = { version: '3.11', release: '3.11.2', prefix: '/usr', executable: '/usr/bin/python3.11' }

/** Can a user other than root reach and read `path` (o+x on every directory above it, o+r on it)? */
function worldReadable(path: string): boolean {
  try {
    if ((statSync(path).mode & 0o004) === 0) return false
    for (let d = dirname(path); d !== dirname(d); d = dirname(d)) if ((statSync(d).mode & 0o001) === 0) return false
    return true
  } catch {
    return false
  }
}

/** Runs the shell command `cmd` holding an exclusive lock on `file` (flock(1)): tests in parallel make
 *  the same copies. */
function locked(file: string, cmd: string): { status: number | null; output: string } {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 })
  const r = spawnSync('flock', [file, 'sh', '-c', cmd], { encoding: 'latin1' })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

const sh = (s: string) => `'${s.replaceAll("'", "'\\''")}'`

/** The newest pyenv CPython 3.N with a shared libpython, as a TestPython, or null when there is none. */
export function pyenvPython(version: string): TestPython | null {
  let names: string[]
  try {
    names = readdirSync(PYENV_VERSIONS)
  } catch {
    return null
  }
  const found = names
    .filter((n) => n.startsWith(`${version}.`) && /^\d+\.\d+\.\d+$/.test(n))
    .filter((n) => existsSync(join(PYENV_VERSIONS, n, 'lib', `libpython${version}.so.1.0`)))
    .sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]))
    .pop()
  if (found === undefined) return null
  const original = join(PYENV_VERSIONS, found)
  const exe = (prefix: string) => join(prefix, 'bin', `python${version}`)
  if (worldReadable(exe(original))) return { version, release: found, prefix: original, executable: exe(original) }
  return { version, release: found, prefix: readableCopy(original, found), executable: exe(join(COPIES, found)) }
}

/** A copy of `original` made of hard links under build/test-pythons/NAME (made once). */
function readableCopy(original: string, name: string, exclude: string | null = null): string {
  const copy = join(COPIES, name)
  if (existsSync(join(copy, '.complete'))) return copy
  const drop = exclude === null ? '' : `find "$tmp" -name ${sh(exclude)} -delete && `
  const r = locked(
    `${copy}.lock`,
    `[ -f ${sh(join(copy, '.complete'))} ] && exit 0; tmp=${sh(copy)}.tmp; rm -rf "$tmp" ${sh(copy)} && ` +
      // Only the new directories are made searchable: the files are the originals' (hard links share
      // their inode, and so their mode).
      `cp -al ${sh(original)} "$tmp" && ${drop}find "$tmp" -type d -exec chmod a+rx {} + && touch "$tmp/.complete" && mv "$tmp" ${sh(copy)}`,
  )
  if (r.status !== 0) throw new Error(`cannot copy ${original} to ${copy}: ${r.output}`)
  return copy
}

/**
 * A copy of the newest pyenv 3.N without its shared libpython: what a Python built without
 * --enable-shared looks like to the module (its python still runs: its RUNPATH names the original's
 * lib directory). Null when there is no such pyenv Python.
 */
export function staticPython(version: string): TestPython | null {
  const py = pyenvPython(version)
  if (py === null) return null
  const name = `${py.prefix.split('/').pop()}-no-libpython`
  const original = py.prefix.startsWith(COPIES) ? join(PYENV_VERSIONS, py.prefix.split('/').pop() as string) : py.prefix
  const prefix = readableCopy(original, name, 'libpython3*.so*')
  return { version, release: py.release, prefix, executable: join(prefix, 'bin', `python${version}`) }
}

/** A virtualenv (python -m venv --without-pip) of `py`, made once under build/test-venvs/NAME. */
export function testVenv(py: TestPython, name = `py${py.version}-${py.prefix.split('/').pop()}`): string {
  const venv = join(VENVS, name)
  if (existsSync(join(venv, '.complete'))) return venv
  const r = locked(
    `${venv}.lock`,
    `[ -f ${sh(join(venv, '.complete'))} ] && exit 0; rm -rf ${sh(venv)} && ` +
      `${sh(py.executable)} -m venv --without-pip ${sh(venv)} && chmod -R a+rX ${sh(venv)} && touch ${sh(join(venv, '.complete'))}`,
  )
  if (r.status !== 0) throw new Error(`cannot make a virtualenv of ${py.executable}: ${r.output}`)
  return venv
}

/** Is the addon built for this version (build/py3.N, or the default build when it is that version)? */
export function addonBuilt(version: string): boolean {
  const own = join(ROOT, 'build', `py${version}`, 'wsgi_bridge.node')
  if (existsSync(own)) return true
  try {
    return spawnSync('cat', [join(ROOT, 'build', 'Release', 'python-version')], { encoding: 'latin1' }).stdout.trim() === version
  } catch {
    return false
  }
}

/** Builds the addon for `py` unless it is built (scripts/build.sh addon --python ...). */
export function ensureAddon(py: TestPython): void {
  if (addonBuilt(py.version)) return
  const r = spawnSync('sh', [join(ROOT, 'scripts', 'build.sh'), 'addon', '--python', py.executable], { encoding: 'latin1' })
  if (r.status !== 0) throw new Error(`building the addon for ${py.executable} failed: ${r.stdout}${r.stderr}`)
}

/** The pyenv Python 3.N ready to embed (copied if need be, addon built), or the reason to skip. */
export function readyPython(version: string): TestPython | string {
  const py = pyenvPython(version)
  if (py === null) return `no CPython ${version} with a shared libpython under ${PYENV_VERSIONS}`
  ensureAddon(py)
  return py
}

