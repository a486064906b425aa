// What the ASGI tests share: their fixtures (test/fixtures/asgi/<case>/app.py), the <Directory> block
// that lets Apache serve them, a private copy of a fixture in a directory its app may write to (lifespan
// markers), and a raw-socket client for responses that end early.
import { chmodSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import { ROOT, makeTempDir } from '../helpers/apache'

export const ASGI_FIXTURES = join(ROOT, 'test', 'fixtures', 'asgi')
export const ALLOW_ASGI = `<Directory ${ASGI_FIXTURES}>\n  Require all granted\n</Directory>`

/** An ASGI fixture's path: test/fixtures/asgi/<name>/<file>. */
export function asgiFixture(name: string, file = 'app.py'): string {
  return join(ASGI_FIXTURES, name, file)
}

/** A copy of a fixture in a fresh directory the daemon (www-data) may write to, for apps that leave
 *  marker files beside themselves. Returns the directory and the script's path. */
export function privateCopy(name: string, file = 'app.py'): { dir: string; script: string } {
  const dir = makeTempDir('mod_wsgi-asgi-')
  const script = join(dir, file)
  copyFileSync(asgiFixture(name, file), script)
  chmodSync(script, 0o644)
  mkdirSync(join(dir, 'markers'), { mode: 0o777 })
  chmodSync(join(dir, 'markers'), 0o777)
  return { dir, script }
}

/** The content of a marker file the app wrote, or '' when there is none. */
export function marker(dir: string, name: string): string {
  try {
    return readFileSync(join(dir, 'markers', name), 'utf8')
  } catch {
    return ''
  }
}

export interface RawResponse {
  /** Everything received, until the server closed the connection (or the timeout). */
  raw: Buffer
  head: string
  body: Buffer
  /** The server ended the connection (FIN or reset) before `timeoutMs`. */
  closed: boolean
}

/** Sends `request` verbatim and collects the reply until the server closes or `timeoutMs` passes. */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 10000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const s = net.connect(port, '127.0.0.1')
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      const raw = Buffer.concat(chunks)
      const at = raw.indexOf('\r\n\r\n')
      resolve({ raw, head: at < 0 ? raw.toString('latin1') : raw.subarray(0, at).toString('latin1'), body: at < 0 ? Buffer.alloc(0) : raw.subarray(at + 4), closed })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('end', () => finish(true))
    s.on('error', () => finish(true))
    s.on('connect', () => s.write(request))
  })
}
