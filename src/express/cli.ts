// mod_wsgi-express: runs a WSGI application through Apache httpd and mod_wsgi with one command, without
// touching the system's Apache configuration (release notes, New Features 14).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import yargs from 'yargs'
import type { Argv } from 'yargs'
import { ApacheNotFoundError, locateApache } from './apache-locate'
import { defaultOptions, OPTION_SPECS, validateOptions, type ExpressOptions } from './options'
import { MODULE_SO, setupServerRoot, type ServerRoot } from './server-root'

class UsageError extends Error {}

function addServerOptions(y: Argv): Argv {
  let out = y.positional('script', { type: 'string', describe: 'The WSGI script file to serve (default: a welcome page).' })
  for (const s of OPTION_SPECS) {
    const describe = s.pairNames ? `${s.describe} [${s.pairNames.join(' ')}]` : s.describe
    if (s.kind === 'pair') out = out.option(s.flag, { type: 'string', array: true, nargs: 2, describe })
    else if (s.kind === 'list') out = out.option(s.flag, { type: 'string', array: true, describe })
    else if (s.kind === 'boolean') out = out.option(s.flag, { type: 'boolean', describe, default: s.default as boolean })
    else out = out.option(s.flag, { type: s.kind, describe, default: s.default ?? undefined })
  }
  return out
}

/** Turns parsed argv into ExpressOptions; pair options arrive flattened ([a, b, c, d]). */
export function toOptions(argv: Record<string, unknown>): ExpressOptions {
  const o = defaultOptions() as unknown as Record<string, unknown>
  o.script = typeof argv.script === 'string' ? argv.script : null
  for (const s of OPTION_SPECS) {
    const v = argv[s.flag]
    if (v === undefined || v === null) continue
    if (s.kind === 'pair') {
      const flat = (v as string[]).map(String)
      if (flat.length % 2) throw new UsageError(`--${s.flag} takes two values: ${s.pairNames?.join(' ')}`)
      const pairs: Array<[string, string]> = []
      for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]])
      o[s.key] = pairs
    } else if (s.kind === 'list') {
      o[s.key] = (v as unknown[]).map(String)
    } else if (s.kind === 'number') {
      if (typeof v !== 'number' || Number.isNaN(v)) throw new UsageError(`--${s.flag} needs a number`)
      o[s.key] = v
    } else {
      o[s.key] = v
    }
  }
  const options = o as unknown as ExpressOptions
  const problem = validateOptions(options)
  if (problem) throw new UsageError(problem)
  return options
}

function prepare(argv: Record<string, unknown>): { options: ExpressOptions; root: ServerRoot; httpd: string } {
  const options = toOptions(argv)
  if (!existsSync(MODULE_SO)) throw new UsageError(`${MODULE_SO} is missing: build it first (npm run build)`)
  const apache = locateApache(options)
  const root = setupServerRoot(options, apache)
  return { options, root, httpd: apache.httpd }
}

function describeServer(options: ExpressOptions, root: ServerRoot): string {
  const host = options.host ?? 'localhost'
  return [
    `Server URL         : http://${host}:${options.port}/`,
    `Server Root        : ${root.layout.serverRoot}`,
    `Server Conf        : ${root.httpdConf}`,
    `Error Log File     : ${root.layout.errorLog}`,
    `Operating Mode     : daemon`,
    `Request Capacity   : ${(options.processes ?? 1) * options.threads} (${options.processes ?? 1} process * ${options.threads} threads)`,
  ].join('\n')
}

/** Runs Apache in the foreground until it exits; Ctrl-C or SIGTERM stops it and every daemon. */
function runForeground(httpd: string, conf: string): Promise<number> {
  return new Promise((resolveExit) => {
    const child = spawn(httpd, ['-f', conf, '-DFOREGROUND'], { stdio: 'inherit' })
    const forward = (signal: NodeJS.Signals) => () => {
      // Apache treats SIGINT like SIGTERM: it stops its children and (through mod_wsgi) the daemons.
      if (child.exitCode === null) child.kill(signal === 'SIGINT' ? 'SIGTERM' : signal)
    }
    const onInt = forward('SIGINT')
    const onTerm = forward('SIGTERM')
    const onHup = forward('SIGHUP')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    process.on('SIGHUP', onHup)
    child.on('error', (e) => {
      console.error(`mod_wsgi-express: cannot run ${httpd}: ${e.message}`)
      resolveExit(1)
    })
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      process.off('SIGHUP', onHup)
      resolveExit(code ?? (signal ? 0 : 1))
    })
  })
}

export async function main(args: string[]): Promise<number> {
  let exitCode = 0
  const parser = yargs(args)
    .scriptName('mod_wsgi-express')
    .strict()
    .command(
      'start-server [script]',
      'Generate a configuration and run Apache with mod_wsgi in the foreground.',
      addServerOptions,
      async (argv) => {
        const { options, root, httpd } = prepare(argv)
        process.stdout.write(describeServer(options, root) + '\n')
        exitCode = await runForeground(httpd, root.httpdConf)
      },
    )
    .command(
      'setup-server [script]',
      'Generate the server root (configuration and apachectl) without starting Apache.',
      addServerOptions,
      (argv) => {
        const { options, root } = prepare(argv)
        process.stdout.write(describeServer(options, root) + `\nApache Control     : ${root.apachectl}\n`)
      },
    )
    .command('module-location', 'Print the path of mod_wsgi.so.', {}, () => {
      process.stdout.write(`${MODULE_SO}\n`)
    })
    .command('module-config', 'Print the lines a system Apache configuration needs to load mod_wsgi.', {}, () => {
      process.stdout.write(`LoadModule wsgi_module ${MODULE_SO}\n`)
    })
    .demandCommand(1, 'Name a command: start-server, setup-server, module-location or module-config.')
    .help()
    .fail((msg, err) => {
      if (err) throw err
      process.stderr.write(`mod_wsgi-express: ${msg}\nRun 'mod_wsgi-express --help' for usage.\n`)
      exitCode = 2
    })
  try {
    await parser.parseAsync()
  } catch (e) {
    if (e instanceof UsageError || e instanceof ApacheNotFoundError) {
      process.stderr.write(`mod_wsgi-express: ${e.message}\n`)
      return 2
    }
    throw e
  }
  return exitCode
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`mod_wsgi-express: ${e instanceof Error ? e.message : String(e)}\n`)
      process.exit(1)
    },
  )
}
