// The command-line parsing every bench script shares: yargs (already a dependency, src/express/), strict
// (an unknown option is an error, not ignored), --help listing each option with its description and
// default, a number option that is not a number refused, and the last of a repeated option winning. Kept
// out of common.ts so that the load client (ws-load.ts) does not load the Apache harness.
import yargs, { type Options } from 'yargs'

/** Bad arguments: the message says which and what is allowed. Scripts print it without a stack. */
export class UsageError extends Error {}

/** A yargs parser of `argv` for the script `usage` describes, with its `options` (each with `describe`
 *  and `default`; every one but a boolean needs a value); finish with `.parseSync()`. Failures throw
 *  UsageError (a coerce function may throw a plain Error: its message is kept). */
export function benchArgs<O extends Record<string, Options>>(argv: string[], usage: string, options: O) {
  for (const o of Object.values(options)) if (o.type !== 'boolean') o.requiresArg = true
  return yargs(argv)
    .usage(usage)
    .options(options)
    .strict()
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .version(false)
    .help()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .check((a) => {
      for (const [k, v] of Object.entries(a)) if (typeof v === 'number' && Number.isNaN(v)) throw new Error(`--${k}: not a number`)
      return true
    })
    .fail((msg, err) => {
      throw new UsageError(`${err?.message ?? msg}\nRun with --help for the options.`)
    })
}

/** A comma-separated list of names out of `known` ('all' for every one of them). */
export function names<T extends string>(value: string, known: readonly T[], what: string): T[] {
  if (value === 'all') return [...known]
  const list = value.split(',').filter(Boolean)
  for (const v of list) if (!(known as readonly string[]).includes(v)) throw new Error(`unknown ${what} ${v} (known: ${known.join(', ')}, or all)`)
  if (list.length === 0) throw new Error(`no ${what} named (known: ${known.join(', ')}, or all)`)
  return list as T[]
}

/** A comma-separated list of whole numbers of at least `min`. */
export function numbers(value: string, what: string, min = 1): number[] {
  const list = value.split(',').filter(Boolean).map(Number)
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < min)) throw new Error(`--${what}: whole numbers of at least ${min}, comma-separated (got '${value}')`)
  return list
}

/** The end of a script's main(): a usage error as one message (exit 2), anything else with its stack (exit 1). */
export function exitWith(e: unknown): never {
  if (e instanceof UsageError) {
    console.error(e.message)
    process.exit(2)
  }
  console.error(e instanceof Error ? e.stack : e)
  process.exit(1)
}
