// TLS for tests through a real Apache with mod_ssl: a CA, a server certificate for 127.0.0.1 and client
// certificates, all made by the test itself with openssl in its own directory, and an HTTPS client that
// can present a client certificate and choose its local address (127.0.0.x, for access-by-address tests).
import { spawnSync } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import * as https from 'node:https'
import { join } from 'node:path'
import type { Response } from './apache'

export interface Certs {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  /** Client certificates by common name: cert and key paths. */
  clients: Record<string, { cert: string; key: string }>
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'latin1' })
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`)
}

function key(dir: string, name: string): string {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', name])
  return join(dir, name)
}

/** Makes a CA, a server certificate for 127.0.0.1 and one client certificate per common name. */
export function makeCerts(dir: string, clientNames: string[]): Certs {
  const caKey = key(dir, 'ca.key')
  openssl(dir, ['req', '-x509', '-new', '-key', caKey, '-days', '2', '-subj', '/O=mod_wsgi tests/CN=Test CA', '-out', 'ca.pem'])
  const ext = join(dir, 'server.ext')
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  const sign = (name: string, subj: string, extfile?: string): string => {
    const k = key(dir, `${name}.key`)
    openssl(dir, ['req', '-new', '-key', k, '-subj', subj, '-out', `${name}.csr`])
    openssl(dir, [
      'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', caKey, '-CAcreateserial', '-days', '2',
      ...(extfile ? ['-extfile', extfile] : []), '-out', `${name}.pem`,
    ])
    return k
  }
  const serverKey = sign('server', '/O=mod_wsgi tests/CN=127.0.0.1', ext)
  const clients: Certs['clients'] = {}
  for (const cn of clientNames) {
    const k = sign(`client-${cn}`, `/O=mod_wsgi tests/OU=Agents/CN=${cn}`)
    clients[cn] = { cert: join(dir, `client-${cn}.pem`), key: k }
  }
  // Apache's parent reads them as root; nothing here needs to be secret beyond the test.
  chmodSync(dir, 0o755)
  return { dir, ca: join(dir, 'ca.pem'), serverCert: join(dir, 'server.pem'), serverKey, clients }
}

/** The mod_ssl lines of a virtual host using these certificates; client certificates are optional. */
export function sslVhostLines(c: Certs): string {
  return `
  SSLEngine on
  SSLCertificateFile ${c.serverCert}
  SSLCertificateKeyFile ${c.serverKey}
  SSLCACertificateFile ${c.ca}
  SSLVerifyClient optional
  SSLVerifyDepth 2`
}

export interface HttpsOptions {
  method?: string
  headers?: Record<string, string>
  body?: Buffer | string
  /** Client certificate and key paths. */
  client?: { cert: string; key: string }
  localAddress?: string
  timeoutMs?: number
  /** Writes the body in pieces with pauses (bytes, ms): a slow client. */
  slow?: { pieces: number; pauseMs: number }
}

export function httpsRequest(port: number, path: string, ca: string, o: HttpsOptions = {}): Promise<Response> {
  const headers = { ...o.headers }
  if (o.body !== undefined && headers['content-length'] === undefined) headers['content-length'] = String(Buffer.byteLength(o.body))
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: o.method ?? 'GET',
        headers,
        ca: readFileSync(ca),
        cert: o.client ? readFileSync(o.client.cert) : undefined,
        key: o.client ? readFileSync(o.client.key) : undefined,
        localAddress: o.localAddress,
        agent: false,
        timeout: o.timeoutMs ?? 30000,
      },
      (r) => {
        const chunks: Buffer[] = []
        r.on('data', (c: Buffer) => chunks.push(c))
        r.on('error', reject)
        r.on('end', () => {
          const body = Buffer.concat(chunks)
          resolve({ status: r.statusCode ?? 0, headers: r.headers, rawHeaders: r.rawHeaders, body, text: body.toString('latin1') })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`request ${path} timed out`)))
    req.on('error', reject)
    if (o.body === undefined) {
      req.end()
      return
    }
    const body = Buffer.from(o.body)
    if (!o.slow) {
      req.end(body)
      return
    }
    const { pieces, pauseMs } = o.slow
    const size = Math.ceil(body.length / pieces)
    let i = 0
    const next = (): void => {
      const part = body.subarray(i * size, (i + 1) * size)
      i++
      if (i >= pieces) req.end(part)
      else {
        req.write(part)
        setTimeout(next, pauseMs)
      }
    }
    next()
  })
}
