// Allocation failure under RLIMIT_AS (the daemon's virtual-memory-limit): native allocations that
// fail become MemoryError and a 500, never an abort, and the process keeps serving.
import t from 'tap'

import { AddonProcess, body, fixture, spec } from './harness'

const GiB = 1024 * 1024 * 1024

t.test('a request body too big for the address-space limit', async (t) => {
  const host = await AddonProcess.start({ threads: 2 }, {}, { rlimitAsExtra: 1 * GiB, arenaMax: 2 })
  t.teardown(() => host.kill())
  // read() gathers the whole body in native code first: that allocation fails.
  const r = await host.run(
    spec(fixture('echo'), { method: 'POST', query: 'mode=read' }, { body: { repeat: 1.5 * GiB, chunk: 256 * 1024 } }),
  )
  t.same(r.violations, [])
  t.equal(r.error?.status, 500)
  t.match(await host.logs(), /return \[stream\.read\(\)\](\n.*){1,2}\] MemoryError$/m, 'raised by wsgi.input.read() itself')
  const next = await host.run(spec(fixture('echo'), { method: 'POST' }, { body: { size: 100000 } }))
  t.equal(JSON.parse(body(next).toString()).length, 100000, 'the next request is served')
})
