// Finds the Apache httpd that mod_wsgi-express runs: --httpd-executable, then $HTTPD, then what apxs
// ($APXS, or apxs / apxs2 on PATH) says about the installation, then apache2 / httpd on PATH and the usual
// places. Also the modules directory and mime.types. A name the user gave that leads nowhere is an error
// naming it; finding nothing at all says what to install.
import { execFileSync } from 'node:child_process'
import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'

export interface ApacheInstall {
  httpd: string
  modulesDirectory: string
  mimeTypes: string
  /** The apxs that described this installation, if one was found. */
  apxs: string | null
}

export class ApacheNotFoundError extends Error {
  readonly code = 'ERR_WSGI_EXPRESS_NO_APACHE'
}

/** Where to look besides what the user names; replaceable for tests. */
export interface SearchPlaces {
  /** The directories of PATH. */
  path: string[]
  apxs: string[]
  httpd: string[]
  modules: string[]
  mimeTypes: string[]
}

export function defaultSearchPlaces(env: NodeJS.ProcessEnv = process.env): SearchPlaces {
  return {
    // Debian keeps apache2 in /usr/sbin, which a normal user's PATH lacks.
    path: [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'],
    apxs: ['/usr/bin/apxs', '/usr/local/apache2/bin/apxs'],
    httpd: ['/usr/sbin/apache2', '/usr/sbin/httpd', '/usr/local/apache2/bin/httpd'],
    modules: ['/usr/lib/apache2/modules', '/usr/local/apache2/modules', '/usr/lib64/httpd/modules', '/usr/lib/httpd/modules'],
    mimeTypes: ['/etc/mime.types', '/etc/apache2/mime.types', '/usr/local/apache2/conf/mime.types', '/etc/httpd/conf/mime.types'],
  }
}

export const INSTALL_HINT =
  'Install Apache httpd 2.4 and its development files (Debian/Ubuntu: apt-get install apache2 apache2-dev; ' +
  'Fedora/RHEL: dnf install httpd httpd-devel), or name the binary with --httpd-executable, or set HTTPD ' +
  '(the httpd binary) or APXS (the apxs of the installation).'

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK)
    return statSync(p).isFile()
  } catch {
    return false
  }
}

function onPath(dirs: string[], names: string[]): string | null {
  for (const name of names) for (const dir of dirs) if (executable(join(dir, name))) return join(dir, name)
  return null
}

function apxsQuery(apxs: string, name: string): string {
  try {
    return execFileSync(apxs, ['-q', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10000 }).trim()
  } catch {
    return ''
  }
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory()
  } catch {
    return false
  }
}

/** The apxs to ask: $APXS (an error when it is not there), apxs or apxs2 on PATH, or a usual place. */
export function locateApxs(env: NodeJS.ProcessEnv = process.env, places = defaultSearchPlaces(env)): string | null {
  if (env.APXS) {
    if (!executable(env.APXS)) throw new ApacheNotFoundError(`APXS=${env.APXS} is not an executable file. ${INSTALL_HINT}`)
    return env.APXS
  }
  return onPath(places.path, ['apxs', 'apxs2']) ?? places.apxs.find(executable) ?? null
}

export function locateApache(
  opts: { httpdExecutable: string | null; modulesDirectory: string | null; mimeTypes: string | null },
  env: NodeJS.ProcessEnv = process.env,
  places: SearchPlaces = defaultSearchPlaces(env),
): ApacheInstall {
  let httpd: string | null = null
  if (opts.httpdExecutable) {
    if (!executable(opts.httpdExecutable)) throw new ApacheNotFoundError(`--httpd-executable ${opts.httpdExecutable} is not an executable file.`)
    httpd = opts.httpdExecutable
  } else if (env.HTTPD) {
    if (!executable(env.HTTPD)) throw new ApacheNotFoundError(`HTTPD=${env.HTTPD} is not an executable file. ${INSTALL_HINT}`)
    httpd = env.HTTPD
  }
  const apxs = locateApxs(env, places)
  if (!httpd && apxs) {
    const sbin = apxsQuery(apxs, 'SBINDIR')
    const target = apxsQuery(apxs, 'TARGET') || apxsQuery(apxs, 'PROGNAME')
    if (sbin && target && executable(join(sbin, target))) httpd = join(sbin, target)
  }
  httpd ??= onPath(places.path, ['apache2', 'httpd']) ?? places.httpd.find(executable) ?? null
  if (!httpd) throw new ApacheNotFoundError(`Apache httpd was not found. ${INSTALL_HINT}`)

  let modules = opts.modulesDirectory
  if (modules) {
    if (!isDirectory(modules)) throw new ApacheNotFoundError(`--modules-directory ${modules} is not a directory.`)
  } else {
    const fromApxs = apxs ? apxsQuery(apxs, 'LIBEXECDIR') : ''
    // An httpd installed under its own prefix (/usr/local/apache2/bin/httpd) keeps modules beside bin/.
    const beside = join(dirname(dirname(httpd)), 'modules')
    modules = [fromApxs, beside, ...places.modules].find((d) => d && isDirectory(d)) ?? null
  }
  if (!modules) throw new ApacheNotFoundError(`Apache's modules directory was not found: name it with --modules-directory. ${INSTALL_HINT}`)

  let mimeTypes = opts.mimeTypes
  if (mimeTypes) {
    if (!existsSync(mimeTypes)) throw new ApacheNotFoundError(`--mime-types ${mimeTypes} does not exist.`)
  } else {
    const sysconf = apxs ? apxsQuery(apxs, 'SYSCONFDIR') : ''
    mimeTypes =
      [...places.mimeTypes, sysconf && join(sysconf, 'mime.types'), join(dirname(dirname(httpd)), 'conf', 'mime.types')].find(
        (p) => p && existsSync(p),
      ) ?? null
    if (!mimeTypes) throw new ApacheNotFoundError('No mime.types file was found: name one with --mime-types (Debian/Ubuntu: apt-get install media-types).')
  }
  return { httpd, modulesDirectory: modules, mimeTypes, apxs }
}
