// Finds the Apache httpd that mod_wsgi-express runs: --httpd-executable, then $HTTPD, then what apxs
// ($APXS, or apxs / apxs2 on PATH) says about the installation. Also the modules directory and mime.types.
import { execFileSync } from 'node:child_process'
import { accessSync, constants, existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'

export interface ApacheInstall {
  httpd: string
  modulesDirectory: string
  mimeTypes: string
}

export class ApacheNotFoundError extends Error {
  readonly code = 'ERR_WSGI_EXPRESS_NO_APACHE'
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir || '.', name)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      /* next */
    }
  }
  return null
}

function apxsQuery(apxs: string, name: string): string {
  try {
    return execFileSync(apxs, ['-q', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return ''
  }
}

export function locateApache(opts: { httpdExecutable: string | null; modulesDirectory: string | null; mimeTypes: string | null }): ApacheInstall {
  const apxs = process.env.APXS || onPath('apxs') || onPath('apxs2') || (existsSync('/usr/bin/apxs') ? '/usr/bin/apxs' : null)
  let httpd = opts.httpdExecutable || process.env.HTTPD || null
  let modules = opts.modulesDirectory
  if (apxs) {
    if (!httpd) {
      const sbin = apxsQuery(apxs, 'SBINDIR')
      const target = apxsQuery(apxs, 'TARGET') || apxsQuery(apxs, 'PROGNAME')
      if (sbin && target) httpd = join(sbin, target)
    }
    modules ??= apxsQuery(apxs, 'LIBEXECDIR') || null
  }
  httpd ??= onPath('apache2') ?? onPath('httpd') ?? (existsSync('/usr/sbin/apache2') ? '/usr/sbin/apache2' : null)
  if (!httpd || !existsSync(httpd)) {
    throw new ApacheNotFoundError(
      'Apache httpd was not found. Install it (Debian/Ubuntu: apt-get install apache2 apache2-dev), ' +
        'or name it with --httpd-executable, or set HTTPD or APXS.',
    )
  }
  if (!modules) {
    for (const guess of ['/usr/lib/apache2/modules', '/usr/local/apache2/modules', '/usr/lib64/httpd/modules']) {
      if (existsSync(guess)) {
        modules = guess
        break
      }
    }
  }
  if (!modules) throw new ApacheNotFoundError("Apache's modules directory was not found: name it with --modules-directory.")
  const mimeTypes = opts.mimeTypes ?? ['/etc/mime.types', '/usr/local/apache2/conf/mime.types'].find((p) => existsSync(p)) ?? '/etc/mime.types'
  return { httpd, modulesDirectory: modules, mimeTypes }
}
