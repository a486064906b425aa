// memory-limit (RLIMIT_DATA) and virtual-memory-limit (RLIMIT_AS) through a real Apache (release notes,
// New Features 4 and 5): the limits the application sees; values below what Node.js and Python need are
// raised to the measured floor with a warning (apache2 -t shows it) and the daemon then serves with every
// thread busy; an allocation over the limit is a MemoryError for the application (500) and a clean,
// graceful restart of its process, never a hung daemon.
import t from 'tap'
import { ALLOW_FIXTURES, Apache, assertRefused, fixture, startApache, waitFor } from '../helpers/apache'
import { daemonOf, pidOf, replacedLogged } from '../helpers/daemons'

const MiB = 1024 * 1024

t.test('the limits are the rlimits the application sees', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess lim threads=2 memory-limit=2000000000 virtual-memory-limit=3000000000
WSGIScriptAlias /info ${fixture('process-observe')} process-group=lim
${ALLOW_FIXTURES}
`,
  })
  const info = JSON.parse((await apache.request('/info')).text)
  t.same(info.limits.data, [2000000000, 2000000000], 'memory-limit is RLIMIT_DATA')
  t.same(info.limits.as, [3000000000, 3000000000], 'virtual-memory-limit is RLIMIT_AS')
})

t.test('limits below the floor are raised to it, with a warning; at the floor all threads serve', async (t) => {
  const config = `
WSGIDaemonProcess low threads=15 virtual-memory-limit=500000000 memory-limit=50000000
WSGIProcessGroup low
WSGIScriptAlias /info ${fixture('process-observe')}
WSGIScriptAlias /together ${fixture('barrier')}
${ALLOW_FIXTURES}
`
  const check = new Apache({ config })
  const test = check.configTest()
  await check.cleanup()
  t.equal(test.status, 0, 'apache2 -t accepts the configuration')
  const asFloor = 1024 * MiB + 15 * (8 + 4) * MiB
  const dataFloor = 128 * MiB + 15 * (8 * MiB + MiB / 2)
  t.match(
    test.output,
    new RegExp(`WSGI01005: WSGIDaemonProcess 'low': option 'virtual-memory-limit=500000000' is below the ${asFloor / MiB} MiB that Node.js and Python need with threads=15; using ${asFloor}`),
    'apache2 -t warns, naming directive, option and the value used',
  )
  t.match(test.output, new RegExp(`option 'memory-limit=50000000' is below the \\d+ MiB .*; using ${dataFloor}`))

  const apache = await startApache(t, { config })
  const info = JSON.parse((await apache.request('/info')).text)
  t.same(info.limits.as, [asFloor, asFloor], 'RLIMIT_AS is the floor')
  t.same(info.limits.data, [dataFloor, dataFloor], 'RLIMIT_DATA is the floor')
  // Each request waits inside the application until all fifteen are: fifteen threads at once.
  const results = await Promise.all(Array.from({ length: 15 }, () => apache.request('/together?n=15&timeout=30', { timeoutMs: 60000 })))
  t.same(results.map((r) => r.status), Array(15).fill(200), 'fifteen requests inside the application at once')
  t.equal(new Set(results.map((r) => r.text)).size, 15, 'on fifteen threads: every worker thread could start')
  t.equal(new Set(results.map(pidOf)).size, 1, 'in the one daemon, which did not restart')
  t.notMatch(apache.log(), /Unable to start a worker thread|MemoryError/)
})

for (const [option, value, hog] of [
  ['virtual-memory-limit', 1200000000, 600],
  ['memory-limit', 400000000, 500],
] as const) {
  t.test(`${option}: an allocation over it is a MemoryError (500) and a graceful restart`, async (t) => {
    const apache = await startApache(t, {
      config: `
WSGIDaemonProcess mem threads=2 ${option}=${value} graceful-timeout=5
WSGIProcessGroup mem
WSGIScriptAlias /hog ${fixture('memory-hog')}
WSGIScriptAlias /sleep ${fixture('pid-sleep')}
${ALLOW_FIXTURES}
`,
    })
    const first = await daemonOf(apache, 'mem')
    const small = await apache.request('/hog?mb=10')
    t.equal(small.status, 200, 'an allocation within the limit works')
    t.equal(pidOf(small), first)

    const busy = apache.request('/sleep?ms=1500')
    await new Promise((r) => setTimeout(r, 200))
    const started = Date.now()
    const big = await apache.request(`/hog?mb=${hog}`)
    t.equal(big.status, 500, `${hog} MiB over ${option}: 500`)
    t.match(apache.log(), /MemoryError/, "the application's MemoryError is logged")
    const b = await busy
    t.equal(b.status, 200, 'a request running meanwhile completes (graceful-timeout)')
    t.equal(pidOf(b), first)

    const line = await apache.waitForLog(/WSGI02033: Memory limit reached in daemon process 'mem' \(1 request\(s\) ended in MemoryError\): restarting process\./)
    t.ok(line, 'the daemon says why it restarts')
    await replacedLogged(apache, 'mem', first)
    const second = await waitFor(async () => {
      const r = await apache.request('/hog?mb=10').catch(() => null)
      return r?.status === 200 && pidOf(r) !== first ? pidOf(r) : 0
    }, 15000, 100, 'a new daemon serving')
    t.ok(second > 0 && second !== first, `a new daemon (${first} -> ${second}) serves`)
    t.ok(Date.now() - started < 12000, `restarted in ${Date.now() - started} ms, not hung`)
    t.match(apache.log(), new RegExp(`\\[pid ${first}:tid \\d+\\] WSGI02029: Exiting process 'mem' \\(status 4\\)`), 'a clean exit')
  })
}

t.test('apache2 -t names the directive and the option on a bad memory value', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['memory-limit=lots', /WSGIDaemonProcess 'g': option 'memory-limit' must be a size in bytes \(0 for no limit\), not 'lots'/],
    ['memory-limit=-1', /option 'memory-limit' must be a size in bytes \(0 for no limit\), not '-1'/],
    ['virtual-memory-limit=1G', /option 'virtual-memory-limit' must be a size in bytes \(0 for no limit\), not '1G'/],
  ]
  for (const [option, message] of bad) await assertRefused(t, `WSGIDaemonProcess g ${option}`, message, option)
})

t.test('apache2 -t: sizes with a K, M or G suffix (memory-recycle, websocket-max-message)', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['memory-recycle=10M', /option 'memory-recycle' must be 0 \(the default\) or a size of at least 64M .*, not '10M'/],
    ['memory-recycle=1X', /option 'memory-recycle' must be 0 \(the default\) or a size of at least 64M .*, not '1X'/],
    ['memory-recycle=M', /option 'memory-recycle' must be .*, not 'M'/],
    ['websocket-max-message=2G', /option 'websocket-max-message' must be a size in bytes, or with a K, M or G suffix, below 2G \(0 for no limit\), not '2G'/],
    ['websocket-max-message=-5', /option 'websocket-max-message' must be .*, not '-5'/],
  ]
  for (const [option, message] of bad) await assertRefused(t, `WSGIDaemonProcess g ${option}`, message, option)
  for (const option of ['memory-recycle=0', 'memory-recycle=64M', 'memory-recycle=1g', 'memory-recycle=70000000',
    'websocket-max-message=0', 'websocket-max-message=512k', 'websocket-max-message=2047M']) {
    const a = new Apache({ config: `WSGIDaemonProcess g ${option}` })
    const r = a.configTest()
    await a.cleanup()
    t.equal(r.status, 0, `${option} is accepted${r.status ? `: ${r.output}` : ''}`)
  }
})
