// releaseStartupPages(): Node's start-up code and data leave the process's resident set, and the
// process goes on running code from its binary, whatever it needs faulting back in.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { executableResident } from '../helpers/resident'

const ROOT = join(__dirname, '..', '..')
const MiB = 1024 * 1024

// A fresh Node process, driven a line at a time: "release" gives back its start-up pages, "work" runs
// code it had not run yet (gzip, an HTTP server and client, a regular expression).
const CHILD = `
const { processControl } = require(${JSON.stringify(join(ROOT, 'lib', 'native', 'index'))})
const zlib = require('node:zlib'), http = require('node:http')
const say = (o) => console.log(JSON.stringify(o))
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'release') return say({ released: processControl.releaseStartupPages() })
  const text = 'mod_wsgi '.repeat(10000)
  const roundTrip = zlib.gunzipSync(zlib.gzipSync(text)).toString() === text
  const server = http.createServer((req, res) => res.end(req.url.replace(/[^a-z]/g, ''))).listen(0, '127.0.0.1', () => {
    http.get({ port: server.address().port, path: '/a1b2c3' }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d)).on('end', () => { server.close(); say({ roundTrip, body }); process.stdin.destroy() })
    })
  })
})
say({ ready: true })
`

t.test('a process gives back most of its binary and keeps working', async (t) => {
  const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => child.kill('SIGKILL'))
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>
  t.same(await next(), { ready: true })
  const before = executableResident(child.pid as number)
  child.stdin.write('release\n')
  const { released } = (await next()) as { released: number }
  const after = executableResident(child.pid as number)
  t.ok(released > 4 * MiB, `released ${(released / MiB).toFixed(1)} MiB`)
  t.ok(after < before - 4 * MiB, `binary resident ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB`)
  child.stdin.write('work\n')
  t.same(await next(), { roundTrip: true, body: 'abc' }, 'gzip, HTTP server and client work after the release')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'the child exits cleanly')
})
