import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import { Apache, childPids } from '../test/helpers/apache'
import { APACHE_TUNING, BENCH_DIR } from './common'
async function main() {
  const apps = join(BENCH_DIR, 'apps')
  const apache = new Apache({ logLevel: 'warn', config: `${APACHE_TUNING.replace('StartServers 2','StartServers 1').replace('ServerLimit 4','ServerLimit 1').replace('MaxRequestWorkers 256','MaxRequestWorkers 64')}LogLevel warn
WSGIDaemonProcess bench processes=1 threads=15 display-name=(wsgi:bench)
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
    const daemon = apache.daemonPids()[0]
    const child = childPids(apache.pid).filter((p) => p !== daemon)[0]
    const s1 = spawn('/tmp/strace-run.sh', [String(daemon)])
    const s2 = spawn('/tmp/strace-run.sh', [String(child)])
    const r = JSON.parse(execFileSync(process.execPath, [load, url, '--connections', '16', '--seconds', '3'], { encoding: 'utf8' }))
    await new Promise((res) => s1.once('exit', res)); await new Promise((res) => s2.once('exit', res))
    console.log(r.roundTrips, 'round trips (traced: slower)', 'daemon', daemon, 'child', child)
  } finally { await apache.cleanup() }
}
main()
