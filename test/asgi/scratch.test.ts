import t from 'tap'
import { Apache } from '../helpers/apache'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { APACHE_TUNING } from '../../bench/common'
function threads(pid: number) {
  const out: Record<string, number> = {}
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
    const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'latin1')
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
    out[t] = Number(f[11]) + Number(f[12])
    } catch {}
  }
  return out
}
t.test('scratch', async (t) => {
  const a = new Apache({ logLevel: 'warn', config: `${APACHE_TUNING}
WSGIDaemonProcess asgi threads=15 ${process.env.LOOPOPT ?? ''}
WSGIProcessGroup asgi
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /whello /work/wt-15/bench/apps/hello.wsgi
WSGIScriptAlias / /work/wt-15/bench/apps/asgi_app.py callable-object=app
<Directory /work/wt-15>
  Require all granted
</Directory>
` })
  await a.start()
  try {
    for (const p of ['/hello', '/whello', '/hello', '/whello']) {
    execFileSync('wrk', ['-t2', '-c16', '-d2s', `http://127.0.0.1:${a.port}${p}`])
    const pid = a.daemonPids()[0]
    const before = threads(pid)
    const out = execFileSync('wrk', ['-t2', '-c16', '-d5s', '--latency', `http://127.0.0.1:${a.port}${p}`], { encoding: 'utf8' })
    const after = threads(pid)
    const rq = Number(/Requests\/sec:\s+(\S+)/.exec(out)?.[1]) * 5
    let main = 0, other = 0
    for (const k of Object.keys(after)) { const d = after[k] - (before[k] ?? 0); if (k === String(pid)) main += d; else other += d }
    console.log(p, /Requests\/sec:\s+\S+/.exec(out)?.[0], 'js', (main * 10000 / rq).toFixed(1), 'python', (other * 10000 / rq).toFixed(1), 'us/req')
    }
  } finally {
    await a.cleanup()
  }
  t.pass()
})
