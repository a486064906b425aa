// Running the generated server: what start-server prints, and Apache in the foreground until Ctrl-C.
import { spawn } from 'node:child_process'
import type { ExpressOptions } from './options'
import { maxClients, statusPaths } from './render-config'
import type { ServerRoot } from './server-root'

const STATUS_TITLES: Record<string, string> = {
  '/server-status': 'Server Status',
  '/wsgi-status': 'Daemon Status',
  '/wsgi-metrics': 'Metrics',
  '/wsgi-health': 'Health Check',
}

export function describeServer(o: ExpressOptions, root: ServerRoot): string {
  const l = root.layout
  const processes = o.processes ?? 1
  const lines = [
    `Server URL         : http://${o.host ?? 'localhost'}:${o.port}/`,
    `Server Root        : ${l.serverRoot}`,
    `Server Conf        : ${root.httpdConf}`,
    `Error Log File     : ${l.errorLog} (${o.logLevel})`,
    ...(o.accessLog ? [`Access Log File    : ${l.accessLog}`] : []),
    ...(root.startupLog ? [`Startup Log File   : ${root.startupLog}`] : []),
    `Daemon Identity    : ${l.user} (group ${l.group})`,
    `Operating Mode     : daemon`,
    `Request Capacity   : ${processes * o.threads} (${processes} process${processes > 1 ? 'es' : ''} * ${o.threads} threads)`,
    `Request Timeout    : ${o.requestTimeout} (seconds)`,
    `Queue Backlog      : ${o.daemonBacklog} (connections)`,
    `Queue Timeout      : ${o.queueTimeout} (seconds)`,
    `Server Capacity    : ${maxClients(o)} (client connections)`,
    `Server Backlog     : ${o.serverBacklog} (connections)`,
    ...(o.reloadOnChanges ? [`Reload On Changes  : yes (imported Python files are watched)`] : []),
    ...statusPaths(o).map((p) => `${STATUS_TITLES[p].padEnd(19)}: http://${o.host ?? 'localhost'}:${o.port}${p}`),
  ]
  return lines.join('\n')
}

/**
 * Runs Apache in the foreground until it exits and resolves with the exit status to use. Ctrl-C (SIGINT,
 * which a terminal also sends to Apache and the daemons: they share the process group) or SIGTERM stops
 * Apache, which stops its children and, through mod_wsgi, every daemon process.
 */
export function runForeground(httpd: string, httpdArgs: string[], errorLog: string, logToTerminal: boolean): Promise<number> {
  return new Promise((resolveExit) => {
    // With --log-to-terminal the error log pipe writes to Apache's fd 3: our standard error.
    const stdio: Array<'inherit' | 'ignore' | number> = logToTerminal ? ['ignore', 'inherit', 'inherit', 2] : ['ignore', 'inherit', 'inherit']
    const child = spawn(httpd, [...httpdArgs, '-DFOREGROUND'], { stdio })
    let stopping = false
    const forward = (signal: NodeJS.Signals) => () => {
      stopping ||= signal !== 'SIGHUP'
      // Apache takes SIGINT like SIGTERM; SIGHUP is its restart.
      if (child.exitCode === null && child.signalCode === null) child.kill(signal === 'SIGINT' ? 'SIGTERM' : signal)
    }
    const handlers: Array<[NodeJS.Signals, () => void]> = [
      ['SIGINT', forward('SIGINT')],
      ['SIGTERM', forward('SIGTERM')],
      ['SIGHUP', forward('SIGHUP')],
    ]
    for (const [s, h] of handlers) process.on(s, h)
    const done = (code: number) => {
      for (const [s, h] of handlers) process.off(s, h)
      resolveExit(code)
    }
    child.on('error', (e) => {
      process.stderr.write(`mod_wsgi-express: cannot run ${httpd}: ${e.message}\n`)
      done(1)
    })
    child.on('exit', (code, signal) => {
      if (stopping && (code === 0 || signal)) return done(0)
      process.stderr.write(
        `mod_wsgi-express: Apache exited with ${code !== null ? `status ${code}` : `signal ${signal}`}; ` +
          `its messages are above${errorLog.startsWith('/dev/') ? '' : ` and in ${errorLog}`}\n`,
      )
      done(code || 1)
    })
  })
}
