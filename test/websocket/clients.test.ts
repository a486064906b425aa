// Real WebSocket clients through Apache, over plain HTTP and over TLS (mod_ssl: the tunnel reads and
// writes through the connection's filters): Python's `websockets` (Debian's python3-websockets), Node's
// `ws`, and a browser's WebSocket in headless Chromium (Debian's chromium), driven through the DevTools
// protocol.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import WebSocket from 'ws'
import { PYTHON, freePort, makeTempDir, startApache, waitFor } from '../helpers/apache'
import { makeCerts, sslVhostLines } from '../helpers/tls'
import { connect, wsConfig } from './helpers'

const CHROMIUM = '/usr/bin/chromium'

/** Opens `url` in a headless Chromium and evaluates `expression` (a promise) in that page, through the
 *  DevTools protocol (Page.navigate, the load event, Runtime.evaluate). */
async function inChromium(url: string, expression: string, timeoutMs = 30000): Promise<unknown> {
  const profile = makeTempDir('mod_wsgi-chromium-')
  const browser = spawn(
    CHROMIUM,
    [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank',
    ],
    // A process group of its own: the teardown kills Chromium's helpers (zygote, renderers) with it.
    { stdio: 'ignore', detached: true },
  )
  try {
    const portFile = join(profile, 'DevToolsActivePort')
    await waitFor(() => existsSync(portFile) && readFileSync(portFile, 'utf8').includes('\n'), timeoutMs, 100, 'Chromium to start')
    const port = Number(readFileSync(portFile, 'utf8').split('\n')[0])
    const page = (await waitFor(async () => {
      const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ type: string; webSocketDebuggerUrl: string }>
      return list.find((p) => p.type === 'page') ?? null
    }, timeoutMs, 200, 'a page'))!
    const cdp = new WebSocket(page.webSocketDebuggerUrl, { perMessageDeflate: false })
    await new Promise((res, rej) => {
      cdp.once('open', res)
      cdp.once('error', rej)
    })
    let id = 0
    const pending = new Map<number, (m: { result?: Record<string, unknown>; error?: unknown }) => void>()
    const events: Array<(m: { method: string }) => void> = []
    cdp.on('message', (data) => {
      const m = JSON.parse(data.toString())
      if (m.id !== undefined) pending.get(m.id)?.(m)
      else for (const fn of events) fn(m)
    })
    const call = (method: string, params: Record<string, unknown> = {}) =>
      new Promise<{ result?: Record<string, unknown>; error?: unknown }>((res) => {
        pending.set(++id, res)
        cdp.send(JSON.stringify({ id, method, params }))
      })
    const deadline = setTimeout(() => cdp.terminate(), timeoutMs)
    try {
      const loaded = new Promise<void>((res) => events.push((m) => m.method === 'Page.loadEventFired' && res()))
      await call('Page.enable')
      await call('Page.navigate', { url })
      await loaded
      const r = await call('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })
      const result = r.result as { exceptionDetails?: unknown; result?: { value?: unknown } } | undefined
      if (result?.exceptionDetails) throw new Error(JSON.stringify(result.exceptionDetails))
      return result?.result?.value
    } finally {
      clearTimeout(deadline)
      cdp.close()
    }
  } finally {
    try {
      process.kill(-browser.pid!, 'SIGKILL')
    } catch {
      browser.kill('SIGKILL')
    }
    await new Promise((r) => (browser.exitCode !== null ? r(null) : browser.once('exit', r)))
    // A helper that outlived the group kill may still write into the profile for a moment.
    rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 })
  }
}

const BROWSER_SCRIPT = `new Promise((resolve) => {
  const out = []
  const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws/echo')
  ws.binaryType = 'arraybuffer'
  ws.onopen = () => {
    ws.send('from the browser ✓')
    ws.send(new Uint8Array([1, 2, 3, 250]).buffer)
    ws.send('x'.repeat(100000))
  }
  ws.onmessage = (e) => {
    out.push(typeof e.data === 'string' ? (e.data.length > 100 ? 'long:' + e.data.length : e.data) : Array.from(new Uint8Array(e.data)))
    if (out.length === 3) ws.close(4000, 'browser done')
  }
  ws.onclose = (e) => resolve({ out, code: e.code, reason: e.reason, clean: e.wasClean })
})`

t.test('WebSocket clients', async (t) => {
  const certs = makeCerts(makeTempDir('mod_wsgi-certs-'), [])
  t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }))
  const sslPort = await freePort()
  const apache = await startApache(t, {
    modules: ['ssl'],
    config: wsConfig('clients', 'threads=4', `Listen 127.0.0.1:${sslPort}\n<VirtualHost 127.0.0.1:${sslPort}>\n${sslVhostLines(certs)}\n</VirtualHost>`),
  })

  for (const [label, base] of [
    ['ws://', `ws://127.0.0.1:${apache.port}/ws`],
    ['wss:// (mod_ssl)', `wss://127.0.0.1:${sslPort}/ws`],
  ] as const) {
    await t.test(`Python websockets over ${label}`, async (t) => {
      const args = [join(__dirname, 'clients', 'websockets_client.py'), base, ...(base.startsWith('wss') ? [certs.ca] : [])]
      const r = spawnSync(PYTHON, args, { encoding: 'utf8', timeout: 60000 })
      t.equal(r.status, 0, r.stderr)
      const out = JSON.parse(r.stdout)
      t.equal(out.text, 'hello from websockets')
      t.same(out.bytes, [0, 1, 255])
      t.ok(out.big_ok, 'a 1 MiB message echoed')
      t.ok(out.pong_ms >= 0, `ping answered (${out.pong_ms} ms)`)
      t.same(out.close, [4005, 'python done'])
      t.equal(out.subprotocol, 'beta')
      t.equal(out.offered, 'alpha,beta')
      t.equal(out.server_says, 'bye')
      t.equal(out.server_close, 1000)
      t.equal(out.deny_status, 403)
      t.ok(out.many, '50 connections at once, each in order')
    })

    await t.test(`Node ws over ${label}`, async (t) => {
      const c = await connect(`${base}/echo`, undefined, { ca: readFileSync(certs.ca) })
      const big = Buffer.alloc(4 * 1024 * 1024, 3)
      c.send(big)
      t.same(await c.next(30000), big, 'a 4 MiB message both ways')
      c.send('small after big')
      t.equal(await c.next(), 'small after big')
      t.same(await c.close(1000, 'node done'), { code: 1000, reason: 'node done' })
    })
  }

  await t.test("a browser's WebSocket (headless Chromium)", { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/setup.sh installs it)` }, async (t) => {
    const r = (await inChromium(`http://127.0.0.1:${apache.port}/ws/page`, BROWSER_SCRIPT)) as {
      out: unknown[]
      code: number
      reason: string
      clean: boolean
    }
    t.same(r.out, ['from the browser ✓', [1, 2, 3, 250], 'long:100000'])
    t.equal(r.code, 4000)
    t.equal(r.reason, 'browser done')
    t.ok(r.clean, 'a clean close')
  })

  t.notMatch(apache.log(), /WSGI01801|WSGI01802|WSGI01803/, 'every tunnel ended cleanly')
})
