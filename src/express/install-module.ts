// `mod_wsgi-express install-module`: copies the built mod_wsgi.so into Apache's modules directory (what
// `apxs -i` would do), so that a system Apache loads it with `LoadModule wsgi_module modules/mod_wsgi.so`.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, lstatSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { ApacheNotFoundError, INSTALL_HINT, locateApxs } from './apache-locate'

export class InstallError extends Error {
  readonly code = 'ERR_WSGI_EXPRESS_INSTALL'
}

/** The Debian package that owns `path`, or null (also when dpkg is not there). */
function dpkgOwner(path: string): string | null {
  const r = spawnSync('dpkg-query', ['-S', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  if (r.status !== 0 || !r.stdout) return null
  return r.stdout.split(':')[0].trim() || null
}

function modulesDirectoryFromApxs(env: NodeJS.ProcessEnv): string {
  const apxs = locateApxs(env)
  if (!apxs) throw new ApacheNotFoundError(`apxs was not found, so Apache's modules directory is unknown: name it with --modules-directory. ${INSTALL_HINT}`)
  const r = spawnSync(apxs, ['-q', 'LIBEXECDIR'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const dir = (r.stdout ?? '').trim()
  if (r.status !== 0 || !dir) throw new ApacheNotFoundError(`${apxs} -q LIBEXECDIR gave no directory: name it with --modules-directory.`)
  return dir
}

/**
 * Installs `moduleSo` as `<modules directory>/mod_wsgi.so` and returns the installed path. The new file
 * replaces the old one by rename: Apaches running with the old file mapped keep working.
 */
export function installModule(moduleSo: string, opts: { modulesDirectory: string | null; force: boolean }, env = process.env): string {
  if (!existsSync(moduleSo)) throw new InstallError(`${moduleSo} is missing: build it first (npm run build)`)
  const dir = opts.modulesDirectory ?? modulesDirectoryFromApxs(env)
  if (!existsSync(dir)) throw new InstallError(`the modules directory ${dir} does not exist`)
  const target = join(dir, 'mod_wsgi.so')
  // lstat, not existsSync: a symbolic link whose target is gone (another mod_wsgi removed) is still there.
  if (!opts.force && present(target)) {
    const owner = dpkgOwner(target)
    if (owner)
      throw new InstallError(
        `${target} belongs to the Debian package ${owner} (the original mod_wsgi): remove that package ` +
          `(apt-get remove ${owner}) or pass --force to replace the file anyway`,
      )
    if (lstatSync(target).isSymbolicLink())
      throw new InstallError(`${target} is a symbolic link, probably another mod_wsgi's: remove it or pass --force`)
  }
  const temp = join(dir, `.mod_wsgi.so.${process.pid}`)
  try {
    copyFileSync(moduleSo, temp)
    chmodSync(temp, 0o755)
    renameSync(temp, target)
  } catch (e) {
    rmSync(temp, { force: true })
    throw new InstallError(`cannot install ${target}: ${(e as Error).message}`)
  }
  return target
}

/** Whether anything is at `path`, a dangling symbolic link included. */
function present(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}
