// Lays out a mod_wsgi-express server root: httpd.conf, an apachectl wrapper, handler.wsgi (and the
// welcome page when no script is given), the document root and log directory.
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import type { ApacheInstall } from './apache-locate'
import { renderHandlerScript, WELCOME_SCRIPT } from './handler-script'
import type { ExpressOptions } from './options'
import { renderConfig, TERMINAL_ERROR_FD, type ServerLayout } from './render-config'

/** The built Apache module: build/mod_wsgi.so of this package (lib/express/ → ../../build). */
export const MODULE_SO = resolve(__dirname, '..', '..', 'build', 'mod_wsgi.so')
/** This package's Python package (python/mod_wsgi): mod_wsgi.server and the change monitor. */
export const PYTHON_PACKAGE = resolve(__dirname, '..', '..', 'python', 'mod_wsgi')

export interface ServerRoot {
  layout: ServerLayout
  httpdConf: string
  apachectl: string
  /** Arguments for httpd besides -k/-t/-DFOREGROUND: the configuration, and the startup log if any. */
  httpdArgs: string[]
  /** Where Apache's startup messages go with --startup-log, else null. */
  startupLog: string | null
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Who Apache's children and the daemons run as: the caller, or an unprivileged user when run as root. */
export function runIdentity(o: ExpressOptions): { user: string; group: string } {
  const me = userInfo()
  if (me.uid !== 0) return { user: o.user ?? `#${me.uid}`, group: o.group ?? `#${me.gid}` }
  const user = o.user ?? (userExists('www-data') ? 'www-data' : 'nobody')
  let group = o.group
  if (!group) {
    try {
      group = execFileSync('id', ['-gn', user], { encoding: 'utf8' }).trim()
    } catch {
      group = 'nogroup'
    }
  }
  return { user, group }
}

export class ServerRootError extends Error {
  readonly code = 'ERR_WSGI_EXPRESS_SERVER_ROOT'
}

/**
 * Creates `dir` (or takes it as it is) for Apache's configuration, logs and sockets. The default lies in
 * /tmp under a predictable name, and Apache started as root trusts what is there: a directory someone
 * else owns or may write to, or a symbolic link, is refused.
 */
function mkdirOwn(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  const st = lstatSync(dir)
  const uid = userInfo().uid
  if (!st.isDirectory()) throw new ServerRootError(`${dir} is not a directory (a symbolic link?): choose another --server-root or --log-directory`)
  if (st.uid !== uid) throw new ServerRootError(`${dir} belongs to uid ${st.uid}, not to you (uid ${uid}): choose another --server-root or --log-directory`)
  if (st.mode & 0o022) throw new ServerRootError(`${dir} may be written by others (mode ${(st.mode & 0o777).toString(8)}): choose another --server-root or --log-directory`)
  // The daemons (another user when run as root) must reach the sockets and scripts here.
  chmodSync(dir, 0o755)
}

export function defaultServerRoot(o: ExpressOptions): string {
  return `/tmp/mod_wsgi-${o.host ?? 'localhost'}:${o.port}:${userInfo().uid}`
}

export function setupServerRoot(o: ExpressOptions, apache: ApacheInstall): ServerRoot {
  const serverRoot = resolve(o.serverRoot ?? defaultServerRoot(o))
  mkdirOwn(serverRoot)
  const logDir = resolve(o.logDirectory ?? serverRoot)
  mkdirOwn(logDir)
  const documentRoot = resolve(o.documentRoot ?? join(serverRoot, 'htdocs'))
  if (!o.documentRoot) mkdirOwn(documentRoot)

  let script = o.script ? resolve(o.script) : join(serverRoot, 'default.wsgi')
  if (!o.script) writeFileSync(script, WELCOME_SCRIPT, { mode: 0o644 })
  if (!existsSync(script)) throw new Error(`WSGI script ${script} does not exist`)
  script = resolve(script)

  const workingDirectory = resolve(o.workingDirectory ?? process.cwd())
  const handlerScript = join(serverRoot, 'handler.wsgi')
  writeFileSync(
    handlerScript,
    renderHandlerScript({ script, callableObject: o.callableObject, applicationType: o.applicationType as 'auto' | 'asgi' | 'wsgi', reloadOnChanges: o.reloadOnChanges, packageDir: PYTHON_PACKAGE }),
    { mode: 0o644 },
  )

  const { user, group } = runIdentity(o)
  const layout: ServerLayout = {
    serverRoot,
    documentRoot,
    workingDirectory,
    pidFile: resolve(o.pidFile ?? join(serverRoot, 'httpd.pid')),
    errorLog: o.logToTerminal ? '/dev/stderr' : join(logDir, 'error_log'),
    accessLog: o.logToTerminal ? '/dev/stdout' : join(logDir, 'access_log'),
    handlerScript,
    moduleSo: MODULE_SO,
    user,
    group,
    processGroup: `${o.host ?? 'localhost'}:${o.port}`,
    aliases: o.urlAlias.map(([url, path]) => {
      const target = resolve(path)
      return { url, path: target, isDirectory: existsSync(target) && statSync(target).isDirectory() }
    }),
  }
  const httpdConf = join(serverRoot, 'httpd.conf')
  writeFileSync(httpdConf, renderConfig(o, apache, layout), { mode: 0o644 })

  // On the terminal, startup messages need no -E: Apache writes them to its standard error anyway.
  const startupLog = o.startupLog ? (o.logToTerminal ? '/dev/stderr' : join(logDir, 'startup_log')) : null
  const httpdArgs = ['-f', httpdConf, ...(startupLog && !o.logToTerminal ? ['-E', startupLog] : [])]
  const apachectl = join(serverRoot, 'apachectl')
  writeFileSync(apachectl, renderApachectl(apache.httpd, httpdArgs, o.logToTerminal), { mode: 0o755 })
  return { layout, httpdConf, apachectl, httpdArgs, startupLog }
}

/** A word for sh, single-quoted. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export function renderApachectl(httpd: string, httpdArgs: string[], logToTerminal: boolean): string {
  // The terminal's standard error as the descriptor the error log pipe writes to (render-config.ts).
  const args = httpdArgs.map(shQuote).join(' ') + (logToTerminal ? ` ${TERMINAL_ERROR_FD}>&2` : '')
  // configtest without -E: its verdict belongs on the terminal, not in the startup log.
  const conf = httpdArgs.slice(0, 2).map(shQuote).join(' ')
  return `#!/bin/sh
# Generated by mod_wsgi-express: controls the Apache of this server root.
HTTPD=${shQuote(httpd)}
case "$1" in
    start|stop|restart|graceful|graceful-stop) exec "$HTTPD" ${args} -k "$1" ;;
    start-foreground) exec "$HTTPD" ${args} -DFOREGROUND ;;
    configtest) exec "$HTTPD" ${conf} -t ;;
    *) echo "usage: $0 start|start-foreground|stop|restart|graceful|graceful-stop|configtest" >&2; exit 2 ;;
esac
`
}
