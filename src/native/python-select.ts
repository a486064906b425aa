// Which CPython a process group embeds, and which addon build carries it. A group's Python is the one
// its environment was made from, read from the environment itself (never by running it):
//   python-executable=  a Python's bin/python3.N (or a virtualenv's bin/python);
//   python-home=        a virtualenv (its pyvenv.cfg: `home` is the base installation's bin directory,
//                       `version` or `version_info` its version) or an installation prefix (its only
//                       lib/python3.N with an os.py);
//   neither             Debian's /usr/bin/python3.11, the default build.
// The addon for CPython 3.N is build/py3.N/wsgi_bridge.node (scripts/build.sh addon --python ...), or the
// default build/Release/wsgi_bridge.node when build/Release/python-version says 3.N. Before it is loaded
// the installation's own libpython3.N.so.1.0 is made global (python_preload.node): the addon then binds
// to that library whichever installation of 3.N it was compiled against.
// Failures are one line saying which Python and what to install or run (PythonSelectError); the Apache
// module makes the same checks at `apache2 -t` (native/apache/wsgi_python.c). Only reads files: no
// addon is loaded here (src/native/index.ts does that), so mod_wsgi-express may use it too.
import { accessSync, constants, existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, isAbsolute, join } from 'node:path'

/** The CPython versions the addon supports, oldest first. */
export const SUPPORTED_MINORS = { min: 8, max: 13 } as const

/** Debian's interpreter: what a group without python-home or python-executable embeds. */
export const SYSTEM_PYTHON = '/usr/bin/python3.11'

/** The project root (lib/native/ and src/native/ both sit two levels below it). */
const ROOT = join(__dirname, '..', '..')

export class PythonSelectError extends Error {
  override readonly name: string = 'PythonSelectError'
}

/** The Python can be embedded, but the addon for its version is not built: run scripts/build.sh addon
 *  --python `executable` (mod_wsgi-express does). */
export class AddonNotBuiltError extends PythonSelectError {
  override readonly name = 'AddonNotBuiltError'
  constructor(
    message: string,
    readonly version: string,
    readonly executable: string,
  ) {
    super(message)
  }
}

export interface PythonSelection {
  /** "3.12" */
  version: string
  minor: number
  /** The installation (sys.base_prefix): a virtualenv's base, or the prefix given. */
  prefix: string
  /** The virtualenv given as python-home, or null. */
  venv: string | null
  /** PyConfig's program_name: <venv>/bin/python, <prefix>/bin/python3.N or the executable given. */
  programName: string
  /** PythonOptions.home: python-home as given (a virtualenv or a prefix), or null. */
  home: string | null
  /** libpython3.N.so.1.0 of the installation, made global before the addon loads; null for the default
   *  build with no python-home (the addon's own dependency is Debian's library). */
  library: string | null
  /** The addon binary and its preloader. */
  addon: string
  preload: string
  /** What to run to build the addon when it is missing (for messages). */
  executable: string
}

export interface PythonRequest {
  /** python-home (or WSGIPythonHome): a virtualenv or an installation prefix. */
  home: string | null
  /** python-executable: an installation's bin/python3.N, or a virtualenv's bin/python. */
  executable: string | null
  /** Where build/ is (tests); default the project root. */
  root?: string
}

const fail = (msg: string): never => {
  throw new PythonSelectError(msg)
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile()
  } catch {
    return false
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory()
  } catch {
    return false
  }
}

/** pyvenv.cfg's `key = value` lines (PEP 405), keys lower-cased. */
export function parsePyvenvCfg(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*?)\s*$/.exec(line)
    if (m) out.set(m[1].toLowerCase(), m[2])
  }
  return out
}

/** "3.12" from "3.12.1", "3.12.1.final.0", "3.12": the major.minor a version string starts with. */
export function minorVersion(text: string | undefined): string | null {
  const m = /^(\d+)\.(\d+)(?:\D|$)/.exec(text ?? '')
  return m ? `${m[1]}.${m[2]}` : null
}

/** The Python versions whose standard library (lib/python3.N/os.py) is under `prefix`. A directory of a
 *  free-threaded build (python3.13t) is reported with its "t". */
export function prefixVersions(prefix: string): string[] {
  let names: string[]
  try {
    names = readdirSync(join(prefix, 'lib'))
  } catch {
    return []
  }
  return names
    .filter((n) => /^python3\.\d+t?$/.test(n) && isFile(join(prefix, 'lib', n, 'os.py')))
    .map((n) => n.slice('python'.length))
    .sort((a, b) => parseFloat(a.slice(2)) - parseFloat(b.slice(2)))
}

/** The installation's shared libpython3.N.so.1.0: <prefix>/lib, lib64, or a multiarch lib directory. */
export function findLibpython(prefix: string, version: string): string | null {
  const name = `libpython${version}.so.1.0`
  const dirs = [join(prefix, 'lib'), join(prefix, 'lib64')]
  try {
    for (const d of readdirSync(join(prefix, 'lib'))) if (/-linux-gnu/.test(d)) dirs.push(join(prefix, 'lib', d))
  } catch {
    /* no lib directory */
  }
  for (const d of dirs) if (isFile(join(d, name))) return join(d, name)
  return null
}

/** The addon build for CPython `version`, if built: build/py3.N/, else the default build when it is 3.N. */
export function findAddon(version: string, root = ROOT): { addon: string; preload: string } | null {
  const own = join(root, 'build', `py${version}`)
  if (isFile(join(own, 'wsgi_bridge.node')) && isFile(join(own, 'python_preload.node')))
    return { addon: join(own, 'wsgi_bridge.node'), preload: join(own, 'python_preload.node') }
  const dflt = join(root, 'build', 'Release')
  let built = ''
  try {
    built = readFileSync(join(dflt, 'python-version'), 'utf8').trim()
  } catch {
    /* not stamped: not usable for another Python */
  }
  if (built === version && isFile(join(dflt, 'wsgi_bridge.node')) && isFile(join(dflt, 'python_preload.node')))
    return { addon: join(dflt, 'wsgi_bridge.node'), preload: join(dflt, 'python_preload.node') }
  return null
}

/** The command that builds the addon for a Python (for messages and mod_wsgi-express). */
export function buildCommand(executable: string, root = ROOT): string {
  return `sh ${join(root, 'scripts', 'build.sh')} addon --python ${executable}`
}

function checkVersion(version: string, where: string): number {
  if (version.endsWith('t'))
    fail(`${where} is a free-threaded build of Python ${version.slice(0, -1)}, which cannot be embedded: use its default (GIL) build`)
  const minor = Number(version.split('.')[1])
  if (!version.startsWith('3.') || minor < SUPPORTED_MINORS.min || minor > SUPPORTED_MINORS.max)
    fail(`${where} is Python ${version}: this mod_wsgi embeds CPython 3.${SUPPORTED_MINORS.min} to 3.${SUPPORTED_MINORS.max}`)
  return minor
}

interface Base {
  version: string
  prefix: string
  venv: string | null
  programName: string
  executable: string
}

/** A virtualenv: its pyvenv.cfg names the base installation and its version. */
function fromVenv(venv: string, programName: string): Base {
  const cfgPath = join(venv, 'pyvenv.cfg')
  let cfg: Map<string, string>
  try {
    cfg = parsePyvenvCfg(readFileSync(cfgPath, 'utf8'))
  } catch (e) {
    return fail(`cannot read ${cfgPath}: ${(e as Error).message}`)
  }
  const homeDir = cfg.get('home')
  if (!homeDir || !isAbsolute(homeDir)) return fail(`${cfgPath} has no absolute 'home' (the base Python's directory): recreate the virtualenv`)
  // The base installation: `home` is its bin directory (or, rarely, the prefix itself).
  const candidates = [dirname(homeDir), homeDir]
  try {
    candidates.push(dirname(dirname(realpathSync(join(homeDir, basename(programName))))))
  } catch {
    /* no such executable there */
  }
  // A virtualenv has lib/python3.N/site-packages: the fallback for a pyvenv.cfg without a version, and
  // the mark of a free-threaded base (python3.13t).
  const libNames = readdirSafe(join(venv, 'lib'))
    .filter((n) => /^python3\.\d+t?$/.test(n))
    .map((n) => n.slice('python'.length))
  let version = minorVersion(cfg.get('version') ?? cfg.get('version_info')) ?? (libNames.length === 1 ? libNames[0] : null)
  if (version !== null && libNames.includes(`${version}t`)) version = `${version}t`
  if (version === null) return fail(`${cfgPath} names no Python version and ${venv}/lib has no python3.N: recreate the virtualenv`)
  const prefix = candidates.find((p) => prefixVersions(p).includes(version as string))
  if (prefix === undefined)
    return fail(`the Python ${version} that virtualenv ${venv} was made from is gone (no ${join(dirname(homeDir), 'lib', `python${version}`)}): reinstall it or recreate the virtualenv`)
  return { version, prefix, venv, programName, executable: programName }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

function venvPython(venv: string): string {
  for (const n of ['python', 'python3']) if (existsSync(join(venv, 'bin', n))) return join(venv, 'bin', n)
  return join(venv, 'bin', 'python')
}

/** An installation prefix given as python-home: its one lib/python3.N decides. */
function fromPrefix(prefix: string): Base {
  if (!isDir(prefix)) return fail(`python-home ${prefix} is not a directory`)
  const versions = prefixVersions(prefix)
  if (versions.length === 0)
    return fail(`python-home ${prefix} is neither a virtualenv (no pyvenv.cfg) nor a Python installation (no lib/python3.N/os.py)`)
  if (versions.length > 1)
    return fail(`python-home ${prefix} holds several Pythons (${versions.join(', ')}): name one with python-executable=${prefix}/bin/python3.N`)
  const exe = join(prefix, 'bin', `python${versions[0]}`)
  return { version: versions[0], prefix, venv: null, programName: exe, executable: exe }
}

/** python-executable: a virtualenv's python, or an installation's bin/python3.N (symlinks followed). */
function fromExecutable(executable: string): Base {
  if (!isAbsolute(executable)) return fail(`python-executable ${executable} is not an absolute path`)
  if (!isFile(executable)) return fail(`python-executable ${executable} does not exist`)
  const venv = dirname(dirname(executable))
  if (isFile(join(venv, 'pyvenv.cfg'))) return fromVenv(venv, executable)
  let real: string
  try {
    real = realpathSync(executable)
  } catch (e) {
    return fail(`python-executable ${executable}: ${(e as Error).message}`)
  }
  const prefix = dirname(dirname(real))
  const named = /^python(3\.\d+t?)$/.exec(basename(real))?.[1] ?? null
  const versions = prefixVersions(prefix)
  const version = named ?? (versions.length === 1 ? versions[0] : null)
  if (version === null || !versions.includes(version))
    return fail(`python-executable ${executable} is not a Python installation's bin/python3.N (no ${prefix}/lib/python3.N/os.py)`)
  return { version, prefix, venv: null, programName: executable, executable }
}

/**
 * The Python a process group embeds and the addon build for it. Throws PythonSelectError (one line)
 * when it cannot be embedded: unsupported version, no shared libpython, addon not built.
 */
export function selectPython(req: PythonRequest): PythonSelection {
  const root = req.root ?? ROOT
  const home = req.home !== null ? req.home.replace(/(.)\/+$/, '$1') : null
  if (req.executable === null && home === null) {
    // Debian's own Python: the default build, loaded as it always was (no preload needed).
    const found = findAddon('3.11', root)
    return {
      version: '3.11',
      minor: 11,
      prefix: '/usr',
      venv: null,
      programName: SYSTEM_PYTHON,
      home: null,
      library: null,
      addon: found?.addon ?? join(root, 'build', 'Release', 'wsgi_bridge.node'),
      preload: found?.preload ?? join(root, 'build', 'Release', 'python_preload.node'),
      executable: SYSTEM_PYTHON,
    }
  }
  let base: Base
  if (req.executable !== null) base = fromExecutable(req.executable)
  else if (isFile(join(home as string, 'pyvenv.cfg'))) base = fromVenv(home as string, venvPython(home as string))
  else base = fromPrefix(home as string)
  const what = base.venv !== null ? `virtualenv ${base.venv} (Python ${base.version} of ${base.prefix})` : `Python ${base.version} under ${base.prefix}`
  const minor = checkVersion(base.version, what)
  const library = findLibpython(base.prefix, base.version)
  if (library === null)
    fail(
      `${what} has no shared library libpython${base.version}.so.1.0 and cannot be embedded: rebuild that Python with ` +
        `--enable-shared (pyenv: env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install ${base.version}), or use one that has it ` +
        `(Debian/Ubuntu or deadsnakes packages, uv python install)`,
    )
  const found = findAddon(base.version, root)
  if (found === null)
    throw new AddonNotBuiltError(
      `the addon for Python ${base.version} is not built (for ${what}): run ${buildCommand(base.executable, root)}`,
      base.version,
      base.executable,
    )
  return {
    version: base.version,
    minor,
    prefix: base.prefix,
    venv: base.venv,
    programName: base.programName,
    home: req.executable !== null ? null : home,
    library,
    addon: (found as { addon: string }).addon,
    preload: (found as { preload: string }).preload,
    executable: base.executable,
  }
}

/** After the identity drop: can this user read the Python's standard library? null, or the problem. */
export function unreadableBy(sel: PythonSelection): string | null {
  const landmark = join(sel.prefix, 'lib', `python${sel.version}`, 'os.py')
  try {
    accessSync(landmark, constants.R_OK)
    if (sel.venv !== null) accessSync(join(sel.venv, 'pyvenv.cfg'), constants.R_OK)
    return null
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? `${landmark} does not exist` : `${(e as Error).message}`
  }
}
