// A raw HTTP/1.1 exchange over a socket, for what Node's http client hides: whether a response ended
// properly (last chunk, or as many bytes as its Content-Length) or the connection was cut short.
import * as net from 'node:net'

export interface RawResponse {
  /** Everything received, as latin-1 text. */
  text: string
  status: number
  headers: Record<string, string>
  /** The body as sent on the wire (still chunk-encoded when chunked). */
  rawBody: string
  /** The body, de-chunked as far as the chunks go. */
  body: string
  /** False when the connection closed before the response's declared end. */
  complete: boolean
}

function parse(text: string): RawResponse {
  const split = text.indexOf('\r\n\r\n')
  const head = split < 0 ? text : text.slice(0, split)
  const rawBody = split < 0 ? '' : text.slice(split + 4)
  const [statusLine, ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const l of lines) {
    const i = l.indexOf(':')
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  let body = rawBody
  let complete = split >= 0
  if (headers['transfer-encoding'] === 'chunked') {
    body = ''
    complete = false
    let rest = rawBody
    for (;;) {
      const eol = rest.indexOf('\r\n')
      if (eol < 0) break
      const size = parseInt(rest.slice(0, eol), 16)
      if (Number.isNaN(size)) break
      if (size === 0) {
        complete = rest.slice(eol + 2).startsWith('\r\n')
        break
      }
      body += rest.slice(eol + 2, eol + 2 + size)
      rest = rest.slice(eol + 2 + size + 2)
    }
  } else if (headers['content-length'] !== undefined) {
    complete = complete && rawBody.length >= Number(headers['content-length'])
  }
  return { text, status: Number(statusLine.split(' ')[1] ?? 0), headers, rawBody, body, complete }
}

/**
 * Sends `request` (a whole HTTP/1.1 request, with `Connection: close` so that the server closes after
 * the response) and collects the answer until the connection closes.
 */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 20000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`no end of response after ${timeoutMs} ms: ${text.slice(0, 500)}`))
    }, timeoutMs)
    s.setEncoding('latin1')
    s.on('data', (d: string) => (text += d))
    s.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve(parse(text))
    })
    s.write(request)
  })
}

/** A GET with `Connection: close`. */
export function rawGet(port: number, path: string, timeoutMs?: number): Promise<RawResponse> {
  return rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, timeoutMs)
}
