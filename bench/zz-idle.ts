import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { Apache } from '../test/helpers/apache'
import { APACHE_TUNING, BENCH_DIR } from './common'
async function main() {
  const apps = join(BENCH_DIR, 'apps')
  const apache = new Apache({ logLevel: 'info', config: `${APACHE_TUNING}
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
    const child = spawn(process.execPath, [join(__dirname, 'ws-load.js'), url, '--connections', process.argv[2] ?? '200', '--idle'], { stdio: ['pipe', 'pipe', 'inherit'] })
    child.stdout.on('data', (d) => console.log('load:', d.toString().trim()))
    await new Promise((r) => setTimeout(r, 20000))
    child.stdin.write('go\n')
    await new Promise((r) => setTimeout(r, 5000))
    child.kill()
    console.log(apache.log().split('\n').filter((l) => /error|WSGI0(18|22)/.test(l)).slice(-10).join('\n'))
  } finally { await apache.cleanup() }
}
main()
