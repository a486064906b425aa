// Every log message has a number that never changes meaning (docs/logging.md), so users and tests can
// match on it. A number used twice breaks that: this test finds each place a number is assigned, on all
// four sides, and fails on a number used twice or outside its side's range.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from '../helpers/apache'

function filesUnder(dir: string, ext: RegExp): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...filesUnder(p, ext))
    else if (ext.test(e.name)) out.push(p)
  }
  return out
}

/** Each occurrence of `re`'s first group in the files, with where it was found. */
function occurrences(files: string[], re: RegExp): Array<{ n: number; at: string }> {
  const out: Array<{ n: number; at: string }> = []
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n')
    lines.forEach((line, i) => {
      for (const m of line.matchAll(re)) out.push({ n: Number(m[1]), at: `${f.slice(ROOT.length + 1)}:${i + 1}` })
    })
  }
  return out
}

function checkUnique(t: { ok: (v: unknown, m: string) => void; fail: (m: string) => void }, side: string, found: Array<{ n: number; at: string }>, min: number, max: number): void {
  t.ok(found.length > 0, `${side}: message numbers found`)
  const seen = new Map<number, string>()
  for (const { n, at } of found) {
    if (n < min || n > max) t.fail(`${side}: ${n} at ${at} is outside ${min}-${max}`)
    const first = seen.get(n)
    if (first !== undefined) t.fail(`${side}: number ${n} used at ${first} and again at ${at}`)
    else seen.set(n, at)
  }
}

t.test('the Apache module (WSGILOGNO in native/apache) uses each number once', async (t) => {
  // wsgi_log.h defines the macro itself (its comment shows an example).
  const files = filesUnder(join(ROOT, 'native', 'apache'), /\.[ch]$/).filter((f) => !f.endsWith('wsgi_log.h'))
  checkUnique(t, 'native/apache', occurrences(files, /WSGILOGNO\((\d{5})\)/g), 1000, 1999)
})

t.test('the daemon catalogue (src/daemon/errors.ts) uses each number once', async (t) => {
  checkUnique(t, 'src/daemon/errors.ts', occurrences([join(ROOT, 'src', 'daemon', 'errors.ts')], /\bm\((\d{4}),/g), 2000, 2999)
})

t.test('the addon (kLog* in native/addon/py/log.h) uses each number once', async (t) => {
  checkUnique(t, 'native/addon', occurrences([join(ROOT, 'native', 'addon', 'py', 'log.h')], /=\s*(3\d{3}),/g), 3000, 3999)
})

t.test('the Python package logs each WSGI04nnn from one place', async (t) => {
  const files = filesUnder(join(ROOT, 'python'), /\.py$/)
  checkUnique(t, 'python', occurrences(files, /_log\('WSGI0(\d{4})'/g), 4000, 4999)
})
