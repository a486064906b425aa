// WSGIPerInterpreterGIL (mod_wsgi 6, PEP 684) through a real Apache, on pyenv's CPython 3.13, or 3.12.4
// or later (skipped, with the reason, when there is none). Two application groups of one daemon burning
// CPU at once never run at the same instant with one GIL, and do with a GIL each (the figures are
// measured in bench/per-interpreter-gil.ts). An extension module that does not support its own GIL
// fails to import with CPython's own error. On 3.12.0 to 3.12.3, whose own-GIL interpreters share
// objects (CPython gh-119213: a crash when the process ends), the directive is ignored with a warning
// and the daemon still ends cleanly.
import t from 'tap'
import { ALLOW_FIXTURES, fixture, startApache, type Apache } from '../helpers/apache'
import { readyPython, testVenv, type TestPython } from '../helpers/pythons'

const safe = (p: TestPython) => p.version !== '3.12' || Number(p.release.split('.')[2]) >= 4
const candidates = ['3.13', '3.12'].map((v) => readyPython(v))
const found = candidates.find((p): p is TestPython => typeof p !== 'string' && safe(p)) ?? null
const early312 = candidates.find((p): p is TestPython => typeof p !== 'string' && !safe(p)) ?? null

interface Burn {
  cpu: number
  start: number
  end: number
  /** Stretches of wall time [from, to] during which it was running. */
  running: Array<[number, number]>
}

/** Seconds during which both were running at the same instant. */
function overlap(a: Array<[number, number]>, b: Array<[number, number]>): number {
  let sum = 0
  let j = 0
  for (const [s, e] of a) {
    while (j < b.length && b[j][1] <= s) j++
    for (let k = j; k < b.length && b[k][0] < e; k++) sum += Math.max(0, Math.min(e, b[k][1]) - Math.max(s, b[k][0]))
  }
  return sum
}

/** Two burners at once, one in each application group: how long they ran simultaneously (seconds),
 *  and their CPU seconds per wall second. */
async function burnTwo(apache: Apache): Promise<{ both: number; rate: number }> {
  const [a, b] = (await Promise.all(['/a', '/b'].map((p) => apache.request(`${p}/burn?n=3000000`)))).map(
    (r) => JSON.parse(r.text) as Burn,
  )
  return { both: overlap(a.running, b.running), rate: (a.cpu + b.cpu) / (Math.max(a.end, b.end) - Math.min(a.start, b.start)) }
}

function config(py: TestPython, perInterpreterGil: boolean): string {
  return `
WSGIPerInterpreterGIL ${perInterpreterGil ? 'On' : 'Off'}
WSGIDaemonProcess burn python-home=${testVenv(py)} threads=2
WSGIScriptAlias /a ${fixture('gil-burn')} process-group=burn application-group=a
WSGIScriptAlias /b ${fixture('gil-burn')} process-group=burn application-group=b
${ALLOW_FIXTURES}
`
}

t.test('two CPU-bound application groups in one daemon', { skip: found === null && `no CPython 3.13 or 3.12.4+ to give interpreters their own GIL (${candidates.map((p) => (typeof p === 'string' ? p : p.release)).join('; ')})` }, async (t) => {
  const py = found as TestPython
  const shared = await startApache(t, { config: config(py, false) })
  const own = await startApache(t, { config: config(py, true) })
  await burnTwo(shared) // scripts loaded, interpreters made
  await burnTwo(own)
  // Side by side, alternately, since the machine is shared: one GIL never lets the two burners run at
  // the same instant; a GIL each lets them whenever the scheduler gives them two cores at once.
  const ones: Array<{ both: number; rate: number }> = []
  const owns: Array<{ both: number; rate: number }> = []
  for (let i = 0; i < 6 && (i < 3 || Math.max(...owns.map((r) => r.both)) < 0.01); i++) {
    ones.push(await burnTwo(shared))
    owns.push(await burnTwo(own))
  }
  const ms = (x: { both: number }[]) => x.map((r) => (r.both * 1000).toFixed(1)).join(', ')
  const oneBoth = Math.max(...ones.map((r) => r.both))
  const ownBoth = Math.max(...owns.map((r) => r.both))
  t.ok(ones.every((r) => r.rate < 1.1), `one GIL: at most 1 CPU second per wall second (${ones.map((r) => r.rate.toFixed(2)).join(', ')})`)
  t.ok(oneBoth < 0.001, `one GIL: never both running at once (${ms(ones)} ms)`)
  t.ok(ownBoth >= 0.01, `a GIL per interpreter: both running at once for ${ms(owns)} ms; ` +
    `${owns.map((r) => r.rate.toFixed(2)).join(', ')} CPU seconds per wall second`)
  t.match(own.log(), /WSGI03101: Interpreter 'a' created with its own GIL\./)
  t.notMatch(own.log(), /WSGI01401/, 'no warning: this Python has a GIL per interpreter')

  await t.test("an extension without multi-interpreter support fails to import, with CPython's error", async (t) => {
    const r = await own.request('/a/import?m=readline')
    t.equal(r.status, 500)
    t.match(own.log(), /ImportError: module readline does not support loading in subinterpreters/)
    t.equal((await own.request('/a/import?m=json')).text, 'json', 'a module that supports it imports')
  })
})

t.test('CPython 3.12.0 to 3.12.3: ignored with a warning, and the daemon still ends cleanly', { skip: early312 === null && 'no pyenv CPython 3.12.0 to 3.12.3' }, async (t) => {
  const py = early312 as TestPython
  const apache = await startApache(t, { config: config(py, true) })
  const r = await apache.request('/a/burn?n=1000')
  t.equal(r.status, 200)
  // An extension module in the sub-interpreter: with a GIL each, such use crashed those releases at exit.
  t.equal((await apache.request('/a/import?m=struct')).text, 'struct')
  t.match(apache.log(), new RegExp(`WSGI03105: WSGIPerInterpreterGIL On is ignored: Python ${py.release.replace(/\./g, '\\.')} shares objects between interpreters that have their own GIL \\(CPython issue gh-119213, fixed in 3\\.12\\.4\\); sub-interpreters share the GIL\\.`))
  await apache.stop()
  t.match(apache.log(), /WSGI02029: Exiting process 'burn' \(status 0\)/, 'a clean exit')
  t.notMatch(apache.log(), /double free|free\(\): invalid|corrupted|signal 6|SIGABRT/)
})
