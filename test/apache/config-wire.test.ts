// mod_wsgi.so's side of docs/protocol.md, driven through a real Apache against a scripted stand-in
// daemon (Python, started by the Apache parent through MOD_WSGI_NODE / MOD_WSGI_DAEMON_MAIN) that can
// answer in ways a healthy daemon never would: malformed frames, oversized heads, GOAWAY, ERROR,
// incomplete responses, passed file descriptors. What the request carries is echoed back as JSON.
import t from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import { join } from 'node:path'
import { fixture, makeTempDir, PYTHON, startApache } from '../helpers/apache'

const STAND_IN = `
import json, os, signal, socket, struct, threading, time

cfg = json.loads(os.environ.pop('MOD_WSGI_DAEMON_CONFIG'))
listener = socket.socket(fileno=3)
state = {'connections': 0, 'seen': {}}
lock = threading.Lock()
END_OK = b'\\x00\\x00\\x00\\x00'

def frame(t, payload=b''):
    return struct.pack('>BBHI', 1, t, 0, len(payload)) + payload

def s(b):
    return struct.pack('>I', len(b)) + b

def head(status, line, headers):
    p = struct.pack('>I', status) + s(line.encode('latin1')) + struct.pack('>I', len(headers))
    for k, v in headers:
        p += s(k.encode('latin1')) + s(v.encode('latin1'))
    return frame(0x11, p)

def ok(body, ctype='text/plain', extra=()):
    return head(200, '200 OK', [('Content-Type', ctype)] + list(extra)) + (frame(0x12, body) if body else b'') + frame(0x13, END_OK)

def recvn(c, n):
    b = b''
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b

def read_frame(c):
    v, t, fl, ln = struct.unpack('>BBHI', recvn(c, 8))
    return t, (recvn(c, ln) if ln else b'')

def parse_request(p):
    flags, start, count = struct.unpack('>IQI', p[:16])
    off, names, env = 16, [], {}
    for _ in range(count):
        (n,) = struct.unpack('>I', p[off:off + 4]); off += 4
        k = p[off:off + n].decode('latin1'); off += n
        (n,) = struct.unpack('>I', p[off:off + 4]); off += 4
        env[k] = p[off:off + n].decode('latin1'); off += n
        names.append(k)
    return flags, start, env, names

def respond(c, env, names, body, body_frames):
    path, q = env.get('PATH_INFO', ''), env.get('QUERY_STRING', '')
    if path == '/env':
        data = dict(env, __names__=names, __body__=body.decode('latin1'), __body_frames__=body_frames,
                    __connections__=state['connections'], __pid__=os.getpid())
        c.sendall(ok(json.dumps(data).encode(), 'application/json'))
    elif path == '/headers':
        c.sendall(head(201, '201 Created', [('Content-Type', 'Text/HTML; Charset=UTF-8'),
            ('Set-Cookie', 'a=1; Path=/'), ('Set-Cookie', 'b=2, c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT'),
            ('WWW-Authenticate', 'Basic realm="x, y"'), ('WWW-Authenticate', 'Bearer'),
            ('X-Multi', 'one'), ('X-Multi', 'two')]) + frame(0x12, b'ok') + frame(0x13, END_OK))
    elif path == '/crlf':
        c.sendall(head(200, '200 OK', [('X-Evil', 'a\\r\\nInjected: yes')]) + frame(0x13, END_OK))
    elif path == '/bigheaders':
        c.sendall(head(200, '200 OK', [('X-Big', 'y' * int(q))]) + frame(0x12, b'big') + frame(0x13, END_OK))
    elif path == '/error':
        c.sendall(frame(0x15, struct.pack('>I', int(q)) + s(b'the stand-in refused this request')))
    elif path == '/status':
        c.sendall(head(int(q), '%s From The App' % q, [('Content-Type', 'text/plain')]) + frame(0x12, b'app body') + frame(0x13, END_OK))
    elif path == '/incomplete':
        c.sendall(head(200, '200 OK', [('Content-Type', 'text/plain')]) + frame(0x12, b'partial') + frame(0x13, b'\\x00\\x00\\x00\\x01'))
    elif path == '/malformed':
        c.sendall(b'\\x07\\x42 this is not a frame')
        c.close()
        return False
    elif path == '/bad-type':
        c.sendall(head(200, '200 OK', []) + frame(0x01, b'') + frame(0x13, END_OK))
    elif path == '/hang':
        time.sleep(float(q))
        c.close()
        return False
    elif path == '/stream':
        c.sendall(head(200, '200 OK', [('Content-Type', 'text/plain')]) + frame(0x12, b'first\\n'))
        time.sleep(1.0)
        c.sendall(frame(0x12, b'second\\n') + frame(0x13, END_OK))
    elif path == '/big':
        n, sent = int(q), 0
        c.sendall(head(200, '200 OK', [('Content-Type', 'application/octet-stream')]))
        while sent < n:
            k = min(1 << 20, n - sent)
            c.sendall(frame(0x12, bytes([sent // 65536 % 251]) * k))
            sent += k
        c.sendall(frame(0x13, END_OK))
    elif path == '/file':
        offset, count = (int(x) for x in q.split(','))
        fd = os.open(os.environ['STAND_IN_FILE'], os.O_RDONLY)
        c.sendall(head(200, '200 OK', [('Content-Type', 'application/octet-stream')]) + frame(0x12, b'<'))
        socket.send_fds(c, [frame(0x14, struct.pack('>QQ', offset, count if count >= 0 else 0xFFFFFFFFFFFFFFFF))], [fd])
        os.close(fd)
        c.sendall(frame(0x12, b'>') + frame(0x13, END_OK))
    elif path == '/goaway-once':
        token = env.get('HTTP_X_TOKEN')
        with lock:
            state['seen'][token] = state['seen'].get(token, 0) + 1
            first = state['seen'][token] == 1
        if first:
            c.sendall(frame(0x16))
            c.close()
            return False
        c.sendall(ok(('attempts=%d' % state['seen'][token]).encode()))
    elif path == '/redirect':
        c.sendall(head(200, '200 OK', [('Location', '/w/env?redirected=1')]) + frame(0x12, b'ignored') + frame(0x13, END_OK))
    else:
        c.sendall(ok(b'hello'))
    return True

def serve(c):
    try:
        while True:
            t, p = read_frame(c)
            assert t == 1
            flags, start, env, names = parse_request(p)
            body, body_frames = b'', 0
            if flags & 1:
                while True:
                    t, p = read_frame(c)
                    if t == 3:
                        break
                    body += p
                    body_frames += 1
            if not respond(c, env, names, body, body_frames):
                return
    except (EOFError, OSError, AssertionError):
        pass
    try:
        c.close()
    except OSError:
        pass

signal.signal(signal.SIGUSR1, lambda *a: os._exit(0))
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
while True:
    c, _ = listener.accept()
    with lock:
        state['connections'] += 1
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

const dir = makeTempDir('mod_wsgi-wire-')
const standIn = join(dir, 'stand-in.py')
const dataFile = join(dir, 'data.bin')
const data = Buffer.from(Array.from({ length: 100000 }, (_, i) => (i * 7) % 256))
writeFileSync(standIn, STAND_IN, { mode: 0o644 })
writeFileSync(dataFile, data, { mode: 0o644 })
process.env.MOD_WSGI_NODE = PYTHON
process.env.MOD_WSGI_DAEMON_MAIN = standIn
process.env.STAND_IN_FILE = dataFile
t.teardown(() => {
  delete process.env.MOD_WSGI_NODE
  delete process.env.MOD_WSGI_DAEMON_MAIN
  delete process.env.STAND_IN_FILE
  rmSync(dir, { recursive: true, force: true })
})

const app = fixture('hello-world')

/** Raw HTTP/1.1 exchange: what the client sees, including an incomplete chunked body. */
function raw(port: number, request: string): Promise<{ text: string; closedEarly: boolean }> {
  return new Promise((res, rej) => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    s.setEncoding('latin1')
    s.on('data', (d: string) => (text += d))
    s.on('error', rej)
    s.on('end', () => res({ text, closedEarly: !/\r\n0\r\n\r\n$/.test(text) }))
    s.write(request)
  })
}

t.test('mod_wsgi.so against a scripted daemon', async (t) => {
  const apache = await startApache(t, {
    config: `
WSGIDaemonProcess w threads=8 socket-timeout=2 header-buffer-size=8192
WSGIScriptAlias /w ${app} process-group=w
WSGIScriptAlias /auth ${app} process-group=w pass-authorization=On
WSGIScriptAlias /chunked ${app} process-group=w
WSGIScriptAlias /override ${app} process-group=w
WSGIScriptAlias / ${app} process-group=w
<Location /chunked>
  WSGIChunkedRequest On
</Location>
<Location /override>
  WSGIErrorOverride On
</Location>
SetEnvIf X-Forwarded-Proto https HTTPS=on
SetEnv mod_wsgi.process_group forged
ErrorDocument 503 "the 503 error document"
ErrorDocument 404 "the 404 error document"
`,
  })
  const env = async (path: string, opts = {}) => JSON.parse((await apache.request(path, opts)).text)

  await t.test('SCRIPT_NAME and PATH_INFO for an alias at /sub and at /', async (t) => {
    let e = await env('/w/env')
    t.equal(e.SCRIPT_NAME, '/w')
    t.equal(e.PATH_INFO, '/env')
    e = await env('/w//env')
    t.equal(e.PATH_INFO, '/env', 'repeated slashes collapsed as mod_wsgi does')
    e = await env('/env?a=b')
    t.equal(e.SCRIPT_NAME, '', 'an alias at / has an empty SCRIPT_NAME')
    t.equal(e.PATH_INFO, '/env')
    t.equal(e.QUERY_STRING, 'a=b')
  })

  await t.test('control variables and what is left out', async (t) => {
    const e = await env('/w/env', { headers: { authorization: 'Basic dTpw' } })
    t.equal(e['mod_wsgi.process_group'], 'w', 'SetEnv cannot forge a control variable')
    t.equal(e['mod_wsgi.application_group'], `127.0.0.1:${apache.port}|/w`, 'default application group %{RESOURCE}')
    t.equal(e['mod_wsgi.callable_object'], 'application')
    t.equal(e['mod_wsgi.script_reloading'], '1')
    t.equal(e['mod_wsgi.enable_sendfile'], '0')
    t.equal(e['mod_wsgi.handler_script'], '')
    t.equal(e['mod_wsgi.url_scheme'], 'http')
    t.equal(e.SCRIPT_FILENAME, app)
    t.notOk('HTTP_AUTHORIZATION' in e, 'no Authorization without WSGIPassAuthorization')
    t.equal(new Set(e.__names__).size, e.__names__.length, 'every variable once')
    const withAuth = await env('/auth/env', { headers: { authorization: 'Basic dTpw' } })
    t.equal(withAuth.HTTP_AUTHORIZATION, 'Basic dTpw', 'pass-authorization=On')
    const https = await env('/w/env', { headers: { 'x-forwarded-proto': 'https' } })
    t.equal(https['mod_wsgi.url_scheme'], 'https', 'HTTPS set by SetEnvIf makes the scheme https')
    t.notOk('HTTPS' in https, 'and HTTPS itself is removed')
  })

  await t.test('request bodies: buffered, streamed, chunked', async (t) => {
    let e = await env('/w/env', { method: 'POST', body: 'small body' })
    t.equal(e.__body__, 'small body')
    t.equal(e.CONTENT_LENGTH, '10')
    const big = 'x'.repeat(300000)
    e = await env('/w/env', { method: 'POST', body: big })
    t.equal(e.__body__.length, big.length, 'a 300 kB body arrives whole')
    t.ok(e.__body_frames__ >= 1, 'as BODY frames')
    const refused = await apache.request('/w/env', { method: 'POST', body: 'abc', headers: { 'transfer-encoding': 'chunked' } })
    t.equal(refused.status, 411, 'chunked request body refused without WSGIChunkedRequest On')
    t.match(apache.log(), /WSGI01245: Request requires chunked transfer encoding/)
    e = await env('/chunked/env', { method: 'POST', body: 'abc', headers: { 'transfer-encoding': 'chunked' } })
    t.equal(e.__body__, 'abc', 'de-chunked with WSGIChunkedRequest On')
    t.notOk('CONTENT_LENGTH' in e)
  })

  await t.test('daemon connections are reused', async (t) => {
    const before = (await env('/w/env')).__connections__
    for (let i = 0; i < 20; i++) await apache.request('/w/')
    const after = (await env('/w/env')).__connections__
    t.ok(after - before <= 4, `21 requests needed ${after - before} new daemon connections`)
  })

  await t.test('response headers', async (t) => {
    const r = await apache.request('/w/headers')
    t.equal(r.status, 201)
    t.equal(r.headers['content-type'], 'text/html; Charset=UTF-8', 'Content-Type through ap_set_content_type (type lower-cased)')
    t.same(r.headers['set-cookie'], ['a=1; Path=/', 'b=2, c=3; Expires=Wed, 21 Oct 2026 07:28:00 GMT'], 'Set-Cookie kept separate and untouched')
    const auth = r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i].toLowerCase() === 'www-authenticate').length
    t.equal(auth, 2, 'two WWW-Authenticate headers')
    t.ok(r.rawHeaders.includes('Basic realm="x, y"'), 'with the comma kept')
    t.equal(r.text, 'ok')
  })

  await t.test('bad responses get an error status and a log line, and the daemon keeps serving', async (t) => {
    let r = await apache.request('/w/crlf')
    t.equal(r.status, 502, 'CR/LF in a header value')
    t.notOk('injected' in r.headers)
    r = await apache.request('/w/bigheaders?9000')
    t.equal(r.status, 500, 'HEAD larger than header-buffer-size')
    await apache.waitForLog(/WSGI01229: Truncated or oversized response headers received from daemon process 'w'/)
    r = await apache.request('/w/malformed')
    t.equal(r.status, 502, 'a malformed frame')
    await apache.waitForLog(/WSGI01220: Malformed response from daemon process 'w': unknown protocol version/)
    r = await apache.request('/w/bad-type')
    t.equal(r.status, 502, 'a frame type not allowed in a response')
    t.equal((await apache.request('/w/')).text, 'hello', 'the next request is served')
  })

  await t.test('ERROR frames become Apache errors (ErrorDocument applies)', async (t) => {
    const r = await apache.request('/w/error?503')
    t.equal(r.status, 503)
    t.equal(r.text, 'the 503 error document')
    await apache.waitForLog(/WSGI01224: Daemon process 'w' failed the request with status 503: the stand-in refused this request/)
  })

  await t.test('WSGIErrorOverride', async (t) => {
    let r = await apache.request('/w/status?404')
    t.equal(r.status, 404)
    t.equal(r.text, 'app body', "without it, the application's error page")
    r = await apache.request('/override/status?404')
    t.equal(r.status, 404)
    t.equal(r.text, 'the 404 error document', "with it, Apache's")
  })

  await t.test('an incomplete response is not ended cleanly', async (t) => {
    const r = await raw(apache.port, 'GET /w/incomplete HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    t.match(r.text, /^HTTP\/1\.1 200 OK/)
    t.match(r.text, /partial/)
    t.ok(r.closedEarly, 'no last chunk: the client can tell')
  })

  await t.test('a daemon that stops answering: 504 after socket-timeout', async (t) => {
    const started = Date.now()
    const r = await apache.request('/w/hang?5')
    t.equal(r.status, 504)
    t.ok(Date.now() - started < 4500, 'after socket-timeout (2 s), not the hang')
    await apache.waitForLog(/WSGI01225: Timeout when reading response headers from daemon process 'w'/)
  })

  await t.test('streamed responses reach the client piece by piece; bulk ones arrive whole', async (t) => {
    const started = Date.now()
    const first = await new Promise<number>((res, rej) => {
      const s = net.connect(apache.port, '127.0.0.1')
      s.on('data', (d) => {
        if (d.toString('latin1').includes('first')) {
          res(Date.now() - started)
          s.destroy()
        }
      })
      s.on('error', rej)
      s.write('GET /w/stream HTTP/1.1\r\nHost: x\r\n\r\n')
    })
    t.ok(first < 800, `the first piece arrived after ${first} ms, before the daemon finished`)
    const r = await apache.request('/w/big?5000000')
    t.equal(r.body.length, 5000000)
    t.ok(r.body.every((b, i) => b === (Math.floor(i / 1048576) * 16) % 251), 'in order (1 MiB frames)')
  })

  await t.test('FILE frames: the passed descriptor is sent', async (t) => {
    let r = await apache.request('/w/file?10,-1')
    t.equal(r.body.length, 1 + data.length - 10 + 1)
    t.ok(r.body.subarray(1, -1).equals(data.subarray(10)), 'to the end of the file')
    r = await apache.request('/w/file?100,5')
    t.ok(r.body.equals(Buffer.concat([Buffer.from('<'), data.subarray(100, 105), Buffer.from('>')])), 'a range')
  })

  await t.test('GOAWAY: the request is sent again on a fresh connection', async (t) => {
    const r = await apache.request('/w/goaway-once', { headers: { 'x-token': 'once' } })
    t.equal(r.status, 200)
    t.equal(r.text, 'attempts=2')
  })

  await t.test('a local Location with status 200 is an internal redirect', async (t) => {
    const e = await env('/w/redirect', { method: 'POST', body: 'data' })
    t.equal(e.QUERY_STRING, 'redirected=1')
    t.equal(e.REQUEST_METHOD, 'GET')
  })
})
