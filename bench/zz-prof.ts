import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Apache } from '../test/helpers/apache'
import { APACHE_TUNING, BENCH_DIR } from './common'
function threads(pid: number): Map<string, number> {
  const m = new Map<string, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
    m.set(`${tid}:${name}`, Number(f[11]) + Number(f[12]))
  }
  return m
}
async function main() {
  const apps = join(BENCH_DIR, 'apps')
  const apache = new Apache({ logLevel: 'warn', config: `${APACHE_TUNING}LogLevel warn
WSGIDaemonProcess bench processes=1 threads=15 display-name=(wsgi:bench) ${process.argv[2] ?? ''}
WSGIProcessGroup bench
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias / ${apps}/ws_app.py callable-object=app
<Directory ${apps}>
  Require all granted
</Directory>
` })
  await apache.start()
  try {
    const url = `ws://127.0.0.1:${apache.port}/echo`
    const load = join('/work/wt-16/build/bench/bench/ws-load.js')
    execFileSync(process.execPath, [load, url, '--connections', '16', '--seconds', '1'])
    const pid = apache.daemonPids()[0]
    const a = threads(pid)
    const r = JSON.parse(execFileSync(process.execPath, [load, url, '--connections', '16', '--seconds', '5'], { encoding: 'utf8' }))
    const b = threads(pid)
    console.log(r)
    for (const [k, v] of b) { const d = v - (a.get(k) ?? 0); if (d > 0) console.log(k, (d * 10000 / r.roundTrips).toFixed(1), 'µs/rt') }
  } finally { await apache.cleanup() }
}
main()
