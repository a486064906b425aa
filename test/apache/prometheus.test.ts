// SetHandler wsgi-metrics read by the real Prometheus (Debian's prometheus package): its promtool finds
// no problem in the exposition, and the server scrapes it every second; its query API then returns the
// request counter and a histogram quantile matching the test's own traffic.
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import * as http from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { fixture, FIXTURES, freePort, makeTempDir, startApache, waitFor } from '../helpers/apache'

const PROMETHEUS = '/usr/bin/prometheus'
const PROMTOOL = '/usr/bin/promtool'

const CONFIG = `
WSGIDaemonProcess pool processes=2 threads=4
WSGIDaemonProcess "odd \\"name\\"" processes=1 threads=1
WSGIScriptAlias /app ${fixture('status-codes')} process-group=pool
WSGIScriptAlias /odd ${fixture('status-codes')} process-group="odd \\"name\\""
<Directory ${FIXTURES}>
  Require all granted
</Directory>
<Location /wsgi-metrics>
  SetHandler wsgi-metrics
</Location>
`

function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((res, rej) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (r) => {
        let body = ''
        r.on('data', (c: Buffer) => (body += c.toString('utf8')))
        r.on('end', () => {
          try {
            res(JSON.parse(body))
          } catch (e) {
            rej(e)
          }
        })
      })
      .on('error', rej)
  })
}

/** The single value of an instant query, or null. */
async function query(port: number, q: string): Promise<number | null> {
  const r = (await getJson(port, `/api/v1/query?query=${encodeURIComponent(q)}`)) as {
    status: string
    data?: { result?: Array<{ value: [number, string] }> }
  }
  const v = r.status === 'success' ? r.data?.result?.[0]?.value?.[1] : undefined
  return v === undefined ? null : Number(v)
}

const skip = spawnSync(PROMETHEUS, ['--version']).status !== 0 ? 'Debian\'s prometheus is not installed (scripts/setup.sh installs it)' : false

t.test('promtool check metrics finds no problem in the exposition', { skip }, async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  await waitFor(async () => (await apache.request('/app')).status === 200, 20000, 100, 'the daemons')
  await apache.request('/app?code=404')
  await apache.request('/odd')
  const m = await apache.request('/wsgi-metrics')
  t.equal(m.status, 200)
  t.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8', "Prometheus's text format")
  const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: m.text, encoding: 'utf8' })
  t.equal(check.status, 0, `promtool check metrics: exit 0 ${check.stdout}${check.stderr}`)
  t.equal(`${check.stdout}${check.stderr}`.trim(), '', 'and nothing to say')
  t.match(m.text, /^mod_wsgi_requests_total\{group="pool",status_class="4xx"\} 1$/m)
  t.match(m.text, /^mod_wsgi_requests_total\{group="odd \\"name\\"",status_class="2xx"\} 1$/m, 'label values escaped')
  t.match(m.text, /^mod_wsgi_processes\{group="pool",state="ready"\} 2$/m)
  t.match(m.text, /^mod_wsgi_threads\{group="pool",state="idle"\} 8$/m)
  t.match(m.text, /^mod_wsgi_process_resident_memory_bytes\{group="pool",slot="0"\} \d{7,}$/m, 'per process by group and slot')
  t.notMatch(m.text, /pid=/, 'no pid label')
  t.match(m.text, /^mod_wsgi_restarts_total\{group="pool",reason="maximum-requests"\} 0$/m, 'every reason word, 0 until it happens')
})

t.test('Prometheus scrapes wsgi-metrics: the request counter and a histogram quantile of the traffic', { skip }, async (t) => {
  const apache = await startApache(t, { config: CONFIG })
  await waitFor(async () => (await apache.request('/app')).status === 200, 20000, 100, 'the daemons')
  const dir = makeTempDir('mod_wsgi-prometheus-')
  const port = await freePort()
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mod_wsgi\n    metrics_path: /wsgi-metrics\n    static_configs:\n      - targets: ['127.0.0.1:${apache.port}']\n`,
  )
  const prom = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let promErr = ''
  prom.stderr?.on('data', (c: Buffer) => (promErr += c.toString()))
  t.teardown(() => {
    if (prom.exitCode === null) prom.kill('SIGKILL')
  })
  t.ok(await waitFor(async () => (await query(port, 'up{job="mod_wsgi"}').catch(() => null)) === 1, 30000, 200, 'Prometheus scraping Apache'), 'the target is up')

  // The traffic: 1 request made before, then 150 more that each take 30 ms in the application.
  for (let i = 0; i < 50; i++) await Promise.all([0, 1, 2].map(() => apache.request('/app?ms=30')))
  const total = await waitFor(async () => {
    const v = await query(port, 'sum(mod_wsgi_requests_total{group="pool"})')
    return v === 151 ? v : null
  }, 20000, 250, 'the counter at 151 in Prometheus').catch(() => null)
  t.equal(total, 151, `Prometheus has the request counter of the traffic ${promErr}`)
  const median = await query(port, 'histogram_quantile(0.5, sum by (le) (mod_wsgi_request_duration_seconds_bucket{group="pool"}))')
  t.ok(median !== null && median >= 0.025 && median <= 0.25, `the median request duration is about the 30 ms the requests took (${median} s)`)
  const ninetyNine = await query(port, 'histogram_quantile(0.99, sum by (le) (mod_wsgi_request_duration_seconds_bucket{group="pool"}))')
  t.ok(ninetyNine !== null && ninetyNine >= (median ?? 0), `p99 ${ninetyNine} s is at least the median`)
  const count = await query(port, 'sum(mod_wsgi_request_duration_seconds_count{group="pool"})')
  t.equal(count, 151, 'the histogram counts every request')
})
