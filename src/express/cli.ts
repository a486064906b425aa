// mod_wsgi-express: runs a WSGI application through Apache httpd and mod_wsgi with one command, without
// touching the system's Apache configuration (release notes, New Features 14).
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import yargs from 'yargs'
import type { Argv } from 'yargs'
import { ApacheNotFoundError, locateApache } from './apache-locate'
import { InstallError, installModule } from './install-module'
import { PythonSelectError } from '../native/python-select'
import { defaultOptions, OPTION_SPECS, validateOptions, type ExpressOptions } from './options'
import { ensurePythonAddon, withActiveVirtualenv } from './python-addon'
import { quote } from './render-config'
import { describeServer, runForeground } from './run-apache'
import { MODULE_SO, ServerRootError, setupServerRoot, type ServerRoot } from './server-root'

class UsageError extends Error {}

function addServerOptions(y: Argv): Argv {
  let out = y.positional('script', { type: 'string', describe: 'The WSGI script file to serve (default: a welcome page).' })
  for (const s of OPTION_SPECS) {
    const describe = s.pairNames ? `${s.describe} [${s.pairNames.join(' ')}]` : s.describe
    if (s.kind === 'pair') out = out.option(s.flag, { type: 'string', array: true, nargs: 2, describe })
    // Not `array: true`: yargs would then take every following word, the script included. Repeating the
    // option gives an array all the same.
    else if (s.kind === 'list') out = out.option(s.flag, { type: 'string', describe })
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
    let v = argv[s.flag]
    if (v === undefined || v === null) continue
    // A single-valued option given twice: the last one wins, as with optparse.
    if (Array.isArray(v) && s.kind !== 'pair' && s.kind !== 'list') v = v[v.length - 1]
    if (s.kind === 'pair') {
      const flat = (v as string[]).map(String)
      if (flat.length % 2) throw new UsageError(`--${s.flag} takes two values: ${s.pairNames?.join(' ')}`)
      const pairs: Array<[string, string]> = []
      for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]])
      o[s.key] = pairs
    } else if (s.kind === 'list') {
      o[s.key] = (Array.isArray(v) ? v : [v]).map(String)
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

function isFile(p: string): boolean {
  return existsSync(p) && statSync(p).isFile()
}

function prepare(argv: Record<string, unknown>): { options: ExpressOptions; root: ServerRoot; httpd: string } {
  const options = withActiveVirtualenv(toOptions(argv))
  if (options.script !== null && !isFile(options.script)) throw new UsageError(`the WSGI script ${resolve(options.script)} does not exist`)
  if (options.documentRoot !== null && !(existsSync(options.documentRoot) && statSync(options.documentRoot).isDirectory()))
    throw new UsageError(`--document-root ${resolve(options.documentRoot)} is not a directory`)
  for (const f of options.includeFile) if (!isFile(f)) throw new UsageError(`--include-file ${resolve(f)} does not exist`)
  if (!existsSync(MODULE_SO)) throw new UsageError(`${MODULE_SO} is missing: build it first (npm run build)`)
  try {
    ensurePythonAddon(options)
  } catch (e) {
    if (e instanceof PythonSelectError) throw new UsageError(`cannot embed the Python: ${e.message}`)
    throw e
  }
  const apache = locateApache(options)
  const root = setupServerRoot(options, apache)
  return { options, root, httpd: apache.httpd }
}

/** The lines a system Apache configuration needs for this mod_wsgi (`module-config`). */
export function moduleConfig(pythonHome: string | null): string {
  const lines = [`LoadModule wsgi_module ${quote(MODULE_SO)}`]
  // The daemons embed Debian's Python unless told otherwise: a virtualenv has to be named.
  if (pythonHome) lines.push(`WSGIPythonHome ${quote(resolve(pythonHome))}`)
  return lines.join('\n') + '\n'
}

export async function main(args: string[]): Promise<number> {
  let exitCode = 0
  const parser = yargs(args)
    .scriptName('mod_wsgi-express')
    .parserConfiguration({ 'camel-case-expansion': false })
    .strict()
    .command(
      'start-server [script]',
      'Generate a configuration and run Apache with mod_wsgi in the foreground until Ctrl-C.',
      addServerOptions,
      async (argv) => {
        const { options, root, httpd } = prepare(argv)
        process.stdout.write(describeServer(options, root) + '\n')
        exitCode = await runForeground(httpd, root.httpdArgs, root.layout.errorLog, options.logToTerminal)
      },
    )
    .command(
      'setup-server [script]',
      'Generate the server root (httpd.conf, handler script and apachectl) without starting Apache.',
      addServerOptions,
      (argv) => {
        const { options, root } = prepare(argv)
        process.stdout.write(describeServer(options, root) + `\nApache Control     : ${root.apachectl}\n`)
      },
    )
    .command('module-location', 'Print the path of the built mod_wsgi.so.', {}, () => {
      process.stdout.write(`${MODULE_SO}\n`)
    })
    .command(
      'module-config',
      'Print the lines a system Apache configuration needs for this mod_wsgi: LoadModule, and WSGIPythonHome for a virtualenv.',
      (y) =>
        y.option('python-home', {
          type: 'string',
          describe: "The virtualenv (or Python prefix) the daemons use (default: $VIRTUAL_ENV when set, else Debian's Python)",
        }),
      (argv) => {
        const home = (argv['python-home'] as string | undefined) || process.env.VIRTUAL_ENV || null
        process.stdout.write(moduleConfig(home))
      },
    )
    .command(
      'install-module',
      "Copy mod_wsgi.so into Apache's modules directory (as apxs -i does) and print the LoadModule line for it.",
      (y) =>
        y
          .option('modules-directory', { type: 'string', describe: "Apache's modules directory (default: what apxs -q LIBEXECDIR says)" })
          .option('force', { type: 'boolean', default: false, describe: 'Replace a mod_wsgi.so that belongs to a package (Debian: libapache2-mod-wsgi-py3)' }),
      (argv) => {
        const dir = (argv['modules-directory'] as string | undefined) ?? null
        const target = installModule(MODULE_SO, { modulesDirectory: dir, force: argv.force as boolean })
        process.stdout.write(`LoadModule wsgi_module ${quote(target)}\n`)
      },
    )
    .demandCommand(1, 'Name a command: start-server, setup-server, module-location, module-config or install-module.')
    .help()
    .fail((msg, err) => {
      // Throwing is what stops yargs: returning would still run the command.
      throw err ?? new UsageError(`${msg}\nRun 'mod_wsgi-express --help' for usage.`)
    })
  try {
    await parser.parseAsync()
  } catch (e) {
    if (e instanceof UsageError || e instanceof ApacheNotFoundError || e instanceof InstallError || e instanceof ServerRootError) {
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
