import t from 'tap'
import { Apache } from '../helpers/apache'
import { execFileSync } from 'node:child_process'
import { APACHE_TUNING, processTicks, serverProcesses } from '../../bench/common'
t.test('scratch', async (t) => {
  const a = new Apache({ logLevel: 'warn', config: `${APACHE_TUNING}
WSGIDaemonProcess bench threads=15 display-name=(wsgi:bench)
WSGIProcessGroup bench
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /exact /work/wt-15/bench/apps/asgi_app.py callable-object=app
WSGIScriptAlias /whello /work/wt-15/bench/apps/hello.wsgi
WSGIScriptAlias / /work/wt-15/bench/apps/asgi_app.py callable-object=app
<Directory /work/wt-15>
  Require all granted
</Directory>
` })
  await a.start()
  try {
    for (const p of ['/hello', '/exact', '/whello', '/whello/x', '/hello', '/exact']) {
      execFileSync('wrk', ['-t2', '-c16', '-d1s', `http://127.0.0.1:${a.port}${p}`])
      const sp = serverProcesses(a)
      const sum = (pids: number[]) => pids.reduce((x, q) => x + processTicks(q), 0)
      const b = [sum(sp.children), sum(sp.daemons)]
      const out = execFileSync('wrk', ['-t2', '-c16', '-d4s', `http://127.0.0.1:${a.port}${p}`], { encoding: 'utf8' })
      const sp2 = serverProcesses(a)
      const e = [sum(sp2.children), sum(sp2.daemons)]
      const rq = Number(/Requests\/sec:\s+(\S+)/.exec(out)?.[1]) * 4
      console.log(p, /Requests\/sec:\s+\S+/.exec(out)?.[0], 'apache', ((e[0] - b[0]) * 10000 / rq).toFixed(0), 'daemon', ((e[1] - b[1]) * 10000 / rq).toFixed(0), 'us/req')
    }
  } finally {
    await a.cleanup()
  }
  t.pass()
})
