// A serving daemon keeps resident only the part of Node's binary it uses: its start-up pages are
// given back once it is ready (releaseStartupPages), unlike a plain Node process's.
import { spawn } from 'node:child_process'
import t from 'tap'
import { fixture, FIXTURES, sleep, startApache } from '../helpers/apache'
import { daemonOf } from '../helpers/daemons'
import { executableResident } from '../helpers/resident'

const MiB = 1024 * 1024

t.test('the daemon holds far less of the Node binary than a plain Node process', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess footprint threads=4
WSGIProcessGroup footprint
WSGIScriptAlias /hello ${fixture('hello-world')}
<Directory ${FIXTURES}>
  Require all granted
</Directory>
`,
  })
  for (let i = 0; i < 20; i++) {
    const rs = await Promise.all(Array.from({ length: 20 }, () => apache.request('/hello')))
    t.ok(rs.every((r) => r.status === 200), `batch ${i + 1} answered 200`)
  }
  const daemon = await daemonOf(apache, 'footprint')

  const plain = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
  t.teardown(() => plain.kill('SIGKILL'))
  await sleep(500)
  const plainBytes = executableResident(plain.pid as number)
  const daemonBytes = executableResident(daemon)
  t.ok(daemonBytes < plainBytes - 8 * MiB,
    `after 400 requests the daemon holds ${(daemonBytes / MiB).toFixed(1)} MiB of node, an idle plain Node ${(plainBytes / MiB).toFixed(1)} MiB`)
  const again = await apache.request('/hello')
  t.equal(again.status, 200, 'and serves on')
})
